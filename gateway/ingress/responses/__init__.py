"""`POST /v1/responses`: OpenAI's Responses API, routed like chat.

Deployments whose upstream speaks the Responses API (OpenAI, Azure) get the client's body
forwarded; every other deployment is reached through the Chat Completions path, the
request translated onto a `ChatRequest` and the answer back into a Response object or
the Responses event stream. Responses served that way are kept in the gateway's own
store so that `previous_response_id` works across any deployment.
"""
