"""What the guard costs over streamable HTTP, with server, client and PDP in their own processes.

    .venv/bin/python benchmarks/streamable_http.py [--rounds 7] [--calls 100] [--clients 20]
    .venv/bin/python benchmarks/streamable_http.py --quick      # 3 rounds of 50 calls
    .venv/bin/python benchmarks/streamable_http.py --json

(Not ``http.py``: a module of that name in this folder would shadow the
standard library's ``http`` package for every script run from here.)

Three MCP servers, each in its own process (``http_server.py``): unguarded
(``plain``), guarded by a LocalPolicyEngine (``local``), and guarded by a
PermitPDPEngine asking a LocalPDP in a third process (``pdp_server.py``). The
clients are ``fastmcp.Client`` over ``StreamableHttpTransport`` in this
process. After a warm-up, each round measures, the variants taking turns in
rotating order so that a shared machine's load weighs on all alike:

(a) sequential ``tools/call``: ``calls`` calls per variant; the round's median
    call, and the ratio guarded/plain of the round's medians;
(b) one bare PDP round trip as the server process sees it: the guard's own
    engine times ``calls`` checks (``rtt`` command), back to back, and paced:
    each after a pause as long as the round's median unguarded call, as the
    checks of (a) come;
(c) ``clients`` concurrent clients making ``calls`` calls each, in bursts of
    10 per client, the variants taking turns burst by burst: calls per
    second, and the ratio to plain of the same round.

Ratios are reported as the median and p25-p75 over rounds. Also reported: the
CPU time of every process per call, the requests LocalPDP received and the
TCP connections it accepted (the engine must keep them pooled). Only
127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

KEY = "permit_key_FAKE_benchmark"
VARIANTS = ("plain", "local", "pdp")
TARGETS = {"local": 1.02, "pdp added / round trip": 1.10}
THROUGHPUT_TARGETS = {"local": 0.97, "pdp": 0.90}
BURST = 10  # calls per client in one burst of (c)


@dataclass
class Child:
    """A benchmark process: its URL, and a line-of-JSON command channel."""

    process: asyncio.subprocess.Process
    url: str

    async def ask(self, command: str) -> dict[str, Any]:
        """Send ``command``; its answer, within two minutes."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{command}\n".encode())
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), 120)
        answer: dict[str, Any] = json.loads(line)
        return answer


