"""Where a question becomes an answer: the engine (`engine.py`) that builds every part from
the settings and is the one surface of both front ends; the answer pipeline (`pipeline.py`:
clean, condense, retrieve, abstain, then quote or generate, quoting when generating fails);
abstention (`abstention.py`: the calibrated policy and the decision); quoted answers
(`extractive.py`, with `sentence_scoring.py` judging which sentence answers); generated answers
in `llm/` (an OpenAI-compatible model, checked against its citations); and thread follow-ups
condensed into standalone questions (`conversation.py`). Nothing here imports discord."""
