"""OpenTelemetry (the `otel` extra): a server span per request and a client span per
upstream try, with the GenAI semantic conventions' attribute names, exported over OTLP/HTTP
to a real receiver on loopback; the caller's trace continued and each try's context sent
upstream. Off by default, and then nothing of OpenTelemetry is even imported."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.config import ConfigError, parse_config
from gateway.services import Services
from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import ErrorReply, MockUpstream
from tests.routing_setup import HELLO, routed_config, wait_until

StartGateway = Callable[[dict[str, Any]], GatewayServer]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class OTLPReceiver:
    """An OTLP/HTTP traces endpoint (protobuf) that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[tuple[Span, dict[str, Any]]] = []  # with its resource's attributes
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with receiver._lock:
                    for resource_spans in request.resource_spans:
                        resource = attributes(resource_spans.resource.attributes)
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans += [(s, resource) for s in scope_spans.spans]
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(b"")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def of_trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s, _ in self.spans if s.trace_id.hex() == trace_id]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: value(pair.value) for pair in pairs}


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    server = OTLPReceiver()
    yield server
    server.stop()


def traced_config(receiver: OTLPReceiver, *upstreams: MockUpstream) -> dict[str, Any]:
    """Model `m` on `a` (tried first) and `b`; one try each."""
    names = ["a", "b"][: len(upstreams)]
    config = routed_config(
        {"m": [(name, float(i + 1)) for i, name in enumerate(names)]},
        {name: u.url for name, u in zip(names, upstreams, strict=True)},
    )
    config["tracing"] = {"endpoint": receiver.url, "export_interval": 0.05}
    return config


