"""Seeing what the gateway does: budget use, the request log, generation records, traces
and the status page. Each is fed by the finished-request records (`gateway.accounting`)
or read when asked; none adds work or store I/O to a request's path."""
