"""Every benchmark of the guard, in one run, with a table and a JSON file.

    python3 -m uv run python benchmarks/run.py            # full run (about 21 minutes)
    python3 -m uv run python benchmarks/run.py --quick    # a few minutes
    python3 -m uv run python benchmarks/run.py --profile  # also the four profiles

Side by side, in paired rounds whose order rotates (``rounds.py``), after a
warm-up, each variant's time per operation and the median and p25-p75 of
its per-round ratios to the unguarded server:

1. tools/call in memory, 10 and 1,000 tools: plain, FastMCP's per-tool
   ``auth=``, FastMCP's ``AuthMiddleware``, the guard on the embedded engine,
   on ``PermitPDPEngine`` -> ``LocalPDP`` (own process), behind the cache; and
   one bare PDP round trip (``in_memory.py``);
2. tools/list in memory, 1,000 and 5,000 tools, the same variants, with the
   engine calls of one guarded list; and the list a FastMCP 4.1.x client sends
   before each call, warm against cold (``in_memory.py``);
3. the embedded engine alone: decisions/s on one core, and flat from 1,000 to
   100,000 users, instances and tuples (``engine.py``);
4. the RSS of a guarded server over 50,000 calls and 5,000 lists, both
   engines, and the PDP connections it opens (``memory.py``);
5. over streamable HTTP, server, client and PDP each in a process of its
   own: sequential calls, one bare PDP round trip timed in the server, and
   20 concurrent clients' throughput (``streamable_http.py``);
6. with ``--profile``: pyinstrument profiles of calls and lists, in memory and
   over HTTP (``profiles.py``).

Writes ``benchmarks/results/latest.json``. Only loopback traffic; every loop
is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sys
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine
import in_memory
import memory
import profiles
import streamable_http

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    return (
        f"{platform.machine()}, {cores} cores, Python {platform.python_version()}, "
        f"fastmcp {version('fastmcp')}, permit {version('permit')}"
    )


async def run(quick: bool, profile: bool) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": machine(), "mode": "quick" if quick else "full"}
    gc.collect()
    gc.freeze()  # the servers' long-lived objects: a collection then costs every variant alike
    report["calls"] = await in_memory.bench_calls(
        [10, 1000], rounds=10 if quick else 40, calls=50 if quick else 100
    )
    report["lists"] = await in_memory.bench_lists(
        [1000] if quick else [1000, 5000], rounds=5 if quick else 15
    )
    report["precall_list"] = await in_memory.bench_precall_list(1000, rounds=3 if quick else 9)
    report["engine"] = engine.bench_engine(seconds=1.0 if quick else 5.0)
    report["scale"] = engine.bench_scale(seconds=3.0 if quick else 20.0)
    report["memory"] = await memory.bench_memory(
        calls=5_000 if quick else 50_000, lists=500 if quick else 5_000
    )
    report["http"] = await streamable_http.bench_http(
        rounds=3 if quick else 9, calls=50 if quick else 100, clients=20
    )
    if profile:
        report["profiles"] = await profiles.profile_all(
            calls=300 if quick else 2000, lists=3 if quick else 10
        )
    return report


def table(report: dict[str, Any]) -> str:
    parts = [
        f"permit_guard benchmarks - {report['machine']} - {report['mode']}",
        in_memory.table(report["calls"], report["lists"], report["precall_list"]),
        engine.table(report["engine"], report["scale"]),
        memory.table(report["memory"]),
        streamable_http.table(report["http"]),
    ]
    if "profiles" in report:
        parts.append("profiles (pyinstrument)\n" + profiles.table(report["profiles"]))
    return "\n\n".join(parts)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few minutes, fewer rounds")
    parser.add_argument("--profile", action="store_true", help="profile calls and lists")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        report = await run(args.quick, args.profile)
    print(table(report))
    if "profiles" in report:
        for name, row in report["profiles"].items():
            print(f"\n--- profile: {name}\n{row['text']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
