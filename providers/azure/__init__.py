"""Azure OpenAI: the OpenAI wire under per-deployment URLs, an `api-version` and `api-key`."""
