"""The config sections of observability: `tracing` (OpenTelemetry), with more to come
(the request log, generation records). Each is off when absent."""

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
