"""Reports: rich views of results (never printed here) and file writers (JUnit XML)."""

from prompttracker.report.junit import write_junit
from prompttracker.report.summary import runs_table, summary_table, totals_line
from prompttracker.report.transcript import transcript_text, transcript_view

__all__ = [
    "runs_table",
    "summary_table",
    "totals_line",
    "transcript_text",
    "transcript_view",
    "write_junit",
]
