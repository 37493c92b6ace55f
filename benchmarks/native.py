"""The guard against FastMCP's own authorization, for the same rule.

Four servers with the same tools ``tool_<i>(x: int)``: plain (``common.server``);
native auth= (each tool registered with ``auth=``, a FastMCP ``AuthCheck``);
native AuthMiddleware (``fastmcp.server.middleware.AuthMiddleware``, one check);
guard (``PermitMcpMiddleware`` + ``LocalPolicyEngine`` over ``tool_policy``).
The native check does the guard's work for an in-memory client with no token:
it finds the caller (the token's ``sub`` or client id, else the fixed user
``client``, the guard's default identity) and looks ``(caller, tool)`` up in a
set of allowed pairs; FastMCP runs it per tool on tools/list (hiding denied
ones) and before tools/call. After a warm-up and ``gc.freeze()``, rounds
alternate the variants; printed per variant: the median of per-round ratios to
plain, with p25-p75, for tools/call of ``tool_0`` and tools/list on 10 and 1,000
tools. In memory only; every loop bounded.

    python3 -m uv run python benchmarks/native.py [--rounds 15] [--calls 200] [--lists 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastmcp import Client, FastMCP
from fastmcp.server.auth import AuthContext
from fastmcp.server.middleware import AuthMiddleware

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import per_call, per_list, server, tool_policy

from permit_guard import LocalPolicyEngine

Pairs = Iterable[tuple[str, str]]


def grants(tools: int) -> frozenset[tuple[str, str]]:
    """The pairs ``tool_policy(tools)`` grants: user ``client`` and every tool."""
    return frozenset(("client", f"tool_{index}") for index in range(tools))


class AllowedPairs:
    """An ``AuthCheck``: the caller may use the component if ``(caller, name)`` is allowed."""

    def __init__(self, pairs: Pairs) -> None:
        self.pairs = frozenset(pairs)

    def __call__(self, ctx: AuthContext) -> bool:
        token = ctx.token  # None for an in-memory client: the guard's fixed user
        caller = "client" if token is None else str(token.claims.get("sub") or token.client_id)
        return (caller, ctx.component.name) in self.pairs


def _tools(mcp: FastMCP[Any], tools: int, check: AllowedPairs | None) -> FastMCP[Any]:
    for index in range(tools):

        def fn(x: int) -> int:
            return x

        fn.__name__ = f"tool_{index}"
        mcp.tool(fn, auth=check)
    return mcp


def native_tool_server(tools: int, allowed: Pairs | None = None) -> FastMCP[Any]:
    """``tools`` tools, each with ``auth=`` checking the allowed pairs."""
    check = AllowedPairs(grants(tools) if allowed is None else allowed)
    return _tools(FastMCP("bench"), tools, check)


def native_middleware_server(tools: int, allowed: Pairs | None = None) -> FastMCP[Any]:
    """``tools`` tools without ``auth=``, behind one ``AuthMiddleware`` check."""
    check = AllowedPairs(grants(tools) if allowed is None else allowed)
    return _tools(FastMCP("bench", middleware=[AuthMiddleware(auth=check)]), tools, None)


def variants(tools: int) -> dict[str, FastMCP[Any]]:
    """The four servers compared, by name."""
    return {
        "plain": server(tools),
        "native auth=": native_tool_server(tools),
        "native AuthMiddleware": native_middleware_server(tools),
        "guard": server(tools, LocalPolicyEngine.from_dict(tool_policy(tools))),
    }


async def check_native(tools: int = 10) -> None:
    """Both native variants allow ``client`` and, without ``tool_1`` allowed, deny it."""
    no_tool_1 = grants(tools) - {("client", "tool_1")}
    for build in (native_tool_server, native_middleware_server):
        for allowed, hidden in ((None, set()), (no_tool_1, {"tool_1"})):
            async with Client(build(tools, allowed)) as client:
                names = {tool.name for tool in await client.list_tools()}
                want = {f"tool_{index}" for index in range(tools)} - hidden
                assert names == want, (build.__name__, sorted(names ^ want))
                result = await client.call_tool("tool_0", {"x": 7})
                assert result.data == 7, (build.__name__, result)
                result = await client.call_tool("tool_1", {"x": 7}, raise_on_error=False)
                assert result.is_error == bool(hidden), (build.__name__, result)


def spread(values: list[float]) -> str:
    p25, median, p75 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{median:6.3f} ({p25:.3f}-{p75:.3f})"


async def measure(tools: int, rounds: int, calls: int, lists: int) -> None:
    servers = variants(tools)
    names = list(servers)
    samples: dict[tuple[str, str], list[float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        clients = {n: await stack.enter_async_context(Client(m)) for n, m in servers.items()}
        for client in clients.values():  # warm-up
            await per_list(client, 2)
            await per_call(client, 100)
        # Else a full collection of 4 servers' objects lands on whichever variant triggers it.
        gc.collect()
        gc.freeze()
        for index in range(rounds):  # rotating order; ratios taken within a round
            took = {}
            for name in names[index % 4 :] + names[: index % 4]:
                gc.collect()
                took[name, "call"] = await per_call(clients[name], calls)
                gc.collect()
                took[name, "list"] = await per_list(clients[name], lists)
            for (name, kind), seconds in took.items():
                samples.setdefault((name, kind), []).append(seconds / took["plain", kind])
        gc.unfreeze()
    print(f"{tools} tools, {rounds} rounds: ratio to plain, median (p25-p75)")
    print(f"{'':24}{'tools/call':>22}{'tools/list':>22}")
    for name in names:
        call, listing = spread(samples[name, "call"]), spread(samples[name, "list"])
        print(f"{name:24}{call:>22}{listing:>22}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200, help="tools/call per variant per round")
    parser.add_argument("--lists", type=int, default=50, help="tools/list per round, 10 tools")
    args = parser.parse_args()
    await check_native(10)
    for tools in (10, 1000):  # a list of n tools costs about n/10 lists of 10: keep rounds short
        await measure(tools, args.rounds, args.calls, max(1, args.lists * 10 // tools))


if __name__ == "__main__":
    asyncio.run(main())
