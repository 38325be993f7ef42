"""The bot's features, one cog per module, each loaded as an extension by `setup(bot)`."""
