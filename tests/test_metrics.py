"""`GET /metrics` end to end: the real gateway, mock upstreams on loopback, the official SDK
as the client, and the exposition parsed by prometheus_client's own parser."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import ErrorReply, MockUpstream, SSEReply
from tests.routing_setup import HELLO, routed_config

StartGateway = Callable[[dict[str, Any]], GatewayServer]
MakeUpstream = Callable[[], MockUpstream]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(gateway: GatewayServer) -> Samples:
    answer = httpx.get(f"{gateway.url}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def wait_for(gateway: GatewayServer, check: Callable[[Samples], bool]) -> Samples:
    """Deployment gauges follow the store's snapshot, refreshed every 50 ms here; the
    bound is generous for a loaded machine and costs nothing once the check holds."""
    deadline = time.monotonic() + 30
    samples = scrape(gateway)
    while not check(samples) and time.monotonic() < deadline:
        time.sleep(0.05)
        samples = scrape(gateway)
    return samples


def streamed(client: openai.OpenAI, model: str = "m") -> tuple[dict[str, Any], Any]:
    """A streamed answer's metadata and usage (both ride on its last chunk)."""
    chunks = list(client.chat.completions.create(model=model, messages=HELLO, stream=True))
    return metadata_of(chunks[-1]), chunks[-1].usage


