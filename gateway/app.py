"""The Litestar application: routes, error handlers, and services opened in the lifespan."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware

from gateway.config import Config
from gateway.errors import handle_http_exception, handle_switchboard_error, handle_unexpected
from gateway.ingress.completions.route import completions
from gateway.ingress.embeddings.route import embeddings
from gateway.ingress.messages.routes import count_message_tokens, create_message
from gateway.ingress.responses.route import create_response
from gateway.middleware import request_id_middleware
from gateway.observability.generations.routes import get_generation, get_openrouter_generation
from gateway.observability.watch import open_watch
from gateway.routes.admin import clear_price, list_prices, set_price
from gateway.routes.admin_keys import create_key, list_keys, revoke_key, update_key
from gateway.routes.chat import chat_completions
from gateway.routes.health import healthz, readyz
from gateway.routes.metrics import metrics
from gateway.routes.models import get_model, list_models
from gateway.routes.providers import list_providers
from gateway.routes.usage import get_usage
from gateway.services import Services
from gateway.ui.routes import ROUTES as UI_ROUTES
from providers.errors import SwitchboardError

GC_YOUNG_THRESHOLD = 7_000  # allocations between two young collections (Python: 700)


def create_app(
    config: Config,
    *,
    workers: int = 1,
    freeze_gc: bool = False,
    clock: Callable[[], float] = time.time,
) -> Litestar:
    """`workers`: how many processes serve this config on one port (`serve --workers`).
    `freeze_gc`: the app is the process's whole life (`serve`), see the lifespan.
    `clock`: routing's wall clock (see `Services`)."""
    # around every request: in-flight count, tracing, the request log (gateway/observability)
    watch = open_watch(config)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = Services(config, watch=watch, workers=workers, clock=clock)
        await services.start()
        app.state.services = services
        if freeze_gc:
            # what exists now (modules, the app, config, services) lives as long as the
            # process: out of the collector's sight, so that the collections the
            # requests' allocations cause walk only what the requests made. A young
            # collection every 7,000 allocations rather than 700: at 64 requests in
            # flight most young objects are still in use, and each collection walked
            # and promoted them (4 % of a request's instructions; the garbage it finds is
            # rare and small). In-process apps (the tests') leave their process alone.
            gc.freeze()
            gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            # the server has drained by now: what is batched is written, pools closed
            await services.aclose()

    return Litestar(
        route_handlers=[
            chat_completions,
            embeddings,
            create_response,
            completions,
            create_message,
            count_message_tokens,
            list_models,
            get_model,
            list_providers,
            healthz,
            readyz,
            metrics,
            get_generation,
            get_openrouter_generation,
            list_prices,
            set_price,
            clear_price,
            create_key,
            list_keys,
            update_key,
            revoke_key,
            get_usage,
            *UI_ROUTES,  # the status page (gateway/ui)
        ],
        lifespan=[lifespan],
        state=State(),
        middleware=[DefineMiddleware(request_id_middleware, watch=watch)],
        exception_handlers={
            SwitchboardError: handle_switchboard_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        request_max_body_size=config.limits.max_request_bytes,
        # browsers may read answers only from the origins the config lists; none without
        cors_config=(
            CORSConfig(allow_origins=config.cors.allow_origins, allow_credentials=False)
            if config.cors is not None and config.cors.allow_origins
            else None
        ),
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
