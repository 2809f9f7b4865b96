"""What every HTTP provider's config says about its connections, and the pooled client
built from it."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from providers.http_client import Timeouts, UpstreamHTTP

Seconds = Annotated[float, Meta(gt=0)]


class ConnectionOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    timeout: Seconds = 60.0  # whole non-streaming attempt
    connect_timeout: Seconds = 5.0
    read_timeout: Seconds | None = None  # silence allowed mid-stream; defaults to `timeout`
    max_connections: Annotated[int, Meta(ge=1)] = 1000
    headers: dict[str, str] = {}  # sent with every request

    def http_client(
        self, provider: str, request_id_headers: tuple[str, ...] = ("x-request-id",)
    ) -> UpstreamHTTP:
        timeouts = Timeouts(
            total=self.timeout,
            connect=self.connect_timeout,
            read=self.read_timeout or self.timeout,
        )
        return UpstreamHTTP(provider, timeouts, self.max_connections, request_id_headers)
