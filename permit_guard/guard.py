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

Example (``mcp`` is your FastMCP server)::

    guard = Guard.from_settings(load_settings(), engine=LocalPolicyEngine.from_file("policy.yaml"))
    found = await target(mcp, "tool", "refund", {"amount": 50})
    verdict = await guard.decide("tools/call", found, identify=lambda: known(Principal(key="bob")))
    print(verdict.allowed, verdict.reason)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from permit_guard.asking import ask_many, ask_one
from permit_guard.audit import Auditor, AuditSink, ListRequest
from permit_guard.caller import Identify
from permit_guard.components.lookup import Target
from permit_guard.exceptions import InvalidArguments
from permit_guard.loaders import load, loads
from permit_guard.mapping import MappingConfig, generic_request
from permit_guard.methods import HANDSHAKE_METHODS, KIND_LIST_METHODS, TASK_METHODS
from permit_guard.model import AuthzRequest, Decision, Principal
from permit_guard.planner import NO_CREDENTIALS, Planner
from permit_guard.verdict import GUARD, ListVerdict, Verdict, Why

if TYPE_CHECKING:
    from permit_guard.engines.base import PolicyEngine
    from permit_guard.settings import GuardSettings

__all__ = ["Guard"]

logger = logging.getLogger("permit_guard")


class Guard:
    """The one decision core: classification, one engine call, answer checks, audit.

    Args:
        engine: The policy engine.
        planner: Classifies components and builds their requests.
        audit_sink: Where audit events go; ``None`` records nothing.
        audit_argument_values: Whether events carry attribute values.
        enforce: ``False`` in shadow mode (events then say which denials were let through).
    """

    __slots__ = ("audit", "engine", "engine_name", "planner")

    def __init__(
        self,
        *,
        engine: PolicyEngine,
        planner: Planner,
        audit_sink: AuditSink | None = None,
        audit_argument_values: bool = False,
        enforce: bool = True,
    ) -> None:
        self.engine = engine
        self.engine_name: str = getattr(engine, "name", type(engine).__name__)
        self.planner = planner
        self.audit = Auditor(
            audit_sink,
            engine=self.engine_name,
            argument_values=audit_argument_values,
            enforce=enforce,
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
            enforce=settings.enforce,
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
            failure = None
            if loads(plan):
                request, failure = await load(plan, target, request, self.planner.loader_timeout)
        except InvalidArguments as exc:
            verdict = Verdict(allowed=False, why="arguments", reason=str(exc), principal=principal)
            return self._audited(verdict, method, target.name, started)
        if failure is not None:
            verdict = Verdict(allowed=False, why="loader", reason=failure, principal=principal)
            return self._audited(verdict, method, target.name, started)
        return await self._ask(request, method, target.name, principal, started)

    async def decide_method(
        self, method: str, *, identify: Identify, tasks_bound: bool = False
    ) -> Verdict:
        """The verdict on a request that names no component (its method-level check).

        ``tasks/*`` requests name a task: with ``tasks_bound`` (the server's
        tasks extension is ``GuardedTasks``) they pass to it, which answers the
        task's owner only (:meth:`decide_owner`); otherwise they are refused,
        whatever the method rules say, as tasks would not be bound to callers.
        """
        started = time.perf_counter()
        if method in TASK_METHODS:
            if tasks_bound:
                return Verdict(allowed=True, why="owner", reason="decided per task")
            verdict = Verdict(
                allowed=False, why="method", reason="tasks are not bound to their callers"
            )
            return self._audited(verdict, method, None, started)
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
        event = ListRequest(audited_as or method, targets)
        listing = await self.planner.lists.plan(self.planner, method, targets)
        public = listing.public
        principal = await identify()
        if principal is None:
            return self._listed(event, None, public, NO_CREDENTIALS, "no-credentials", started)
        if not self.planner.rules.handled(method):
            reason = "not in known_methods"
            return self._listed(event, principal, public, reason, "method", started)

        gate, item_requests, asked = self.planner.lists.ask(
            self.planner, method, listing, principal
        )
        if not asked:
            return self._listed(event, principal, public, "nothing to ask", "engine", started)
        try:
            decisions = await ask_many(self.engine, asked)
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
            requests=item_requests,
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

    def decide_owner(
        self,
        method: str,
        task_id: str,
        *,
        owner: Principal | None,
        caller: Principal | None,
    ) -> Verdict:
        """The verdict on a request about a task: only the caller who submitted it may.

        Another caller's task and an unknown one (``owner`` is ``None``) get
        the same denial. The user and tenant must match; attributes may change
        between requests (a refreshed token). One audit event.
        """
        started = time.perf_counter()
        if caller is None:
            verdict = Verdict(allowed=False, why="no-credentials", reason=NO_CREDENTIALS)
        elif owner is not None and (owner.key, owner.tenant) == (caller.key, caller.tenant):
            verdict = Verdict(
                allowed=True, why="owner", reason="the task's owner", principal=caller
            )
        else:
            verdict = Verdict(
                allowed=False,
                why="owner",
                reason="not the task's owner, or no such task",
                principal=caller,
            )
        return self._audited(verdict, method, task_id, started)

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
            decision = await ask_one(self.engine, request)
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
                no_credentials=verdict.why == "no-credentials",
            )
        return verdict

    def _listed(
        self,
        event: ListRequest,
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
        verdict = ListVerdict(
            allowed=allowed,
            reason=reason,
            why=why,
            principal=principal,
            gate=gate,
            requests=requests or (None,) * len(allowed),
            decisions=decisions or (None,) * len(allowed),
            error=error,
        )
        self.audit.listing(event, verdict, started)
        return verdict
