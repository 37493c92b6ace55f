"""The protocol every policy engine implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from permit_guard.model import AuthzRequest, Decision

__all__ = ["PolicyEngine"]


@runtime_checkable
class PolicyEngine(Protocol):
    """Answers authorization requests.

    Implementations raise :class:`permit_guard.exceptions.EngineError` when
    they cannot decide; the middleware then denies (fails closed).
    """

    @property
    def name(self) -> str:
        """A short name for audit events (``local``, ``permit-pdp``...)."""
        ...

    async def check(self, request: AuthzRequest) -> Decision:
        """Decide one request."""
        ...

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        """Decide many requests in one round trip; answers in request order."""
        ...
