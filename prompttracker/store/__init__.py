"""Results storage: SQLite via sqlite-utils, with append-only migrations."""

from prompttracker.store.migrations import migrations
from prompttracker.store.store import Store, version_hash

__all__ = ["Store", "migrations", "version_hash"]
