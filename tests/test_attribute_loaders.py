"""Attribute loaders: the server's own data decides, not what the client sends.

Every test drives a real FastMCP server through a real in-memory client, with
the embedded engine on a policy whose editor may close and read issues of
priority <= 2 only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from fastmcp import Client, Context, FastMCP
from fastmcp.tools import Tool
from mcp import MCPError

from permit_guard import (
    ConfigurationError,
    DecoratorError,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    abac_from_args,
    require_permission,
)
from permit_guard.caller import known
from permit_guard.components.lookup import target
from permit_guard.settings import load_settings
from permit_guard.testing import RecordingEngine

DENIED = "not found or not authorized"

POLICY: dict[str, Any] = {
    "resources": {
        "issue": {"actions": ["close", "read"]},
        "mcp_server_tools": {"actions": ["list"]},
        "mcp_server_resources": {"actions": ["list"]},
        "mcp_server_prompts": {"actions": ["list"]},
    },
    "resource_sets": {
        "low_priority": {
            "resource": "issue",
            "condition": {"allOf": [{"resource.priority": {"less-than-equals": 2}}]},
        }
    },
    "roles": {
        "editor": {
            "grants": {
                "low_priority": ["close", "read"],
                "mcp_server_tools": ["list"],
                "mcp_server_resources": ["list"],
                "mcp_server_prompts": ["list"],
            }
        }
    },
    "users": {"erin": {"roles": ["editor"]}, "tess": {"roles": {"acme": ["editor"]}}},
}

#: Issue id -> the priority the server has stored for it.
STORED = {1: 1, 2: 5, 3: 2}


class Loads:
    """A loader of stored priorities that records every call and the values it got."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def sync(self, issue_id: int) -> dict[str, Any]:
        self.calls.append({"issue_id": issue_id})
        return {"priority": STORED[issue_id]}

    async def async_(self, issue_id: int) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        self.calls.append({"issue_id": issue_id})
        return {"priority": STORED[issue_id]}


def guarded(mcp: FastMCP[Any], *, user: str = "erin", **options: Any) -> RecordingEngine:
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    PermitMcpMiddleware(
        engine=engine, identity=lambda context: Principal(key=user), **options
    ).attach(mcp)
    return engine


def issue_server(loader: Callable[..., Any]) -> FastMCP[Any]:
    """A tool whose client may send a priority, which the loaded one overrides."""
    mcp: FastMCP[Any] = FastMCP("tracker")

    @mcp.tool
    @require_permission("close", resource="issue", attributes=loader)
    @abac_from_args("priority", prefix="")  # sent as `priority`, what the policy reads
    def close_issue(issue_id: int, priority: int = 0) -> str:
        return f"closed {issue_id}"

    @mcp.tool
    @require_permission("close", resource="issue")
    @abac_from_args("priority", prefix="")
    def close_unchecked(issue_id: int, priority: int = 0) -> str:
        return f"closed {issue_id}"

    return mcp


async def closes(client: Client[Any], tool: str, **arguments: Any) -> bool:
    result = await client.call_tool(tool, arguments, raise_on_error=False)
    return not result.is_error


@pytest.fixture(params=["sync", "async"])
def loads(request: pytest.FixtureRequest) -> tuple[Loads, Callable[..., Any]]:
    recorder = Loads()
    return recorder, recorder.sync if request.param == "sync" else recorder.async_


