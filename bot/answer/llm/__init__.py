"""Generated answers: any OpenAI-compatible chat endpoint writes them, Citebot checks them.

`client` talks to the endpoint (streaming, timeouts, retries), `prompts` builds what it is
asked, `citations` checks what it answers against the passages it was given (`text` folds and
tells languages apart for both), `rewrite` writes the question in the articles' language for
retrieval, and `answerer` puts them together, falling back to the extractive answer whenever a
step fails. None of it knows Discord.
"""
