"""The Anthropic Messages API ingress: `POST /v1/messages` and
`POST /v1/messages/count_tokens`, routed like chat, answered in Anthropic's shapes."""
