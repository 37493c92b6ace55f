"""The decision core: every place that decides asks this code.

Given who asks (lazily: public components need nobody) and the components of
one request, the :class:`Guard` has its :class:`~permit_guard.planner.Planner`
classify each component — public, refused without asking the engine (with the
reason), or a request for the engine — asks the engine once for everything
that needs asking (``check`` for one, ``check_many`` for a list with its method
gate), checks every answer (fail closed), records one audit event (one per
list), and returns a :class:`~permit_guard.verdict.Verdict` per component.

The middleware's hooks, and the ``permit-guard`` command's ``inspect``,
``lint`` and ``check``, are thin callers of it, so they cannot disagree.

Example::

    import asyncio

    from permit_guard import LocalPolicyEngine, Principal
    from permit_guard.components.lookup import target
    from permit_guard.guard import Guard, known
    from permit_guard.settings import load_settings

    guard = Guard.from_settings(load_settings(), engine=LocalPolicyEngine.from_file("policy.yaml"))

    async def main() -> None:
        found = await target(mcp, "tool", "refund", {"amount": 50})  # mcp: your FastMCP server
        bob = Principal(key="bob")
        verdict = await guard.decide("tools/call", found, identify=lambda: known(bob))
        print(verdict.allowed, verdict.reason)

    asyncio.run(main())
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from permit_guard.audit import Auditor, AuditSink
from permit_guard.components.lookup import Target
from permit_guard.exceptions import EngineError, InvalidArguments
from permit_guard.mapping import MappingConfig, generic_request
from permit_guard.methods import HANDSHAKE_METHODS, KIND_LIST_METHODS
from permit_guard.model import AuthzRequest, Decision, Principal
from permit_guard.planner import NO_CREDENTIALS, Planner
from permit_guard.verdict import GUARD, ListVerdict, Verdict, Why

if TYPE_CHECKING:
    from permit_guard.engines.base import PolicyEngine
    from permit_guard.settings import GuardSettings

__all__ = ["Guard", "Identify", "known"]

logger = logging.getLogger("permit_guard")

#: Finds the caller when the guard needs one; ``None`` means no valid credentials.
Identify = Callable[[], Awaitable[Principal | None]]


async def known(principal: Principal | None) -> Principal | None:
    """An :data:`Identify` result for a caller already known (the CLI's ``--user``)."""
    return principal


class Guard:
    """The one decision core: classification, one engine call, answer checks, audit.

    Args:
        engine: The policy engine.
        planner: Classifies components and builds their requests.
        audit_sink: Where audit events go; ``None`` records nothing.
        audit_argument_values: Whether events carry attribute values.
    """

    __slots__ = ("audit", "engine", "engine_name", "planner")

    def __init__(
        self,
        *,
        engine: PolicyEngine,
        planner: Planner,
        audit_sink: AuditSink | None = None,
        audit_argument_values: bool = False,
    ) -> None:
        self.engine = engine
        self.engine_name: str = getattr(engine, "name", type(engine).__name__)
        self.planner = planner
        self.audit = Auditor(
            audit_sink, engine=self.engine_name, argument_values=audit_argument_values
        )

    @classmethod
    def from_settings(
        cls, settings: GuardSettings, *, engine: PolicyEngine, audit_sink: AuditSink | None = None
    ) -> Guard:
        """A guard wired from settings (audit only when ``enable_audit_logging`` is on).

        Raises:
            ConfigurationError: On a bypass pattern that matches a component method.
        """
        return cls(
            engine=engine,
            planner=Planner.from_settings(settings),
            audit_sink=audit_sink if settings.enable_audit_logging else None,
            audit_argument_values=settings.audit_argument_values,
        )

    @property
    def mapping(self) -> MappingConfig:
        """How requests map to engine questions."""
        return self.planner.mapping

    @property
    def default_deny(self) -> bool:
        """Whether undecorated components are refused without asking the engine."""
        return self.planner.default_deny

    # ------------------------------------------------------------------ decisions

    async def decide(self, method: str, target: Target, *, identify: Identify) -> Verdict:
        """The verdict on one call, read or render; one audit event."""
        started = time.perf_counter()
        plan = await self.planner.plan(method, target)
        if plan.why == "public":
            verdict = Verdict(allowed=True, why="public", reason=plan.reason)
            return self._audited(verdict, method, target.name, started)
        # Identity comes before existence, so a caller without credentials
        # learns nothing about which components exist.
        principal = await identify()
        if principal is None:
            verdict = Verdict(allowed=False, why="no-credentials", reason=NO_CREDENTIALS)
            return self._audited(verdict, method, target.name, started)
        if not plan.asks:
            verdict = Verdict(allowed=False, why=plan.why, reason=plan.reason, principal=principal)
            return self._audited(verdict, method, target.name, started)
        try:
            request = self.planner.request(plan, method, target, principal)
        except InvalidArguments as exc:
            verdict = Verdict(allowed=False, why="arguments", reason=str(exc), principal=principal)
            return self._audited(verdict, method, target.name, started)
        return await self._ask(request, method, target.name, principal, started)

    async def decide_method(self, method: str, *, identify: Identify) -> Verdict:
        """The verdict on a request that names no component (its method-level check)."""
        started = time.perf_counter()
        if method in HANDSHAKE_METHODS or self.planner.rules.bypassed(method):
            return Verdict(allowed=True, why="bypassed", reason="bypassed")
        if method not in self.planner.rules.known:
            if self.planner.rules.allow_unknown:
                return Verdict(allowed=True, why="bypassed", reason="unknown methods allowed")
            verdict = Verdict(
                allowed=False, why="method", reason="method is neither known nor bypassed"
            )
            return self._audited(verdict, method, None, started)
        principal = await identify()
        if principal is None:
            verdict = Verdict(allowed=False, why="no-credentials", reason=NO_CREDENTIALS)
            return self._audited(verdict, method, None, started)
        request = generic_request(method, principal, self.mapping)
        return await self._ask(request, method, None, principal, started)

    async def decide_list(
        self,
        method: str,
        targets: Sequence[Target],
        *,
        identify: Identify,
        audited_as: str | None = None,
    ) -> ListVerdict:
        """The verdict on one list: the gate and every item in ONE ``check_many``; one event.

        Public items always stay; with no credentials, a method that is not
        known, a denied gate or an engine failure, only they do.

        Args:
            method: The list method.
            targets: The listed components.
            identify: Finds the caller.
            audited_as: The method the audit event names, when the list
                decision answers another request (a completion).
        """
        started = time.perf_counter()
        event = audited_as or method
        plans = [await self.planner.plan(method, target) for target in targets]
        public = tuple(plan.why == "public" for plan in plans)
        principal = await identify()
        if principal is None:
            return self._listed(event, None, public, NO_CREDENTIALS, "no-credentials", started)
        if not self.planner.rules.handled(method):
            reason = "not in known_methods"
            return self._listed(event, principal, public, reason, "method", started)

        gate = self.planner.gate(method, principal)
        asked: list[AuthzRequest] = [gate] if gate is not None else []
        item_requests: list[AuthzRequest | None] = []
        for plan, target in zip(plans, targets, strict=True):
            request = None
            if plan.asks:
                try:
                    request = self.planner.request(plan, method, target, principal)
                except InvalidArguments:
                    request = None
            item_requests.append(request)
            if request is not None:
                asked.append(request)

        if not asked:
            return self._listed(event, principal, public, "nothing to ask", "engine", started)
        try:
            decisions = await self._check_many(asked)
        except Exception as exc:
            # Fail closed, but keep @public components reachable (a login tool).
            logger.error(
                "policy engine %s failed on %s; listing public only: %s",
                self.engine_name,
                method,
                exc,
            )
            reason = f"engine failure: {exc}"
            return self._listed(
                event, principal, public, reason, "engine-error", started, error=str(exc)
            )
        if gate is not None and decisions[0].allowed is not True:
            reason = f"gate denied: {decisions[0].reason}"
            return self._listed(event, principal, public, reason, "gate", started, gate=gate)

        answers = iter(decisions[1:] if gate is not None else decisions)
        item_decisions = tuple(
            next(answers) if request is not None else None for request in item_requests
        )
        allowed = tuple(
            is_public or (decision is not None and decision.allowed is True)
            for is_public, decision in zip(public, item_decisions, strict=True)
        )
        return self._listed(
            event,
            principal,
            allowed,
            "filtered",
            "engine",
            started,
            gate=gate,
            requests=tuple(item_requests),
            decisions=item_decisions,
        )

    async def decide_reference(self, method: str, target: Target, *, identify: Identify) -> Verdict:
        """The verdict on a request about a component that does not use it (a completion).

        Such a request reveals the component, so it is answered only for a
        caller the component's own list would show it to (the listing rule, a
        method gate included); unknown components are answered alike. One
        audit event, naming ``method``.
        """
        if not self.planner.rules.handled(method):
            verdict = Verdict(
                allowed=False, why="method", reason="method is neither known nor bypassed"
            )
            return self._audited(verdict, method, target.name, time.perf_counter())
        listing = await self.decide_list(
            KIND_LIST_METHODS[target.kind], [target], identify=identify, audited_as=method
        )
        return Verdict(
            allowed=listing.allowed[0],
            why=listing.why,
            reason=listing.reason,
            decided_by=self.engine_name if listing.why == "engine" else GUARD,
            principal=listing.principal,
            request=listing.requests[0],
            error=listing.error,
        )

    # ------------------------------------------------------------------- internals

    async def _ask(
        self,
        request: AuthzRequest,
        method: str,
        component: str | None,
        principal: Principal,
        started: float,
    ) -> Verdict:
        """One engine call; any failure is a denial (fail closed)."""
        try:
            decision = await self.engine.check(request)
            _check_decision(decision)
        except Exception as exc:
            # Fail closed: the cause goes to the log, never to the client.
            logger.error("policy engine %s failed; denying: %s", self.engine_name, exc)
            verdict = Verdict(
                allowed=False,
                why="engine-error",
                reason=f"engine failure: {exc}",
                decided_by=self.engine_name,
                principal=principal,
                request=request,
                error=str(exc),
            )
        else:
            verdict = Verdict(
                allowed=decision.allowed,
                why="engine",
                reason=decision.reason,
                decided_by=self.engine_name,
                principal=principal,
                request=request,
                cached=decision.cached,
            )
        return self._audited(verdict, method, component, started)

    async def _check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        decisions = await self.engine.check_many(requests)
        if not isinstance(decisions, list) or len(decisions) != len(requests):
            count = len(decisions) if isinstance(decisions, list) else type(decisions).__name__
            raise EngineError(f"check_many answered {count} decisions for {len(requests)} requests")
        for decision in decisions:
            _check_decision(decision)
        return decisions

    def _audited(
        self, verdict: Verdict, method: str, component: str | None, started: float
    ) -> Verdict:
        if self.audit.wants(verdict.allowed):  # skip building events nobody records
            self.audit.decision(
                allowed=verdict.allowed,
                method=method,
                component=component,
                reason=verdict.reason,
                engine=verdict.decided_by,
                principal=verdict.principal,
                request=verdict.request,
                started=started if verdict.request is not None else None,
                cached=verdict.cached,
            )
        return verdict

    def _listed(
        self,
        method: str,
        principal: Principal | None,
        allowed: tuple[bool, ...],
        reason: str,
        why: Why,
        started: float,
        *,
        gate: AuthzRequest | None = None,
        requests: tuple[AuthzRequest | None, ...] = (),
        decisions: tuple[Decision | None, ...] = (),
        error: str | None = None,
    ) -> ListVerdict:
        listed = sum(allowed)
        self.audit.listing(
            method=method,
            principal=principal,
            listed=listed,
            hidden=len(allowed) - listed,
            reason=reason,
            started=started,
        )
        return ListVerdict(
            allowed=allowed,
            reason=reason,
            why=why,
            principal=principal,
            gate=gate,
            requests=requests or (None,) * len(allowed),
            decisions=decisions or (None,) * len(allowed),
            error=error,
        )


def _check_decision(decision: object) -> None:
    """An answer that is not a Decision with a real bool is an engine failure, not an allow."""
    if not isinstance(decision, Decision) or not isinstance(decision.allowed, bool):
        raise EngineError(f"engine answered {decision!r}, not a Decision")
