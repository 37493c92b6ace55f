"""The benchmark's MCP server in its own process, over streamable HTTP on 127.0.0.1.

    python benchmarks/http_server.py plain
    python benchmarks/http_server.py local
    python benchmarks/http_server.py pdp PDP_URL API_KEY

Serves :func:`common.server` with 10 decorated tools: unguarded (``plain``),
guarded by a LocalPolicyEngine on ``tool_policy(10)`` (``local``), or guarded by
a PermitPDPEngine asking the PDP at ``PDP_URL`` (``pdp``). Prints the MCP URL
on one line, then reads commands on its standard input, one a line, answering
each with one line of JSON, and stops when standard input closes:

- ``rtt N [GAP_US]``: times N sequential ``engine.check`` calls of the guard's
  own engine (its pool, this process's event loop), back to back or each
  after a pause of GAP_US microseconds, as checks come in a guarded call's
  stream: ``{"median_us": ...}``;
- ``cpu``: this process's CPU seconds so far: ``{"cpu_s": ...}``;
- ``profile start`` / ``profile stop [all]``: samples this process with
  pyinstrument and answers the text of the profile (``{"profile": ...}``),
  library frames included with ``all``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import server, tool_policy

from permit_guard import (
    AuthzRequest,
    LocalPolicyEngine,
    PermitPDPEngine,
    PolicyEngine,
    Principal,
    Resource,
)

TOOLS = 10
MAX_RTT_CHECKS = 100_000
# What the guard asks for ``tool_0(x=1)``: the same body as a guarded call.
REQUEST = AuthzRequest(
    user=Principal(key="client"),
    action="tool-0",
    resource=Resource(
        type="mcp_server",
        attributes={"arg_x": 1, "tool_name": "tool_0", "mcp_method": "tools/call"},
    ),
)


def engine_for(argv: list[str]) -> PolicyEngine | None:
    variant = argv[0]
    if variant == "plain":
        return None
    if variant == "local":
        return LocalPolicyEngine.from_dict(tool_policy(TOOLS))
    if variant == "pdp":
        return PermitPDPEngine(argv[1], argv[2])
    raise SystemExit(f"unknown variant {variant!r}: plain, local or pdp")


async def round_trips(engine: PolicyEngine | None, count: int, gap: float) -> dict[str, Any]:
    if engine is None:
        return {"median_us": None, "cpu_us": 0.0}
    samples = []
    cpu = 0.0
    for _ in range(min(count, MAX_RTT_CHECKS)):
        if gap:
            await asyncio.sleep(gap)
        started, cpu_started = time.perf_counter(), time.process_time()
        await engine.check(REQUEST)
        samples.append(time.perf_counter() - started)
        cpu += time.process_time() - cpu_started
    return {
        "median_us": round(statistics.median(samples) * 1e6, 1),
        "cpu_us": round(cpu / len(samples) * 1e6, 1),
    }


async def commands(engine: PolicyEngine | None) -> None:
    """Answer commands on stdin until it closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    profiler: Any = None
    while line := (await reader.readline()).decode().split():
        answer: dict[str, Any]
        if line[0] == "rtt":
            gap = float(line[2]) / 1e6 if len(line) > 2 else 0.0
            answer = await round_trips(engine, int(line[1]), gap)
        elif line == ["cpu"]:
            answer = {"cpu_s": time.process_time()}
        elif line == ["profile", "start"]:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            answer = {"profile": "started"}
        elif line[:2] == ["profile", "stop"] and profiler is not None:
            profiler.stop()
            text = profiler.output_text(unicode=False, color=False, show_all=line[2:] == ["all"])
            answer = {"profile": text}
            profiler = None
        else:
            answer = {"error": f"unknown command {' '.join(line)!r}"}
        print(json.dumps(answer), flush=True)


async def main() -> None:
    engine = engine_for(sys.argv[1:])
    mcp = server(TOOLS, engine)
    # IPPROTO_TCP lets asyncio turn Nagle's algorithm off (40 ms per request otherwise).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    # Sessions of one variant wait while the others run: keep their connections open
    # (uvicorn closes idle ones after 5 s, racing the client's next request).
    config = uvicorn.Config(
        mcp.http_app(), log_level="warning", lifespan="on", timeout_keep_alive=600
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve(sockets=[sock]))
    try:
        for _ in range(200):  # bounded: at most ~10 s
            if served.started or task.done():
                break
            await asyncio.sleep(0.05)
        if not served.started:
            raise SystemExit("uvicorn did not start within 10 s")
        print(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
        await commands(engine)
    finally:
        served.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        if isinstance(engine, PermitPDPEngine):
            await engine.aclose()
        sock.close()


if __name__ == "__main__":
    asyncio.run(main())
