"""The guard judges exactly the component version FastMCP then runs.

FastMCP picks the highest version of a tool, prompt, resource or template that
is enabled and passes the component's own ``auth=``, falling back through
lower versions (4.2 falls back past ``auth=`` too; 4.1 only past disabled
versions). Every version here carries a different ``@require_permission``, so
the policy allows one and denies the other; each test records the body that
ran and asserts the guard allowed that very version for the caller.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, Literal

import fastmcp
import pytest
from fastmcp import Client, FastMCP
from fastmcp.utilities.versions import VersionSpec
from packaging.version import Version

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, Principal, require_permission

FASTMCP_4_2 = Version(fastmcp.__version__) >= Version("4.2")
needs_auth_fallback = pytest.mark.skipif(
    not FASTMCP_4_2, reason="FastMCP < 4.2 does not fall back past a version its auth= denies"
)

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["allowed", "denied"]},
        "mcp_server_tools": {"actions": ["list"]},
    },
    "roles": {"r": {"grants": {"mcp_server": ["allowed"], "mcp_server_tools": ["list"]}}},
    "users": {"bob": {"roles": ["r"]}},
}

Kind = Literal["tool", "prompt", "resource", "template"]
KINDS: tuple[Kind, ...] = ("tool", "prompt", "resource", "template")
#: (action of v1, action of v2): the policy allows "allowed" and denies "denied".
ORDERS = [("allowed", "denied"), ("denied", "allowed")]


def _never(context: Any) -> bool:
    return False


class Versions:
    """A server with versions 1, 2 (and optionally 3) of one component of each kind."""

    def __init__(
        self,
        actions: dict[str, str],
        *,
        auth_denies: frozenset[str] = frozenset(),
        disabled: frozenset[str] = frozenset(),
        mounted: bool = False,
    ) -> None:
        self.actions = actions
        self.ran: list[str] = []
        self.server: FastMCP[Any] = FastMCP("versions")
        home: FastMCP[Any] = FastMCP("child") if mounted else self.server
        for version, action in actions.items():
            auth = _never if version in auth_denies else None
            self._add(home, version, action, auth)
        for version in disabled:
            home.disable(version=VersionSpec(eq=version))
        if mounted:
            self.server.mount(home)
        PermitMcpMiddleware(
            engine=LocalPolicyEngine.from_dict(POLICY),
            identity=lambda context: Principal(key="bob"),
        ).attach(self.server)

    def allowed(self) -> set[str]:
        """The versions the policy lets bob run."""
        return {v for v, action in self.actions.items() if action == "allowed"}

    def _add(
        self, home: FastMCP[Any], version: str, action: str, auth: Callable[[Any], bool] | None
    ) -> None:
        def body(kind: str) -> Callable[..., str]:
            def run(**_: Any) -> str:
                self.ran.append(version)
                return f"{kind} v{version}"

            return run

        def tool() -> str:
            return body("tool")()

        def prompt() -> str:
            return body("prompt")()

        def resource() -> str:
            return body("resource")()

        def template(x: str) -> str:
            return body("template")()

        guard = require_permission(action, "mcp_server")
        home.tool(guard(tool), name="op", version=version, auth=auth)
        home.prompt(guard(prompt), name="p", version=version, auth=auth)
        home.resource("data://r", name="r", version=version, auth=auth)(guard(resource))
        home.resource("data://t/{x}", name="t", version=version, auth=auth)(guard(template))

    async def run(self, client: Client[Any], kind: Kind, version: str | None = None) -> str | None:
        """Send one request; the version whose body ran, ``None`` when none did."""
        self.ran.clear()
        try:
            if kind == "tool":
                await client.call_tool("op", {}, version=version)
            elif kind == "prompt":
                await client.get_prompt("p", version=version)
            else:
                uri = "data://r" if kind == "resource" else "data://t/a"
                meta = {"fastmcp": {"version": version}} if version else None
                await client.read_resource(uri, meta=meta)
        except Exception:
            # A refusal or an unknown component: no body ran.
            pass
        assert len(self.ran) <= 1
        return self.ran[0] if self.ran else None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("actions", ORDERS)
@pytest.mark.parametrize("mounted", [False, True], ids=["local", "mounted"])
async def test_disabled_highest_version_falls_back_to_a_checked_one(
    kind: Kind, actions: tuple[str, str], mounted: bool
) -> None:
    """With v2 disabled, FastMCP runs v1, and only if the guard allowed v1."""
    server = Versions(
        {"1": actions[0], "2": actions[1]}, disabled=frozenset({"2"}), mounted=mounted
    )
    async with Client(server.server) as client:
        ran = await server.run(client, kind)
        assert ran in server.allowed() | {None}
        assert ran == ("1" if actions[0] == "allowed" else None)
        assert await server.run(client, kind, "2") is None


@needs_auth_fallback
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("actions", ORDERS)
@pytest.mark.parametrize("mounted", [False, True], ids=["local", "mounted"])
async def test_highest_version_denied_by_its_auth_falls_back_to_a_checked_one(
    kind: Kind, actions: tuple[str, str], mounted: bool
) -> None:
    """With v2's own auth= denying bob, FastMCP runs v1, and only if the guard allowed v1."""
    server = Versions(
        {"1": actions[0], "2": actions[1]}, auth_denies=frozenset({"2"}), mounted=mounted
    )
    async with Client(server.server) as client:
        ran = await server.run(client, kind)
        assert ran in server.allowed() | {None}
        assert ran == ("1" if actions[0] == "allowed" else None)
        assert await server.run(client, kind, "2") is None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("auth", [False, True], ids=["disabled", "auth"])
