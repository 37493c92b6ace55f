"""The protocols a policy engine implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from permit_guard.model import AuthzRequest, Decision

__all__ = ["Closable", "Explainer", "PolicyEngine", "close_engine"]


@runtime_checkable
class PolicyEngine(Protocol):
    """Answers authorization requests.

    Implementations raise :class:`permit_guard.exceptions.EngineError` when
    they cannot decide; the guard then denies (fails closed).
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


@runtime_checkable
class Explainer(Protocol):
    """An engine that can say how it decides (the embedded one)."""

    def explain(self, request: AuthzRequest) -> Decision:
        """Decide one request; the decision carries its ``explanation``."""
        ...


@runtime_checkable
class Closable(Protocol):
    """An engine holding connections, closed when the server stops."""

    async def aclose(self) -> None:
        """Release the engine's connections; the engine may be used again afterwards."""
        ...


async def close_engine(engine: object) -> None:
    """Close ``engine`` if it holds connections (a no-op otherwise)."""
    if isinstance(engine, Closable):
        await engine.aclose()
