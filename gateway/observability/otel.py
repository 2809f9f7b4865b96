"""OpenTelemetry tracing (the `otel` extra): a server span per API request, a client span
per upstream try, with the GenAI semantic conventions as open-telemetry/semantic-conventions
`docs/gen-ai/gen-ai-spans.md` names them, plus Switchboard's routing attributes, exported
over OTLP/HTTP by the SDK's batch processor (in its own thread, off the event loop).

The request span continues the caller's `traceparent`; each try's span is current while
the try opens its upstream request, and its context is what the upstream is sent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.accounting.record import RequestRecord
from gateway.observability.config import TracingConfig
from gateway.services import catalogue_family
from providers import correlation
from providers.base import ProviderResponse, StreamChunk
from providers.chat_types import Usage
from providers.config import ProviderConfig
from providers.correlation import Correlation
from providers.errors import SwitchboardError
from routing.plan import Candidate
from routing.router import CompleteCall, OpenStream, TryWrapper

# the API paths traced, and their `gen_ai.operation.name` (semantic conventions' values)
OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "chat",
    "/v1/messages": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
}
# `gen_ai.provider.name` by provider kind or preset: the conventions' well-known values,
# else the preset's own name
PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "perplexity": "perplexity",
}
# the request's operation, kept in the OpenTelemetry context next to its span
_OPERATION = otel_context.create_key("switchboard.operation")


class _Answer(msgspec.Struct):
    """What a span wants of an answer (a completion, an embedding list or a chunk)."""

    id: str | None = None
    model: str | None = None
    choices: list[_Choice] | None = None


class _Choice(msgspec.Struct):
    finish_reason: str | None = None


_answer = msgspec.json.Decoder(_Answer)


class _Request(msgspec.Struct):
    span: Span
    token: object  # the OpenTelemetry context attached for it
    operation: str


def _server(config: ProviderConfig) -> tuple[str, int] | None:
    url = (
        getattr(config, "resolved_base_url", None)
        or getattr(config, "endpoint", None)
        or getattr(config, "base_url", None)
    )
    if not isinstance(url, str):
        return None  # in-process (simulated)
    parts = urlsplit(url)
    if parts.hostname is None:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _traceparent(span: Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _usage(span: Span, usage: Usage | None) -> None:
    if usage is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)


def _answered(span: Span, body: bytes) -> None:
    try:
        answer = _answer.decode(body)
    except msgspec.MsgspecError:
        return
    if answer.id:
        span.set_attribute("gen_ai.response.id", answer.id)
    if answer.model:
        span.set_attribute("gen_ai.response.model", answer.model)
    reasons = [c.finish_reason for c in answer.choices or () if c.finish_reason]
    if reasons:
        span.set_attribute("gen_ai.response.finish_reasons", reasons)


def _failed(span: Span, error: BaseException) -> None:
    if isinstance(error, SwitchboardError):
        kind = error.code
    elif isinstance(error, GeneratorExit):
        kind = "cancelled"  # the client left, or the stream was closed before its end
    else:
        kind = type(error).__name__
    span.set_attribute("error.type", kind)
    span.set_status(StatusCode.ERROR, getattr(error, "message", None) or kind)


class OtelTracing:
    def __init__(
        self,
        config: TracingConfig,
        providers: Mapping[str, ProviderConfig],
        exporter: SpanExporter | None = None,
    ) -> None:
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": config.service_name}),
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        )
        exporter = exporter or OTLPSpanExporter(
            endpoint=config.endpoint, headers=dict(config.headers)
        )
        self._provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=config.export_interval * 1000)
        )
        # this app's own provider, not the process-wide one: two apps never mix spans
        self._tracer = self._provider.get_tracer("switchboard")
        self._propagator = TraceContextTextMapPropagator()
        self._vendors = {
            name: PROVIDER_NAMES.get(catalogue_family(c), catalogue_family(c))
            for name, c in providers.items()
        }
        self._servers = {name: _server(c) for name, c in providers.items()}
        self.tries: TryWrapper = _TracedTries(self)

    # --- the request's span -------------------------------------------------------------

    def request_started(
        self, method: str, path: str, traceparent: str | None, tracestate: str | None
    ) -> _Request | None:
        operation = OPERATIONS.get(path)
        if operation is None:
            return None  # health checks, scrapes, the status page: not traced
        carrier = {"traceparent": traceparent} if traceparent else {}
        if traceparent and tracestate:
            carrier["tracestate"] = tracestate
        parent = self._propagator.extract(carrier)
        span = self._tracer.start_span(
            f"{method} {path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": path,
                "url.path": path,
                "gen_ai.operation.name": operation,
            },
        )
        current = otel_context.set_value(
            _OPERATION, operation, trace.set_span_in_context(span, parent)
        )
        return _Request(span=span, token=otel_context.attach(current), operation=operation)

    def request_ended(self, started: _Request | None, status: int, record: Any) -> None:
        if started is None:
            return
        span = started.span
        try:
            span.set_attribute("http.response.status_code", status)
            if isinstance(record, RequestRecord):
                self._recorded(span, record)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
        finally:
            span.end()
            otel_context.detach(started.token)  # type: ignore[arg-type]

    def _recorded(self, span: Span, record: RequestRecord) -> None:
        attributes: dict[str, Any] = {
            "switchboard.request_id": record.request_id,
            "switchboard.endpoint": record.endpoint,
            "switchboard.stream": record.stream,
            "switchboard.failed_attempts": len(record.attempts),
            "switchboard.cost_usd": record.cost_usd,
            "switchboard.cost_estimated": record.cost_estimated,
        }
        if record.model is not None:
            attributes["gen_ai.request.model"] = record.model
        if record.key is not None:
            attributes["switchboard.key"] = record.key
        if record.team is not None:
            attributes["switchboard.team"] = record.team
        if record.error_code is not None:
            attributes["error.type"] = record.error_code
        metadata = record.routing_metadata
        if metadata is not None:
            attributes |= {
                "gen_ai.provider.name": self._vendors.get(metadata.provider, metadata.provider),
                "gen_ai.response.model": metadata.provider_model_id,
                "switchboard.provider": metadata.provider,
                "switchboard.model": metadata.model_canonical,
                "switchboard.routing.strategy": metadata.routing_strategy,
                "switchboard.latency_ms": metadata.latency_ms,
            }
            if metadata.ttft_ms is not None:
                attributes["switchboard.ttft_ms"] = metadata.ttft_ms
        span.set_attributes(attributes)
        _usage(span, record.usage)

    # --- the tries' spans ---------------------------------------------------------------

    def try_started(self, candidate: Candidate) -> tuple[Span, object]:
        """A try's span, and its context as the correlation its upstream request carries."""
        deployment = candidate.deployment
        current = otel_context.get_current()
        operation = otel_context.get_value(_OPERATION, current)
        if not isinstance(operation, str):
            operation = "chat"  # a try outside a traced request (none today)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": self._vendors.get(deployment.provider, deployment.provider),
            "gen_ai.request.model": deployment.model,
            "switchboard.provider": deployment.provider,
            "switchboard.model": candidate.canonical,
            "switchboard.deployment": candidate.id,
        }
        server = self._servers.get(deployment.provider)
        if server is not None:
            attributes["server.address"], attributes["server.port"] = server
        span = self._tracer.start_span(
            f"{operation} {deployment.model}",
            context=current,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        before = correlation.current()
        token = correlation.set_current(
            Correlation(
                request_id=before.request_id if before else "",
                traceparent=_traceparent(span),
                tracestate=before.tracestate if before else None,
            )
        )
        return span, token

    def shutdown(self) -> None:
        self._provider.shutdown()


class _TracedTries:
    def __init__(self, tracing: OtelTracing) -> None:
        self._tracing = tracing

    def complete(self, call: CompleteCall) -> CompleteCall:
        tracing = self._tracing

        async def traced(candidate: Candidate) -> ProviderResponse:
            span, token = tracing.try_started(candidate)
            try:
                response = await call(candidate)
            except BaseException as exc:
                _failed(span, exc)
                span.end()
                raise
            finally:
                correlation.reset(token)  # type: ignore[arg-type]
            _usage(span, response.usage)
            _answered(span, response.body)
            span.end()
            return response

        return traced

    def stream(self, open_stream: OpenStream) -> OpenStream:
        tracing = self._tracing

        def traced(candidate: Candidate) -> AsyncGenerator[StreamChunk, None]:
            return _traced_stream(tracing, open_stream, candidate)

        return traced


async def _traced_stream(
    tracing: OtelTracing, open_stream: OpenStream, candidate: Candidate
) -> AsyncGenerator[StreamChunk, None]:
    """The span lasts until the stream ends, fails or is closed early."""
    span, token = tracing.try_started(candidate)
    chunks = open_stream(candidate)
    usage: Usage | None = None
    try:
        try:
            first = await anext(chunks)  # the upstream request goes out, with the span's context
        except StopAsyncIteration:
            return  # an empty stream: the router names the failure
        finally:
            correlation.reset(token)  # type: ignore[arg-type]
        _answered(span, first.data)
        usage = first.usage
        yield first
        async for chunk in chunks:
            if chunk.usage is not None:
                usage = chunk.usage
            yield chunk
    except BaseException as exc:
        _failed(span, exc)
        raise
    finally:
        await chunks.aclose()
        _usage(span, usage)
        span.end()