async def test_the_loaded_attribute_decides_over_the_client(
    loads: tuple[Loads, Callable[..., Any]],
) -> None:
    """A client-sent priority cannot open a stored high priority, nor close a stored low one."""
    recorder, loader = loads
    mcp = issue_server(loader)
    engine = guarded(mcp)
    async with Client(mcp) as client:
        lied_low = await closes(client, "close_issue", issue_id=2, priority=1)
        lied_high = await closes(client, "close_issue", issue_id="1", priority=9)
        # Without a loader the client's word is all the policy has.
        believed = await closes(client, "close_unchecked", issue_id=2, priority=1)
    assert (lied_low, lied_high, believed) == (False, True, True)
    sent = [r.resource.attributes for r in engine.requests if r.action == "close"]
    assert [a.get("priority") for a in sent if a["mcp_method"] == "tools/call"] == [5, 1, 1]
    # "1" sent for an int parameter reaches the loader as the int the tool runs with.
    assert recorder.calls == [{"issue_id": 2}, {"issue_id": 1}]
    assert type(recorder.calls[1]["issue_id"]) is int


async def test_the_loader_runs_once_per_call_and_never_for_lists(
    loads: tuple[Loads, Callable[..., Any]],
) -> None:
    """Lists keep the tool by the listing rule without loading; each call loads exactly once."""
    recorder, loader = loads
    mcp = issue_server(loader)
    guarded(mcp)
    async with Client(mcp) as client:
        listed = [tool.name for tool in await client.list_tools()]
        await client.list_tools()
        assert recorder.calls == []
        # call_tool lists tools itself too: still one load per call.
        assert await closes(client, "close_issue", issue_id=1)
        assert recorder.calls == [{"issue_id": 1}]
        assert not await closes(client, "close_issue", issue_id=2)
    assert "close_issue" in listed
    assert recorder.calls == [{"issue_id": 1}, {"issue_id": 2}]


async def test_templates_and_prompts_load_with_converted_arguments() -> None:
    """URI parameters and prompt arguments reach the loader as the function's types."""
    seen: list[tuple[str, Any]] = []

    def by_uri(issue_id: int) -> dict[str, Any]:
        seen.append(("template", issue_id))
        return {"priority": STORED[issue_id]}

    async def by_prompt(issue_id: int, tone: str) -> dict[str, Any]:
        seen.append(("prompt", issue_id))
        seen.append(("tone", tone))
        return {"priority": STORED[issue_id]}

    mcp: FastMCP[Any] = FastMCP("tracker")

    @mcp.resource("issue://{issue_id}")
    @require_permission("read", resource="issue", attributes=by_uri)
    def issue(issue_id: int) -> str:
        return f"issue {issue_id}"

    @mcp.prompt
    @require_permission("read", resource="issue", attributes=by_prompt)
    def triage(issue_id: int, tone: str = "calm") -> str:
        return f"triage {issue_id}"

    guarded(mcp)
    async with Client(mcp) as client:
        templates = await client.list_resource_templates()
        prompts = await client.list_prompts()
        assert seen == []  # lists never load
        assert (await client.read_resource("issue://3"))[0].text == "issue 3"  # type: ignore[union-attr]
        with pytest.raises(MCPError, match=DENIED):
            await client.read_resource("issue://2")
        assert (await client.get_prompt("triage", {"issue_id": "1"})).messages
        with pytest.raises(MCPError, match=DENIED):
            await client.get_prompt("triage", {"issue_id": "2"})
    assert [t.uri_template for t in templates] == ["issue://{issue_id}"]
    assert [p.name for p in prompts] == ["triage"]
    # Ints, not the strings sent; the omitted tone as its default.
    assert seen == [
        ("template", 3),
        ("template", 2),
        ("prompt", 1),
        ("tone", "calm"),
        ("prompt", 2),
        ("tone", "calm"),
    ]
    assert all(type(value) is int for kind, value in seen if kind != "tone")


