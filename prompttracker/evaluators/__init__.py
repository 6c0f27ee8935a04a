"""Evaluators: score a finished conversation 0–100. Registry in ``registry``."""
