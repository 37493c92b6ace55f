"""Asking the engine: one call, and every answer checked before anyone believes it.

An answer that is not a :class:`~permit_guard.model.Decision` with a real
``bool``, or a bulk answer of the wrong length, is an engine failure: the guard
then denies (fails closed). Any other exception the engine raises is one too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from permit_guard.exceptions import EngineError
from permit_guard.model import AuthzRequest, Decision

if TYPE_CHECKING:
    from permit_guard.engines.base import PolicyEngine

__all__ = ["ask_many", "ask_one"]


async def ask_one(engine: PolicyEngine, request: AuthzRequest) -> Decision:
    """The engine's answer to one request, checked.

    Raises:
        EngineError: On an answer that is not a Decision with a real bool.
        Exception: Whatever the engine raised.
    """
    decision = await engine.check(request)
    _check_decision(decision)
    return decision


async def ask_many(engine: PolicyEngine, requests: Sequence[AuthzRequest]) -> list[Decision]:
    """The engine's answers to many requests in one call, checked, in request order.

    Raises:
        EngineError: On a wrong count or any answer that is not a Decision.
        Exception: Whatever the engine raised.
    """
    decisions = await engine.check_many(requests)
    if not isinstance(decisions, list) or len(decisions) != len(requests):
        count = len(decisions) if isinstance(decisions, list) else type(decisions).__name__
        raise EngineError(f"check_many answered {count} decisions for {len(requests)} requests")
    for decision in decisions:
        _check_decision(decision)
    return decisions


def _check_decision(decision: object) -> None:
    """An answer that is not a Decision with a real bool is an engine failure, not an allow."""
    if not isinstance(decision, Decision) or not isinstance(decision.allowed, bool):
        raise EngineError(f"engine answered {decision!r}, not a Decision")