async def test_highest_version_unavailable_on_4_1_runs_nothing_unchecked(
    kind: Kind, auth: bool
) -> None:
    """On every FastMCP, whatever runs when v2 is unavailable is a version the guard allowed."""
    unavailable = frozenset({"2"})
    server = Versions(
        {"1": "allowed", "2": "denied"},
        auth_denies=unavailable if auth else frozenset(),
        disabled=frozenset() if auth else unavailable,
    )
    async with Client(server.server) as client:
        for version in (None, "1", "2"):
            assert await server.run(client, kind, version) in server.allowed() | {None}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("actions", ORDERS)
async def test_pinned_version_is_the_checked_one(kind: Kind, actions: tuple[str, str]) -> None:
    """A request for an exact version runs that version only when the guard allowed it."""
    server = Versions({"1": actions[0], "2": actions[1]})
    async with Client(server.server) as client:
        for version in ("1", "2"):
            expected = version if server.actions[version] == "allowed" else None
            assert await server.run(client, kind, version) == expected
        newest = await server.run(client, kind)
        assert newest == ("2" if actions[1] == "allowed" else None)


@pytest.mark.parametrize("actions", ORDERS)
async def test_version_range_from_the_wire_is_judged_as_fastmcp_reads_it(
    actions: tuple[str, str],
) -> None:
    """A range in _meta (FastMCP's wire reads only exact versions) is judged as the version run."""
    server = Versions({"1": actions[0], "2": actions[1], "3": "denied"}, disabled=frozenset({"3"}))
    async with Client(server.server) as client:
        server.ran.clear()
        result = await client.call_tool_mcp(
            "op", {}, meta={"fastmcp": {"version": {"gte": "1", "lt": "2"}}}
        )
        ran = server.ran[0] if server.ran else None
        assert ran in server.allowed() | {None}
        assert result.is_error == (ran is None)


@pytest.mark.parametrize("actions", ORDERS)
@pytest.mark.parametrize("auth", [False, True], ids=["disabled", "auth"])
async def test_version_range_in_process_runs_a_checked_version(
    actions: tuple[str, str], auth: bool
) -> None:
    """server.call_tool with a VersionSpec range runs only a version the guard allowed."""
    top = frozenset({"3"})
    server = Versions(
        {"1": "denied", "2": actions[0], "3": actions[1]},
        auth_denies=top if auth else frozenset(),
        disabled=frozenset() if auth else top,
    )
    for spec in (VersionSpec(gte="2", lt="4"), VersionSpec(gte="2", lt="3"), VersionSpec(lt="4")):
        server.ran.clear()
        with contextlib.suppress(Exception):
            await server.server.call_tool("op", {}, version=spec)
        assert set(server.ran) <= server.allowed(), spec


async def test_hidden_resource_is_not_judged_as_the_template_it_shadows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hidden concrete resource is unknown to the guard, not allowed as a matching template."""
    server = Versions({"1": "allowed"})

    @server.server.resource("data://t/hidden", name="hidden", auth=_never)
    @require_permission("allowed", "mcp_server")
    def hidden() -> str:
        server.ran.append("hidden")
        return "hidden"

    with caplog.at_level(logging.INFO, logger="permit_guard.audit"):
        async with Client(server.server) as client:
            server.ran.clear()
            with contextlib.suppress(Exception):
                await client.read_resource("data://t/hidden")
    # FastMCP 4.1 serves the URI from the template, which the guard allowed.
    assert server.ran == ([] if FASTMCP_4_2 else ["1"])
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "permit_guard.audit"]
    reads = [e for e in events if e["method"] == "resources/read"]
    assert reads
    if FASTMCP_4_2:
        # FastMCP 4.2 refuses the read itself: the guard must not report it allowed.
        assert not any(e["allowed"] for e in reads)
