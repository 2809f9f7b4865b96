"""Any upstream that speaks OpenAI Chat Completions (OpenAI, Groq, Together, vLLM, …)."""
