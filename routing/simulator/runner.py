"""Run a scenario: replicas of the real router on scripted deployments, a closed-loop load
(each client sends its next request when the last is answered) and bursts, phase after
phase, in virtual time. The trace keeps every request and every upstream try."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable

import msgspec

from providers.capabilities import Capabilities
from providers.chat_types import ChatRequest
from providers.errors import SwitchboardError
from routing.config import RoutingConfig, Strategy
from routing.deployments import Deployment, Prices
from routing.options import RouteOptions
from routing.resolution import ModelResolver
from routing.router import Router
from routing.simulator.deployment import ScriptedProvider, Try
from routing.simulator.scenario import DEFAULT_LOAD, Load, Profile, Scenario
from routing.simulator.shared_store import ReplicaStore, SharedBackend
from routing.simulator.virtual_time import EPOCH, run_virtual
from routing.stats import PriceOverride, deployment_id
from routing.store.base import MetricsStore

CLIENT_TURNAROUND_MS = 1.0


class Request(msgspec.Struct, kw_only=True):
    """One client request and how it ended."""

    id: str
    replica: int
    started: float  # virtual seconds
    ended: float = 0.0
    status: int = 200
    error: str | None = None
    provider: str | None = None  # who served it
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    burst: bool = False


class PhaseSpan(msgspec.Struct, kw_only=True):
    name: str
    started: float
    ended: float
    profiles: dict[str, Profile]  # every deployment present in the phase
    load: Load
    burst: int
    best: str | None  # as the scenario declares it (None: the report works it out)


class Trace(msgspec.Struct, kw_only=True):
    scenario: Scenario
    strategy: Strategy
    phases: list[PhaseSpan]
    requests: list[Request]
    tries: list[Try]  # in the order they started


def routing_config(scenario: Scenario, strategy: Strategy) -> RoutingConfig:
    fields = {"strategy": strategy, **scenario.routing}
    fields.setdefault("exploration", {}).setdefault("seed", scenario.seed)
    return msgspec.convert(fields, RoutingConfig)


def _deployment(name: str, profile: Profile) -> Deployment:
    return Deployment(
        provider=name,
        model=f"{name}-model",
        prices=Prices(
            input_per_mtok=profile.input_per_mtok or 0.0,
            output_per_mtok=profile.output_per_mtok or 0.0,
            cached_input_per_mtok=profile.input_per_mtok or 0.0,
        ),
        capabilities=Capabilities(),
    )


def _request(load: Load) -> ChatRequest:
    """A request whose estimated prompt is `load.prompt_tokens` (4 bytes of JSON a token)."""
    prompt = int(load.prompt_tokens or 1)
    text = "x" * max(0, prompt * 4 - 32)
    messages = msgspec.json.encode([{"role": "user", "content": text}])
    fields: dict[str, object] = {
        "messages": msgspec.json.decode(messages),
        "stream": bool(load.stream),
    }
    if load.max_tokens is not None:
        fields["max_tokens"] = load.max_tokens
    request = msgspec.convert(fields, ChatRequest)
    return msgspec.structs.replace(request, raw={"messages": msgspec.Raw(messages)})


class _Replica:
    def __init__(self, index: int, router: Router) -> None:
        self.index = index
        self.router = router


class Simulation:
    def __init__(self, scenario: Scenario, strategy: Strategy | None = None) -> None:
        self.scenario = scenario
        self.strategy: Strategy = strategy or scenario.strategy
        self.config = routing_config(scenario, self.strategy)
        self.requests: list[Request] = []
        self.tries: list[Try] = []
        self.spans: list[PhaseSpan] = []
        self._ids = itertools.count()
        self._replicas: list[_Replica] = []
        self._providers: dict[str, ScriptedProvider] = {}
        self._load: Load = Load()
        self._request = _request(DEFAULT_LOAD)
        self._active = 0  # clients sending now
        self._over = False
        self._configured: dict[str, tuple[float, float]] = {}  # prices in the config

    # --- set-up --------------------------------------------------------------------

    def _build(self, clock: Callable[[], float]) -> None:
        scenario = self.scenario
        self._providers = {
            name: ScriptedProvider(name, scenario.seed, clock, self.tries)
            for name in scenario.deployments
        }
        shared = SharedBackend() if scenario.replicas > 1 else None
        ids = [deployment_id(name, f"{name}-model") for name in scenario.deployments]
        for index in range(scenario.replicas):

            def wall(clock: Callable[[], float] = clock) -> float:
                return EPOCH + clock()

            replica = f"replica-{index}"
            store = (
                ReplicaStore(shared, self.config.metrics, clock=wall, replica=replica)
                if shared is not None
                else MetricsStore(self.config.metrics, clock=wall, replica=replica)
            )
            store.track(ids)
            router = Router(
                self._providers,
                ModelResolver({}),
                self.config,
                store,
                clock=clock,
                draw=random.Random(f"{scenario.seed}:router:{index}"),
            )
            self._replicas.append(_Replica(index, router))

    def _models(self, profiles: dict[str, Profile]) -> ModelResolver:
        present = [_deployment(n, p) for n, p in profiles.items() if p.present]
        for deployment in present:
            prices = deployment.prices
            self._configured.setdefault(
                deployment.provider, (prices.input_per_mtok, prices.output_per_mtok)
            )
        return ModelResolver({self.scenario.model: present})

    async def _reprice(self, profiles: dict[str, Profile]) -> None:
        """A price a phase changes is set live in the store, as `switchboard prices set`
        does: the other replicas learn it from the shared store."""
        store = self._replicas[0].router.store
        for name, (input_price, output_price) in self._configured.items():
            profile = profiles[name]
            wanted = (profile.input_per_mtok or 0.0, profile.output_per_mtok or 0.0)
            override = None
            if wanted != (input_price, output_price):
                override = PriceOverride(input_per_mtok=wanted[0], output_per_mtok=wanted[1])
            await store.set_price(self.scenario.model, name, override)

    # --- traffic -------------------------------------------------------------------

    async def _send(self, replica: _Replica, request: ChatRequest, burst: bool) -> None:
        loop = asyncio.get_running_loop()
        record = Request(
            id=f"q{next(self._ids)}", replica=replica.index, started=loop.time(), burst=burst
        )
        self.requests.append(record)
        options = RouteOptions(models=[self.scenario.model])
        router = replica.router
        try:
            if request.stream:
                stream = await router.stream(request, options, record.id)
                try:
                    async for _ in stream.chunks():
                        pass
                finally:
                    await stream.aclose()
                metadata, usage = stream.metadata(), stream.usage
            else:
                completed = await router.complete(request, options, record.id)
                metadata, usage = completed.metadata, completed.usage
        except SwitchboardError as error:
            record.status, record.error = error.status, error.code
        else:
            record.provider = metadata.provider
            record.cost_usd = metadata.cost.usd
            record.prompt_tokens = usage.prompt_tokens
            record.completion_tokens = usage.completion_tokens
        record.ended = loop.time()

    async def _client(self, number: int, wake: Callable[[], asyncio.Event]) -> None:
        replica = self._replicas[number % len(self._replicas)]
        while not self._over:
            if number >= self._active:
                await wake().wait()
                continue
            load = self._load
            await self._send(replica, self._request, burst=False)
            # the client's own turnaround: never zero, so that even a request refused
            # at once lets virtual time move on
            await asyncio.sleep(max(load.think_ms or 0.0, CLIENT_TURNAROUND_MS) / 1000)

    # --- phases --------------------------------------------------------------------

    async def run(self) -> Trace:
        loop = asyncio.get_running_loop()
        self._build(loop.time)
        for replica in self._replicas:
            await replica.router.store.start()
        wake = asyncio.Event()
        most = max((load.concurrency or 0) for load in self.scenario.loads())
        clients = [asyncio.create_task(self._client(i, lambda: wake)) for i in range(most)]
        bursts: list[asyncio.Task[None]] = []
        present: tuple[str, ...] = ()
        for phase, profiles, load in zip(
            self.scenario.phases, self.scenario.profiles(), self.scenario.loads(), strict=True
        ):
            started = loop.time()
            for name, profile in profiles.items():
                self._providers[name].profile = profile
            now_present = tuple(n for n, p in profiles.items() if p.present)
            if now_present != present:
                present = now_present
                for replica in self._replicas:
                    replica.router.use_models(self._models(profiles))
            await self._reprice(profiles)
            self._load, self._request = load, _request(load)
            self._active = load.concurrency or 0
            wake.set()
            wake = asyncio.Event()
            for i in range(phase.burst):
                replica = self._replicas[i % len(self._replicas)]
                bursts.append(asyncio.create_task(self._send(replica, self._request, burst=True)))
            await asyncio.sleep(phase.duration)
            self.spans.append(
                PhaseSpan(
                    name=phase.name,
                    started=started,
                    ended=loop.time(),
                    profiles={n: p for n, p in profiles.items() if p.present},
                    load=load,
                    burst=phase.burst,
                    best=phase.best,
                )
            )
        self._over = True
        wake.set()
        await asyncio.gather(*clients, *bursts)
        for replica in self._replicas:
            await replica.router.store.aclose()
        return Trace(
            scenario=self.scenario,
            strategy=self.strategy,
            phases=self.spans,
            requests=self.requests,
            tries=self.tries,
        )


def simulate(scenario: Scenario, strategy: Strategy | None = None) -> Trace:
    """Run the scenario in virtual time (a fresh event loop; call it outside one). The
    scripted failures are not logged as upstream failures: they are the scenario."""
    upstream_log = logging.getLogger("switchboard.upstream")
    was_disabled, upstream_log.disabled = upstream_log.disabled, True
    try:
        return run_virtual(Simulation(scenario, strategy).run())
    finally:
        upstream_log.disabled = was_disabled
