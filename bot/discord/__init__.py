"""Where an answer becomes a Discord message: the bot and its launcher, one cog per command in
`cogs/`, the payloads that keep within Discord's limits and never ping anyone, the throttle for
streamed edits, the channel map, and the SQLite store of posted answers and votes. It reaches
the index only through the answer engine."""
