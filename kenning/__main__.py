"""``python -m kenning``: the CLI, also how a background embedding worker is started."""

from kenning.cli import main

main()
