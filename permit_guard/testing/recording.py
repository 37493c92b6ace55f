"""RecordingEngine: a wrapper that records what a real engine was asked."""

from __future__ import annotations

from collections.abc import Sequence

from permit_guard.engines.base import PolicyEngine
from permit_guard.model import AuthzRequest, Decision

__all__ = ["RecordingEngine"]


class RecordingEngine:
    """Wraps a real engine and records every request and every call made to it.

    Attributes:
        inner: The engine that decides.
        requests: Every request asked, in order.
        decisions: Every decision returned, in order.
        calls: ``("check", 1)`` or ``("check_many", n)`` per engine call.
    """

    def __init__(self, inner: PolicyEngine) -> None:
        self.inner = inner
        self.requests: list[AuthzRequest] = []
        self.decisions: list[Decision] = []
        self.calls: list[tuple[str, int]] = []

    @property
    def name(self) -> str:
        """The wrapped engine's name."""
        return self.inner.name

    async def check(self, request: AuthzRequest) -> Decision:
        """Record, then ask the wrapped engine."""
        self.calls.append(("check", 1))
        self.requests.append(request)
        decision = await self.inner.check(request)
        self.decisions.append(decision)
        return decision

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        """Record, then ask the wrapped engine once for all of them."""
        self.calls.append(("check_many", len(requests)))
        self.requests.extend(requests)
        decisions = await self.inner.check_many(requests)
        self.decisions.extend(decisions)
        return decisions

    def reset(self) -> None:
        """Forget what was recorded."""
        self.requests.clear()
        self.decisions.clear()
        self.calls.clear()
