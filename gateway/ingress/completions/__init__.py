"""`POST /v1/completions`: OpenAI's legacy completions API, routed like chat to the
deployments that speak it (OpenAI-compatible, Azure, simulated), streaming included."""
