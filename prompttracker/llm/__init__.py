"""LLM sessions: one module per API, one routing table in ``router``."""
