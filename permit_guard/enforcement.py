"""Where verdicts take effect: the one place a denial becomes a refusal, or a shadow-mode warning.

Every request path of the guard (calls, reads and renders, lists, method-level
checks, completions, background tasks) hands its verdict to one
:class:`Enforcement`. Normally a denial is refused there. In **shadow mode**
(``PermitMcpMiddleware(enforce=False)``, ``PERMIT_MCP_ENFORCE=false``) the
guard still decides and audits everything, but lets through what the policy
would refuse, logging a WARNING on the ``permit_guard`` logger for each such
request, and the audit events say so (``allowed: false, enforced: false``).
Use it to roll a policy out: watch what it would deny before it does.

Shadow mode still refuses, because these are not policy outcomes that a
rollout is about, and letting them through would silently turn off
authentication rather than authorization:

- a request **without valid credentials** (no token, an expired or forged
  one): there is nobody to decide for, so there is nothing to shadow; tools
  would run with no :func:`~permit_guard.caller.current_principal`;
- **another caller's background task** (``tasks/get``, ``tasks/update``,
  ``tasks/cancel``) and every ``tasks/*`` request without ``GuardedTasks``:
  a task belongs to the caller who submitted it, which no policy can change;
- what is not a decision at all: a response cache placed before the guard,
  ``Mcp-Param-*`` headers that do not match the tool, a task key two
  components share.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from permit_guard.exceptions import AccessDenied, AuthenticationFailed, on_wire
from permit_guard.methods import TASK_METHODS

if TYPE_CHECKING:
    from permit_guard.components.lookup import Target
    from permit_guard.guard import Guard
    from permit_guard.model import Principal
    from permit_guard.verdict import ListVerdict, Verdict

__all__ = ["Enforcement", "held_in_shadow"]

logger = logging.getLogger("permit_guard")

T = TypeVar("T")


def held_in_shadow(method: str, *, no_credentials: bool) -> bool:
    """Whether a denial is refused even in shadow mode (see the module's docstring).

    Args:
        method: The MCP method of the request.
        no_credentials: Whether the caller had no valid credentials.
    """
    return no_credentials or method in TASK_METHODS


class Enforcement:
    """Turns the verdicts of one guard into refusals, or in shadow mode into warnings.

    Args:
        guard: The decision core whose verdicts take effect here; built with
            ``enforce=False`` (``PERMIT_MCP_ENFORCE=false``) for shadow mode,
            which is logged once, here.
    """

    __slots__ = ("enforce", "guard")

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.enforce = guard.audit.enforce
        if not self.enforce:
            logger.warning(
                "permit_guard shadow mode (enforce=False): every request is decided and "
                "audited, but what the policy denies is let through; requests without valid "
                "credentials and other callers' background tasks are still refused"
            )

    def refuses(self, verdict: Verdict, method: str, component: str | None) -> bool:
        """Whether the request is refused; a denial shadow mode lets through is logged.

        Args:
            verdict: The guard's verdict.
            method: The MCP method.
            component: The tool, prompt or task named, or the URI read; ``None``
                for a method-level check.
        """
        if verdict.allowed:
            return False
        if self.enforce or held_in_shadow(method, no_credentials=verdict.why == "no-credentials"):
            return True
        logger.warning(
            "shadow mode: would deny %s%s for %s: %s",
            method,
            "" if component is None else f" {component!r}",
            _user(verdict.principal),
            verdict.reason,
        )
        return False

    def admit(self, verdict: Verdict, method: str, found: Target) -> Principal | None:
        """The caller of an allowed call, read or render (``None`` for a public component).

        Raises:
            AuthenticationFailed: Without valid credentials.
            AccessDenied: The one answer for denied, hidden and unknown components.
        """
        if self.refuses(verdict, method, found.name):
            if verdict.why == "no-credentials":
                raise AuthenticationFailed()
            raise AccessDenied.hidden(found.kind, found.name)
        return verdict.principal

    def admit_method(self, verdict: Verdict, method: str) -> None:
        """Let a request that names no component through, or refuse it.

        Raises:
            MCPError: "Authentication failed..." or "Method ... is not allowed".
        """
        if self.refuses(verdict, method, None):
            if verdict.why == "no-credentials":
                raise on_wire(AuthenticationFailed())
            raise on_wire(AccessDenied(f"Method {method!r} is not allowed", component=method))

    async def kept(
        self, method: str, targets: Sequence[Target], verdict: ListVerdict, items: Sequence[T]
    ) -> list[T]:
        """The items a list shows: those allowed, or in shadow mode all (the rest logged).

        Without valid credentials a list shows its ``@public`` items only, even in
        shadow mode.
        """
        no_credentials = verdict.why == "no-credentials"
        if self.enforce or held_in_shadow(method, no_credentials=no_credentials):
            return verdict.kept(items)
        hidden = [i for i, allowed in enumerate(verdict.allowed) if not allowed]
        if not hidden:
            return list(items)
        if verdict.why != "engine":
            # The gate, an engine failure or the method cut the whole list: one reason.
            names = ", ".join(repr(targets[i].name) for i in hidden)
            detail = f"{names}: {verdict.reason}"
        else:
            detail = "; ".join(
                [
                    f"{targets[i].name!r} ({await self._reason(method, targets[i], verdict, i)})"
                    for i in hidden
                ]
            )
        logger.warning(
            "shadow mode: %s would hide %d of %d for %s: %s",
            method,
            len(hidden),
            len(items),
            _user(verdict.principal),
            detail,
        )
        return list(items)

    async def _reason(self, method: str, target: Target, verdict: ListVerdict, index: int) -> str:
        """Why one item of an engine-filtered list would be hidden (the engine's or planner's)."""
        decision = verdict.decisions[index]
        if decision is not None:
            return decision.reason
        plan = await self.guard.planner.plan(method, target)
        return plan.reason or "its arguments cannot be mapped"


def _user(principal: Principal | None) -> str:
    return f"user {principal.key!r}" if principal is not None else "a caller not yet identified"
