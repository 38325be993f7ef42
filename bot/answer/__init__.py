"""Where a question becomes an answer: the engine that builds every part from the settings,
the extractive answerer (quote the sentences that answer), the generated answerer in `llm/`
(an OpenAI-compatible model, checked against its citations), and thread follow-ups condensed
into standalone questions. Nothing here imports discord."""
