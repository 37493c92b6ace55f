"""What the guard adds to a FastMCP server: per call and per list.

Runs the same server three ways through an in-memory fastmcp.Client — without
middleware, with a do-nothing middleware (FastMCP's own cost of having any
middleware), and with PermitMcpMiddleware + LocalPolicyEngine (audit events
on, logging left unconfigured as in a default deployment) — alternating the
variants in several trials and reporting medians, so all are measured under the
same machine load. It also times the guard's hook alone (called directly,
with a no-op next step) and counts engine calls for one tools/list.

    python3 -m uv run python benchmarks/overhead.py [--calls 3000] [--trials 7] [--tools 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from typing import Any

import mcp_types as mt
from common import per_call, per_list, server, tool_policy
from fastmcp import Client, FastMCP
from fastmcp.server.context import Context
from fastmcp.server.middleware import Middleware, MiddlewareContext

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware
from permit_guard.testing import RecordingEngine

VARIANTS = ("plain", "noop", "guarded")


def build(tools: int, variant: str) -> tuple[FastMCP[Any], RecordingEngine | None]:
    """A server with ``tools`` decorated tools: plain, with a no-op middleware, or guarded."""
    if variant == "plain":
        return server(tools), None
    if variant == "noop":
        return server(tools, middleware=Middleware()), None
    engine = RecordingEngine(LocalPolicyEngine.from_dict(tool_policy(tools)))
    return server(tools, engine), engine


async def time_hook(mcp: FastMCP[Any], calls: int) -> float:
    """The guard's own work for one tools/call: its hook with a no-op next step."""
    guard = next(m for m in mcp.middleware if isinstance(m, PermitMcpMiddleware))
    message = mt.CallToolRequestParams(name="tool_0", arguments={"x": 1})

    async def done(context: MiddlewareContext[Any]) -> Any:
        return None

    async with Context(fastmcp=mcp) as ctx:
        context = MiddlewareContext(message=message, method="tools/call", fastmcp_context=ctx)
        for _ in range(200):
            await guard.on_call_tool(context, done)
        started = time.perf_counter()
        for _ in range(calls):
            await guard.on_call_tool(context, done)
    return (time.perf_counter() - started) / calls


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000, help="calls per trial")
    parser.add_argument("--lists", type=int, default=20, help="tools/list requests per trial")
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--tools", type=int, default=1000, help="decorated tools on the server")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    servers = {variant: build(args.tools, variant) for variant in VARIANTS}
    calls: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    lists: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    clients = {variant: Client(server) for variant, (server, _) in servers.items()}
    for client in clients.values():
        await client.__aenter__()
    try:
        for client in clients.values():  # warm-up; fills the client's schema cache
            await client.list_tools()
            await per_call(client, 200)
        for _ in range(args.trials):
            for variant in VARIANTS:
                calls[variant].append(await per_call(clients[variant], args.calls))
                lists[variant].append(await per_list(clients[variant], args.lists))
        guarded_server, engine = servers["guarded"]
        assert engine is not None
        engine.reset()
        await clients["guarded"].list_tools()
        engine_calls = list(engine.calls)
    finally:
        for client in clients.values():
            await client.__aexit__(None, None, None)
    hook = statistics.median([await time_hook(guarded_server, args.calls) for _ in range(3)])

    call = {variant: statistics.median(values) for variant, values in calls.items()}
    listing = {variant: statistics.median(values) for variant, values in lists.items()}
    report = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "tools": args.tools,
        "trials": args.trials,
        "call_us": {variant: round(value * 1e6, 1) for variant, value in call.items()},
        "call_ratio_guarded_to_plain": round(call["guarded"] / call["plain"], 3),
        "call_ratio_guarded_to_noop": round(call["guarded"] / call["noop"], 3),
        "guard_hook_us": round(hook * 1e6, 1),
        "list_ms": {variant: round(value * 1e3, 2) for variant, value in listing.items()},
        "list_ratio_guarded_to_plain": round(listing["guarded"] / listing["plain"], 3),
        "engine_calls_per_list": len(engine_calls),
        "requests_in_those_calls": sum(n for _, n in engine_calls),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    r = report
    print(f"{args.tools} decorated tools, in-memory client, medians of {args.trials} trials")
    print(f"{'':12}{'plain':>12}{'no-op mw':>12}{'guarded':>12}   guarded/plain")
    c, li = r["call_us"], r["list_ms"]
    print(
        f"{'tools/call':12}{c['plain']:>9} us{c['noop']:>9} us{c['guarded']:>9} us"  # type: ignore[index]
        f"   {r['call_ratio_guarded_to_plain']}"
    )
    print(
        f"{'tools/list':12}{li['plain']:>9} ms{li['noop']:>9} ms{li['guarded']:>9} ms"  # type: ignore[index]
        f"   {r['list_ratio_guarded_to_plain']}"
    )
    print(
        f"guard hook alone (identity, lookup, mapping, engine, audit): {r['guard_hook_us']} us/call"
    )
    print(
        f"engine calls for one tools/list: {r['engine_calls_per_list']}"
        f" (carrying {r['requests_in_those_calls']} requests: the gate + every tool)"
    )


if __name__ == "__main__":
    asyncio.run(main())
