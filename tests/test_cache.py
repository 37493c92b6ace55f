"""CachedEngine: hits, expiry, bounded size, errors never cached, lists send only misses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from fastmcp import Client

from permit_guard import (
    AuthzRequest,
    CachedEngine,
    ConfigurationError,
    Decision,
    EngineError,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    Resource,
)
from permit_guard.testing import RecordingEngine

from .conftest import POLICY, Caller, build_server


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ask(user: str = "alice", amount: float = 5) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user),
        action="refund",
        resource=Resource(type="mcp_server", attributes={"arg_amount": amount}),
    )


@pytest.fixture
def inner() -> RecordingEngine:
    """The local engine, recording what reaches it."""
    return RecordingEngine(LocalPolicyEngine.from_dict(POLICY))


async def test_hit_skips_the_engine(inner: RecordingEngine) -> None:
    """The same request within the TTL is answered from the cache, marked cached."""
    cache = CachedEngine(inner, ttl=30, clock=Clock())
    first = await cache.check(ask())
    second = await cache.check(ask())
    assert (first.allowed, first.cached) == (True, False)
    assert (second.allowed, second.cached) == (True, True)
    assert inner.calls == [("check", 1)]
    assert (cache.hits, cache.misses) == (1, 1)


async def test_any_difference_is_a_miss(inner: RecordingEngine) -> None:
    """Another user, or another argument value, is another request."""
    cache = CachedEngine(inner, ttl=30, clock=Clock())
    await cache.check(ask("alice", 5))
    await cache.check(ask("carol", 5))
    await cache.check(ask("alice", 6))
    await cache.check(ask("alice", 5.5))
    assert len(inner.calls) == 4


async def test_expiry(inner: RecordingEngine) -> None:
    """After the TTL the engine is asked again."""
    clock = Clock()
    cache = CachedEngine(inner, ttl=30, clock=clock)
    await cache.check(ask())
    clock.now += 29.9
    await cache.check(ask())
    clock.now += 0.2
    await cache.check(ask())
    assert len(inner.calls) == 2


async def test_bounded_size_evicts_least_recently_used(inner: RecordingEngine) -> None:
    """The cache keeps at most max_size decisions, dropping the least recently used."""
    cache = CachedEngine(inner, ttl=30, max_size=2, clock=Clock())
    await cache.check(ask(amount=1))
    await cache.check(ask(amount=2))
    await cache.check(ask(amount=1))  # refreshes 1
    await cache.check(ask(amount=3))  # evicts 2
    assert len(cache) == 2
    inner.reset()
    await cache.check(ask(amount=1))
    await cache.check(ask(amount=2))
    assert inner.calls == [("check", 1)]


class FlakyEngine:
    """Fails until told to recover."""

    name = "flaky"

    def __init__(self) -> None:
        self.down = True
        self.asked = 0

    async def check(self, request: AuthzRequest) -> Decision:
        self.asked += 1
        if self.down:
            raise EngineError("down")
        return Decision(allowed=True, reason="up")

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        return [await self.check(request) for request in requests]


async def test_errors_are_never_cached() -> None:
    """An engine failure is raised each time and not remembered; the first success is."""
    flaky = FlakyEngine()
    cache = CachedEngine(flaky, ttl=30, clock=Clock())
    for _ in range(2):
        with pytest.raises(EngineError):
            await cache.check(ask())
    flaky.down = False
    assert (await cache.check(ask())).allowed
    assert (await cache.check(ask())).cached
    assert flaky.asked == 3


async def test_lists_send_only_misses_in_one_call(inner: RecordingEngine) -> None:
    """check_many answers hits from the cache and asks the engine once for the misses."""
    cache = CachedEngine(inner, ttl=30, clock=Clock())
    await cache.check(ask(amount=2))
    inner.reset()
    decisions = await cache.check_many([ask(amount=1), ask(amount=2), ask(amount=3)])
    assert [d.cached for d in decisions] == [False, True, False]
    assert inner.calls == [("check_many", 2)]
    assert [r.resource.attributes["arg_amount"] for r in inner.requests] == [1, 3]


@pytest.mark.parametrize(("ttl", "size"), [(0, 10), (-1, 10), (5, 0)])
def test_bad_configuration(inner: RecordingEngine, ttl: float, size: int) -> None:
    """A non-positive TTL or size is refused at construction."""
    with pytest.raises(ConfigurationError):
        CachedEngine(inner, ttl=ttl, max_size=size)


async def test_middleware_cache_ttl_and_audit(
    inner: RecordingEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """cache_ttl wraps the engine; a repeated call is a cache hit visible in the audit event."""
    mcp = build_server()
    guard = PermitMcpMiddleware(engine=inner, identity=Caller("alice"), cache_ttl=60)
    assert isinstance(guard.engine, CachedEngine)
    mcp.add_middleware(guard)
    with caplog.at_level(logging.INFO, logger="permit_guard.audit"):
        async with Client(mcp) as client:
            await client.list_tools()
            inner.reset()
            caplog.clear()
            for _ in range(3):
                await client.call_tool("greet", {"name": "x"})
    events: list[dict[str, Any]] = [
        r.permit_guard  # type: ignore[attr-defined]
        for r in caplog.records
        if hasattr(r, "permit_guard") and r.permit_guard["method"] == "tools/call"  # type: ignore[attr-defined]
    ]
    assert [e.get("cached", False) for e in events] == [False, True, True]
    assert inner.calls == [("check", 1)]


def test_cache_is_off_by_default(inner: RecordingEngine) -> None:
    """Without cache_ttl the engine is used as given: revocations apply at once."""
    assert PermitMcpMiddleware(engine=inner).engine is inner
