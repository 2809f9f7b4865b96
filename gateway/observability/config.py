"""The config sections of observability: `logging` (the request log), `generations`
(looking up past requests) and `tracing` (OpenTelemetry, off when absent)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class TracingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """OpenTelemetry traces over OTLP/HTTP: a span per request and one per upstream try.
    Needs the extra: `pip install 'switchboard[otel]'`. Off when the section is absent."""

    endpoint: Annotated[
        str,
        Meta(
            pattern=r"^https?://",
            description="The OTLP/HTTP traces endpoint of a collector (its /v1/traces).",
        ),
    ] = "http://127.0.0.1:4318/v1/traces"
    headers: Annotated[
        dict[str, str],
        Meta(description="Sent with every export (a collector's auth token: use ${VAR})."),
    ] = msgspec.field(default_factory=dict)
    service_name: Annotated[str, Meta(min_length=1, description="The `service.name`.")] = (
        "switchboard"
    )
    sample_ratio: Annotated[
        float,
        Meta(
            ge=0,
            le=1,
            description="Share of traces started here that are recorded; a caller's "
            "`traceparent` decides for the traces it started.",
        ),
    ] = 1.0
    export_interval: Annotated[
        float, Meta(gt=0, le=60, description="Seconds between batches sent to the collector.")
    ] = 2.0

    def __repr__(self) -> str:  # the headers may hold a token
        return f"TracingConfig(endpoint={self.endpoint!r}, headers=<hidden>)"


class RequestLogConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The request log: one JSON line per request (docs/observability.md#the-request-log)."""

    requests: Annotated[bool, Meta(description="Write the request log at all.")] = True
    output: Annotated[
        str,
        Meta(
            min_length=1,
            description="`stdout`, `stderr`, or a file path (appended to; reopened when "
            "log rotation moves it).",
        ),
    ] = "stdout"
    bodies: Annotated[
        bool,
        Meta(
            description="Add each request's body and its answer (prompts and completions) "
            "to its line. Off by default: they may hold personal data."
        ),
    ] = False
    max_body_bytes: Annotated[
        int,
        Meta(ge=256, description="With `bodies`: longer bodies are cut to this many bytes."),
    ] = 65536


class GenerationsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Past requests, looked up by id (`GET /v1/generations/{id}`)."""

    retention: Annotated[
        float, Meta(gt=0, description="Seconds a request can be looked up after it ended.")
    ] = 86400.0
    memory_max_entries: Annotated[
        int,
        Meta(
            ge=100,
            description="With the memory store: the most requests kept; the oldest go first.",
        ),
    ] = 100_000
