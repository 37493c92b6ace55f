"""The middleware and the ``permit-guard`` command agree, component by component.

One server with every kind of component (decorated, public, undecorated, an
instance-keyed tool, transformed copies, a mounted tool, a resource, a
template, a prompt) runs under a table of guard configurations. For each
configuration, user and component, a real client's call through the
middleware, ``check``, ``inspect`` and ``lint`` must tell the same story.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.tools import Tool
from mcp import MCPError

from permit_guard import (
    EngineError,
    FixedIdentity,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    abac_from_args,
    public,
    require_permission,
)
from permit_guard.cli.check import check
from permit_guard.cli.inventory import ComponentInfo, inventory
from permit_guard.cli.lint import lint
from permit_guard.cli.load import guard_settings
from permit_guard.engines.local.loading import load_policy
from permit_guard.model import AuthzRequest
from permit_guard.testing import RecordingEngine

ROOT = Path(__file__).resolve().parent.parent

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["greet", "plain", "greet-copy", "sub-ping"]},
        "invoice": {"actions": ["delete"], "roles": {"owner": ["delete"]}},
        "mcp_server_tools": {"actions": ["list"]},
        "mcp_server_resources": {"actions": ["read", "list"]},
        "mcp_server_prompts": {"actions": ["read", "list"]},
    },
    "roles": {
        "admin": {
            "grants": {
                "mcp_server": ["*"],
                "invoice": ["*"],
                "mcp_server_tools": ["*"],
                "mcp_server_resources": ["*"],
                "mcp_server_prompts": ["*"],
            }
        },
        "viewer": {
            "grants": {
                "mcp_server": ["greet", "sub-ping"],
                "mcp_server_tools": ["list"],
                "mcp_server_resources": ["read", "list"],
            }
        },
    },
    "users": {
        "alice": {"roles": ["admin"]},
        "bob": {"roles": ["viewer"], "resource_roles": {"invoice:42": ["owner"]}},
    },
}

USERS = ("alice", "bob", "eve")

LIST_METHODS = ["tools/list", "resources/list", "resources/templates/list", "prompts/list"]
DEFAULT_BYPASS = ["initialize", "ping", "notifications/*", "server/discover"]

#: Guard configurations the middleware supports, by name.
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "default deny": {"default_deny": True},
    "only tools/list known": {"known_methods": ["tools/list"]},
    "calls not known": {
        "known_methods": [*LIST_METHODS, "resources/read", "prompts/get"],
    },
    "unknown methods allowed": {"known_methods": ["tools/list"], "unknown_methods": "allow"},
    "gates bypassed, default deny": {
        "bypass_methods": [*DEFAULT_BYPASS, "tools/list", "prompts/list"],
        "default_deny": True,
    },
    "lists not known": {"known_methods": ["tools/call", "resources/read", "prompts/get"]},
}


@dataclass(frozen=True)
class Probe:
    """One component: how inventory names it, and how a client asks for it."""

    kind: str
    listed: str
    name: str
    arguments: dict[str, Any] | None = None

    @property
    def cli_kind(self) -> str:
        return "resource" if self.kind in ("resource", "template") else self.kind


PROBES = [
    Probe("tool", "greet", "greet", {}),
    Probe("tool", "login", "login", {}),
    Probe("tool", "plain", "plain", {"x": 2}),
    Probe("tool", "delete_invoice", "delete_invoice", {"invoice_id": "42"}),
    Probe("tool", "greet_copy", "greet_copy", {}),
    Probe("tool", "remove_invoice", "remove_invoice", {"invoice_id": "42"}),
    Probe("tool", "sub_ping", "sub_ping", {}),
    Probe("resource", "data://info", "data://info"),
    Probe("template", "data://items/{item_id}", "data://items/7"),
    Probe("prompt", "hello", "hello", {"name": "x"}),
]


async def build(user: str, options: dict[str, Any]) -> tuple[FastMCP[Any], RecordingEngine]:
    """The server, guarded with ``options``, with ``user`` as every request's caller."""
    mcp: FastMCP[Any] = FastMCP("agree")

    @mcp.tool
    @require_permission()
    @abac_from_args()
    def greet() -> str:
        return "hi"

    @mcp.tool
    @public
    def login() -> str:
        return "token"

    @mcp.tool
    def plain(x: int = 1) -> int:
        return x

    @mcp.tool
    @require_permission("delete", resource="invoice", key="invoice_id")
    def delete_invoice(invoice_id: str) -> str:
        return f"deleted {invoice_id}"

    @mcp.resource("data://info")
    @require_permission()
    def info() -> str:
        return "info"

    @mcp.resource("data://items/{item_id}")
    @require_permission()
    def item(item_id: str) -> str:
        return f"item {item_id}"

    @mcp.prompt
    @require_permission()
    def hello(name: str) -> str:
        return f"hello {name}"

    for original, copy in (("greet", "greet_copy"), ("delete_invoice", "remove_invoice")):
        tool = await mcp.get_tool(original)
        assert tool is not None
        mcp.add_tool(Tool.from_tool(tool, name=copy))

    sub: FastMCP[Any] = FastMCP("sub")

    @sub.tool
    @require_permission()
    @abac_from_args()
    def ping() -> str:
        return "pong"

    mcp.mount(sub, namespace="sub")
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=FixedIdentity(user), **options))
    return mcp, engine


