"""`python -m bot [--sync] [--guild ID]`: run the Discord bot, like `citebot bot`."""

import sys

from bot.cli import main

sys.exit(main(["bot", *sys.argv[1:]]))
