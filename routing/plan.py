"""The plan for one request: every deployment that may serve it, best first.

Models in the order the client listed them (`models[]`), and within each model its
deployments filtered by the request's constraints, ordered by the strategy's score on the
current snapshot, then by the client's `order`, with an occasional exploration first.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import msgspec

from providers.base import Provider
from providers.chat_types import ChatRequest
from routing.config import RoutingConfig, Strategy
from routing.constraints import FITS, Constraints, RequestNeeds, refusal
from routing.deployments import Deployment, Prices
from routing.errors import NoCandidate
from routing.exploration import Explorer
from routing.options import RouteOptions
from routing.resolution import ModelResolver, ResolvedModel
from routing.scoring import Ranking, RequestShape, Scored, error_estimate
from routing.stats import DeploymentStats, Snapshot, deployment_id, price_key

PAROLE = 30.0  # seconds after leaving avoidance during which a failure rate counts raw
EVIDENCE = 3.0  # recent failures (weighted by age) that make a rate over the threshold count
RAMP = 1.5  # seconds over which it gets its traffic back
_NEVER = float("-inf")

_SORT_STRATEGY: dict[str, Strategy] = {
    "price": "cost",
    "latency": "latency",
    "throughput": "throughput",
}


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    canonical: str  # the model the client asked for, resolved
    deployment: Deployment  # with the live price, if one is set in the store
    id: str  # deployment_id(): where its statistics live
    stats: DeploymentStats
    dropped_params: tuple[str, ...] = ()  # what this deployment will not honour
    in_flight: int = 0  # requests on it as the plan was made, every replica's


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    strategy: Strategy
    candidates: list[Candidate]  # in the order to try
    explored: bool = False  # the first candidate was put there to explore
    # the request's estimated prompt size: what an answer without usage is priced on
    prompt_tokens: int = 0


def live_prices(canonical: str, deployment: Deployment, snapshot: Snapshot) -> Deployment:
    if not snapshot.prices:
        return deployment
    override = snapshot.prices.get(price_key(canonical, deployment.provider))
    if override is None:
        return deployment
    prices = Prices(
        input_per_mtok=override.input_per_mtok,
        output_per_mtok=override.output_per_mtok,
        cached_input_per_mtok=(
            override.input_per_mtok
            if override.cached_input_per_mtok is None
            else override.cached_input_per_mtok
        ),
    )
    return msgspec.structs.replace(deployment, prices=prices)


def _no_load(deployment: str) -> int:
    return 0


class Planner:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        models: ModelResolver,
        config: RoutingConfig,
        draw: random.Random,
    ) -> None:
        self._providers = providers
        self._models = models
        self._config = config
        self._draw = draw
        self._explorer = Explorer(config.exploration)
        # deployments this replica routes around for errors, and since when
        self._avoided: dict[str, float] = {}
        self._paroled: dict[str, float] = {}  # when each last stopped being avoided

    def strategy(self, options: RouteOptions, model: ResolvedModel) -> Strategy:
        if options.routing.strategy is not None:
            return options.routing.strategy
        if options.provider is not None and options.provider.sort is not None:
            return _SORT_STRATEGY[options.provider.sort]
        return model.strategy or self._config.strategy

    def plan(
        self,
        request: ChatRequest | RequestNeeds,
        options: RouteOptions,
        snapshot: Snapshot,
        now: float,
        in_flight: Callable[[str], int] = _no_load,
    ) -> Plan:
        """`request`: a chat request, or what another API's request needs (see
        `RequestNeeds`); `in_flight`: a deployment's requests in flight now."""
        # every name is resolved first: an unknown model is a 404 even if an earlier one serves
        resolved = [self._models.resolve(name) for name in options.models]
        constraints = Constraints.of(options)
        needs = request if isinstance(request, RequestNeeds) else RequestNeeds.of(request)
        shape = RequestShape(
            prompt_tokens=needs.prompt_tokens, completion_limit=needs.output_limit or None
        )
        strategy = self.strategy(options, resolved[0])
        refusals: list[str] = []
        plan: list[Candidate] = []
        explored = False
        for position, model in enumerate(resolved):
            allowed = self._allowed(needs, model, snapshot, constraints, refusals, in_flight)
            if not allowed:
                continue
            explore = position == 0 and constraints.allow_fallbacks and not constraints.order
            best_first, probed = self._ranked(allowed, strategy, shape, now, explore=explore)
            explored = explored or probed
            if constraints.order:
                best_first = _in_client_order(best_first, constraints.order)
            if not constraints.allow_fallbacks:
                kept = _without_fallbacks(best_first, constraints.order)
                refusals.extend(
                    f"{c.deployment.provider}/{model.canonical} not in `order` "
                    "(allow_fallbacks: false)"
                    for c in best_first
                    if c not in kept
                )
                best_first = kept
            plan.extend(best_first)
        if not plan:
            raise NoCandidate(
                "No deployment can serve this request: " + "; ".join(refusals) + ".",
                param="model",
            )
        return Plan(
            strategy=strategy,
            candidates=plan,
            explored=explored,
            prompt_tokens=needs.prompt_tokens,
        )

    def _ranked(
        self,
        allowed: list[Candidate],
        strategy: Strategy,
        shape: RequestShape,
        now: float,
        *,
        explore: bool,
    ) -> tuple[list[Candidate], bool]:
        """Best first: healthy deployments by score, then those failing too often (they
        stay fallbacks); a probe, if one is due, goes first of all."""
        if len(allowed) < 2:
            return allowed, False  # the common one-deployment model: nothing to score
        config = self._config
        capacity = config.spread_capacity
        ranking = Ranking(
            strategy,
            shape,
            [
                Scored(
                    prices=c.deployment.prices,
                    stats=c.stats,
                    in_flight=c.in_flight,
                    capacity=c.deployment.limits.max_concurrency or capacity,
                )
                for c in allowed
            ],
            config.balanced,
        )
        avoided = {i for i, c in enumerate(allowed) if self._avoid(c, now)}
        order = ranking.order
        if avoided:
            order = [i for i in order if i not in avoided] + [i for i in order if i in avoided]
        probe = None
        if explore:
            probe = self._explorer.pick(
                [c.id for c in allowed],
                [c.stats for c in allowed],
                ranking,
                order,
                avoided,
                strategy,
                now,
            )
            if probe is not None:
                order.insert(0, order.pop(probe))
        return [allowed[i] for i in order], probe is not None

    def _avoid(self, candidate: Candidate, now: float) -> bool:
        """Whether to rank a deployment after the others for its errors: from when its
        error estimate reaches the threshold until its recent error rate (probes feed
        it) is under half of it. The gap keeps a deployment that is still failing, on
        the little evidence its probes give, from coming back with every probe."""
        threshold = self._config.circuit.avoid_error_rate
        if threshold >= 1:
            return False  # avoiding is off: the circuit breaker alone decides
        stats, avoided = candidate.stats, self._avoided
        rate = stats.recent_error_rate
        avoided_at = avoided.get(candidate.id)
        if avoided_at is not None:
            if rate is not None and rate >= threshold / 2:
                return True
            if (stats.last_seen or 0.0) <= avoided_at:
                return True  # the snapshot has not yet seen the failure that decided it
            del avoided[candidate.id]
            self._paroled[candidate.id] = now
        since = now - self._paroled.get(candidate.id, _NEVER)
        if since < RAMP and self._draw.random() * RAMP > since:
            # back from being avoided: its traffic ramps up over RAMP seconds, so that a
            # deployment still failing, let back by a lucky probe, costs few requests
            return True
        if (
            error_estimate(stats) >= threshold
            # failing at the threshold's rate on a few failures' evidence: no need to
            # wait for the older successes to age
            or (rate is not None and rate >= threshold and rate * stats.recent_requests >= EVIDENCE)
            # its circuit opened: whatever its estimate says once that evidence has aged
            or stats.open_until > 0
            or (
                # just back from being avoided, on little evidence: the first failures are
                # taken at face value, so that a lucky probe costs a few requests, not a dozen
                rate is not None and rate >= threshold and since < PAROLE
            )
        ):
            avoided[candidate.id] = now
            return True
        return False

    def failed(self, deployment: str, now: float) -> None:
        """A try failed. One just back from being avoided is avoided again at once, not
        after the next flush: meanwhile it would get a dozen more requests."""
        if deployment not in self._avoided and (
            now - self._paroled.get(deployment, _NEVER) < PAROLE
        ):
            self._avoided[deployment] = now

    def _allowed(
        self,
        needs: RequestNeeds,
        model: ResolvedModel,
        snapshot: Snapshot,
        constraints: Constraints,
        refusals: list[str],
        in_flight: Callable[[str], int],
    ) -> list[Candidate]:
        allowed = []
        for configured in model.deployments:
            deployment = live_prices(model.canonical, configured, snapshot)
            key = deployment_id(deployment.provider, deployment.model)
            stats = snapshot.of(key)
            why = refusal(needs, deployment, stats, constraints)
            fit = FITS
            if why is None and needs.screen is not None:
                fit = needs.screen(self._providers[deployment.provider], deployment)
                why = fit.refused
                if why is None and fit.dropped and constraints.require_parameters:
                    why = "cannot honour " + ", ".join(fit.dropped)
            if why is not None:
                refusals.append(f"{deployment.provider}/{model.canonical} {why}")
                continue
            allowed.append(
                Candidate(
                    canonical=model.canonical,
                    deployment=deployment,
                    id=key,
                    stats=stats,
                    dropped_params=fit.dropped,
                    in_flight=in_flight(key),
                )
            )
        return allowed


def _in_client_order(candidates: list[Candidate], order: tuple[str, ...]) -> list[Candidate]:
    """The providers the client named first, in its order; the rest after, by score."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(candidates, key=lambda c: rank.get(c.deployment.provider.lower(), len(rank)))


def _without_fallbacks(candidates: list[Candidate], order: tuple[str, ...]) -> list[Candidate]:
    """`allow_fallbacks: false`: only the providers in `order`, or else only the best."""
    if order:
        return [c for c in candidates if c.deployment.provider.lower() in order]
    return candidates[:1]
