"""Whether a guarded server's memory stays flat over many requests.

    .venv/bin/python benchmarks/memory.py                     # 50,000 calls + 5,000 lists
    .venv/bin/python benchmarks/memory.py --quick             # a tenth of that
    .venv/bin/python benchmarks/memory.py --transport memory  # clients inside the server
    .venv/bin/python benchmarks/memory.py --trace local       # + tracemalloc's top lines

For each variant (``plain``: no middleware; ``local``: PermitMcpMiddleware +
LocalPolicyEngine; ``pdp``: + PermitPDPEngine against a LocalPDP in a third
process) the server under test runs in its own process
(benchmarks/memory_server.py), serving 10 tools over streamable HTTP on
127.0.0.1, so the resident set read is that server's alone. This process
drives it with a few concurrent ``fastmcp.Client`` sessions: a warm-up of a
tenth of the requests, then the measured requests in equal slices, reading
the server's ``VmRSS`` and ``RssAnon`` (after ``gc.collect()``) after each.
Growth is the last reading minus the one after warm-up; the target is at
most 1 MiB. With ``--transport memory`` the server's process drives itself
through in-memory clients, about twice as fast; its RSS then holds the
clients' memory too. For ``pdp`` it also counts the TCP connections the PDP
accepted and the server's sockets open to it: a pooled engine keeps a few.

A full run over HTTP takes 11 to 14 minutes on 2 busy cores (some 300
requests/s, 200 with the PDP engine), in memory about 5. Linux only (reads
/proc). Loopback traffic only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_server import drive

CHILD = Path(__file__).with_name("memory_server.py")
VARIANTS = ("plain", "local", "pdp")
TARGET_KIB = 1024  # at most 1 MiB of growth after warm-up
TRANSPORTS = {
    "http": "streamable HTTP on 127.0.0.1, server in its own process",
    "memory": "in-memory clients inside the server's process",
}
LABELS = {
    "plain": "no middleware",
    "local": "guard + LocalPolicyEngine",
    "pdp": "guard + PermitPDPEngine -> LocalPDP",
}


class _Child:
    """A memory_server.py process: its URL, and one command answered at a time."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process, self.url = process, url

    async def line(self, wait: float = 120) -> str:
        assert self.process.stdout is not None
        return (await asyncio.wait_for(self.process.stdout.readline(), wait)).decode().strip()

    async def ask(self, command: str, wait: float = 120) -> str:
        """Send one command; its answer's first line."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        await self.process.stdin.drain()
        return await self.line(wait)

    async def numbers(self, command: str) -> list[int]:
        """Send a command answered with numbers on one line (``rss``, ``count``)."""
        return [int(value) for value in (await self.ask(command)).split()]

    async def ask_lines(self, command: str) -> list[str]:
        lines = [await self.ask(command)]
        for _ in range(1000):  # bounded: an answer has at most a few dozen lines
            if lines[-1] == ".":
                return lines[:-1]
            lines.append(await self.line())
        raise RuntimeError(f"{CHILD.name} answered {command!r} without an end")


@contextlib.asynccontextmanager
async def child(*args: str) -> AsyncIterator[_Child]:
    """Start ``memory_server.py *args``; close its input (it exits) afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        started = _Child(process, "")
        started.url = await started.line()
        if started.url != "memory" and not started.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"{CHILD.name} {' '.join(args)} did not start: {started.url!r}")
        yield started
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def measure(
    transport: str,
    variant: str,
    counts: tuple[int, int, int, int],
    pdp: _Child | None,
    trace: bool,
) -> dict[str, Any]:
    """One variant: RSS after warm-up and after each slice, and the PDP's connections."""
    calls, lists, clients, slices = counts
    args = (transport, variant, pdp.url) if pdp is not None else (transport, variant)
    async with child(*args) as served, contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(Client(StreamableHttpTransport(served.url)))
            for _ in range(clients if transport == "http" else 0)
        ]

        async def run(calls: int, lists: int) -> None:
            if sessions:
                await drive(sessions, calls, lists)
            else:  # the child drives itself, in memory; generous: contended machines are slow
                await served.ask(f"drive {calls} {lists} {clients}", wait=3600)

        before = await pdp.numbers("count") if pdp is not None else []
        await run(calls // 10, lists // 10)  # warm-up
        if trace:
            await served.ask_lines("trace")
        first = await served.numbers("rss")
        readings: list[list[int]] = []  # [VmRSS, RssAnon, sockets to the PDP]
        started = time.perf_counter()
        for _ in range(slices):
            await run(calls // slices, lists // slices)
            readings.append(await served.numbers("rss"))
        seconds = time.perf_counter() - started
        traced = await served.ask_lines("trace") if trace else []
        after = await pdp.numbers("count") if pdp is not None else []
    rss = [reading[0] for reading in readings]
    result: dict[str, Any] = {
        "baseline_kib": first[0],
        "growth_kib": rss[-1] - first[0],
        "max_growth_kib": max(rss) - first[0],
        "anon_growth_kib": readings[-1][1] - first[1],
        "flat": rss[-1] - first[0] <= TARGET_KIB,
        "readings_kib": rss,
        "seconds": round(seconds, 1),
        "requests_per_s": round((calls + lists) / seconds),
    }
    if before:
        result["pdp_connections_accepted"] = after[0] - before[0]
        result["pdp_requests"] = after[1] - before[1]
        result["pdp_sockets_established"] = readings[-1][2]
    if trace:
        result["trace"] = traced
    return result


async def bench_memory(
    calls: int,
    lists: int,
    *,
    clients: int = 4,
    slices: int = 10,
    transport: str = "http",
    variants: tuple[str, ...] = VARIANTS,
    trace: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Server RSS growth after warm-up, per variant, over ``calls`` + ``lists`` requests.

    Args:
        calls: Measured tools/call requests (a tenth as many more warm up).
        lists: Measured tools/list requests (likewise).
        clients: Concurrent client sessions.
        slices: RSS readings taken over the measured requests.
        transport: ``http``: this process drives the server over streamable
            HTTP; ``memory``: the server's process drives itself through
            in-memory clients (faster; its RSS then includes the clients').
        variants: Which of ``plain``, ``local``, ``pdp`` to run.
        trace: Variants whose server also reports tracemalloc's top growth
            (slower; its own allocations then add to the RSS).

    Returns:
        ``{"calls", "lists", "clients", "transport", <variant>: {...}}``.
    """
    report: dict[str, Any] = {
        "calls": calls,
        "lists": lists,
        "clients": clients,
        "transport": TRANSPORTS[transport],
    }
    async with child("pdp-server") as pdp:
        for variant in variants:
            report[variant] = await measure(
                transport,
                variant,
                (calls, lists, clients, slices),
                pdp if variant == "pdp" else None,
                variant in trace,
            )
    return report


def table(report: dict[str, Any]) -> str:
    lines = [
        f"Server RSS over {report['calls']:,} tools/call + {report['lists']:,} tools/list "
        f"after a tenth as many warm up ({report['clients']} clients, {report['transport']})",
        "",
        f"   {'':<38}{'RSS after':>14}{'RSS growth':>11}{'max':>10}{'anon':>10}",
        f"   {'variant':<38}{'warm-up':>14}{'(KiB)':>11}{'(KiB)':>10}{'(KiB)':>10}"
        f"{'req/s':>8}{'s':>7}  target",
    ]
    for variant in VARIANTS:
        row = report.get(variant)
        if row is None:
            continue
        lines.append(
            f"   {LABELS[variant]:<38}{row['baseline_kib'] / 1024:>10.1f} MiB"
            f"{row['growth_kib']:>11}{row['max_growth_kib']:>10}{row['anon_growth_kib']:>10}"
            f"{row['requests_per_s']:>8}{row['seconds']:>7}"
            f"  {'ok' if row['growth_kib'] <= TARGET_KIB else 'GROWS'}"
        )
        if "pdp_connections_accepted" in row:
            lines.append(
                f"   {'':<38}PDP: {row['pdp_connections_accepted']} connections accepted,"
                f" {row['pdp_requests']:,} requests,"
                f" {row['pdp_sockets_established']} open at the end"
            )
    for variant in VARIANTS:
        if report.get(variant, {}).get("trace"):
            lines += ["", f"tracemalloc, {variant}: top growth by line over the measured requests"]
            lines += [f"   {stat}" for stat in report[variant]["trace"]]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5,000 calls and 500 lists")
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--lists", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--transport", choices=TRANSPORTS, default="http")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--trace", nargs="*", choices=VARIANTS, default=[])
    parser.add_argument("--json", type=Path, help="also write the report, every reading included")
    args = parser.parse_args()
    calls, lists = (5_000, 500) if args.quick else (args.calls, args.lists)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        report = await bench_memory(
            calls,
            lists,
            clients=args.clients,
            transport=args.transport,
            variants=tuple(args.variants),
            trace=tuple(args.trace),
        )
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