def spans_of(receiver: OTLPReceiver, count: int) -> dict[str, Span]:
    """The trace's spans by name, once all `count` have been exported."""
    wait_until(lambda: len(receiver.of_trace(TRACE_ID)) >= count, timeout=20)
    spans = receiver.of_trace(TRACE_ID)
    assert len(spans) == count, [s.name for s in spans]
    return {s.name: s for s in spans}


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_with_a_fallback_is_one_trace(
    gateway_factory: StartGateway,
    mock_upstream_factory: Callable[[], MockUpstream],
    receiver: OTLPReceiver,
    stream: bool,
) -> None:
    first, second = mock_upstream_factory(), mock_upstream_factory()
    first.enqueue(ErrorReply(503, "overloaded", type="server_error"))
    gateway = gateway_factory(traced_config(receiver, first, second))
    headers = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01", "tracestate": "vendor=x"}
    client = gateway.sdk()
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="m", messages=HELLO, stream=True, extra_headers=headers
            )
        )
        metadata, usage = metadata_of(chunks[-1]), chunks[-1].usage
    else:
        answer = client.chat.completions.create(model="m", messages=HELLO, extra_headers=headers)
        metadata, usage = metadata_of(answer), answer.usage
    assert metadata["provider"] == "b"

    spans = spans_of(receiver, 3)
    request = spans["POST /v1/chat/completions"]
    failed, served = spans["chat a-m"], spans["chat b-m"]
    # the caller's trace goes on: the request's span is a child of the caller's
    assert request.parent_span_id.hex() == CALLER_SPAN
    assert request.kind == Span.SPAN_KIND_SERVER
    assert failed.parent_span_id == served.parent_span_id == request.span_id
    assert failed.kind == served.kind == Span.SPAN_KIND_CLIENT
    assert request.start_time_unix_nano <= failed.start_time_unix_nano
    assert failed.end_time_unix_nano <= served.start_time_unix_nano
    assert served.end_time_unix_nano <= request.end_time_unix_nano

    # the GenAI conventions, names exactly as open-telemetry/semantic-conventions has them
    on_request = attributes(request.attributes)
    assert on_request["gen_ai.operation.name"] == "chat"
    assert on_request["gen_ai.request.model"] == "m"
    assert on_request["gen_ai.provider.name"] == "openai"
    assert on_request["gen_ai.response.model"] == "b-m"
    assert on_request["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert on_request["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert on_request["http.response.status_code"] == 200
    # and the routing
    assert on_request["switchboard.provider"] == "b"
    assert on_request["switchboard.model"] == "m"
    assert on_request["switchboard.routing.strategy"] == "cost"
    assert on_request["switchboard.failed_attempts"] == 1
    assert on_request["switchboard.cost_usd"] == pytest.approx(metadata["cost"]["usd"])
    assert on_request["switchboard.request_id"] == metadata["request_id"]
    assert on_request["switchboard.stream"] is stream

    on_failed = attributes(failed.attributes)
    assert on_failed["gen_ai.operation.name"] == "chat"
    assert on_failed["gen_ai.provider.name"] == "openai"
    assert on_failed["gen_ai.request.model"] == "a-m"
    assert on_failed["server.address"] == "127.0.0.1"
    assert on_failed["server.port"] == first.port
    assert on_failed["error.type"] == "upstream_unavailable"
    assert on_failed["switchboard.deployment"] == "a/a-m"
    assert failed.status.code == Status.STATUS_CODE_ERROR

    on_served = attributes(served.attributes)
    assert on_served["gen_ai.request.model"] == "b-m"
    assert on_served["gen_ai.response.model"] == "b-m"  # what the upstream answered
    assert on_served["gen_ai.response.id"] == "chatcmpl-mock"
    assert on_served["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert on_served["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert on_served["server.port"] == second.port
    assert "error.type" not in on_served
    if not stream:
        assert on_served["gen_ai.response.finish_reasons"] == ["stop"]

    # each upstream was sent its own try's context, and the caller's tracestate
    for upstream, span in ((first, failed), (second, served)):
        sent = upstream.last_request.headers
        assert sent["traceparent"] == f"00-{TRACE_ID}-{span.span_id.hex()}-01"
        assert sent["tracestate"] == "vendor=x"

    resource = next(r for s, r in receiver.spans if s.span_id == request.span_id)
    assert resource["service.name"] == "switchboard"


def test_an_error_answer_is_an_error_span(
    gateway_factory: StartGateway,
    mock_upstream_factory: Callable[[], MockUpstream],
    receiver: OTLPReceiver,
) -> None:
    upstream = mock_upstream_factory()
    upstream.set_default(ErrorReply(503, "overloaded", type="server_error"))
    gateway = gateway_factory(traced_config(receiver, upstream))
    answer = gateway.post(
        {"model": "m", "messages": HELLO},
        headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
    )
    assert answer.status_code == 502
    spans = spans_of(receiver, 2)
    request = spans["POST /v1/chat/completions"]
    on_request = attributes(request.attributes)
    assert on_request["http.response.status_code"] == 502
    assert on_request["error.type"] == "upstream_unavailable"
    assert request.status.code == Status.STATUS_CODE_ERROR
    assert "gen_ai.response.model" not in on_request  # nobody answered


def test_a_trace_starts_here_without_a_caller(
    gateway_factory: StartGateway,
    mock_upstream_factory: Callable[[], MockUpstream],
    receiver: OTLPReceiver,
) -> None:
    upstream = mock_upstream_factory()
    gateway = gateway_factory(traced_config(receiver, upstream))
    gateway.sdk().chat.completions.create(model="m", messages=HELLO)
    wait_until(lambda: len(receiver.spans) >= 2, timeout=20)
    request = next(s for s, _ in receiver.spans if s.name == "POST /v1/chat/completions")
    assert request.parent_span_id == b""  # a root span
    sent = upstream.last_request.headers["traceparent"]
    assert sent.split("-")[1] == request.trace_id.hex()


def test_health_checks_and_scrapes_are_not_traced(
    gateway_factory: StartGateway,
    mock_upstream_factory: Callable[[], MockUpstream],
    receiver: OTLPReceiver,
) -> None:
    upstream = mock_upstream_factory()
    gateway = gateway_factory(traced_config(receiver, upstream))
    for path in ("/healthz", "/metrics", "/v1/models"):
        gateway.sdk()._client.get(f"{gateway.url}{path}")
    gateway.sdk().chat.completions.create(model="m", messages=HELLO)
    wait_until(lambda: len(receiver.spans) >= 2, timeout=20)
    assert {s.name for s, _ in receiver.spans} == {"POST /v1/chat/completions", "chat a-m"}


def test_off_by_default_nothing_of_opentelemetry_is_imported() -> None:
    """Without a `tracing` section a request costs one `None` test: neither the SDK nor
    the API's tracing is even imported (a fresh interpreter serves requests and looks)."""
    script = """
import asyncio, sys
from litestar.testing import AsyncTestClient
from gateway.app import create_app
from gateway.config import parse_config
deployment = {"provider": "sim", "model": "s", "input_per_mtok": 1, "output_per_mtok": 1}
app = create_app(parse_config({"auth": "none", "providers": {"sim": {"kind": "simulated"}},
    "models": {"m": {"deployments": [deployment]}}}))
async def main():
    async with AsyncTestClient(app=app) as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        for stream in (False, True):
            answer = await client.post("/v1/chat/completions", json={**body, "stream": stream})
            assert answer.status_code == 200, answer.text
asyncio.run(main())
# Litestar looks for its own OpenTelemetry plugin when the package is installed (it
# imports the API's namespace and some attribute names, once): nothing else may be loaded
loaded = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.trace",
          "opentelemetry.context", "gateway.observability.otel")
print(sorted(m for m in sys.modules if m.startswith(loaded)))
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_tracing_without_the_extra_is_a_config_error() -> None:
    script = """
import sys
for name in [m for m in sys.modules if m.startswith("opentelemetry")]:
    del sys.modules[name]
sys.modules["opentelemetry"] = None  # as if the extra were not installed
from gateway.cli import main
sys.exit(main(["check-config", sys.argv[1]]))
"""
    import tempfile

    import yaml

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as file:
        yaml.safe_dump(
            {
                "auth": "none",
                "tracing": {"endpoint": "http://127.0.0.1:4318/v1/traces"},
                "providers": {"sim": {"kind": "simulated"}},
                "models": {
                    "m": {
                        "deployments": [
                            {
                                "provider": "sim",
                                "model": "s",
                                "input_per_mtok": 1,
                                "output_per_mtok": 1,
                            }
                        ]
                    }
                },
            },
            file,
        )
    run = subprocess.run(
        [sys.executable, "-c", script, file.name], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "tracing: needs the extra: pip install 'switchboard[otel]'" in run.stderr


def test_a_bad_tracing_section_names_the_field() -> None:
    config = {"auth": "none", "tracing": {"endpoint": "localhost:4318", "sample_ratio": 2}}
    with pytest.raises(ConfigError, match=r"^tracing\.endpoint"):
        parse_config(config)
    assert Services  # the module that checks the extra imports without it