def test_counters_and_histograms_add_up_to_the_answers(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = {name: mock_upstream_factory() for name in ("cheap", "backup", "flaky")}
    config = routed_config(
        {"m": [("cheap", 0.5), ("backup", 1.0)], "solo": [("flaky", 1.0)]},
        {name: upstream.url for name, upstream in upstreams.items()},
    )
    gateway = gateway_factory(config)
    client = gateway.sdk()
    answers: list[tuple[dict[str, Any], Any, bool]] = []  # metadata, usage, streamed

    for _ in range(3):
        answer = client.chat.completions.create(model="m", messages=HELLO)
        answers.append((metadata_of(answer), answer.usage, False))
    for _ in range(2):
        answers.append((*streamed(client), True))
    # a 503 from the cheapest: the backup answers, the failed try is listed
    upstreams["cheap"].enqueue(ErrorReply(503, "overloaded", type="server_error"))
    answer = client.chat.completions.create(model="m", messages=HELLO)
    answers.append((metadata_of(answer), answer.usage, False))
    assert [(a["provider"], a["error"]) for a in answers[-1][0]["attempts"]] == [
        ("cheap", "upstream_unavailable")
    ]

    # failures: every deployment down (502), an unknown model (404), an upstream's own
    # refusal with its own code (400), a stream cut after it started, an unknown URL
    upstreams["flaky"].set_default(ErrorReply(503, "overloaded", type="server_error"))
    assert gateway.post({"model": "solo", "messages": HELLO}).status_code == 502
    assert gateway.post({"model": "nope", "messages": HELLO}).status_code == 404
    upstreams["cheap"].enqueue(ErrorReply(400, "too long", code="context_length_exceeded"))
    assert gateway.post({"model": "m", "messages": HELLO}).status_code == 400
    upstreams["cheap"].enqueue(SSEReply(cut_after=3, send_done=False))
    cut = gateway.post({"model": "m", "messages": HELLO, "stream": True})
    assert cut.status_code == 200 and '"error"' in cut.text
    assert httpx.get(f"{gateway.url}/v1/nope", timeout=5).status_code == 404

    samples = scrape(gateway)

    def chat(model: str, provider: str, outcome: str) -> frozenset[tuple[str, str]]:
        labels = {"endpoint": "chat.completions", "key": "", "team": "", "outcome": outcome}
        return frozenset({**labels, "model": model, "provider": provider}.items())

    assert series(samples, "switchboard_requests_total") == {
        chat("m", "cheap", "success"): 5,
        chat("m", "backup", "success"): 1,
        # the last deployment tried, or none: an unknown model's name never becomes a label
        chat("solo", "flaky", "error"): 1,
        chat("", "", "error"): 2,
        chat("m", "cheap", "error"): 1,
        # an unknown URL is not an API request: only an error answer
    }

    def error(status: str, code: str, endpoint: str = "chat.completions") -> Any:
        return frozenset({("endpoint", endpoint), ("status", status), ("code", code)})

    assert series(samples, "switchboard_errors_total") == {
        error("502", "upstream_unavailable"): 1,
        error("404", "model_not_found"): 1,
        # an upstream's own code is counted under our class's code
        error("400", "upstream_rejected_request"): 1,
        error("502", "upstream_stream_cut"): 1,
        error("404", "unknown_url", endpoint="other"): 1,
    }
    assert series(samples, "switchboard_upstream_attempts_failed_total") == {
        frozenset({("model", "m"), ("provider", "cheap"), ("error", "upstream_unavailable")}): 1,
        frozenset({("model", "solo"), ("provider", "flaky"), ("error", "upstream_unavailable")}): 1,
        frozenset({("model", "m"), ("provider", "cheap"), ("error", "upstream_stream_cut")}): 1,
    }
    # the 503 from the cheapest moved that request to the backup; nothing was retried
    assert series(samples, "switchboard_fallbacks_total") == {
        frozenset({("model", "m"), ("provider", "cheap")}): 1
    }
    assert series(samples, "switchboard_retries_total") == {}

    cut_usage = 0  # the cut stream was served (and charged) for what it produced
    for provider in ("cheap", "backup"):
        served = [(m, u, s) for m, u, s in answers if m["provider"] == provider]
        labels = {"model": "m", "provider": provider, "key": "", "team": ""}
        prompt = value(samples, "switchboard_tokens_total", **labels, kind="prompt")
        assert prompt is not None and prompt >= sum(u.prompt_tokens for _, u, _ in served)
        if provider == "backup":
            assert prompt == sum(u.prompt_tokens for _, u, _ in served)
            assert value(samples, "switchboard_tokens_total", **labels, kind="completion") == (
                sum(u.completion_tokens for _, u, _ in served)
            )
            assert value(samples, "switchboard_cost_usd_total", **labels) == pytest.approx(
                sum(m["cost"]["usd"] for m, _, _ in served), rel=1e-9
            )
        else:
            cut_usage = int(prompt) - sum(u.prompt_tokens for _, u, _ in served)
        deployment = {"model": "m", "provider": provider}
        upstream = [m["latency_ms"] / 1000 for m, _, _ in served]
        name = "switchboard_upstream_latency_seconds"
        assert value(samples, f"{name}_count", **deployment) == len(upstream)
        assert value(samples, f"{name}_sum", **deployment) == pytest.approx(sum(upstream))
        for stream in (False, True):
            timed = [m["latency_ms"] / 1000 for m, _, s in served if s == stream]
            flag = "true" if stream else "false"
            name = "switchboard_request_duration_seconds"
            labels = {"endpoint": "chat.completions", **deployment, "stream": flag}
            assert value(samples, f"{name}_count", **labels) == (len(timed) or None)
            if timed:
                # as the client saw it: never less than the serving try, failed tries included
                total = value(samples, f"{name}_sum", **labels)
                assert total is not None and total >= sum(timed)
    assert cut_usage > 0
    ttfts = [m["ttft_ms"] / 1000 for m, _, s in answers if s]
    assert value(samples, "switchboard_ttft_seconds_count", model="m", provider="cheap") == 2
    assert value(
        samples, "switchboard_ttft_seconds_sum", model="m", provider="cheap"
    ) == pytest.approx(sum(ttfts))
    assert sum(series(samples, "switchboard_cost_usd_total").values()) > 0

    # every deployment has its gauges; the window counts every try, on this one replica
    deployments = {("m", "cheap", 0.5), ("m", "backup", 1.0), ("solo", "flaky", 1.0)}
    # cheap: 5 answers, the 503 and the cut (the 400 was the request's fault: not counted)
    tries = {"cheap": 7, "backup": 1, "flaky": 1}

    def settled(samples: Samples) -> bool:
        window = series(samples, "switchboard_deployment_requests_window")
        return {dict(k)["provider"]: v for k, v in window.items()} == tries

    samples = wait_for(gateway, settled)
    assert settled(samples)
    for model, provider, price in deployments:
        labels = {"model": model, "provider": provider, "provider_model_id": f"{provider}-{model}"}
        for direction, expected in (("input", price), ("output", 2 * price)):
            name = "switchboard_deployment_price_per_mtok"
            assert value(samples, name, **labels, direction=direction) == expected
        assert value(samples, "switchboard_deployment_in_flight", **labels) == 0
        assert value(samples, "switchboard_deployment_error_rate", **labels) is not None
        assert value(samples, "switchboard_deployment_healthy", **labels) == 1
        assert value(samples, "switchboard_deployment_health", **labels, state="healthy") == 1
    cheap = {"model": "m", "provider": "cheap", "provider_model_id": "cheap-m"}
    for stat in ("ewma", "p50", "p95"):
        assert value(samples, "switchboard_deployment_latency_ms", **cheap, stat=stat)
    assert value(samples, "switchboard_deployment_ttft_ms", **cheap, stat="ewma")
    assert value(samples, "switchboard_deployment_errors_window", **cheap) == 2  # 503, cut
    for store in ("routing", "governance"):
        assert value(samples, "switchboard_store_degraded", store=store, backend="memory") == 0
    # this scrape itself is the one request in flight
    assert value(samples, "switchboard_http_requests_in_flight") == 1
    age = value(samples, "switchboard_store_snapshot_age_seconds")
    assert age is not None and 0 <= age < 1


def test_two_apps_in_one_process_count_apart(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstream = mock_upstream_factory()
    config = routed_config({"m": [("only", 1.0)]}, {"only": upstream.url})
    first, second = gateway_factory(config), gateway_factory(config)
    for _ in range(3):
        first.sdk().chat.completions.create(model="m", messages=HELLO)
    second.sdk().chat.completions.create(model="m", messages=HELLO)
    labels = {"endpoint": "chat.completions", "model": "m", "provider": "only", "key": ""}
    labels.update(team="", outcome="success")
    assert value(scrape(first), "switchboard_requests_total", **labels) == 3
    assert value(scrape(second), "switchboard_requests_total", **labels) == 1


def test_an_open_circuit_shows_in_the_health_gauges(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstream = mock_upstream_factory()
    upstream.set_default(ErrorReply(503, "overloaded", type="server_error"))
    config = routed_config(
        {"m": [("down", 1.0)]}, {"down": upstream.url}, circuit={"consecutive_failures": 1}
    )
    gateway = gateway_factory(config)
    assert gateway.post({"model": "m", "messages": HELLO}).status_code == 502
    labels = {"model": "m", "provider": "down", "provider_model_id": "down-m"}

    def opened(samples: Samples) -> bool:
        return value(samples, "switchboard_deployment_healthy", **labels) == 0

    samples = wait_for(gateway, opened)
    assert opened(samples)
    states = {
        dict(k)["state"]: v for k, v in series(samples, "switchboard_deployment_health").items()
    }
    assert states == {"healthy": 0, "rate_limited": 0, "circuit_open": 1, "half_open": 0}
    # a deployment never answered: no latency sample rather than a made-up 0
    assert not series(samples, "switchboard_deployment_latency_ms")


def test_no_provider_key_in_the_exposition(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstream = mock_upstream_factory()
    config = routed_config({"m": [("secretive", 1.0)]}, {"secretive": upstream.url})
    config["providers"]["secretive"]["api_key"] = "sk-provider-secret-4711"
    gateway = gateway_factory(config)
    gateway.sdk().chat.completions.create(model="m", messages=HELLO)
    text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    assert 'provider="secretive"' in text
    assert "4711" not in text


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_keys_teams_and_limit_rejections_are_labels(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstream = mock_upstream_factory()
    config = routed_config({"m": [("only", 1.0)]}, {"only": upstream.url})
    config["auth"] = {
        "teams": [{"name": "search"}],
        "keys": [
            {"name": "search-prod", "key_sha256": _digest("sk-a-0001"), "team": "search"},
            {"name": "solo", "key_sha256": _digest("sk-b-0002"), "rpm": 1},
            {"name": "broke", "key_sha256": _digest("sk-c-0003"), "budget_usd": {"daily": 0}},
        ],
    }
    gateway = gateway_factory(config)
    for _ in range(2):
        gateway.sdk("sk-a-0001").chat.completions.create(model="m", messages=HELLO)
    gateway.sdk("sk-b-0002").chat.completions.create(model="m", messages=HELLO)
    with pytest.raises(openai.RateLimitError):  # one request per minute
        gateway.sdk("sk-b-0002").chat.completions.create(model="m", messages=HELLO)
    with pytest.raises(openai.RateLimitError):  # nothing to spend
        gateway.sdk("sk-c-0003").chat.completions.create(model="m", messages=HELLO)
    with pytest.raises(openai.AuthenticationError):  # a made-up key is no label
        gateway.sdk("sk-made-up").chat.completions.create(model="m", messages=HELLO)

    samples = scrape(gateway)
    requests = {
        (dict(k)["key"], dict(k)["team"], dict(k)["outcome"]): v
        for k, v in series(samples, "switchboard_requests_total").items()
    }
    assert requests == {
        ("search-prod", "search", "success"): 2,
        ("solo", "", "success"): 1,
        ("solo", "", "error"): 1,
        ("broke", "", "error"): 1,
        ("", "", "error"): 1,
    }
    assert series(samples, "switchboard_limit_rejections_total") == {
        frozenset({("limit", "rate"), ("key", "solo"), ("team", "")}): 1,
        frozenset({("limit", "budget"), ("key", "broke"), ("team", "")}): 1,
    }
    cost = {dict(k)["key"]: v for k, v in series(samples, "switchboard_cost_usd_total").items()}
    assert set(cost) == {"search-prod", "solo"} and cost["search-prod"] > cost["solo"] > 0
    tokens = series(samples, "switchboard_tokens_total")
    assert {(dict(k)["key"], dict(k)["team"]) for k in tokens} == {
        ("search-prod", "search"),
        ("solo", ""),
    }


def test_retries_and_fallbacks_are_counted_per_deployment(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    first, second = mock_upstream_factory(), mock_upstream_factory()
    config = routed_config(
        {"m": [("first", 1.0), ("second", 2.0)]},
        {"first": first.url, "second": second.url},
        retries={"attempts": 2, "backoff_initial": 0.01},
    )
    gateway = gateway_factory(config)
    # a retry that works; then two failures on `first` and a fallback to `second`
    first.enqueue(ErrorReply(503, "busy", type="server_error"))
    gateway.sdk().chat.completions.create(model="m", messages=HELLO)
    first.enqueue(ErrorReply(503, "busy"), ErrorReply(503, "busy"))
    answer = gateway.sdk().chat.completions.create(model="m", messages=HELLO)
    assert metadata_of(answer)["provider"] == "second"
    samples = scrape(gateway)
    assert series(samples, "switchboard_retries_total") == {
        frozenset({("model", "m"), ("provider", "first")}): 2
    }
    assert series(samples, "switchboard_fallbacks_total") == {
        frozenset({("model", "m"), ("provider", "first")}): 1
    }
    failed = series(samples, "switchboard_upstream_attempts_failed_total")
    assert sum(failed.values()) == 3


def test_a_stream_is_in_flight_until_its_end(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstream = mock_upstream_factory()
    upstream.enqueue(SSEReply(delay_between=5.0))  # far longer than the test needs
    gateway = gateway_factory(routed_config({"m": [("only", 1.0)]}, {"only": upstream.url}))
    body = {"model": "m", "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10
    ) as answer:
        lines = answer.iter_lines()  # held: a dropped iterator closes the response
        assert next(lines).startswith("data: ")  # the stream has begun
        # the scrape and the open stream
        assert value(scrape(gateway), "switchboard_http_requests_in_flight") == 2
    # the client left: the stream ends, only the scrape is left in flight
    samples = wait_for(gateway, lambda s: value(s, "switchboard_http_requests_in_flight") == 1)
    assert value(samples, "switchboard_http_requests_in_flight") == 1


def test_budgets_in_force_and_their_use(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstream = mock_upstream_factory()
    config = routed_config({"m": [("only", 10.0)]}, {"only": upstream.url})
    config["auth"] = {
        "teams": [{"name": "search", "budget_usd": {"monthly": 50}}],
        "keys": [
            {
                "name": "search-prod",
                "key_sha256": _digest("sk-a-0001"),
                "team": "search",
                "budget_usd": {"daily": 2},
            },
            {"name": "free", "key_sha256": _digest("sk-b-0002")},
        ],
    }
    config["governance"] = {"budget_usd": {"daily": 100}}
    gateway = gateway_factory(config)
    answer = gateway.sdk("sk-a-0001").chat.completions.create(model="m", messages=HELLO)
    cost = metadata_of(answer)["cost"]["usd"]
    assert cost > 0

    def budget(metric: str, samples: Samples, **labels: str) -> float | None:
        return value(samples, f"switchboard_budget_{metric}_usd", **labels)

    key = {"scope": "key", "name": "search-prod", "period": "daily"}
    team = {"scope": "team", "name": "search", "period": "monthly"}
    gateway_budget = {"scope": "gateway", "name": "", "period": "daily"}
    # settlement runs in the background: wait until the spend is counted
    samples = wait_for(gateway, lambda s: budget("spent", s, **key) == pytest.approx(cost))
    for labels, limit in ((key, 2.0), (team, 50.0), (gateway_budget, 100.0)):
        assert budget("limit", samples, **labels) == limit
        assert budget("spent", samples, **labels) == pytest.approx(cost)
        assert budget("reserved", samples, **labels) == 0
        assert budget("remaining", samples, **labels) == pytest.approx(limit - cost)
    # only budgets that exist: the free key has none, the team no daily one
    scopes = {dict(k)["name"] for k in series(samples, "switchboard_budget_limit_usd")}
    assert scopes == {"search-prod", "search", ""}
    assert len(series(samples, "switchboard_budget_limit_usd")) == 3