async def test_loaded_attributes_join_key_tenant_and_selected_arguments() -> None:
    """With key=, tenant= and @abac_from_args, the request carries all of them and the loaded."""
    got: list[dict[str, Any]] = []

    def stored(issue_id: str, org: str) -> dict[str, Any]:
        got.append({"issue_id": issue_id, "org": org})
        return {"priority": 1, "labels": ["ops"], "owner": {"team": "sre", "ids": [1, None]}}

    mcp: FastMCP[Any] = FastMCP("tracker")

    @mcp.tool
    @require_permission("close", resource="issue", key="issue_id", tenant="org", attributes=stored)
    @abac_from_args("note")
    def close_in(issue_id: str, org: str, note: str = "") -> str:
        return f"closed {org}/{issue_id}"

    engine = guarded(mcp, user="tess")
    async with Client(mcp) as client:
        in_acme = await closes(client, "close_in", issue_id="7", org="acme", note="n")
        elsewhere = await closes(client, "close_in", issue_id="7", org="globex")
    assert (in_acme, elsewhere) == (True, False)
    assert got == [{"issue_id": "7", "org": "acme"}, {"issue_id": "7", "org": "globex"}]
    call = next(r for r in engine.requests if r.resource.attributes["mcp_method"] == "tools/call")
    assert (call.resource.key, call.resource.tenant) == ("7", "acme")
    assert dict(call.resource.attributes) == {
        "arg_note": "n",
        "priority": 1,
        "labels": ["ops"],
        "owner": {"team": "sre", "ids": [1, None]},
        "mcp_method": "tools/call",
        "tool_name": "close_in",
    }


