"""The status page's own store of the last requests and of traffic per time slot: bounded
in records and in time, on an injected clock."""

from __future__ import annotations

from gateway.accounting import RequestRecord
from gateway.ui.recent import RecentRequests
from routing.metadata import Cost, RoutingMetadata


async def test_the_traffic_slots_are_bounded() -> None:
    """The sink keeps a fixed span: requests older than it are not counted."""
    now = [1_000_002.0]
    recent = RecentRequests(limit=3, slot_seconds=5, slots=4, clock=lambda: now[0])

    def served(at: float, provider: str) -> RequestRecord:
        metadata = RoutingMetadata(
            provider=provider,
            provider_model_id="m",
            model_canonical="chat",
            routing_strategy="cost",
            cost=Cost(usd=0, input_usd=0, output_usd=0, estimated=False),
            latency_ms=1,
            ttft_ms=None,
            throughput_tps=None,
            attempts=[],
            request_id=f"r{at}",
        )
        return RequestRecord(
            request_id=f"r{at}-{provider}",
            endpoint="chat.completions",
            key=None,
            team=None,
            model="chat",
            stream=False,
            status=200,
            error_code=None,
            routing_metadata=metadata,
            usage=None,
            cost_usd=0,
            cost_estimated=False,
            started_at=at,
            duration_ms=1,
            attempts=[],
        )

    records = [served(now[0] - 30, "old"), served(now[0] - 6, "a"), served(now[0] - 1, "a")]
    records.append(served(now[0] - 1, "b"))
    await recent.deliver(records)
    traffic = recent.traffic()
    assert [(d.provider, d.served) for d in traffic.deployments] == [
        ("a", [0, 0, 1, 1]),
        ("b", [0, 0, 0, 1]),
    ]
    assert [r.request_id for r in recent.latest(10)] == [
        f"r{now[0] - 1}-b",
        f"r{now[0] - 1}-a",
        f"r{now[0] - 6}-a",
    ]
    now[0] += 20  # everything has aged out of the span
    assert recent.traffic().deployments == []
