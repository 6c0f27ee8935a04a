"""``python -m prompttracker``: the same as the ``pt`` command."""

from prompttracker.entry import main

main()
