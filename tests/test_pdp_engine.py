"""PermitPDPEngine over real loopback HTTP, and the real permit SDK, against LocalPDP."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastmcp import Client, FastMCP

from permit_guard import (
    EngineError,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    PermitPDPEngine,
    PolicyEngine,
    public,
)
from permit_guard.testing import Fault, LocalPDP

from .conftest import POLICY, Caller, build_server

KEY = "permit_key_FAKE_for_tests"
DENIED = "not found or not authorized"

with warnings.catch_warnings():
    # The SDK warns about its own deprecated imports when imported.
    warnings.simplefilter("ignore", DeprecationWarning)
    from permit import Permit


@pytest.fixture
async def pdp() -> AsyncIterator[LocalPDP]:
    """A LocalPDP on the shared test policy."""
    async with LocalPDP.from_dict(POLICY, api_key=KEY) as server:
        yield server


def sdk_client(url: str, key: str = KEY) -> Any:
    return Permit(token=key, pdp=url, pdp_timeout=2)


@asynccontextmanager
async def make_engine(kind: str, pdp: LocalPDP) -> AsyncIterator[PolicyEngine]:
    """One of the three engines, closed afterwards."""
    if kind == "local":
        yield LocalPolicyEngine.from_dict(POLICY)
        return
    engine = {
        "pdp": lambda: PermitPDPEngine(pdp.url, KEY, timeout=2),
        "permit_client": lambda: PermitPDPEngine.from_permit(sdk_client(pdp.url)),
        "sdk": lambda: PermitPDPEngine.from_permit(sdk_client(pdp.url), through_sdk=True),
    }[kind]()
    async with engine:
        yield engine


# (user, tool, arguments, allowed): the core scenarios.
SCENARIOS = [
    ("alice", "refund", {"amount": 500}, True),
    ("carol", "refund", {"amount": 50}, True),
    ("carol", "refund", {"amount": 500}, False),
    ("carol", "greet", {"name": "x"}, True),
    ("lee", "greet", {"name": "x"}, True),
    ("lee", "refund", {"amount": 5}, False),
    ("carol", "undecorated", {}, False),
    ("alice", "undecorated", {}, True),
    ("carol", "delete_invoice", {"invoice_id": "42", "org": "default"}, True),
    ("carol", "delete_invoice", {"invoice_id": "43", "org": "default"}, False),
    ("acme-bob", "delete_invoice", {"invoice_id": "7", "org": "acme"}, True),
    ("acme-bob", "delete_invoice", {"invoice_id": "7", "org": "default"}, False),
    ("nobody", "greet", {"name": "x"}, False),
]


@pytest.mark.parametrize("kind", ["local", "pdp", "permit_client", "sdk"])
async def test_engines_agree(kind: str, pdp: LocalPDP) -> None:
    """The embedded engine, the PDP engine (direct or from a client) and the SDK agree."""
    caller = Caller()
    mcp = build_server()
    outcomes = []
    listings = {}
    async with make_engine(kind, pdp) as engine, Client(mcp) as client:
        mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=caller))
        for user in ("alice", "carol", "lee", "nobody"):
            caller.key = user
            listings[user] = sorted(t.name for t in await client.list_tools())
        for user, tool, arguments, _ in SCENARIOS:
            caller.key = user
            result = await client.call_tool(tool, arguments, raise_on_error=False)
            outcomes.append(not result.is_error)
    assert outcomes == [allowed for *_, allowed in SCENARIOS]
    assert listings == {
        "alice": ["delete_invoice", "greet", "health", "refund", "undecorated"],
        "carol": ["delete_invoice", "greet", "health", "refund"],
        "lee": ["health"],
        "nobody": ["health"],
    }


async def test_one_bulk_request_per_list(pdp: LocalPDP) -> None:
    """A list of any size is one POST /allowed/bulk at the PDP."""
    mcp = build_server()
    engine = PermitPDPEngine(pdp.url, KEY)
    mcp.add_middleware(PermitMcpMiddleware(engine=engine))
    async with engine, Client(mcp) as client:
        pdp.reset()
        await client.list_tools()
        await client.list_prompts()
    assert pdp.requests_by_path == {"/allowed/bulk": 2}
    assert [len(body) for body in pdp.bodies] == [5, 2]


async def test_large_lists_are_chunked_only_above_the_chunk_size(pdp: LocalPDP) -> None:
    """check_many splits into chunks of bulk_chunk_size and keeps the order."""
    engine = PermitPDPEngine(pdp.url, KEY, bulk_chunk_size=2)
    local = LocalPolicyEngine.from_dict(POLICY)
    mcp = build_server()
    mcp.add_middleware(PermitMcpMiddleware(engine=RecordingLocal(engine, local)))
    async with Client(mcp) as client:
        pdp.reset()
        await client.list_tools()
    assert [len(body) for body in pdp.bodies] == [2, 2, 1]
    await engine.aclose()


class RecordingLocal:
    """Asks the PDP engine and checks every answer against the embedded engine."""

    name = "pdp-checked"

    def __init__(self, remote: PermitPDPEngine, local: LocalPolicyEngine) -> None:
        self.remote, self.local = remote, local

    async def check(self, request: Any) -> Any:
        return await self.remote.check(request)

    async def check_many(self, requests: Any) -> Any:
        decisions = await self.remote.check_many(requests)
        assert [d.allowed for d in decisions] == [self.local.decide(r).allowed for r in requests]
        return decisions


async def test_connections_are_reused(pdp: LocalPDP) -> None:
    """100 checks through one engine use one TCP connection (keep-alive pool)."""
    mcp = build_server()
    engine = PermitPDPEngine(pdp.url, KEY)
    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("alice")))
    pdp.reset()
    async with engine, Client(mcp) as client:
        await client.list_tools()
        for index in range(100):
            await client.call_tool("refund", {"amount": index})
    assert pdp.requests_by_path == {"/allowed/bulk": 1, "/allowed": 100}
    assert pdp.connections == 1


async def test_the_sdk_opens_a_connection_per_check(pdp: LocalPDP) -> None:
    """For comparison: the permit SDK's own check opens one connection per check."""
    client = sdk_client(pdp.url)
    pdp.reset()
    for _ in range(5):
        await client.check("alice", "greet", {"type": "mcp_server", "tenant": "default"})
    assert pdp.connections == 5


