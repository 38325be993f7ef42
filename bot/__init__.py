"""Citebot's front half: `answer/` turns a question into a cited answer, `discord/` turns an
answer into Discord messages, `cli.py` is the `citebot` command, `evaluation.py` measures
quality on evaluation sets, `settings.py` owns every default, `errors.py` the user-facing
errors."""
