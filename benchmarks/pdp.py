"""The PDP engine against the permit SDK, on loopback, in one run.

A LocalPDP (a real HTTP server on 127.0.0.1) answers for every variant, so
only the client side differs. Reports medians of alternating trials:

1. tools/call added latency over the same server without middleware, through
   an in-memory fastmcp.Client: (a) PermitPDPEngine, (b) the permit SDK's own
   ``check`` (``from_permit(client, through_sdk=True)``), (c) PermitPDPEngine
   behind the decision cache (hits);
2. one tools/list of N decorated tools: PDP requests and time for
   PermitPDPEngine (one bulk request) against one ``check`` per item.

    python3 -m uv run python benchmarks/pdp.py [--calls 300] [--trials 5] [--tools 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
import warnings
from collections.abc import Sequence

from common import per_call, server, tool_policy
from fastmcp import Client

from permit_guard import (
    AuthzRequest,
    CachedEngine,
    Decision,
    PermitPDPEngine,
    PolicyEngine,
)
from permit_guard.testing import LocalPDP

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from permit import Permit

KEY = "permit_key_FAKE_benchmark"


class OnePerItem:
    """A list checked the naive way: one PDP request per item."""

    name = "one-per-item"

    def __init__(self, inner: PermitPDPEngine) -> None:
        self.inner = inner

    async def check(self, request: AuthzRequest) -> Decision:
        return await self.inner.check(request)

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        return [await self.inner.check(request) for request in requests]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    async with LocalPDP.from_dict(tool_policy(args.tools), api_key=KEY) as pdp:
        pdp_engine = PermitPDPEngine(pdp.url, KEY)
        cached_engine = CachedEngine(PermitPDPEngine(pdp.url, KEY), ttl=3600)
        sdk_engine = PermitPDPEngine.from_permit(
            Permit(token=KEY, pdp=pdp.url, pdp_timeout=5), through_sdk=True
        )
        naive_engine = OnePerItem(PermitPDPEngine(pdp.url, KEY))
        variants: dict[str, tuple[PolicyEngine | None, bool]] = {
            "plain": (None, True),
            "pdp": (pdp_engine, True),
            "sdk": (sdk_engine, True),
            "cached": (cached_engine, False),
        }
        clients = {
            name: Client(server(args.tools, engine, audit=False))
            for name, (engine, _) in variants.items()
        }
        for client in clients.values():
            await client.__aenter__()
        samples: dict[str, list[float]] = {name: [] for name in variants}
        try:
            for name, client in clients.items():  # warm-up: schema cache, pools, cache fill
                await client.list_tools()
                await per_call(client, 20, variants[name][1])
            for _ in range(args.trials):
                for name, client in clients.items():
                    samples[name].append(await per_call(client, args.calls, variants[name][1]))

            list_samples: dict[str, list[float]] = {"bulk": [], "one-per-item": []}
            list_requests: dict[str, int] = {}
            list_clients = {
                "bulk": Client(server(args.tools, pdp_engine, audit=False)),
                "one-per-item": Client(server(args.tools, naive_engine, audit=False)),
            }
            for name, client in list_clients.items():
                async with client:
                    await client.list_tools()
                    for _ in range(args.trials):
                        pdp.reset()
                        started = time.perf_counter()
                        await client.list_tools()
                        list_samples[name].append(time.perf_counter() - started)
                        list_requests[name] = pdp.requests
        finally:
            for client in clients.values():
                await client.__aexit__(None, None, None)
            await pdp_engine.aclose()
            await cached_engine.aclose()
            await naive_engine.inner.aclose()

    median = {name: statistics.median(values) for name, values in samples.items()}
    added = {name: (median[name] - median["plain"]) * 1e6 for name in ("pdp", "sdk", "cached")}
    report = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "tools": args.tools,
        "call_us": {name: round(value * 1e6, 1) for name, value in median.items()},
        "added_us": {name: round(value, 1) for name, value in added.items()},
        "sdk_added_over_pdp_added": round(added["sdk"] / added["pdp"], 2),
        "list_ms": {name: round(statistics.median(v) * 1e3, 1) for name, v in list_samples.items()},
        "list_pdp_requests": list_requests,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    c, a = report["call_us"], report["added_us"]
    print(f"LocalPDP on loopback, {args.tools} tools, medians of {args.trials} trials")
    print(f"tools/call without middleware          {c['plain']:>9} us")  # type: ignore[index]
    for name, label in (
        ("pdp", "(a) PermitPDPEngine"),
        ("sdk", "(b) permit SDK check"),
        ("cached", "(c) cache hits"),
    ):
        print(f"{label:<38} {c[name]:>9} us   added {a[name]:>8} us")  # type: ignore[index]
    print(f"SDK added latency / PDP engine added latency: {report['sdk_added_over_pdp_added']}x")
    lm, lr = report["list_ms"], report["list_pdp_requests"]
    print(f"tools/list, PermitPDPEngine (bulk): {lm['bulk']:>8} ms, {lr['bulk']} PDP request(s)")  # type: ignore[index]
    print(
        f"tools/list, one check per item:     {lm['one-per-item']:>8} ms, "  # type: ignore[index]
        f"{lr['one-per-item']} PDP requests"
    )  # type: ignore[index]


if __name__ == "__main__":
    asyncio.run(main())
