"""`POST /v1/embeddings`: OpenAI's embeddings API, routed like chat over the requested
model's deployments, each answered by its provider's embeddings operation."""