async def test_a_raising_loader_denies_is_logged_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A loader that raises denies with the usual answer; the next call is served."""

    def flaky(issue_id: int) -> dict[str, Any]:
        if issue_id == 13:
            raise RuntimeError("database is down")
        return {"priority": STORED[issue_id]}

    mcp = issue_server(flaky)
    guarded(mcp)
    with caplog.at_level(logging.INFO):
        async with Client(mcp) as client:
            failed = await client.call_tool("close_issue", {"issue_id": 13}, raise_on_error=False)
            denied = await client.call_tool("close_issue", {"issue_id": 2}, raise_on_error=False)
            assert await closes(client, "close_issue", issue_id=1)
    assert failed.is_error
    # The same answer as any other denial: nothing about the loader reaches the client.
    assert failed.content == denied.content
    assert "database" not in str(failed.content)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "permit_guard"]
    assert len(errors) == 1
    assert "close_issue" in errors[0].getMessage()
    assert "RuntimeError: database is down" in errors[0].getMessage()
    audited = [r for r in caplog.records if r.name == "permit_guard.audit"]
    assert any("raised RuntimeError" in r.getMessage() for r in audited)


async def test_the_verdict_says_the_loader_denied() -> None:
    """The core's verdict on a failed load: denied by the guard, why "loader", the cause."""

    def broken(issue_id: int) -> dict[str, Any]:
        raise LookupError(f"no issue {issue_id}")

    mcp = issue_server(broken)
    guard = PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY)).guard
    found = await target(mcp, "tool", "close_issue", {"issue_id": 4})
    verdict = await guard.decide("tools/call", found, identify=lambda: known(Principal(key="erin")))
    assert (verdict.allowed, verdict.why, verdict.decided_by) == (False, "loader", "guard")
    assert verdict.request is None  # the engine was never asked
    assert verdict.reason.endswith("broken raised LookupError: no issue 4")


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_slow_loader_times_out_and_the_server_keeps_serving(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A loader slower than the timeout denies in about the timeout, not its own time."""
    release = threading.Event()

    def slow_sync(issue_id: int) -> dict[str, Any]:
        if issue_id == 2:
            release.wait(2)  # blocks its thread, not the event loop
        return {"priority": 1}

    async def slow_async(issue_id: int) -> dict[str, Any]:
        if issue_id == 2:
            await anyio.sleep(2)
        return {"priority": 1}

    mcp = issue_server(slow_sync if kind == "sync" else slow_async)
    guarded(mcp, attribute_loader_timeout=0.2)
    try:
        with caplog.at_level(logging.ERROR, logger="permit_guard"):
            async with Client(mcp) as client:
                started = time.perf_counter()
                slow = await closes(client, "close_issue", issue_id=2)
                elapsed = time.perf_counter() - started
                served = await closes(client, "close_issue", issue_id=1)
    finally:
        release.set()
    assert (slow, served) == (False, True)
    assert 0.2 <= elapsed < 1.5
    assert "did not answer within 0.2s" in caplog.text


async def test_a_blocked_sync_loader_does_not_stop_other_requests() -> None:
    """While a sync loader blocks, other requests on the server are answered."""
    release = threading.Event()

    def blocking(issue_id: int) -> dict[str, Any]:
        if issue_id == 2:
            release.wait(2)
        return {"priority": 1}

    mcp = issue_server(blocking)
    guarded(mcp, attribute_loader_timeout=1.5)
    finished: list[str] = []

    async def slow(client: Client[Any]) -> None:
        await closes(client, "close_issue", issue_id=2)
        finished.append("slow")

    try:
        async with Client(mcp) as client, anyio.create_task_group() as tasks:
            tasks.start_soon(slow, client)
            await anyio.sleep(0.1)
            assert await closes(client, "close_issue", issue_id=1)
            finished.append("fast")
            release.set()
    finally:
        release.set()
    assert finished == ["fast", "slow"]


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ([("priority", 1)], "list, not a mapping"),
        (None, "NoneType, not a mapping"),
        ("priority=1", "str, not a mapping"),
        ({1: 1}, "the attribute name 1"),
        ({"": 1}, "the attribute name ''"),
        ({"priority": float("nan")}, "nan at 'priority'"),
        ({"priority": float("inf")}, "inf at 'priority'"),
        ({"priority": {1, 2}}, "a set at 'priority'"),
        ({"priority": object()}, "a object at 'priority'"),
        ({"owner": {"id": b"x"}}, "a bytes at 'owner'['id']"),
        ({"owner": {2: "x"}}, "the key 2 at 'owner'"),
        ({"tool_name": "other"}, "the built-in attribute 'tool_name'"),
        ({"deep": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}, "nested deeper than 16"),
    ],
)
async def test_a_loader_returning_other_than_json_attributes_denies(
    returned: Any, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Anything but a mapping of string names to JSON values denies, naming the problem."""
    answers: list[Any] = [{"priority": 1}, returned]

    def loader(issue_id: int) -> Any:
        return answers.pop(0)

    mcp = issue_server(loader)
    guarded(mcp)
    with caplog.at_level(logging.ERROR, logger="permit_guard"):
        async with Client(mcp) as client:
            control = await closes(client, "close_issue", issue_id=1)
            result = await closes(client, "close_issue", issue_id=1)
    assert (control, result) == (True, False)
    assert problem in caplog.text


async def test_mapping_values_are_sent_as_plain_json() -> None:
    """Any mapping, tuples and int or str subclasses are sent as the JSON they stand for."""
    from enum import IntEnum
    from types import MappingProxyType

    class Priority(IntEnum):
        LOW = 1

    def loader(issue_id: int) -> Any:
        return MappingProxyType({"priority": Priority.LOW, "path": ("a", "b")})

    mcp = issue_server(loader)
    engine = guarded(mcp)
    async with Client(mcp) as client:
        assert await closes(client, "close_issue", issue_id=2)
    call = next(r for r in engine.requests if r.resource.attributes["mcp_method"] == "tools/call")
    assert call.resource.attributes["path"] == ["a", "b"]
    assert type(call.resource.attributes["priority"]) is int


async def test_callable_objects_and_mounted_servers() -> None:
    """An object with an async __call__ loads, for a tool of a mounted server too."""

    class Store:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, issue_id: int) -> dict[str, Any]:
            self.calls += 1
            return {"priority": STORED[issue_id]}

    store = Store()
    sub: FastMCP[Any] = FastMCP("sub")

    @sub.tool
    @require_permission("close", resource="issue", attributes=store)
    def close_issue(issue_id: int) -> str:
        return f"closed {issue_id}"

    mcp: FastMCP[Any] = FastMCP("root")
    mcp.mount(sub, namespace="ns")
    guarded(mcp)
    async with Client(mcp) as client:
        assert [tool.name for tool in await client.list_tools()] == ["ns_close_issue"]
        assert await closes(client, "ns_close_issue", issue_id=1)
        assert not await closes(client, "ns_close_issue", issue_id=2)
    assert store.calls == 2


