"""Datasets as CSV and JSONL files, read as strictly as YAML ones, each problem at its line.

``datasets/<name>.csv`` — a header row, then one row per record. A column named like a row
field (``name``, ``interlocutor_simulation_prompt``, ``max_turns``, ``mock_function_outputs``)
fills that field; every other column is a variable (``variables.company`` or just ``company``).
Cells are text; an empty cell is absent; a whole-number field is parsed as one, a field holding
a mapping (``mock_function_outputs``) as JSON text.

``datasets/<name>.jsonl`` — one JSON object per line, one row each, with a row's own fields;
an optional first line ``{"dataset": {"mode": …, "description": …}}`` holds the dataset's.

Unless that first line says, the mode is what the file shows: conversational when it has
``interlocutor_simulation_prompt`` (a CSV column, a key of any JSONL row), else single_turn.
"""

from prompttracker.config.tabular.dataset import append_tabular_row, load_tabular, read_dataset

__all__ = ["append_tabular_row", "load_tabular", "read_dataset"]
