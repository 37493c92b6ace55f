"""What the guard adds to a FastMCP server: per call and per list.

Runs the same server with and without PermitMcpMiddleware + LocalPolicyEngine
through an in-memory fastmcp.Client, alternating the two in several trials and
reporting medians, so both are measured under the same machine load.

    python3 -m uv run python benchmarks/overhead.py [--calls 3000] [--trials 5] [--tools 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from typing import Any

from fastmcp import Client, FastMCP

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, require_permission
from permit_guard.testing import RecordingEngine


def build(tools: int, guarded: bool) -> tuple[FastMCP[Any], RecordingEngine | None]:
    mcp: FastMCP[Any] = FastMCP("bench")
    for index in range(tools):

        def fn(x: int) -> int:
            return x

        fn.__name__ = f"tool_{index}"
        mcp.tool(require_permission()(fn))
    if not guarded:
        return mcp, None
    actions = [f"tool-{index}" for index in range(tools)]
    engine = RecordingEngine(
        LocalPolicyEngine.from_dict(
            {
                "resources": {
                    "mcp_server": {"actions": actions},
                    "mcp_server_tools": {"actions": ["list"]},
                },
                "roles": {"user": {"grants": {"mcp_server": ["*"], "mcp_server_tools": ["list"]}}},
                "users": {"client": {"roles": ["user"]}},
            }
        )
    )
    mcp.add_middleware(PermitMcpMiddleware(engine=engine, enable_audit_logging=False))
    return mcp, engine


async def time_calls(client: Client[Any], calls: int) -> float:
    started = time.perf_counter()
    for index in range(calls):
        await client.call_tool("tool_0", {"x": index})
    return (time.perf_counter() - started) / calls


async def time_lists(client: Client[Any], lists: int) -> float:
    started = time.perf_counter()
    for _ in range(lists):
        await client.list_tools()
    return (time.perf_counter() - started) / lists


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000, help="calls per trial")
    parser.add_argument("--lists", type=int, default=20, help="tools/list requests per trial")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--tools", type=int, default=1000, help="decorated tools on the server")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    plain, _ = build(args.tools, guarded=False)
    guarded, engine = build(args.tools, guarded=True)
    assert engine is not None
    results: dict[str, list[float]] = {
        "call_plain": [],
        "call_guarded": [],
        "list_plain": [],
        "list_guarded": [],
    }
    async with Client(plain) as plain_client, Client(guarded) as guarded_client:
        for client in (plain_client, guarded_client):  # warm-up, fills the schema cache
            await client.list_tools()
            await time_calls(client, 200)
        for _ in range(args.trials):
            results["call_plain"].append(await time_calls(plain_client, args.calls))
            results["call_guarded"].append(await time_calls(guarded_client, args.calls))
            results["list_plain"].append(await time_lists(plain_client, args.lists))
            results["list_guarded"].append(await time_lists(guarded_client, args.lists))
        engine.reset()
        await guarded_client.list_tools()
        list_engine_calls = list(engine.calls)

    median = {name: statistics.median(values) for name, values in results.items()}
    report = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "tools": args.tools,
        "call_us_plain": round(median["call_plain"] * 1e6, 1),
        "call_us_guarded": round(median["call_guarded"] * 1e6, 1),
        "call_us_added": round((median["call_guarded"] - median["call_plain"]) * 1e6, 1),
        "call_ratio": round(median["call_guarded"] / median["call_plain"], 3),
        "list_ms_plain": round(median["list_plain"] * 1e3, 2),
        "list_ms_guarded": round(median["list_guarded"] * 1e3, 2),
        "list_ratio": round(median["list_guarded"] / median["list_plain"], 3),
        "engine_calls_per_list": len(list_engine_calls),
        "requests_in_that_call": sum(n for _, n in list_engine_calls),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    r = report
    print(f"{args.tools} decorated tools, in-memory client, medians of {args.trials} trials")
    print(
        f"tools/call  plain {r['call_us_plain']:>9} us  guarded {r['call_us_guarded']:>9} us"
        f"  added {r['call_us_added']:>7} us  ratio {r['call_ratio']}"
    )
    print(
        f"tools/list  plain {r['list_ms_plain']:>9} ms  guarded {r['list_ms_guarded']:>9} ms"
        f"  ratio {r['list_ratio']}"
    )
    print(
        f"engine calls for one tools/list: {report['engine_calls_per_list']}"
        f" (carrying {report['requests_in_that_call']} requests: the gate + every tool)"
    )


if __name__ == "__main__":
    asyncio.run(main())
