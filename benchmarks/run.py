"""Every benchmark of the guard, in one run, with a table and a JSON file.

    python3 -m uv run python benchmarks/run.py            # full run (a few minutes)
    python3 -m uv run python benchmarks/run.py --quick    # under a minute
    python3 -m uv run python benchmarks/run.py --profile  # also profile the guarded call path

Measures, side by side in one process, with warm-up and medians of alternating
trials (a shared machine's load then weighs on every variant alike):

1. tools/call through an in-memory ``fastmcp.Client``: no middleware,
   PermitMcpMiddleware + LocalPolicyEngine, + PermitPDPEngine -> LocalPDP on
   loopback, + cached decisions; added microseconds and ratio to the plain
   server;
2. tools/list with 10, 100, 1,000 and 5,000 decorated tools: guarded/plain
   time ratio and engine requests per list;
3. 50 concurrent clients over streamable HTTP on 127.0.0.1: calls per second,
   guarded (PDP engine) against unguarded;
4. LocalPolicyEngine alone: decisions per second on one core for a policy with
   100 roles, 1,000 users and 50 resource sets.

Writes ``benchmarks/results/latest.json``. Only loopback traffic; every loop is
bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from permit_guard import (
    AuthzRequest,
    CachedEngine,
    LocalPolicyEngine,
    PermitPDPEngine,
    PolicyEngine,
    Principal,
    Resource,
)
from permit_guard.testing import RecordingEngine
from tests.serving import serve_http

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import per_call, per_list, server, tool_policy

KEY = "permit_key_FAKE_benchmark"
RESULTS = Path(__file__).resolve().parent / "results"


@contextlib.asynccontextmanager
async def pdp_process(tools: int) -> AsyncIterator[str]:
    """A LocalPDP in its own process, as a real PDP would be; yields its URL.

    In this process it would share the GIL with the server under test, and
    thread hand-offs would be measured as PDP latency.
    """
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


# 1 --------------------------------------------------------------------------


async def bench_calls(trials: int, calls: int) -> dict[str, Any]:
    async with pdp_process(10) as pdp_url:
        pdp_engine = PermitPDPEngine(pdp_url, KEY)
        cached = CachedEngine(PermitPDPEngine(pdp_url, KEY), ttl=3600)
        variants: dict[str, tuple[PolicyEngine | None, bool]] = {
            "plain": (None, True),
            "local": (LocalPolicyEngine.from_dict(tool_policy(10)), True),
            "pdp": (pdp_engine, True),
            "cached": (cached, False),
        }
        clients = {name: Client(server(10, engine)) for name, (engine, _) in variants.items()}
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for client in clients.values():
            await client.__aenter__()
        try:
            for name, client in clients.items():
                await client.list_tools()
                await per_call(client, 50, variants[name][1])
            round_trips: list[float] = []
            request = AuthzRequest(
                user=Principal(key="client"),
                action="tool-0",
                resource=Resource(type="mcp_server", attributes={"arg_x": 1}),
            )
            for _ in range(trials):
                for name, client in clients.items():
                    samples[name].append(await per_call(client, calls, variants[name][1]))
                # One PDP round trip on its own: the engine's check, nothing else.
                started = time.perf_counter()
                for _ in range(calls):
                    await pdp_engine.check(request)
                round_trips.append((time.perf_counter() - started) / calls)
        finally:
            for client in clients.values():
                await client.__aexit__(None, None, None)
            await pdp_engine.aclose()
            await cached.aclose()
    median = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    round_trip = statistics.median(round_trips) * 1e6
    return {
        "pdp_round_trip_us": round(round_trip, 1),
        "pdp_added_per_round_trip": round((median["pdp"] - median["plain"]) / round_trip, 2),
        **{
            name: {
                "us": round(value, 1),
                "added_us": round(value - median["plain"], 1),
                "ratio": round(value / median["plain"], 3),
            }
            for name, value in median.items()
        },
    }


# 2 --------------------------------------------------------------------------


async def bench_lists(sizes: list[int], trials: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size in sizes:
        engine = RecordingEngine(LocalPolicyEngine.from_dict(tool_policy(size)))
        plain, guarded = Client(server(size, None)), Client(server(size, engine))
        lists = max(5, 10_000 // size)
        samples: dict[str, list[float]] = {"plain": [], "guarded": []}
        async with plain, guarded:
            await plain.list_tools()
            await guarded.list_tools()
            for _ in range(trials):
                samples["plain"].append(await per_list(plain, lists))
                samples["guarded"].append(await per_list(guarded, lists))
            engine.reset()
            await guarded.list_tools()
        plain_ms = statistics.median(samples["plain"]) * 1e3
        guarded_ms = statistics.median(samples["guarded"]) * 1e3
        results[str(size)] = {
            "plain_ms": round(plain_ms, 2),
            "guarded_ms": round(guarded_ms, 2),
            "ratio": round(guarded_ms / plain_ms, 3),
            "engine_calls": len(engine.calls),
            "requests": sum(n for _, n in engine.calls),
        }
    return results


# 3 --------------------------------------------------------------------------


async def bench_concurrency(clients: int, calls: int) -> dict[str, Any]:
    async def hammer(url: str) -> float:
        sessions = [Client(StreamableHttpTransport(url)) for _ in range(clients)]
        for session in sessions:  # connect first: only the calls are timed
            await session.__aenter__()
            await session.list_tools()

        async def one(session: Client[Any]) -> None:
            for index in range(calls):
                await session.call_tool("tool_0", {"x": index})

        try:
            started = time.perf_counter()
            await asyncio.gather(*(one(session) for session in sessions))
            return clients * calls / (time.perf_counter() - started)
        finally:
            for session in sessions:
                await session.__aexit__(None, None, None)

    async with pdp_process(10) as pdp_url:
        engine = PermitPDPEngine(pdp_url, KEY)
        rates: dict[str, float] = {}
        async with engine:
            for name, mcp in (("plain", server(10, None)), ("pdp", server(10, engine))):
                async with serve_http(mcp) as url:
                    rates[name] = await hammer(url)
    return {
        "clients": clients,
        "calls_per_client": calls,
        "plain_calls_per_s": round(rates["plain"], 1),
        "pdp_calls_per_s": round(rates["pdp"], 1),
        "ratio": round(rates["pdp"] / rates["plain"], 3),
    }


# 4 --------------------------------------------------------------------------


def big_policy(seed: int = 7) -> tuple[dict[str, Any], list[AuthzRequest]]:
    """100 roles, 1,000 users, 50 resource sets; and a mix of requests."""
    rng = random.Random(seed)
    actions = [f"action-{i}" for i in range(20)]
    resources = {f"type_{t}": {"actions": actions} for t in range(10)}
    sets = {
        f"set_{s}": {
            "resource": f"type_{s % 10}",
            "condition": {"allOf": [{"resource.arg_amount": {"less-than-equals": 10 * (s + 1)}}]},
        }
        for s in range(50)
    }
    roles = {}
    for r in range(100):
        grants: dict[str, list[str]] = {}
        for t in rng.sample(range(10), 3):
            grants[f"type_{t}"] = rng.sample(actions, 5)
        for s in rng.sample(range(50), 2):
            grants[f"set_{s}"] = rng.sample(actions, 3)
        roles[f"role_{r}"] = {"grants": grants}
    users = {
        f"user_{u}": {
            "roles": {"default": [f"role_{r}" for r in rng.sample(range(100), 2)]},
            "attributes": {"department": rng.choice(["finance", "sales", "ops"])},
        }
        for u in range(1000)
    }
    policy = {"resources": resources, "resource_sets": sets, "roles": roles, "users": users}
    requests = [
        AuthzRequest(
            user=Principal(key=f"user_{rng.randrange(1200)}"),
            action=rng.choice(actions),
            resource=Resource(
                type=f"type_{rng.randrange(10)}",
                attributes={"arg_amount": rng.randrange(600), "mcp_method": "tools/call"},
            ),
        )
        for _ in range(5000)
    ]
    return policy, requests


def bench_engine(seconds: float) -> dict[str, Any]:
    policy, requests = big_policy()
    started = time.perf_counter()
    engine = LocalPolicyEngine.from_dict(policy)
    load_ms = (time.perf_counter() - started) * 1e3
    decide = engine.decide
    for request in requests[:500]:
        decide(request)
    rates = []
    for _ in range(5):
        count, started = 0, time.perf_counter()
        deadline = started + seconds / 5
        while time.perf_counter() < deadline:  # bounded by the deadline
            for request in requests:
                decide(request)
            count += len(requests)
        rates.append(count / (time.perf_counter() - started))
    allowed = sum(decide(r).allowed for r in requests)
    return {
        "decisions_per_s": round(statistics.median(rates)),
        "load_ms": round(load_ms, 1),
        "allowed_share": round(allowed / len(requests), 3),
    }


# profile ---------------------------------------------------------------------


async def profile_calls(calls: int) -> str:
    from pyinstrument import Profiler

    client = Client(server(10, LocalPolicyEngine.from_dict(tool_policy(10))))
    async with client:
        await client.list_tools()
        await per_call(client, 50)
        profiler = Profiler(interval=0.0001, async_mode="enabled")
        profiler.start()
        await per_call(client, calls)
        profiler.stop()
    text: str = profiler.output_text(unicode=False, color=False, show_all=False)
    return text


# main ------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    lines = [f"permit_guard benchmarks — {report['machine']} — {report['mode']}", ""]
    calls = report["calls"]
    lines.append("1. tools/call, in-memory client (10 tools)")
    for name, label in (
        ("plain", "no middleware"),
        ("local", "guard + LocalPolicyEngine"),
        ("pdp", "guard + PermitPDPEngine -> LocalPDP process"),
        ("cached", "guard + PDP engine, cache hits"),
    ):
        row = calls[name]
        lines.append(
            f"   {label:<38}{row['us']:>9.1f} us  added {row['added_us']:>8.1f} us"
            f"  ratio {row['ratio']:.3f}"
        )
    lines.append(
        f"   one PDP round trip on its own (engine.check): {calls['pdp_round_trip_us']:.1f} us;"
        f" PDP added / round trip: {calls['pdp_added_per_round_trip']:.2f}"
    )
    lines += ["", "2. tools/list, guarded (local engine) vs plain"]
    for size, row in report["lists"].items():
        lines.append(
            f"   {int(size):>5} tools  plain {row['plain_ms']:>9.2f} ms  guarded "
            f"{row['guarded_ms']:>9.2f} ms  ratio {row['ratio']:.3f}  engine calls "
            f"{row['engine_calls']} ({row['requests']} requests)"
        )
    c = report["concurrency"]
    lines += [
        "",
        f"3. {c['clients']} concurrent clients over streamable HTTP "
        f"({c['calls_per_client']} calls each)",
        f"   plain {c['plain_calls_per_s']:>8.1f} calls/s   guarded (PDP engine) "
        f"{c['pdp_calls_per_s']:>8.1f} calls/s   ratio {c['ratio']:.3f}",
    ]
    e = report["engine"]
    lines += [
        "",
        "4. LocalPolicyEngine alone (100 roles, 1,000 users, 50 resource sets)",
        f"   {e['decisions_per_s']:,} decisions/s on one core (policy loads in {e['load_ms']} ms)",
    ]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="finish in under a minute")
    parser.add_argument("--profile", action="store_true", help="profile the guarded call path")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    quick = args.quick
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        report: dict[str, Any] = {
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
            f"Python {platform.python_version()}",
            "mode": "quick" if quick else "full",
            "calls": await bench_calls(trials=3 if quick else 7, calls=200 if quick else 1000),
            "lists": await bench_lists(
                [10, 100, 1000] if quick else [10, 100, 1000, 5000], trials=3 if quick else 5
            ),
            "concurrency": await bench_concurrency(50, 2 if quick else 10),
            "engine": bench_engine(seconds=1.0 if quick else 5.0),
        }
        if args.profile:
            report["profile"] = await profile_calls(500 if quick else 3000)
    print(table(report))
    if args.profile:
        print("\nProfile of 'tools/call' through the guard (pyinstrument):\n")
        print(report["profile"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
