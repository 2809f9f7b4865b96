"""What the app holds while it runs: built from the config, closed at shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gateway.accounting import Accounts
from gateway.auth import AdminAuthenticator, Authenticator, Caller
from gateway.config import Config, ConfigError
from gateway.governance.admission import Governance
from gateway.governance.config import AuthConfig
from gateway.governance.factory import open_governance_store
from gateway.governance.idempotency import Idempotency
from gateway.governance.key_admin import KeyAdmin
from gateway.governance.keys import KeySnapshots
from gateway.governance.settlement import Settler
from gateway.ingress.responses.service import ResponsesService
from gateway.ingress.responses.store import open_response_store
from gateway.metrics import GatewayMetrics, StoreHealth
from gateway.observability.budgets import BudgetUse, budget_uses
from gateway.observability.generations import open_generation_store
from gateway.observability.tracing import require_tracing
from gateway.observability.watch import RequestWatch
from gateway.scoreboard import Scoreboard, scoreboard
from gateway.secrets import register, secrets_in, unregister
from gateway.ui import RecentRequests
from providers.base import Provider
from providers.config import ProviderConfig
from providers.errors import PermissionDenied
from providers.registry import build_provider
from routing.deployments import Deployment, DeploymentError, resolve_deployments
from routing.model_catalogue import ModelCatalogue, load_catalogue
from routing.resolution import ModelResolver
from routing.router import Router
from routing.stats import deployment_id
from routing.store.factory import open_store


def catalogue_family(config: ProviderConfig) -> str:
    """The model catalogue's name for a provider: its preset, else its kind."""
    preset = getattr(config, "preset", None)
    return preset if isinstance(preset, str) else str(type(config).__struct_config__.tag)