async def test_a_transformed_copy_of_a_loading_tool_is_denied() -> None:
    """A transform may rename the loader's arguments, so a transformed copy is refused."""
    recorder = Loads()
    mcp = issue_server(recorder.sync)
    original = await mcp.get_tool("close_issue")
    assert original is not None
    mcp.add_tool(Tool.from_tool(original, name="close_other"))
    guarded(mcp)
    async with Client(mcp) as client:
        names = [tool.name for tool in await client.list_tools()]
        copied = await closes(client, "close_other", issue_id=1)
        own = await closes(client, "close_issue", issue_id=1)
    assert "close_other" not in names
    assert (copied, own) == (False, True)
    assert recorder.calls == [{"issue_id": 1}]


def stored_priority(issue_id: int) -> dict[str, Any]:
    return {"priority": STORED[issue_id]}


def test_loader_parameters_must_name_arguments_clients_send() -> None:
    """A loader parameter the function does not take is a DecoratorError at decoration time."""

    def by_issue(issue: int) -> dict[str, Any]:
        return {}

    with pytest.raises(DecoratorError, match=r"close_issue: attribute loader .*by_issue") as info:

        @require_permission(attributes=by_issue)
        def close_issue(issue_id: int) -> str:
            return ""

    assert "'issue' names no argument of the function (arguments: issue_id)" in str(info.value)
    assert info.value.function.endswith("close_issue")


def test_loader_parameters_injected_by_the_server_are_refused() -> None:
    """A loader cannot take the Context: clients never send it."""

    def by_context(ctx: Context) -> dict[str, Any]:
        return {}

    with pytest.raises(DecoratorError, match="'ctx' names an argument the server injects"):

        @require_permission(attributes=by_context)
        def close_issue(issue_id: int, ctx: Context) -> str:
            return ""


@pytest.mark.parametrize(
    ("loader", "problem"),
    [
        (lambda *ids: {}, "parameter 'ids' is variadic positional"),
        (lambda **arguments: {}, "parameter 'arguments' is variadic keyword"),
        (lambda issue_id, /: {}, "parameter 'issue_id' is positional-only"),
        ({"priority": 1}, "takes a callable"),
    ],
)
def test_loaders_take_named_arguments(loader: Any, problem: str) -> None:
    """Loaders are callables taking their arguments by name; anything else is refused."""
    with pytest.raises(DecoratorError, match=problem):
        require_permission(attributes=loader)


def test_two_different_loaders_on_one_function_are_refused() -> None:
    """The same requirement twice is harmless; a different loader is a conflict."""

    def other(issue_id: int) -> dict[str, Any]:
        return {}

    def close_issue(issue_id: int) -> str:
        return ""

    require_permission(attributes=stored_priority)(close_issue)
    require_permission(attributes=stored_priority)(close_issue)
    with pytest.raises(DecoratorError, match="applied twice with different arguments"):
        require_permission(attributes=other)(close_issue)


def test_the_timeout_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PERMIT_MCP_ATTRIBUTE_LOADER_TIMEOUT: 3 s by default, and it must be positive."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERMIT_MCP_ATTRIBUTE_LOADER_TIMEOUT", raising=False)
    assert load_settings().attribute_loader_timeout == 3.0
    monkeypatch.setenv("PERMIT_MCP_ATTRIBUTE_LOADER_TIMEOUT", "0.5")
    assert load_settings().attribute_loader_timeout == 0.5
    for bad in ("0", "-1"):
        monkeypatch.setenv("PERMIT_MCP_ATTRIBUTE_LOADER_TIMEOUT", bad)
        with pytest.raises(ConfigurationError, match="PERMIT_MCP_ATTRIBUTE_LOADER_TIMEOUT"):
            load_settings()


