"""The processes behind benchmarks/memory.py: the server under test, and its PDP.

    python benchmarks/memory_server.py http|memory plain|local|pdp [PDP_URL]
    python benchmarks/memory_server.py pdp-server

Each prints its URL on one line (``memory`` for an in-memory server), then
answers one command per line read on standard input, and exits when that
input closes. Linux only: it reads /proc.

The server (10 decorated tools: unguarded, guarded by the embedded
LocalPolicyEngine, or by PermitPDPEngine against PDP_URL) is served over
streamable HTTP on 127.0.0.1, or to in-memory clients in this process, and
answers:

- ``rss``: ``<VmRSS> <RssAnon> <sockets established to the PDP>``, in KiB,
  after ``gc.collect()``;
- ``drive CALLS LISTS CLIENTS`` (in-memory only): :func:`drive` with that
  many in-memory ``fastmcp.Client`` sessions (opened once, then kept);
  answered ``done``;
- ``trace``: starts tracemalloc the first time (answered ``started``), then
  the net growth since the previous ``trace`` and the 25 lines whose
  allocations grew most.

Multi-line answers end with a line holding a single ``.``.

The PDP is a :class:`~permit_guard.testing.LocalPDP` (every tool granted to
user ``client``) and answers ``count``: ``<connections accepted> <requests>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import tracemalloc
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import server, tool_policy
from fastmcp import Client, FastMCP

from permit_guard import LocalPolicyEngine, PermitPDPEngine, PolicyEngine
from permit_guard.testing import LocalPDP
from tests.serving import serve_http

KEY = "permit_key_FAKE_memory"
TOOLS = 10
_ESTABLISHED = "01"


def rss_kib() -> tuple[int, int]:
    """This process's ``VmRSS`` and ``RssAnon`` (/proc/self/status), in KiB.

    ``RssAnon`` leaves out file-backed pages (the interpreter, shared
    libraries), which a machine short of memory evicts and reads back.
    """
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["RssAnon"].split()[0])


def sockets_to(port: int) -> int:
    """TCP sockets of this process established to ``port`` on loopback."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since it was listed
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    count = 0
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == _ESTABLISHED and fields[9] in mine:
            count += 1
    return count


async def drive(sessions: list[Client[Any]], calls: int, lists: int) -> None:
    """``calls`` tools/call over all tools and ``lists`` tools/list, spread over ``sessions``."""

    async def one(session: Client[Any], offset: int) -> None:
        every = max(1, calls // max(1, lists))
        for index in range(offset, calls, len(sessions)):
            await session.call_tool(f"tool_{index % TOOLS}", {"x": index})
            if index % every == 0:
                await session.list_tools()

    await asyncio.gather(*(one(session, offset) for offset, session in enumerate(sessions)))


class _Tracer:
    """tracemalloc snapshots, each compared with the one before."""

    def __init__(self) -> None:
        self.previous: tracemalloc.Snapshot | None = None

    def step(self) -> list[str]:
        if self.previous is None:
            tracemalloc.start(8)
            self.previous = tracemalloc.take_snapshot()
            return ["started"]
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
        diff = snapshot.filter_traces(ignore).compare_to(
            self.previous.filter_traces(ignore), "lineno"
        )
        self.previous = snapshot
        size, blocks = sum(s.size_diff for s in diff), sum(s.count_diff for s in diff)
        return [f"total {size / 1024:+.1f} KiB in {blocks:+} blocks", *map(str, diff[:25])]


async def commands(answer: Callable[[str], Awaitable[list[str]]]) -> None:
    """Answer each line of standard input with ``answer(line)``, until it closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        print(*await answer(line), sep="\n", flush=True)


def engine_for(variant: str, pdp_url: str | None) -> PolicyEngine | None:
    if variant == "plain":
        return None
    if variant == "local":
        return LocalPolicyEngine.from_dict(tool_policy(TOOLS))
    if variant == "pdp" and pdp_url is not None:
        return PermitPDPEngine(pdp_url, KEY)
    raise SystemExit(f"unknown variant {variant!r} (plain, local, pdp PDP_URL)")


async def serve(transport: str, variant: str, pdp_url: str | None) -> None:
    engine = engine_for(variant, pdp_url)
    pdp_port = int(pdp_url.rsplit(":", 1)[1]) if pdp_url else 0
    mcp = server(TOOLS, engine)
    tracer = _Tracer()
    async with contextlib.AsyncExitStack() as stack:
        sessions: list[Client[Any]] = []

        async def answer(line: str) -> list[str]:
            command, *numbers = line.split()
            if command == "trace":
                return [*tracer.step(), "."]
            if command == "drive" and transport == "memory":
                calls, lists, clients = map(int, numbers)
                for _ in range(clients - len(sessions)):
                    sessions.append(await stack.enter_async_context(Client(mcp)))
                await drive(sessions, calls, lists)
                return ["done"]
            if command != "rss":
                return [f"unknown command {line!r}"]
            gc.collect()
            rss, anon = rss_kib()
            return [f"{rss} {anon} {sockets_to(pdp_port) if pdp_port else 0}"]

        await serving(transport, mcp, answer)
    if isinstance(engine, PermitPDPEngine):
        await engine.aclose()


async def serving(
    transport: str, mcp: FastMCP[Any], answer: Callable[[str], Awaitable[list[str]]]
) -> None:
    if transport == "memory":
        print("memory", flush=True)
        await commands(answer)
        return
    async with serve_http(mcp) as url:
        print(url, flush=True)
        await commands(answer)


async def pdp() -> None:
    async with LocalPDP.from_dict(tool_policy(TOOLS), api_key=KEY) as local:
        print(local.url, flush=True)

        async def count(line: str) -> list[str]:
            return [f"{local.connections} {local.requests}"]

        await commands(count)


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    if sys.argv[1] == "pdp-server":
        asyncio.run(pdp())
    else:
        asyncio.run(serve(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))


if __name__ == "__main__":
    main()
