"""What the guard core answers: a plan per component, a verdict per request.

Plain values, made by :mod:`permit_guard.planner` and :mod:`permit_guard.guard`
and read by the middleware and the ``permit-guard`` command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, TypeVar

from permit_guard.model import AuthzRequest, Decision, Principal

if TYPE_CHECKING:
    from permit_guard.components.resolve import Resolved

__all__ = ["GUARD", "ListVerdict", "Plan", "Verdict", "Why"]

T = TypeVar("T")

#: ``decided_by`` of a verdict the guard reached without asking the engine.
GUARD: Final = "guard"

#: Why a verdict is what it is.
Why = Literal[
    "public",  # never checked: allowed without asking anyone
    "engine",  # the engine decided
    "engine-error",  # the engine failed or answered nonsense: denied
    "no-credentials",  # no valid credentials: denied before anything else
    "method",  # the method is not in known_methods (or neither known nor bypassed)
    "bypassed",  # a method-level check skipped by bypassed_methods or unknown_methods
    "unknown",  # no such component, or its spec cannot be found
    "default-deny",  # undecorated under default deny
    "unmappable",  # a transformed tool whose requirement reads arguments
    "ambiguous",  # a tool whose name-derived action another tool's shares
    "arguments",  # arguments that cannot be mapped faithfully
    "loader",  # an attribute loader raised, timed out or returned something else
    "gate",  # a list whose method gate the engine denied
    "owner",  # a request about a task: allowed for its owner, like an unknown id for others
]


class Plan(NamedTuple):
    """What the guard does with one component, before it knows who asks.

    Like :class:`Verdict`, an immutable named tuple rather than a frozen
    dataclass: one is made on every call, and it is built in half the time.

    Attributes:
        why: ``public``, a refusal (``method``, ``unknown``, ``default-deny``,
            ``unmappable``), or ``engine``: a request for the engine.
        reason: The refusal's reason; empty when the engine is asked.
        resolved: The component's spec and argument binder, when found.
    """

    why: Why
    reason: str = ""
    resolved: Resolved | None = None

    @property
    def asks(self) -> bool:
        """Whether the engine is asked (after identity and argument mapping)."""
        return self.why == "engine"


class Verdict(NamedTuple):
    """The guard's answer for one component (or one method).

    Attributes:
        allowed: Whether it may run.
        why: What decided it (see :data:`Why`).
        reason: Why, in words: the engine's reason, or the guard's own.
        decided_by: The engine's name, or ``guard`` when no engine was asked.
        principal: The caller it was decided for (``None`` for public
            components and for callers without credentials).
        request: The request the engine was asked, if it was.
        cached: Whether the engine's answer came from a decision cache.
        error: The engine failure, when the engine could not decide.
    """

    allowed: bool
    why: Why
    reason: str
    decided_by: str = GUARD
    principal: Principal | None = None
    request: AuthzRequest | None = None
    cached: bool = False
    error: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ListVerdict:
    """The guard's answer for one list request.

    Attributes:
        allowed: Per item, in order: whether it stays in the list.
        reason: Why, for the whole list (``filtered``, ``gate denied: ...``).
        why: ``engine`` when the engine filtered the list; otherwise what cut
            it to its public items (``no-credentials``, ``method``, ``gate``,
            ``engine-error``).
        principal: The caller.
        gate: The method gate's request, when it was asked.
        requests: Per item: the request asked, or ``None``.
        decisions: Per item: the engine's answer, or ``None``.
        error: The engine failure, when the engine could not decide.
    """

    allowed: tuple[bool, ...]
    reason: str
    why: Why
    principal: Principal | None = None
    gate: AuthzRequest | None = None
    requests: tuple[AuthzRequest | None, ...] = ()
    decisions: tuple[Decision | None, ...] = ()
    error: str | None = None

    def kept(self, items: Sequence[T]) -> list[T]:
        """The items that stay, in order."""
        return [item for item, keep in zip(items, self.allowed, strict=True) if keep]