FAULTS = [
    (Fault.status(401), "HTTP 401", "rejected the API key"),
    (Fault.status(501), "HTTP 501", "local PDP container"),
    (Fault.status(503), "HTTP 503", ""),
    (Fault.not_json(), "not JSON", "text/html"),
    (Fault.malformed_json(), "not JSON", "application/json"),
    (Fault.wrong_shape(), "unexpected shape", ""),
    (Fault.short_bulk(), "decisions for", ""),
    (Fault.drop(), "could not be reached", ""),
    (Fault.delay(1.0), "did not answer within 0.3s", ""),
]


@pytest.mark.parametrize(("fault", "cause", "hint"), FAULTS, ids=lambda v: str(v)[:40])
async def test_every_fault_denies_logs_and_recovers(
    pdp: LocalPDP, fault: Fault, cause: str, hint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each PDP failure denies, logs the URL and cause, keeps serving, and recovers."""
    engine = PermitPDPEngine(pdp.url, KEY, timeout=0.3)
    mcp = build_server()
    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("alice")))
    async with engine, Client(mcp) as client:
        await client.list_tools()
        pdp.inject(fault)
        with caplog.at_level(logging.ERROR, logger="permit_guard"):
            listed = sorted(t.name for t in await client.list_tools())
            call = await client.call_tool("refund", {"amount": 1}, raise_on_error=False)
            public = await client.call_tool("health", {})
        pdp.clear_faults()
        recovered = await client.call_tool("refund", {"amount": 1})
    text = call.content[0].text  # type: ignore[union-attr]
    if fault.kind != "short_bulk":  # a short answer is only possible for lists
        assert call.is_error
        assert DENIED in text
    assert listed == ["health"]
    assert public.data == "ok"
    assert recovered.data == "refunded 1.0"
    assert pdp.url in caplog.text
    assert cause in caplog.text
    assert hint in caplog.text
    assert pdp.url not in text


async def test_connection_refused_denies(caplog: pytest.LogCaptureFixture) -> None:
    """A PDP that is not running denies with a log naming the URL."""
    async with LocalPDP.from_dict(POLICY, api_key=KEY) as gone:
        url = gone.url
    async with PermitPDPEngine(url, KEY, timeout=1) as engine:
        with pytest.raises(EngineError, match="could not be reached"):
            await engine.check(_request())


def _request() -> Any:
    from permit_guard import AuthzRequest, Principal, Resource

    return AuthzRequest(
        user=Principal(key="alice"), action="greet", resource=Resource(type="mcp_server")
    )


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.delay(3.0), "did not answer within"),
        (Fault.malformed_json(), "JSONDecodeError"),
        (Fault.status(503), "PermitConnectionError"),
        (Fault.drop(), "PermitConnectionError"),
    ],
    ids=["timeout", "malformed", "503", "drop"],
)
async def test_sdk_failures_fail_closed(pdp: LocalPDP, fault: Fault, error: str) -> None:
    """Through the SDK, raw TimeoutError and JSONDecodeError deny like any other failure."""
    engine = PermitPDPEngine.from_permit(sdk_client(pdp.url), through_sdk=True, timeout=1)
    pdp.inject(fault)
    with pytest.raises(EngineError, match=error):
        await engine.check(_request())
    with pytest.raises(EngineError):
        await engine.check_many([_request(), _request()])


async def test_sdk_short_bulk_answer_is_an_error(pdp: LocalPDP) -> None:
    """The SDK returns a short list when the PDP does; the engine refuses to read it."""
    engine = PermitPDPEngine.from_permit(sdk_client(pdp.url), through_sdk=True)
    pdp.inject(Fault.short_bulk())
    with pytest.raises(EngineError, match="1 decisions for 2 checks"):
        await engine.check_many([_request(), _request()])


async def test_strict_reading_of_allow(pdp: LocalPDP) -> None:
    """An 'allow' that is not a real boolean ('no', 1) is an error, not an allow."""
    engine = PermitPDPEngine(pdp.url, KEY)
    for body in ({"allow": "no"}, {"allow": 1}, {"allow": None}, ["allow"]):
        pdp.inject(Fault.wrong_shape(body), times=1)
        with pytest.raises(EngineError, match="unexpected shape"):
            await engine.check(_request())
    await engine.aclose()


def test_bad_construction() -> None:
    """A missing key, a non-http URL or a sync permit client is refused at construction."""
    from permit_guard import ConfigurationError

    with pytest.raises(ConfigurationError, match="API key"):
        PermitPDPEngine("http://127.0.0.1:7766", "")
    with pytest.raises(ConfigurationError, match="http"):
        PermitPDPEngine("ftp://127.0.0.1", KEY)
    with pytest.raises(ConfigurationError, match=r"async permit\.Permit"):
        PermitPDPEngine.from_permit(object())


async def test_permit_client_keyword(pdp: LocalPDP) -> None:
    """permit-fastmcp's permit_client= keyword checks with the given client's settings."""
    guard = PermitMcpMiddleware(permit_client=sdk_client(pdp.url), identity=Caller("carol"))
    assert isinstance(guard.engine, PermitPDPEngine)
    assert guard.engine.name == "permit-pdp"  # the client's settings, the strict client
    mcp = build_server()
    mcp.add_middleware(guard)
    async with Client(mcp) as client:
        assert (await client.call_tool("greet", {"name": "x"})).data == "hello x"
        assert (await client.call_tool("refund", {"amount": 500}, raise_on_error=False)).is_error
    await guard.aclose()


async def test_lifespan_closes_the_pool(pdp: LocalPDP) -> None:
    """guard.lifespan closes the engine's connections when the server stops."""
    engine = PermitPDPEngine(pdp.url, KEY)
    guard = PermitMcpMiddleware(engine=engine, identity=Caller("alice"))
    mcp: FastMCP[Any] = FastMCP("s", lifespan=guard.lifespan)

    @mcp.tool
    @public
    def ping() -> str:
        return "pong"

    mcp.add_middleware(guard)
    async with Client(mcp) as client:
        await client.list_tools()  # asks the PDP: the pool opens
        await client.call_tool("ping", {})
        assert engine._http is not None
        assert not engine._http.closed
    assert engine._http is None


async def test_concurrent_checks_share_a_small_pool(pdp: LocalPDP) -> None:
    """50 concurrent checks are answered correctly over a bounded number of connections."""
    engine = PermitPDPEngine(pdp.url, KEY, max_connections=5)
    decisions = await asyncio.gather(*(engine.check(_request()) for _ in range(50)))
    assert all(d.allowed for d in decisions)
    assert pdp.connections <= 5
    await engine.aclose()


async def test_permit_client_reads_answers_strictly(pdp: LocalPDP) -> None:
    """Through permit_client=, {"allow": "no"} denies (the SDK itself would read it as True)."""
    client = sdk_client(pdp.url)
    strict = PermitPDPEngine.from_permit(client)
    pdp.inject(Fault.wrong_shape({"allow": "no"}))
    async with strict:
        with pytest.raises(EngineError, match="unexpected shape"):
            await strict.check(_request())
    assert await client.check("nobody", "greet", {"type": "mcp_server"}) is True  # the hazard


async def test_sdk_path_has_a_timeout(pdp: LocalPDP) -> None:
    """Through the SDK (no pdp_timeout set), a stalled PDP still fails within the timeout."""
    engine = PermitPDPEngine.from_permit(
        Permit(token=KEY, pdp=pdp.url), through_sdk=True, timeout=0.3
    )
    pdp.inject(Fault.delay(2.0))
    with pytest.raises(EngineError, match=r"within 0\.3s"):
        await engine.check(_request())


def test_one_engine_across_event_loops(pdp_url_and_key: tuple[str, str]) -> None:
    """An engine used from two event loops opens a session in each and closes each cleanly."""
    url, key = pdp_url_and_key
    engine = PermitPDPEngine(url, key)

    async def use() -> bool:
        decision = await engine.check(_request())
        await engine.aclose()
        return decision.allowed

    assert asyncio.run(use()) is True
    assert asyncio.run(use()) is True


@pytest.fixture
def pdp_url_and_key() -> Any:
    """A LocalPDP for synchronous tests."""
    with LocalPDP.from_dict(POLICY, api_key=KEY) as server:
        yield server.url, KEY