class _Unforeseen(BaseException):
    """Not an Exception: what a careless loader or a library might still raise."""


class _LiesAboutItself(str):
    """A name that hashes and compares as something else than its text."""

    def __hash__(self) -> int:
        return hash("something-else")

    def __eq__(self, other: object) -> bool:
        return False


class _BrokenMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Any:
        raise RuntimeError("cannot iterate")

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize(
    ("raised", "problem"),
    [
        (asyncio.CancelledError(), "raised CancelledError"),
        (GeneratorExit(), "raised GeneratorExit"),
        (_Unforeseen("odd"), "raised _Unforeseen"),
    ],
)
async def test_a_loader_raising_a_base_exception_denies_and_the_session_lives(
    raised: BaseException, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A CancelledError of the loader's own, GeneratorExit or any BaseException is its failure."""

    async def loader(issue_id: int) -> dict[str, Any]:
        if issue_id == 13:
            raise raised
        return {"priority": STORED[issue_id]}

    mcp = issue_server(loader)
    guarded(mcp)
    with caplog.at_level(logging.ERROR, logger="permit_guard"):
        async with Client(mcp) as client:
            failed = await client.call_tool("close_issue", {"issue_id": 13}, raise_on_error=False)
            served = await closes(client, "close_issue", issue_id=1)
    assert failed.is_error
    assert DENIED in str(failed.content)
    assert served
    assert problem in caplog.text


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ({_LiesAboutItself("mcp_method"): "tools/list"}, "the built-in attribute 'mcp_method'"),
        (_BrokenMapping(), "returned a mapping that raised"),
    ],
)
async def test_a_loader_cannot_smuggle_a_built_in_name_or_break_the_check(
    returned: Any, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A str subclass named like mcp_method would judge the call as a list entry."""

    def loader(issue_id: int) -> Any:
        return returned

    mcp = issue_server(loader)
    guarded(mcp)
    with caplog.at_level(logging.ERROR, logger="permit_guard"):
        async with Client(mcp) as client:
            result = await client.call_tool("close_issue", {"issue_id": 2}, raise_on_error=False)
            served = await closes(client, "close_unchecked", issue_id=1, priority=1)
    assert result.is_error
    assert DENIED in str(result.content)
    assert served
    assert problem in caplog.text


async def test_hung_sync_loaders_hold_a_bounded_number_of_threads(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the bound, a call is denied at once instead of leaving one more thread behind."""
    from permit_guard import loaders

    monkeypatch.setattr(loaders, "_threads", loaders._Threads(3))
    release = threading.Event()

    def hung(issue_id: int) -> dict[str, Any]:
        release.wait(10)  # bounded: the test releases it
        return {"priority": 1}

    mcp = issue_server(hung)
    guarded(mcp, attribute_loader_timeout=0.2)
    try:
        with caplog.at_level(logging.ERROR, logger="permit_guard"):
            async with Client(mcp) as client:
                timed_out = [await closes(client, "close_issue", issue_id=1) for _ in range(3)]
                busy = await closes(client, "close_issue", issue_id=1)
                threads_when_busy = loaders._threads.running
                release.set()
                for _ in range(100):  # the hung threads finish and leave
                    if loaders._threads.running == 0:
                        break
                    await asyncio.sleep(0.02)
                served = await closes(client, "close_issue", issue_id=1)
    finally:
        release.set()
    assert timed_out == [False, False, False]
    assert busy is False
    assert threads_when_busy == 3  # denied before starting one more thread
    assert served is True
    assert "sync loaders are still running (at most 3)" in caplog.text