class Services:
    def __init__(
        self,
        config: Config,
        catalogue: ModelCatalogue | None = None,
        watch: RequestWatch | None = None,
        *,
        workers: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Raises ConfigError for what only shows once providers exist (a price missing
        from both the config and the model catalogue). `watch`: the app's middleware's
        (`open_watch`); without it none of observability's request work is done.
        `workers`: processes serving this config on one port, each with its own Services.
        `clock`: the wall clock routing's statistics and health decisions run on (tests
        move it on instead of sleeping through a cooldown)."""
        self.config = config
        self.workers = workers
        if config.tracing is not None and (watch is None or watch.tracing is None):
            require_tracing()  # `check-config` and `serve` refuse it without the extra
        self.watch = watch or RequestWatch()
        tracing = self.watch.tracing
        self.providers: dict[str, Provider] = {
            name: build_provider(name, provider) for name, provider in config.providers.items()
        }
        try:
            deployments = resolve_deployments(
                config.models,
                families={n: catalogue_family(p) for n, p in config.providers.items()},
                capabilities={n: p.capabilities_for for n, p in self.providers.items()},
                catalogue=catalogue or load_catalogue(),
            )
        except DeploymentError as exc:
            raise ConfigError(str(exc)) from None
        self.models = ModelResolver(deployments)
        self.descriptions = {name: model.description for name, model in config.models.items()}
        try:
            self.store = open_store(config.store, config.routing.metrics, clock=clock)
        except ValueError as exc:  # a store URL this store cannot use
            raise ConfigError(f"store: {exc}") from None
        self.store.track(
            deployment_id(d.provider, d.model) for ds in deployments.values() for d in ds
        )
        self.router = Router(
            self.providers,
            self.models,
            config.routing,
            self.store,
            wrap_tries=tracing.tries if tracing is not None else None,
        )
        self.auth = Authenticator(config.auth if isinstance(config.auth, AuthConfig) else None)
        self.admin = AdminAuthenticator(config.admin)
        # the request pipeline's two ends: admission before dispatch, accounts after
        governance_store = open_governance_store(config.store, config.governance)
        self.governance = Governance(config.governance, governance_store, config.routing.deadline)
        self.metrics = GatewayMetrics(
            self.live_scoreboard, self.store_health, self.watch.in_flight, self.budget_uses
        )
        self.keys = KeySnapshots(governance_store, self.auth, config.governance.refresh)
        self.key_admin = KeyAdmin(
            governance_store, self.auth.configured_keys, self.auth.teams, self.keys.load
        )
        self.idempotency = Idempotency(
            governance_store,
            config.governance.idempotency_ttl,
            running=config.routing.deadline + config.governance.hold_margin,
        )
        self.accounts = Accounts()
        self.secrets = secrets_in(config.providers.values(), config.store)
        self.accounts.add_sink(Settler(governance_store))
        self.accounts.add_sink(self.metrics)
        # past requests by id, for GET /v1/generations/{id}: kept off the request path
        self.generations = open_generation_store(config.store, config.generations)
        self.accounts.add_sink(self.generations)
        # the status page's last requests and traffic chart: bounded, in this process
        self.recent = RecentRequests()
        self.accounts.add_sink(self.recent)
        self.responses = ResponsesService(
            self.providers,
            self.governance,
            open_response_store(config.store, config.responses),
            config.responses,
            config.limits,
        )

    def live_scoreboard(self, models: dict[str, list[Deployment]] | None = None) -> Scoreboard:
        """The live status of these models' deployments (default: every model's)."""
        store = self.store
        return scoreboard(
            self.models.models if models is None else models,
            store.snapshot(),
            self.router.health,
            store.status(),
            store.clock(),
        )

    async def budget_uses(self) -> list[BudgetUse]:
        return await budget_uses(self.auth, self.config.governance, self.governance.store)

    def store_health(self) -> list[StoreHealth]:
        routing, governance = self.store.status(), self.governance.store.status()
        routing_dropped = getattr(self.store, "dropped", 0)  # a shared store's outbox
        return [
            StoreHealth("routing", routing.backend, routing.degraded, routing_dropped),
            StoreHealth("governance", governance.backend, governance.degraded, governance.dropped),
        ]

    def model_allowed(self, caller: Caller, name: str) -> bool:
        """A key's `allowed_models` patterns match the name as sent or its canonical model
        (so `llama-*` also admits `groq/llama-3.3-70b` and `llama-3.3-70b:floor`)."""
        return caller.allows(name, self.models.resolve(name).canonical)

    def check_model_allowed(self, caller: Caller, name: str) -> None:
        if not self.model_allowed(caller, name):
            raise PermissionDenied(
                f"The key '{caller.name}' may not use the model '{name}'.", param="model"
            )

    @property
    def prices_shared(self) -> bool:
        """Whether a live price reaches every process serving this config: a memory
        store lives inside one process, so not when several workers each have one."""
        return self.store.backend != "memory" or self.workers == 1

    async def start(self) -> None:
        """Background work: the store's flush and refresh loop (never fails on the store
        being down: the gateway then serves degraded)."""
        register(self.secrets)  # redacted from error answers and log records from now on
        await self.store.start()
        await self.governance.store.start()
        await self.keys.start()
        await self.accounts.start()
        await self.metrics.start()
        await self.responses.store.start()
        if self.watch.request_log is not None:
            await self.watch.request_log.start()

    async def aclose(self) -> None:
        """At shutdown, after the drain: batched writes first (settlements, metrics,
        routing statistics), then the pools."""
        await self.accounts.aclose()  # settles and counts in the metrics what is batched
        await self.metrics.aclose()
        await self.keys.aclose()
        await self.idempotency.aclose()
        await self.governance.store.aclose()
        await self.store.aclose()  # writes the last routing statistics
        await self.responses.store.aclose()
        await self.generations.aclose()  # after the accounts: their last records are in
        if self.watch.request_log is not None:
            await self.watch.request_log.aclose()  # writes what is gathered
        if tracing := self.watch.tracing:
            await asyncio.to_thread(tracing.shutdown)  # exports what is batched
        unregister(self.secrets)
        await asyncio.gather(*(provider.aclose() for provider in self.providers.values()))
