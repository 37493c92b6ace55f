"""PermitPDPEngine's connection pool and HTTP/1.1 reading, against real loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from permit_guard import (
    AuthzRequest,
    EngineError,
    PermitMcpMiddleware,
    PermitPDPEngine,
    Principal,
    Resource,
)
from permit_guard.testing import Fault, LocalPDP

from .conftest import POLICY, Caller, build_server
from .serving import serve_http

KEY = "permit_key_FAKE_for_pooling"


def _request(user: str = "alice") -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user), action="greet", resource=Resource(type="mcp_server")
    )


@pytest.fixture
async def pdp() -> AsyncIterator[LocalPDP]:
    """A LocalPDP on the shared test policy."""
    async with LocalPDP.from_dict(POLICY, api_key=KEY) as server:
        yield server
        assert server.errors == []


async def test_concurrent_checks_reuse_a_bounded_pool(pdp: LocalPDP) -> None:
    """Bursts of 20 concurrent checks open at most 20 connections once, then reuse them."""
    async with PermitPDPEngine(pdp.url, KEY, max_connections=20) as engine:
        for _ in range(5):
            decisions = await asyncio.gather(*(engine.check(_request()) for _ in range(20)))
            assert all(d.allowed for d in decisions)
        assert pdp.requests_by_path == {"/allowed": 100}
        assert 1 <= pdp.connections <= 20
        opened = pdp.connections
        await asyncio.gather(*(engine.check(_request()) for _ in range(20)))
        assert pdp.connections == opened


async def test_more_callers_than_connections_wait_their_turn(pdp: LocalPDP) -> None:
    """60 concurrent checks over a pool of 3 are all answered, over at most 3 connections."""
    async with PermitPDPEngine(pdp.url, KEY, max_connections=3) as engine:
        decisions = await asyncio.gather(
            *(engine.check(_request(u)) for u in ["alice", "lee"] * 30)
        )
    assert [d.allowed for d in decisions] == [True, True] * 30
    assert pdp.requests == 60
    assert pdp.connections <= 3


async def test_one_request_per_call_and_one_bulk_per_list_over_http(pdp: LocalPDP) -> None:
    """20 concurrent clients over streamable HTTP: one /allowed per call, one bulk per list,
    and no more PDP connections than the pool holds."""
    engine = PermitPDPEngine(pdp.url, KEY, max_connections=20)
    mcp = build_server()
    PermitMcpMiddleware(engine=engine, identity=Caller("alice")).attach(mcp)

    async def one(url: str) -> None:
        async with Client(StreamableHttpTransport(url)) as client:
            await client.list_tools()
            for index in range(5):
                assert (await client.call_tool("refund", {"amount": index})).data

    async with engine, serve_http(mcp) as url:
        pdp.reset()
        await asyncio.gather(*(one(url) for _ in range(20)))
    assert pdp.requests_by_path == {"/allowed/bulk": 20, "/allowed": 100}
    assert 1 <= pdp.connections <= 20


async def test_a_dropped_connection_fails_closed_and_is_replaced(pdp: LocalPDP) -> None:
    """A new connection the PDP drops mid-request denies that check; the next opens another."""
    async with PermitPDPEngine(pdp.url, KEY) as engine:
        pdp.inject(Fault.drop(), times=1)
        with pytest.raises(EngineError, match="closed before the answer began"):
            await engine.check(_request())
        assert (await engine.check(_request())).allowed
    assert pdp.requests == 2
    assert pdp.connections == 2


async def test_a_reused_connection_closed_unanswered_is_tried_once_more(pdp: LocalPDP) -> None:
    """A kept connection the PDP closes as it is reused (its idle timeout ran out): the check
    is sent once more on a new connection; closed again, it is denied. Never a third time."""
    async with PermitPDPEngine(pdp.url, KEY) as engine:
        assert (await engine.check(_request())).allowed
        pdp.inject(Fault.drop(), times=1)
        assert (await engine.check(_request())).allowed
        assert (pdp.requests, pdp.connections) == (3, 2)
        pdp.inject(Fault.drop(), times=2)
        with pytest.raises(EngineError, match="closed before the answer began"):
            await engine.check(_request())
        assert (pdp.requests, pdp.connections) == (5, 3)
        assert (await engine.check(_request())).allowed
    assert pdp.connections == 4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_connection_closed_while_idle_is_not_reused() -> None:
    """When the PDP closes idle connections (here: it restarts), the next check still succeeds."""
    pdp = LocalPDP.from_dict(POLICY, api_key=KEY, port=_free_port())
    async with PermitPDPEngine(f"http://127.0.0.1:{pdp._port}", KEY) as engine:
        async with pdp:
            assert (await engine.check(_request())).allowed
        async with pdp:
            assert (await engine.check(_request())).allowed
            assert engine._http is not None
    assert pdp.connections == 2


async def test_aclose_closes_the_pool_and_the_engine_reopens_it(pdp: LocalPDP) -> None:
    """After aclose() the pool is gone; the engine opens a new one on its next check."""
    engine = PermitPDPEngine(pdp.url, KEY)
    await engine.check(_request())
    pool = engine._http
    assert pool is not None
    await engine.aclose()
    assert pool.closed
    assert engine._http is None
    assert (await engine.check(_request())).allowed
    await engine.aclose()
    assert pdp.connections == 2


def test_a_key_with_a_line_break_is_refused() -> None:
    """An API key that would split the request's headers is refused at construction."""
    with pytest.raises(ValueError, match="line break"):
        PermitPDPEngine("http://127.0.0.1:7766", "key\r\nX-Evil: 1")


