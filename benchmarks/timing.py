"""Denied, hidden and unknown components must answer alike, in time too.

A server with 1,000 decorated tools (default deny), and one caller. Three
kinds of call answer with the same text, code and flags:

- denied: a decorated tool the policy does not grant the caller (the engine is asked);
- hidden: an undecorated tool, refused under default deny without asking;
- unknown: a name no component has.

Each round calls all three, in rotating order, so they share the machine's
load; the script prints each kind's median and the ratio of every median to
the smallest, in memory and over streamable HTTP on 127.0.0.1. The target is
every ratio within 1.05.

    python3 -m uv run python benchmarks/timing.py [--tools 1000] [--rounds 400]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastmcp import Client, FastMCP

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, require_permission

KINDS = {"denied": "tool_0", "hidden": "plain_0", "unknown": "no_such_tool"}


def build(tools: int) -> FastMCP[Any]:
    """``tools`` decorated tools nobody is granted, and as many undecorated ones."""
    mcp: FastMCP[Any] = FastMCP("timing")
    for index in range(tools):

        def decorated(x: int) -> int:
            return x

        def plain(x: int) -> int:
            return x

        decorated.__name__ = f"tool_{index}"
        plain.__name__ = f"plain_{index}"
        mcp.tool(require_permission()(decorated))
        mcp.tool(plain)
    policy = {"resources": {"mcp_server": {"actions": [f"tool-{i}" for i in range(tools)]}}}
    PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(policy), default_deny=True, enable_audit_logging=False
    ).attach(mcp)
    return mcp


async def measure(client: Client[Any], rounds: int) -> dict[str, float]:
    """Median seconds per call of each kind; every answer checked to be the same denial."""
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    order = list(KINDS)
    texts: set[str] = set()
    for index in range(rounds + 20):  # bounded; the first 20 rounds warm up
        order = order[1:] + order[:1]
        for kind in order:
            started = time.perf_counter()
            result = await client.call_tool(KINDS[kind], {"x": 1}, raise_on_error=False)
            elapsed = time.perf_counter() - started
            assert result.is_error, kind
            texts.add(result.content[0].text.replace(KINDS[kind], "<name>"))  # type: ignore[union-attr]
            if index >= 20:
                samples[kind].append(elapsed)
    assert len(texts) == 1, texts  # one answer for all three
    return {kind: statistics.median(values) for kind, values in samples.items()}


@contextlib.asynccontextmanager
async def served(mcp: FastMCP[Any]) -> AsyncIterator[str]:
    """``mcp`` under uvicorn on a random loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(mcp.http_app(), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):  # bounded: at most ~10 s
            if server.started:
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


def report(label: str, medians: dict[str, float]) -> None:
    fastest = min(medians.values())
    print(f"{label}:")
    for kind, value in medians.items():
        print(f"   {kind:8s} {value * 1e6:9.1f} us   ratio {value / fastest:.3f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()
    mcp = build(args.tools)
    print(f"{args.tools} decorated + {args.tools} undecorated tools, {args.rounds} rounds")
    async with Client(mcp) as client:
        report("in memory", await measure(client, args.rounds))
    async with served(mcp) as url, Client(url) as client:
        report("streamable HTTP", await measure(client, args.rounds // 2))


if __name__ == "__main__":
    asyncio.run(main())
