"""``python -m prompttracker``: the same as the ``pt`` command."""

from prompttracker.cli import main

main()
