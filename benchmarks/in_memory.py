"""Calls and lists through an in-memory ``fastmcp.Client``, side by side with FastMCP's own checks.

Variants of one server (see :mod:`native`): plain, FastMCP's per-tool
``auth=``, FastMCP's ``AuthMiddleware``, the guard on the embedded engine;
for calls also the guard on ``PermitPDPEngine`` -> ``LocalPDP`` (its own
process) and behind the decision cache. Paired rounds (:mod:`rounds`).

    python3 -m uv run python benchmarks/in_memory.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastmcp import Client, FastMCP

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import median_call, per_list, server, tool_policy
from native import variants
from rounds import paired, ratio_text

from permit_guard import (
    AuthzRequest,
    CachedEngine,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    PermitPDPEngine,
    Principal,
    Resource,
)
from permit_guard.testing import RecordingEngine

KEY = "permit_key_FAKE_benchmark"


@contextlib.asynccontextmanager
async def pdp_process(tools: int) -> AsyncIterator[str]:
    """A LocalPDP in its own process, as a real PDP would be; yields its URL."""
    pdp = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("pdp_server.py")),
        str(tools),
        KEY,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert pdp.stdout is not None
        yield (await asyncio.wait_for(pdp.stdout.readline(), 30)).decode().strip()
    finally:
        if pdp.stdin is not None:
            pdp.stdin.close()
        await asyncio.wait_for(pdp.wait(), 10)


@contextlib.asynccontextmanager
async def connected(servers: dict[str, FastMCP[Any]]) -> AsyncIterator[dict[str, Client[Any]]]:
    """One connected, warmed-up in-memory client per server."""
    clients = {name: Client(mcp) for name, mcp in servers.items()}
    async with contextlib.AsyncExitStack() as stack:
        for client in clients.values():
            await stack.enter_async_context(client)
            await client.list_tools()
        yield clients


async def bench_calls(sizes: list[int], rounds: int, calls: int) -> dict[str, Any]:
    """tools/call of ``tool_0`` on servers of each size; per variant, ratio to plain."""
    report: dict[str, Any] = {}
    request = AuthzRequest(
        user=Principal(key="client"),
        action="tool-0",
        resource=Resource(type="mcp_server", attributes={"arg_x": 1}),
    )
    for size in sizes:
        async with pdp_process(size) as pdp_url:
            pdp = PermitPDPEngine(pdp_url, KEY)
            cached = CachedEngine(PermitPDPEngine(pdp_url, KEY), ttl=3600)
            servers = variants(size)
            servers["guard, PDP engine"] = server(size, pdp)
            servers["guard, PDP engine, cache hits"] = server(size, cached)
            async with connected(servers) as clients:

                def trial(name: str) -> Any:
                    vary = name != "guard, PDP engine, cache hits"  # a fixed argument hits
                    return lambda: median_call(clients[name], calls, vary)

                async def round_trip(engine: PermitPDPEngine = pdp) -> float:
                    samples = []
                    for _ in range(calls):
                        started = time.perf_counter()
                        await engine.check(request)
                        samples.append(time.perf_counter() - started)
                    return statistics.median(samples)

                trials = {name: trial(name) for name in servers}
                trials["bare PDP round trip"] = round_trip
                gc.collect()
                report[str(size)] = await paired(trials, rounds=rounds)
            await pdp.aclose()
            await cached.aclose()
    return report


async def bench_lists(sizes: list[int], rounds: int) -> dict[str, Any]:
    """tools/list per size: per variant, ratio to plain; and engine calls per guarded list."""
    report: dict[str, Any] = {}
    for size in sizes:
        servers = variants(size)
        recording = RecordingEngine(LocalPolicyEngine.from_dict(tool_policy(size)))
        servers["guard"] = server(size, recording)
        lists = max(2, 2_000 // size)
        async with connected(servers) as clients:
            trials = {
                name: (lambda c=client, n=lists: per_list(c, n)) for name, client in clients.items()
            }
            gc.collect()
            row = await paired(trials, rounds=rounds)
            recording.reset()
            await clients["guard"].list_tools()
        row["engine_calls"] = len(recording.calls)
        row["engine_requests"] = sum(count for _, count in recording.calls)
        report[str(size)] = row
    return report


def own_time(mcp: FastMCP[Any]) -> list[float]:
    """Times the guard's own part of each ``tools/list`` on ``mcp``: its hook minus the list.

    Instruments the guard's ``on_list_tools`` (as an attribute of the one
    instance); the returned list fills with seconds, one per list.
    """
    (guard,) = (m for m in mcp.middleware if isinstance(m, PermitMcpMiddleware))
    hook = guard.on_list_tools
    samples: list[float] = []

    async def timed(context: Any, call_next: Any) -> Any:
        inner = 0.0

        async def listing(ctx: Any) -> Any:
            nonlocal inner
            started = time.perf_counter()
            try:
                return await call_next(ctx)
            finally:
                inner += time.perf_counter() - started

        started = time.perf_counter()
        result = await hook(context, listing)
        samples.append(time.perf_counter() - started - inner)
        return result

    guard.on_list_tools = timed  # type: ignore[method-assign]
    return samples


async def bench_precall_list(tools: int, rounds: int, lists: int = 10) -> dict[str, Any]:
    """The list FastMCP 4.1.x clients send before a call: the guard's part, warm against cold.

    The guard's own time in a list (its hook, less the list it wraps): cold,
    the first list of a freshly built server, guard and engine; warm, the
    same caller listing again (median of ``lists``). The target is warm at
    most 10% of cold. Also the time of a whole unguarded list, for scale.
    """
    policy = tool_policy(tools)
    cold: list[float] = []
    warm: list[float] = []
    plain: list[float] = []
    async with Client(server(tools)) as unguarded:
        await unguarded.list_tools()
        for _ in range(rounds):
            mcp = server(tools, LocalPolicyEngine.from_dict(policy))
            samples = own_time(mcp)
            async with Client(mcp) as client:
                for _ in range(lists + 1):
                    await client.list_tools()
            cold.append(samples[0])
            warm.append(statistics.median(samples[1:]))
            plain.append(await per_list(unguarded, 1))
    cold_ms, warm_ms = statistics.median(cold) * 1e3, statistics.median(warm) * 1e3
    return {
        "tools": tools,
        "plain_list_ms": round(statistics.median(plain) * 1e3, 1),
        "cold_guard_ms": round(cold_ms, 2),
        "warm_guard_ms": round(warm_ms, 2),
        "warm_to_cold": round(warm_ms / cold_ms, 3) if cold_ms > 0 else None,
    }


def table(calls: dict[str, Any], lists: dict[str, Any], precall: dict[str, Any]) -> str:
    lines = ["tools/call, in-memory client: us per call; ratio to plain, median (p25-p75)"]
    for size, rows in calls.items():
        lines.append(f"  {int(size):,} tools")
        for name, row in rows.items():
            lines.append(f"    {name:<32}{row['us']:>9.1f} us  {ratio_text(row)}")
    lines.append("tools/list, in-memory client: us per list; ratio to plain, median (p25-p75)")
    for size, rows in lists.items():
        lines.append(
            f"  {int(size):,} tools (guarded list: {rows['engine_calls']} engine call,"
            f" {rows['engine_requests']:,} requests)"
        )
        for name, row in rows.items():
            if isinstance(row, dict):
                lines.append(f"    {name:<32}{row['us']:>11.1f} us  {ratio_text(row)}")
    lines.append(
        f"list before a call (FastMCP 4.1.x), {precall['tools']:,} tools: the guard's own part "
        f"{precall['warm_guard_ms']} ms warm, {precall['cold_guard_ms']} ms cold "
        f"(warm/cold {precall['warm_to_cold']}; target 0.10); a whole unguarded list "
        f"{precall['plain_list_ms']} ms"
    )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    calls = await bench_calls([10, 1000], rounds=8 if quick else 30, calls=50 if quick else 100)
    lists = await bench_lists([1000] if quick else [1000, 5000], rounds=5 if quick else 15)
    precall = await bench_precall_list(1000, rounds=3 if quick else 9)
    print(table(calls, lists, precall))


if __name__ == "__main__":
    asyncio.run(main())
