"""Drives the example server: logs in as admin and client, calls every tool.

    python3 -m uv run python examples/seed_server/client.py [--url http://127.0.0.1:8000/mcp]

Without ``--url`` it starts the server itself on a free loopback port, runs,
and stops it. Prints one line per call: ALLOW or DENY and what came back.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("greet", {"name": "Ada"}),
    ("greet-jwt", {}),
    ("conditional_greet", {"name": "Ada", "number": 42}),
    ("conditional_greet", {"name": "Ada", "number": 7}),
]


def client(url: str, token: str | None = None) -> Client[Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(StreamableHttpTransport(url, headers=headers))


async def call(url: str, token: str | None, tool: str, args: dict[str, Any]) -> tuple[bool, str]:
    async with client(url, token) as session:
        result = await session.call_tool(tool, args, raise_on_error=False)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    return not result.is_error, text


async def login(url: str, username: str, password: str) -> tuple[bool, str]:
    return await call(url, None, "login", {"username": username, "password": password})


def show(label: str, allowed: bool, text: str) -> None:
    print(f"  {label:<44} {'ALLOW' if allowed else 'DENY':<6} {text[:70]}")


async def exercise(url: str) -> None:
    for username, password in (("admin", "password"), ("client", "client")):
        ok, token = await login(url, username, password)
        print(f"\n== {username}: login -> {'ok' if ok else token}")
        async with client(url, token) as session:
            tools = sorted(tool.name for tool in await session.list_tools())
        print(f"  tools/list -> {', '.join(tools)}")
        for tool, args in CALLS:
            shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
            show(f"{tool}({shown})", *await call(url, token, tool, args))

    print("\n== attacks")
    show("login(admin, wrong password)", *await login(url, "admin", "nope"))
    show("greet without a token", *await call(url, None, "greet", {"name": "x"}))
    ok, token = await login(url, "client", "client")
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[::-1]}"
    show("greet with a tampered token", *await call(url, tampered, "greet", {"name": "x"}))
    async with client(url) as session:
        anonymous = sorted(tool.name for tool in await session.list_tools())
    print(f"  tools/list without a token -> {', '.join(anonymous)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(port: int, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # bounded: gives up after `seconds`
        if process.poll() is not None:
            raise RuntimeError("the example server exited at start-up")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the example server did not listen on port {port} within {seconds}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running server's MCP URL")
    args = parser.parse_args()
    if args.url:
        asyncio.run(exercise(args.url))
        return
    port = free_port()
    server = Path(__file__).with_name("server.py")
    process = subprocess.Popen(
        [sys.executable, str(server), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, process)
        asyncio.run(exercise(f"http://127.0.0.1:{port}/mcp"))
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
