"""Results storage: SQLite via sqlite-utils, with append-only migrations."""

from prompttracker.store.migrations import migrations
from prompttracker.store.rows import version_hash
from prompttracker.store.store import Store

__all__ = ["Store", "migrations", "version_hash"]
