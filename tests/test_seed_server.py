"""The permit-fastmcp example server end to end over HTTP, on both engines."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from permit_guard import PermitPDPEngine
from permit_guard.testing import LocalPDP

from .serving import serve_http

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "seed_server"
SECRET = "test-only-FAKE-seed-secret-" + "x" * 16
KEY = "permit_key_FAKE_seed"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed_server", EXAMPLE / "server.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def running(engine_kind: str) -> AsyncIterator[str]:
    """The example server over HTTP, on the embedded engine or a LocalPDP."""
    example = load_example()
    if engine_kind == "local":
        async with serve_http(example.build_server(SECRET)) as url:
            yield url
        return
    async with LocalPDP.from_file(EXAMPLE / "policy.yaml", api_key=KEY) as pdp:
        engine = PermitPDPEngine(pdp.url, KEY)
        async with serve_http(example.build_server(SECRET, engine=engine)) as url:
            yield url


async def call(url: str, token: str | None, tool: str, args: dict[str, Any]) -> tuple[bool, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with Client(StreamableHttpTransport(url, headers=headers)) as client:
        result = await client.call_tool(tool, args, raise_on_error=False)
    return not result.is_error, result.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("engine_kind", ["local", "pdp"])
async def test_every_tool_for_admin_and_client(engine_kind: str) -> None:
    """Logged in as admin and client, each tool is allowed or denied as the policy says."""
    async with running(engine_kind) as url:
        outcomes = {}
        for user, password in (("admin", "password"), ("client", "client")):
            ok, token = await call(url, None, "login", {"username": user, "password": password})
            assert ok
            for tool, args in (
                ("greet", {"name": "Ada"}),
                ("greet-jwt", {}),
                ("conditional_greet", {"name": "Ada", "number": 42}),
                ("conditional_greet", {"name": "Ada", "number": 7}),
            ):
                allowed, text = await call(url, token, tool, args)
                outcomes[user, tool, args.get("number")] = allowed
                if tool == "greet-jwt" and allowed:
                    assert text == f"Hello, {user}! (secure)"
    assert outcomes == {
        ("admin", "greet", None): True,
        ("admin", "greet-jwt", None): True,
        ("admin", "conditional_greet", 42): True,
        ("admin", "conditional_greet", 7): False,
        ("client", "greet", None): False,
        ("client", "greet-jwt", None): True,
        ("client", "conditional_greet", 42): True,
        ("client", "conditional_greet", 7): False,
    }


@pytest.mark.parametrize("engine_kind", ["local", "pdp"])
async def test_bad_password_missing_and_tampered_tokens(engine_kind: str) -> None:
    """A bad password gets no token; no token or a tampered one gets no access."""
    async with running(engine_kind) as url:
        ok, text = await call(url, None, "login", {"username": "admin", "password": "nope"})
        assert not ok
        assert "Invalid username or password" in text
        ok, text = await call(url, None, "greet", {"name": "x"})
        assert not ok
        assert "invalid or missing credentials" in text
        _, token = await call(url, None, "login", {"username": "admin", "password": "password"})
        head, payload, signature = token.split(".")
        for forged in (f"{head}.{payload}.{signature[::-1]}", f"{head}.{payload[:-2]}.{signature}"):
            ok, text = await call(url, forged, "greet", {"name": "x"})
            assert not ok
            assert "invalid or missing credentials" in text
        async with Client(StreamableHttpTransport(url)) as client:
            assert [tool.name for tool in await client.list_tools()] == ["login"]


def test_client_script_runs_against_its_own_server() -> None:
    """examples/seed_server/client.py starts the server, exercises it and prints decisions."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "client.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = result.stdout
    assert "greet-jwt()" in out
    assert "Hello, client! (secure)" in out
    assert "greet with a tampered token" in out
    assert out.count("DENY") >= 6
