"""Anthropic's Messages API (`POST /v1/messages`), translated to and from OpenAI's shapes."""