# -- HTTP/1.1 as other servers may answer it ----------------------------------------------------


class Responder:
    """A loopback HTTP server answering each request, read whole, with the next raw answer.

    It closes a connection after an answer that has no length (HTTP/1.0) or says
    ``Connection: close``, and counts the connections it accepted.
    """

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.accepted = 0
        self.handlers: list[asyncio.Task[None]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.append(task)
        try:
            while self.answers:  # bounded: one answer per request
                head = await reader.readuntil(b"\r\n\r\n")
                (length,) = (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                answer = self.answers.pop(0)
                writer.write(answer)
                await writer.drain()
                if (
                    answer.startswith(b"HTTP/1.0")
                    or b"Connection: close" in answer
                    or b"\r\n\r\n" not in answer  # cut short: then closed
                ):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its end
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def responder(answers: list[bytes]) -> AsyncIterator[tuple[str, Responder]]:
    """A :class:`Responder` listening on 127.0.0.1; yields its URL and itself."""
    served = Responder(answers)
    server = await asyncio.start_server(served.handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", served
    finally:
        server.close()
        await server.wait_closed()
        # The engine has closed its connections by now: every handler ends at its next read.
        await asyncio.wait_for(asyncio.gather(*served.handlers), 10)


ALLOW = b'{"allow": true}'


def _ok(body: bytes = ALLOW, *, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'5\r\n{"all\r\na;ext=1\r\now": true}\r\n0\r\nX-Trailer: 1\r\n\r\n'
)


@pytest.mark.parametrize(
    ("answer", "connections"),
    [
        (_ok(), 1),
        (CHUNKED, 1),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(), 1),
        (b"HTTP/1.0 200 OK\r\n\r\n" + ALLOW, 2),
        (_ok(extra=b"Connection: close\r\n"), 2),
    ],
    ids=["content-length", "chunked", "continue-first", "to-the-end", "connection-close"],
)
async def test_answers_framed_every_http11_way_are_read(answer: bytes, connections: int) -> None:
    """A length, chunks (extensions, trailers), a 100 first, or to the end of the stream; the
    connection is kept unless the answer ends with it or says Connection: close."""
    async with responder([answer, answer]) as (url, served), PermitPDPEngine(url, KEY) as engine:
        assert (await engine.check(_request())).allowed
        assert (await engine.check(_request())).allowed
    assert served.accepted == connections


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"SPDY/3 200 OK\r\n\r\n", "malformed HTTP"),
        (b"HTTP/1.1 2xx OK\r\nContent-Length: 2\r\n\r\n{}", "malformed HTTP"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed HTTP"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "malformed HTTP"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed HTTP"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{", "could not be reached"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", "unexpected shape"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}", "malformed HTTP"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}", "malformed HTTP"),
    ],
    ids=[
        "not-http",
        "status",
        "header",
        "length",
        "chunk",
        "cut-short",
        "shape",
        "signed-length",
        "hex-prefixed-chunk",
    ],
)
async def test_answers_that_are_not_http_fail_closed(answer: bytes, error: str) -> None:
    """Every answer the engine cannot read as HTTP/1.1 and the PDP's shape is an EngineError."""
    async with responder([answer]) as (url, _), PermitPDPEngine(url, KEY, timeout=2) as engine:
        with pytest.raises(EngineError, match=error):
            await engine.check(_request())


async def test_an_answer_that_never_ends_times_out() -> None:
    """A length promised and never sent is a timeout, not a hang."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{"

    stalled: list[asyncio.Task[None]] = []

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        stalled.append(task)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client gives up and closes
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with PermitPDPEngine(url, KEY, timeout=0.3) as engine:
            with pytest.raises(EngineError, match=r"did not answer within 0\.3s"):
                await engine.check(_request())
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.wait_for(asyncio.gather(*stalled), 10)


DENY = b'{"allow": false}'


async def test_bytes_past_an_answer_are_never_read_as_the_next_one() -> None:
    """An answer followed by more bytes (here a whole smuggled allow): the connection is not
    kept, and the next check reads its own answer on a new one."""
    answers = [_ok(DENY) + _ok(ALLOW), _ok(DENY)]
    async with responder(answers) as (url, served), PermitPDPEngine(url, KEY) as engine:
        assert not (await engine.check(_request())).allowed
        assert not (await engine.check(_request())).allowed
    assert served.accepted == 2


async def test_an_answer_framed_two_ways_is_read_chunked_and_not_kept() -> None:
    """Chunks and a Content-Length together: the chunks frame it, and the connection goes."""
    both = CHUNKED.replace(b"chunked\r\n", b"chunked\r\nContent-Length: 3\r\n")
    async with responder([both, both]) as (url, served), PermitPDPEngine(url, KEY) as engine:
        assert (await engine.check(_request())).allowed
        assert (await engine.check(_request())).allowed
    assert served.accepted == 2


async def test_a_kept_connection_closed_after_part_of_an_answer_is_not_retried() -> None:
    """Part of an answer came: the check is denied, and not sent again."""
    async with (
        responder([_ok(), b"HTTP/1.1 2"]) as (url, served),
        PermitPDPEngine(url, KEY, timeout=2) as engine,
    ):
        assert (await engine.check(_request())).allowed
        with pytest.raises(EngineError, match="closed before the answer ended"):
            await engine.check(_request())
    assert served.accepted == 1
