"""PromptTracker: test LLM prompts the way you test code."""

__version__ = "0.1.0"
