"""Where a guarded request's time goes: pyinstrument profiles of calls and lists.

Four profiles of the guard on the embedded engine: tools/call and tools/list
(1,000 tools) through an in-memory client, and the same over streamable HTTP
(uvicorn on 127.0.0.1, client in the same process, so one profile holds both
sides). Each profile's text is followed by the share of its samples spent in
``permit_guard`` frames.

    python3 -m uv run python benchmarks/profiles.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import per_call, per_list, server, tool_policy

from permit_guard import LocalPolicyEngine
from tests.serving import serve_http


def guard_share(profiler: Any) -> float:
    """The share of sampled time spent running the guard's own code.

    A sample counts when its innermost frame that belongs to a package (not to
    the standard library) is in ``permit_guard``; what the guard awaits, such
    as the FastMCP call it wraps, is FastMCP's.
    """
    own = total = 0.0
    for stack, seconds, *_ in profiler.last_session.frame_records:
        total += seconds
        for frame in reversed(stack):
            if "/permit_guard/" in frame:
                own += seconds
                break
            if "site-packages" in frame or "/benchmarks/" in frame:
                break
    return own / total if total else 0.0


async def _profiled(work: Callable[[], Awaitable[float]]) -> tuple[str, float]:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    await work()
    profiler.stop()
    text: str = profiler.output_text(unicode=False, color=False, show_all=False)
    return text, guard_share(profiler)


async def profile_all(calls: int, lists: int) -> dict[str, dict[str, Any]]:
    """The four profiles, by name: ``text`` and ``guard_share``."""
    results: dict[str, dict[str, Any]] = {}
    calls_server = server(10, LocalPolicyEngine.from_dict(tool_policy(10)))
    lists_server = server(1000, LocalPolicyEngine.from_dict(tool_policy(1000)))
    async with Client(calls_server) as client:
        await per_call(client, 50)
        text, share = await _profiled(lambda: per_call(client, calls))
        results["tools/call in memory"] = {"text": text, "guard_share": share}
    async with Client(lists_server) as client:
        await per_list(client, 2)
        text, share = await _profiled(lambda: per_list(client, lists))
        results["tools/list of 1,000 in memory"] = {"text": text, "guard_share": share}
    async with serve_http(calls_server) as url, Client(StreamableHttpTransport(url)) as client:
        await per_call(client, 50)
        text, share = await _profiled(lambda: per_call(client, calls // 2))
        results["tools/call over HTTP"] = {"text": text, "guard_share": share}
    async with serve_http(lists_server) as url, Client(StreamableHttpTransport(url)) as client:
        await per_list(client, 2)
        text, share = await _profiled(lambda: per_list(client, lists))
        results["tools/list of 1,000 over HTTP"] = {"text": text, "guard_share": share}
    return results


def table(profiles: dict[str, dict[str, Any]]) -> str:
    return "\n".join(
        f"  {name:<32} {row['guard_share'] * 100:5.1f}% of sampled time in permit_guard"
        for name, row in profiles.items()
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    profiles = await profile_all(calls=300 if quick else 2000, lists=3 if quick else 10)
    for name, row in profiles.items():
        print(f"--- {name}\n{row['text']}")
    print(table(profiles))


if __name__ == "__main__":
    asyncio.run(main())