async def through_middleware(client: Client, probe: Probe) -> bool:
    """Whether a real client's call, read or render of the component is allowed."""
    if probe.kind == "tool":
        result = await client.call_tool(probe.name, probe.arguments or {}, raise_on_error=False)
        return not result.is_error
    try:
        if probe.kind == "prompt":
            await client.get_prompt(probe.name, probe.arguments or {})
        else:
            await client.read_resource(probe.name)
    except MCPError:
        return False
    return True


def last_request(engine: RecordingEngine, before: int) -> AuthzRequest | None:
    """The one call, read or render the engine was asked since ``before``, if it was asked.

    FastMCP's client lists tools by itself before calling one; those list
    checks are not the call's.
    """
    asked = [
        r
        for r in engine.requests[before:]
        if r.resource.attributes.get("mcp_method") not in LIST_METHODS
    ]
    assert len(asked) <= 1, asked
    return asked[0] if asked else None


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
async def test_middleware_check_inspect_and_lint_agree(configuration: str) -> None:
    """Per user and component: the middleware's answer is check's, inspect's and lint's."""
    options = CONFIGURATIONS[configuration]
    for user in USERS:
        mcp, engine = await build(user, options)
        settings, origin = guard_settings(mcp)
        assert origin == "server"
        rows = {(row.kind, row.name): row for row in (await inventory(mcp, settings)).components}
        assert set(rows) == {(p.kind, p.listed) for p in PROBES}
        async with Client(mcp) as client:
            for probe in PROBES:
                row = rows[probe.kind, probe.listed]
                before = len(engine.requests)
                allowed = await through_middleware(client, probe)
                asked = last_request(engine, before)

                before = len(engine.requests)
                verdict = await check(
                    mcp,
                    settings,
                    engine,
                    Principal(key=user),
                    kind=probe.cli_kind,  # type: ignore[arg-type]
                    name=probe.name,
                    arguments=probe.arguments,
                )
                where = f"{configuration}: {user} on {probe.kind} {probe.name}"
                assert verdict.allowed == allowed, where
                assert verdict.request == asked, where
                assert last_request(engine, before) == asked, where

                # inspect: reachable exactly when public or the engine is asked, and
                # then with the resource type and action the middleware sends.
                assert row.reachable == (asked is not None or row.why == "public"), where
                if allowed:
                    assert row.reachable, where
                if asked is not None:
                    assert row.request is not None, where
                    assert (row.request.resource.type, row.request.action) == (
                        asked.resource.type,
                        asked.action,
                    ), where


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
async def test_lint_reports_every_component_no_request_can_reach(configuration: str) -> None:
    """Every component the guard refuses to all callers is a lint error; no reachable one is."""
    mcp, _ = await build("alice", CONFIGURATIONS[configuration])
    settings, _ = guard_settings(mcp)
    found = await inventory(mcp, settings)
    findings = lint(found, policy=load_policy(POLICY).policy)
    errors = {f.component for f in findings if f.severity == "error"}
    unreachable = {f.component for f in findings if f.kind == "unreachable"}
    for row in found.components:
        label = f"{row.kind} {row.name}"
        if not row.reachable:
            assert label in errors, f"{configuration}: {label} ({row.note})"
        if row.guard != "default-deny":
            assert (label in unreachable) == _never_allowed(row), f"{configuration}: {label}"


