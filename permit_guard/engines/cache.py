"""A decision cache in front of any engine.

Off by default (``PERMIT_MCP_CACHE_TTL=0``): a revoked permission must take
effect at once unless the operator chooses otherwise. With a TTL, a decision is
reused for that many seconds for exactly the same request — user and user
attributes, tenant, action, resource type, key and attributes, context — so an
argument that differs is a different request. Engine errors are never cached.
A list request sends only its misses to the wrapped engine, in one call.

Example::

    from permit_guard import CachedEngine, PermitPDPEngine

    engine = CachedEngine(PermitPDPEngine(url=..., api_key=...), ttl=30, max_size=10_000)
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace

from permit_guard.engines.base import PolicyEngine, close_engine
from permit_guard.exceptions import ConfigurationError
from permit_guard.model import AuthzRequest, Decision

__all__ = ["CachedEngine"]


class CachedEngine:
    """Caches another engine's decisions for ``ttl`` seconds, at most ``max_size`` of them.

    Hits are returned with ``Decision.cached`` set, which audit events show.

    Args:
        inner: The engine that decides on a miss.
        ttl: Seconds a decision stays valid; must be positive.
        max_size: Most decisions kept; the least recently used go first.
        clock: Monotonic clock (for tests).

    Raises:
        ConfigurationError: On a non-positive ``ttl`` or ``max_size``.
    """

    def __init__(
        self,
        inner: PolicyEngine,
        *,
        ttl: float,
        max_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl or ttl <= 0:
            raise ConfigurationError(f"cache ttl must be positive, got {ttl!r}")
        if max_size < 1:
            raise ConfigurationError(f"cache max_size must be at least 1, got {max_size!r}")
        self.inner = inner
        self.ttl = float(ttl)
        self.max_size = max_size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Decision]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        """The wrapped engine's name."""
        return self.inner.name

    def __len__(self) -> int:
        return len(self._entries)

    async def check(self, request: AuthzRequest) -> Decision:
        """A cached decision, or the wrapped engine's (then cached)."""
        key = _key(request)
        hit = self._get(key)
        if hit is not None:
            return hit
        decision = await self.inner.check(request)
        self._put(key, decision)
        return decision

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        """Cached decisions, with the misses decided in ONE call to the wrapped engine."""
        keys = [_key(request) for request in requests]
        answers: list[Decision | None] = [self._get(key) for key in keys]
        missing = [index for index, answer in enumerate(answers) if answer is None]
        if missing:
            decided = await self.inner.check_many([requests[index] for index in missing])
            if len(decided) != len(missing):
                # Let the guard see the mismatch; nothing is cached from it.
                return decided
            for index, decision in zip(missing, decided, strict=True):
                answers[index] = decision
                self._put(keys[index], decision)
        return [answer for answer in answers if answer is not None]

    def clear(self) -> None:
        """Forget every decision (after a policy change, say)."""
        self._entries.clear()

    async def aclose(self) -> None:
        """Close the wrapped engine, if it has anything to close."""
        await close_engine(self.inner)

    def _get(self, key: str) -> Decision | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires, decision = entry
        if expires <= self._clock():
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return replace(decision, cached=True)

    def _put(self, key: str, decision: Decision) -> None:
        if not isinstance(decision, Decision) or not isinstance(decision.allowed, bool):
            return  # the guard treats it as an engine failure; never cache it
        self._entries[key] = (self._clock() + self.ttl, decision)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)


def _key(request: AuthzRequest) -> str:
    # The whole request, canonically: any difference is a different decision.
    return json.dumps(request.to_pdp_json(), sort_keys=True, separators=(",", ":"), default=repr)
