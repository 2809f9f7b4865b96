"""Tracing as the gateway uses it, whatever implements it. OpenTelemetry is an optional
extra: with no `tracing` section nothing of it is imported and a request does no tracing
work at all (the middleware and the router each test one `None`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gateway.config import ConfigError
from gateway.observability.config import TracingConfig
from providers.config import ProviderConfig
from routing.router import TryWrapper


class Tracing(Protocol):
    tries: TryWrapper  # a client span per upstream try

    def request_started(
        self, method: str, path: str, traceparent: str | None, tracestate: str | None
    ) -> Any:
        """The request's server span, made current; None for a path that is not traced.
        Hand what it returns to `request_ended`."""

    def request_ended(self, started: Any, status: int, record: Any) -> None:
        """`record`: the request's `RequestRecord`, when its account was closed."""

    def shutdown(self) -> None:
        """Export what is still batched (blocks: run it in a thread)."""


def require_tracing() -> None:
    """Raises ConfigError when the `otel` extra is not installed."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "tracing: needs the extra: pip install 'switchboard[otel]' "
            f"({exc.name} is not installed)"
        ) from None


def open_tracing(
    config: TracingConfig | None, providers: Mapping[str, ProviderConfig]
) -> Tracing | None:
    """None when tracing is off: then nothing of OpenTelemetry is imported."""
    if config is None:
        return None
    require_tracing()
    from gateway.observability.otel import OtelTracing

    return OtelTracing(config, providers)