def _never_allowed(row: ComponentInfo) -> bool:
    """Unreachable by the guard, or asking for what the policy grants nobody."""
    if not row.reachable:
        return True
    if row.request is None:
        return False
    resources = POLICY["resources"]
    granted = {
        (type_name, action)
        for role in POLICY["roles"].values()
        for type_name, actions in role["grants"].items()
        for action in (resources[type_name]["actions"] if "*" in actions else actions)
    } | {
        (type_name, action)
        for type_name, resource in resources.items()
        for actions in resource.get("roles", {}).values()
        for action in actions
    }
    return (row.request.resource.type, row.request.action) not in granted


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
async def test_listed_components_are_reachable(configuration: str) -> None:
    """What a list shows a caller is something inspect says a request can reach."""
    for user in USERS:
        mcp, _ = await build(user, CONFIGURATIONS[configuration])
        settings, _ = guard_settings(mcp)
        rows = {(r.kind, r.name): r for r in (await inventory(mcp, settings)).components}
        async with Client(mcp) as client:
            listed = [("tool", t.name) for t in await client.list_tools()]
            listed += [("resource", str(r.uri)) for r in await client.list_resources()]
            listed += [("template", t.uri_template) for t in await client.list_resource_templates()]
            listed += [("prompt", p.name) for p in await client.list_prompts()]
        for key in listed:
            assert rows[key].reachable, f"{configuration}: {user} sees {key}"


NARROW = """\
from fastmcp import FastMCP
from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, require_permission

mcp = FastMCP("narrow")


@mcp.tool
@require_permission()
def greet(name: str) -> str:
    return f"hello {name}"


mcp.add_middleware(
    PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(
            {"resources": {"mcp_server": {"actions": ["greet"]}}}
        ),
        known_methods=["tools/list"],
    )
)
"""


def test_command_tells_that_calls_outside_known_methods_never_run(tmp_path: Path) -> None:
    """inspect notes and lint fails a decorated tool whose tools/call is not a known method."""
    server = tmp_path / "narrow.py"
    server.write_text(NARROW)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "permit_guard", *args, str(server)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    inspected = run("inspect")
    assert inspected.returncode == 0, inspected.stderr
    assert "tool greet: denied: tools/call is not in known_methods" in inspected.stdout
    linted = run("lint")
    assert linted.returncode == 1, linted.stdout
    assert "unreachable" in linted.stdout
    assert "tools/call is not in known_methods" in linted.stdout


class _Broken:
    """An engine that cannot decide."""

    name = "broken"

    async def check(self, request: AuthzRequest) -> Any:
        raise RuntimeError("PDP unreachable")

    async def check_many(self, requests: Any) -> Any:
        raise RuntimeError("PDP unreachable")


async def test_check_in_process_reports_an_engine_that_cannot_decide() -> None:
    """check raises EngineError where the middleware denies (fails closed) on a broken engine."""
    mcp, _ = await build("alice", {})
    settings, _ = guard_settings(mcp)
    with pytest.raises(EngineError, match="PDP unreachable"):
        await check(mcp, settings, _Broken(), Principal(key="alice"), kind="tool", name="greet")
    public_verdict = await check(
        mcp, settings, _Broken(), Principal(key="alice"), kind="tool", name="login"
    )
    assert (public_verdict.allowed, public_verdict.why, public_verdict.request) == (
        True,
        "public",
        None,
    )
