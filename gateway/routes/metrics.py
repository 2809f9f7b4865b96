"""GET /metrics: Prometheus exposition of this app's registry.

Unauthenticated, as Prometheus scrapers usually are: it shows traffic, spend and
deployment health and the names of keys and teams, never a secret or a prompt, but keep
it off the public internet."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.services import Services


# The finished requests still batched are delivered first (metrics are a sink of them), so
# a scrape counts every request answered before it. Rendering then runs in a worker
# thread: it costs 20-40 µs of CPU per sample on the 2-core VM (9 ms for 3 deployments,
# 50 ms for 30), which would stall every stream on the loop; from a thread the loop keeps
# getting the GIL. prometheus_client is built to be read from another thread, and the
# scoreboard only reads routing's state.
@get("/metrics")
async def metrics(state: State) -> Response[bytes]:
    services: Services = state.services
    await services.accounts.flush()
    await services.metrics.read_budgets()
    services.metrics.publish_in_flight()  # this worker's count as of now
    body = await asyncio.to_thread(generate_latest, services.metrics.exposition)
    # as a header: a `media_type` of text/* gets a second `charset` appended
    return Response(body, headers={"content-type": CONTENT_TYPE_LATEST})
