"""The ``pt`` console script: the command line, started so that nothing around it breaks.

- A terminal or pipe that cannot encode a character (``PYTHONIOENCODING=ascii``, a Latin-1
  terminal) gets ``?`` in its place, never a ``UnicodeEncodeError``.
- Ctrl-C while ``pt`` is still starting (importing) exits 130 without a traceback, as it does
  during a run.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130


def main() -> None:
    """Console-script entry point."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    try:
        from prompttracker.cli import app

        app()
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(INTERRUPTED)