@contextlib.asynccontextmanager
async def child(script: str, *args: str) -> AsyncIterator[Child]:
    """``script`` (in this folder) in its own process; stopped by closing its stdin."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / script),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=2**24,  # a profile's text is one line of JSON
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"{script} did not start (printed {url!r})")
        yield Child(process, url)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


class Meter:
    """Around each timed batch: CPU per call of this process (the client), of the batch's
    server and, for ``pdp``, of the PDP; and what the PDP received."""

    def __init__(self, servers: dict[str, Child], pdp: Child) -> None:
        self.servers, self.pdp = servers, pdp
        self.cpu: dict[str, dict[str, list[float]]] = {}
        self.requests: dict[str, dict[str, int]] = {}
        self.connections: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def of(self, name: str, phase: str, calls: int) -> AsyncIterator[None]:
        askers = {name: self.servers[name]}
        if name == "pdp":
            askers["pdp process"] = self.pdp
            await self.pdp.ask("reset")
        before = {key: (await asker.ask("cpu"))["cpu_s"] for key, asker in askers.items()}
        client_before = time.process_time()
        yield
        spent = {f"client of {name}": time.process_time() - client_before}
        for key, asker in askers.items():
            spent[key] = (await asker.ask("cpu"))["cpu_s"] - before[key]
        for key, seconds in spent.items():
            self.cpu.setdefault(phase, {}).setdefault(key, []).append(seconds / calls * 1e6)
        if name == "pdp":
            stats = await self.pdp.ask("stats")
            if stats["errors"]:
                raise RuntimeError(f"LocalPDP failed: {stats['errors']}")
            seen = self.requests.setdefault(phase, {})
            for path, count in stats["requests_by_path"].items():
                seen[path] = seen.get(path, 0) + count
            self.connections[phase] = self.connections.get(phase, 0) + stats["connections"]


async def median_call(client: Client[Any], calls: int) -> float:
    """Microseconds of the median of ``calls`` sequential calls of ``tool_0``."""
    samples = []
    for index in range(calls):
        started = time.perf_counter()
        await client.call_tool("tool_0", {"x": index})
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


async def burst(sessions: list[Client[Any]], calls: int) -> float:
    """Seconds for every session to call ``tool_0`` ``calls`` times, all at once."""

    async def one(session: Client[Any]) -> None:
        for index in range(calls):
            await session.call_tool("tool_0", {"x": index})

    started = time.perf_counter()
    await asyncio.gather(*(one(session) for session in sessions))
    return time.perf_counter() - started


def spread(values: list[float], digits: int = 3) -> dict[str, float]:
    """Median and quartiles of ``values``."""
    one = len(values) == 1
    p25, _, p75 = values * 3 if one else statistics.quantiles(values, n=4, method="inclusive")
    row = {"median": statistics.median(values), "p25": p25, "p75": p75}
    return {key: round(value, digits) for key, value in row.items()}


def ratios(guarded: list[float], plain: list[float]) -> dict[str, float]:
    """Median and quartiles of the paired per-round ratios guarded / plain."""
    return spread([g / p for g, p in zip(guarded, plain, strict=True)])


def medians(rows: dict[str, list[float]]) -> dict[str, float]:
    return {key: round(statistics.median(values), 1) for key, values in rows.items()}


async def bench_http(rounds: int, calls: int, clients: int) -> dict[str, Any]:
    """Run (a), (b) and (c) of the module docstring; answer the figures as a dict.

    Args:
        rounds: Measured rounds (after one warm-up).
        calls: Sequential calls per variant and round, checks per timed round
            trip, and each concurrent client's calls per round.
        clients: Concurrent clients in (c).
    """
    async with contextlib.AsyncExitStack() as stack:
        pdp = await stack.enter_async_context(child("pdp_server.py", "10", KEY))
        servers = {
            "plain": await stack.enter_async_context(child("http_server.py", "plain")),
            "local": await stack.enter_async_context(child("http_server.py", "local")),
            "pdp": await stack.enter_async_context(child("http_server.py", "pdp", pdp.url, KEY)),
        }
        single = {}
        for name, served in servers.items():
            single[name] = await stack.enter_async_context(
                Client(StreamableHttpTransport(served.url))
            )
            await single[name].list_tools()  # warm-up: sessions, schema caches, the PDP pool
            await median_call(single[name], 50)
        await servers["pdp"].ask("rtt 50")
        meter = Meter(servers, pdp)

        # (a) and (b)
        us: dict[str, list[float]] = {name: [] for name in VARIANTS}
        trips: dict[str, list[dict[str, float]]] = {"back to back": [], "paced": []}
        order = list(VARIANTS)
        for _ in range(rounds):
            for name in order:
                async with meter.of(name, "sequential", calls):
                    us[name].append(await median_call(single[name], calls))
            order = order[1:] + order[:1]
            trips["back to back"].append(await servers["pdp"].ask(f"rtt {calls}"))
            gap = f"{us['plain'][-1]:.0f}"
            trips["paced"].append(await servers["pdp"].ask(f"rtt {calls} {gap}"))

        # (c)
        sessions: dict[str, list[Client[Any]]] = {name: [] for name in VARIANTS}
        await pdp.ask("reset")
        for name, served in servers.items():  # connect and warm up before anything is timed
            for _ in range(clients):
                session = Client(StreamableHttpTransport(served.url))
                sessions[name].append(await stack.enter_async_context(session))
            await asyncio.gather(*(session.list_tools() for session in sessions[name]))
            await burst(sessions[name], 5)
        warm_up_connections = (await pdp.ask("stats"))["connections"]
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        bursts = max(1, calls // BURST)
        for _ in range(rounds):
            elapsed = dict.fromkeys(VARIANTS, 0.0)
            for _ in range(bursts):
                for name in order:
                    async with meter.of(name, "concurrent", clients * BURST):
                        elapsed[name] += await burst(sessions[name], BURST)
                order = order[1:] + order[:1]
            for name in VARIANTS:
                rates[name].append(bursts * BURST * clients / elapsed[name])

    added = [g - p for g, p in zip(us["pdp"], us["plain"], strict=True)]
    trip_us = {kind: [row["median_us"] for row in rows] for kind, rows in trips.items()}
    return {
        "rounds": rounds,
        "calls": calls,
        "clients": clients,
        "sequential": {
            "call_us": medians(us),
            "ratio_to_plain": {name: ratios(us[name], us["plain"]) for name in VARIANTS[1:]},
            "pdp_added_us": spread(added, 1),
            "pdp_round_trip_us": medians(trip_us),
            "pdp_round_trip_server_cpu_us": medians(
                {kind: [row["cpu_us"] for row in rows] for kind, rows in trips.items()}
            ),
            "pdp_added_per_round_trip": {k: ratios(added, v) for k, v in trip_us.items()},
            "pdp_requests": meter.requests["sequential"],
            "pdp_calls": rounds * calls,
            "pdp_connections": meter.connections["sequential"],
        },
        "concurrent": {
            "calls_per_s": medians(rates),
            "ratio_to_plain": {name: ratios(rates[name], rates["plain"]) for name in VARIANTS[1:]},
            "pdp_requests": meter.requests["concurrent"],
            "pdp_calls": rounds * bursts * BURST * clients,
            "pdp_connections_warm_up": warm_up_connections,
            "pdp_connections": meter.connections["concurrent"],
        },
        "cpu_us_per_call": {phase: medians(rows) for phase, rows in meter.cpu.items()},
    }


def _spread(r: dict[str, float]) -> str:
    return f"{r['median']:.3f} (p25-p75 {r['p25']:.3f}-{r['p75']:.3f})"


def table(report: dict[str, Any]) -> str:
    s, c, a = report["sequential"], report["concurrent"], report["sequential"]["pdp_added_us"]
    lines = [
        f"streamable HTTP; server, client and PDP in processes of their own; {report['rounds']}"
        " rounds; ratios: median (p25-p75) of the rounds' paired ratios",
        f"(a) sequential tools/call, median of {report['calls']} calls per variant and round",
    ]
    for name in VARIANTS:
        ratio = s["ratio_to_plain"].get(name)
        ratio_text = f"   ratio to plain {_spread(ratio)}" if ratio else ""
        lines.append(f"   {name:<6}{s['call_us'][name]:>9.1f} us{ratio_text}")
    lines.append(
        f"   pdp adds {a['median']:.1f} us (p25-p75 {a['p25']:.1f}-{a['p75']:.1f});"
        f" target for local: ratio <= {TARGETS['local']}"
    )
    lines.append("(b) one bare PDP round trip, engine.check timed in the server process:")
    for kind, value in s["pdp_round_trip_us"].items():
        cpu, ratio = s["pdp_round_trip_server_cpu_us"][kind], s["pdp_added_per_round_trip"][kind]
        lines.append(
            f"   {kind:<13}{value:>7.1f} us (server CPU {cpu} us); added / it {_spread(ratio)}"
        )
    lines += [
        f"   target: added / round trip <= {TARGETS['pdp added / round trip']}; LocalPDP received"
        f" {s['pdp_requests']} for {s['pdp_calls']} calls, {s['pdp_connections']} new connections",
        f"(c) {report['clients']} concurrent clients, {report['calls']} calls each per round",
    ]
    for name in VARIANTS:
        ratio = c["ratio_to_plain"].get(name)
        target = f"; target >= {THROUGHPUT_TARGETS[name]}" if ratio else ""
        ratio_text = f"   ratio {_spread(ratio)}{target}" if ratio else ""
        lines.append(f"   {name:<6}{c['calls_per_s'][name]:>9.1f} calls/s{ratio_text}")
    lines.append(
        f"   LocalPDP received {c['pdp_requests']} for {c['pdp_calls']} calls; TCP connections:"
        f" {c['pdp_connections_warm_up']} in the warm-up, {c['pdp_connections']} in the rounds"
    )
    lines.append("CPU us per call (process CPU time / calls; medians of the timed batches)")
    for phase, row in report["cpu_us_per_call"].items():
        lines.append(f"   {phase}: " + ", ".join(f"{k} {v:.0f}" for k, v in row.items()))
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 50 calls")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rounds, calls = (3, 50) if args.quick else (args.rounds, args.calls)
    report = await bench_http(rounds, calls, args.clients)
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    asyncio.run(main())
