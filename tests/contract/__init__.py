"""Contract tests against the official OpenAI OpenAPI spec, served by Prism (see conftest)."""
