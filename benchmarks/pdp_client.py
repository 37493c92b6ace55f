"""The PDP engine's own HTTP/1.1 connections against an aiohttp session, on the same PDP.

    python3 -m uv run python benchmarks/pdp_client.py [--rounds 10] [--checks 300]

A LocalPDP in its own process (``pdp_server.py``) answers both clients:
``PermitPDPEngine.check`` (its pool, ``engines/_origin.py``) and one POST of
the same body through the aiohttp session the AuthZEN engine uses
(``engines/_pool.py``). The two take turns, round by round, after a warm-up;
printed per client: the median over rounds of wall and CPU microseconds per
check, and their ratios. Only 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from in_memory import KEY, pdp_process

from permit_guard import AuthzRequest, PermitPDPEngine, Principal, Resource
from permit_guard.engines._pool import SessionPool, read_json, send

REQUEST = AuthzRequest(
    user=Principal(key="client"),
    action="tool-0",
    resource=Resource(type="mcp_server", attributes={"arg_x": 1}),
)
BODY = {
    "user": {"key": "client"},
    "action": "tool-0",
    "resource": {"type": "mcp_server", "tenant": "default", "attributes": {"arg_x": 1}},
}


async def timed(check: Callable[[], Awaitable[object]], checks: int) -> tuple[float, float]:
    """Wall and CPU microseconds per check over ``checks`` sequential checks."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(checks):
        await check()
    return (
        (time.perf_counter() - wall) / checks * 1e6,
        (time.process_time() - cpu) / checks * 1e6,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--checks", type=int, default=300)
    args = parser.parse_args()
    async with pdp_process(10) as url:
        engine = PermitPDPEngine(url, KEY)
        session = SessionPool(
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
            timeout=5.0,
            max_connections=20,
        )

        async def own() -> object:
            return await engine.check(REQUEST)

        async def aiohttp_session() -> object:
            answer = await send(session, "POST", f"{url}/allowed", where="PDP", payload=BODY)
            return read_json(answer, where="PDP")

        clients = {"PermitPDPEngine (own connections)": own, "aiohttp session": aiohttp_session}
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        try:
            for check in clients.values():
                await timed(check, 200)  # warm-up: connections, caches
            for index in range(args.rounds):
                names = list(clients)[index % 2 :] + list(clients)[: index % 2]
                for name in names:
                    samples[name].append(await timed(clients[name], args.checks))
        finally:
            await engine.aclose()
            await session.aclose()
    base = None
    print(f"{args.rounds} rounds of {args.checks} checks; medians over rounds")
    for name, rows in samples.items():
        wall = statistics.median(row[0] for row in rows)
        cpu = statistics.median(row[1] for row in rows)
        base = base or (wall, cpu)
        print(
            f"  {name:<36}{wall:>8.1f} us wall ({wall / base[0]:.2f}x)"
            f"{cpu:>8.1f} us CPU ({cpu / base[1]:.2f}x)"
        )


if __name__ == "__main__":
    asyncio.run(main())
