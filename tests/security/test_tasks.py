"""Background tasks (fastmcp-tasks, SEP-2663) must not go around the guard.

A task-augmented ``tools/call`` passes the guard's ``on_call_tool`` like any
call, but then the tasks extension's interceptor (which FastMCP composes inside
the middleware chain, just before the tool body) answers it with a
``CreateTaskResult`` and enqueues the tool's function on Docket. A Docket
worker later calls that function directly, outside any request:

1. the function is registered by ``component.key``, and a local tool and a
   mounted one can share a key (``ns_report``): the last registration runs,
   whatever component the guard checked;
2. a mounted sub-server's own middleware (its guard) never runs;
3. ``tasks/get``, ``tasks/update`` and ``tasks/cancel`` are scoped by FastMCP's
   own access token only, so with the guard's identities every task is
   anonymous and anyone holding a task id reads, answers or cancels it; with
   the default ``known_methods`` the ``tasks/*`` methods are refused, so task
   tools cannot be used at all; and in the worker ``current_principal()`` is
   ``None``.

Every test runs a real server with the tasks extension (``memory://`` Docket)
over streamable HTTP on 127.0.0.1, two callers told apart by ``X-User``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from typing import Any

import pytest

pytest.importorskip(
    "fastmcp_tasks",
    reason="background tasks need fastmcp-tasks (not installed; no release for FastMCP 4.2 yet)",
)

import mcp_types as mt
from fastmcp import Client, Context, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.exceptions import ToolError
from fastmcp_tasks import TasksExtension, ToolTask, call_tool_task
from fastmcp_tasks.client_models import (
    GetTaskRequest,
    GetTaskRequestParams,
    UpdateTaskRequest,
    UpdateTaskRequestParams,
)
from mcp import MCPError

from permit_guard import (
    AuthzRequest,
    Decision,
    HeaderIdentity,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    current_principal,
    public,
    require_permission,
)
from permit_guard.settings import DEFAULT_KNOWN_METHODS
from permit_guard.tasks import GuardedTasks

from ..serving import serve_http

#: Every request and every wait in this module is bounded by this many seconds.
TIMEOUT = 10.0

TASK_METHODS = ("tasks/get", "tasks/update", "tasks/cancel")
KNOWN = [*DEFAULT_KNOWN_METHODS, *TASK_METHODS]

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["ns-report", "secret", "approve", "slow", "whoami", "work"]},
        "mcp_server_tools": {"actions": ["list"]},
        "mcp_server_tasks": {"actions": ["get", "update", "cancel"]},
        "vault": {"actions": ["report"]},
    },
    "roles": {
        # Both callers may use every tool and every tasks/* method: what keeps
        # them apart must be whose task it is.
        "member": {
            "grants": {"mcp_server": ["*"], "mcp_server_tools": ["list"], "mcp_server_tasks": ["*"]}
        },
        # Only admins may run the vault's report.
        "admin": {"grants": {"vault": ["report"]}},
    },
    "users": {"alice": {"roles": ["admin", "member"]}, "bob": {"roles": ["member"]}},
}

#: The mounted sub-server's own policy: only alice may run its ``report``.
VAULT_POLICY: dict[str, Any] = {
    "resources": {"mcp_server": {"actions": ["report"]}, "mcp_server_tools": {"actions": ["list"]}},
    "roles": {"admin": {"grants": {"mcp_server": ["report"], "mcp_server_tools": ["list"]}}},
    "users": {"alice": {"roles": ["admin"]}},
}

#: A task answer with the task id taken out: ("error", code, message) or ("ok", ...).
Answer = tuple[str, object, str]


class _PlainClient(Client[Any]):
    """A client that does not offer the tasks extension, so every call runs in the foreground.

    ``_auto_internal_extensions`` is how FastMCP's own ``ProxyClient`` opts out.
    """

    _auto_internal_extensions = False


def _client(url: str, user: str, *, plain: bool = False) -> Client[Any]:
    transport = StreamableHttpTransport(url, headers={"X-User": user})
    return (_PlainClient if plain else Client)(transport, timeout=TIMEOUT)


def _tasks(guard: PermitMcpMiddleware, **options: Any) -> GuardedTasks:
    """The guarded tasks extension on its own in-memory queue (tests never share one)."""
    return GuardedTasks(guard, url="memory://", name=f"permit-guard-{uuid.uuid4().hex}", **options)


def _guard(
    policy: dict[str, Any], *, engine: Any = None, known: Sequence[str] | None = KNOWN
) -> PermitMcpMiddleware:
    options: dict[str, Any] = {} if known is None else {"known_methods": list(known)}
    return PermitMcpMiddleware(
        engine=engine or LocalPolicyEngine.from_dict(policy),
        identity=HeaderIdentity("X-User"),
        enable_audit_logging=False,
        **options,
    )


async def _answer(request: Awaitable[Any], task_id: str) -> Answer:
    """What a tasks/* request answered, comparable across task ids."""
    try:
        result = await asyncio.wait_for(request, TIMEOUT)
    except MCPError as exc:
        return ("error", exc.error.code, exc.error.message.replace(task_id, "<id>"))
    status = getattr(result, "status", None)
    return ("ok", status, repr(result).replace(task_id, "<id>"))


def _update(client: Client[Any], task_id: str, responses: dict[str, Any]) -> Awaitable[Any]:
    request = UpdateTaskRequest(
        params=UpdateTaskRequestParams(task_id=task_id, input_responses=responses)
    )
    return client.session.send_request(request, mt.Result)


async def _run_task(client: Client[Any], name: str) -> str:
    """Call ``name`` as a task and drive it to the end: its text, or the error it ended with."""
    try:
        task = await call_tool_task(client, name, {}, timeout=TIMEOUT)
        result = await asyncio.wait_for(task.result(), TIMEOUT)
    except (ToolError, MCPError) as exc:
        return f"error: {exc}"
    return str(result.data)


UNKNOWN_ID = "no-such-task-" + "x" * 32


# ------------------------------------------------------------------ attack 1


async def test_task_runs_the_component_the_guard_checked() -> None:
    """A task runs the body of the component the guard checked, not another with its key."""
    ran: list[str] = []
    mcp: FastMCP[Any] = FastMCP("root")
    guard = _guard(POLICY)
    mcp.add_extension(_tasks(guard))

    @mcp.tool(task=True)
    @public
    async def ns_report() -> str:
        ran.append("public")
        return "public report"

    vault: FastMCP[Any] = FastMCP("vault")

    @vault.tool(task=True)
    @require_permission("report", resource="vault")
    async def report() -> str:
        ran.append("admin")
        return "admin report"

    # The mounted `report` is listed as `ns_report` too: one task key, two bodies.
    mcp.mount(vault, namespace="ns")
    mcp.add_middleware(guard)

    async with serve_http(mcp) as url, _client(url, "bob") as bob:
        outcome = await _run_task(bob, "ns_report")
    assert "admin" not in ran, f"bob's task ran the sub-server's admin body: {outcome!r}"


# ------------------------------------------------------------------ attack 2


async def test_task_passes_the_mounted_servers_own_guard() -> None:
    """A mounted server's own guard refuses a task exactly as it refuses the plain call."""
    ran: list[str] = []
    vault: FastMCP[Any] = FastMCP("vault")

    @vault.tool(task=True)
    @require_permission()
    async def report() -> str:
        ran.append("report")
        return "vault report"

    vault.add_middleware(_guard(VAULT_POLICY))

    mcp: FastMCP[Any] = FastMCP("root")
    guard = _guard(POLICY)
    mcp.add_extension(_tasks(guard))
    mcp.mount(vault, namespace="ns")
    mcp.add_middleware(guard)  # the root lets members call ns_report

    async with serve_http(mcp) as url:
        async with _client(url, "bob", plain=True) as plain:
            foreground = await plain.call_tool("ns_report", {}, raise_on_error=False)
        assert foreground.is_error, "control: the vault's guard refuses bob's plain call"
        assert ran == []
        async with _client(url, "bob") as bob:
            outcome = await _run_task(bob, "ns_report")
    assert ran == [], f"bob's task ran past the vault's guard: {outcome!r}"


# ------------------------------------------------------------------ attack 3


def _owned_server(release: asyncio.Event) -> FastMCP[Any]:
    """Task tools for alice and bob: a result worth stealing, one that asks, one that waits."""
    mcp: FastMCP[Any] = FastMCP("root")
    guard = _guard(POLICY)
    mcp.add_extension(_tasks(guard))

    @mcp.tool(task=True)
    @require_permission()
    async def secret() -> str:
        return "alice's secret"

    @mcp.tool(task=True)
    @require_permission()
    async def approve(ctx: Context) -> Any:
        answers = ctx.input_responses
        if not answers:
            form = mt.ElicitRequestFormParams(
                message="Approve the transfer?",
                requested_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}},
            )
            return mt.InputRequiredResult(input_requests={"confirm": mt.ElicitRequest(params=form)})
        return f"approved: {answers['confirm']}"

    @mcp.tool(task=True)
    @require_permission()
    async def slow() -> str:
        await asyncio.wait_for(release.wait(), TIMEOUT)
        return "done"

    mcp.add_middleware(guard)
    return mcp


async def test_tasks_get_is_bound_to_the_caller() -> None:
    """tasks/get on another caller's task answers exactly as on an unknown task id."""
    mcp = _owned_server(asyncio.Event())
    async with serve_http(mcp) as url, _client(url, "alice") as alice, _client(url, "bob") as bob:
        task = await call_tool_task(alice, "secret", {}, timeout=TIMEOUT)
        assert (await task.wait(timeout=TIMEOUT)).status == "completed"
        stolen = await _answer(ToolTask(bob, "secret", task.create_result).status(), task.task_id)
        unknown_task = task.create_result.model_copy(update={"task_id": UNKNOWN_ID})
        unknown = await _answer(ToolTask(bob, "secret", unknown_task).status(), UNKNOWN_ID)
    assert stolen == unknown, f"bob's tasks/get on alice's task: {stolen!r}"
    assert stolen[0] == "error"


async def test_tasks_update_is_bound_to_the_caller() -> None:
    """tasks/update on another caller's task answers as on an unknown id and delivers nothing."""
    mcp = _owned_server(asyncio.Event())
    async with serve_http(mcp) as url, _client(url, "alice") as alice, _client(url, "bob") as bob:
        task = await call_tool_task(alice, "approve", {}, timeout=TIMEOUT)
        asked = await task.wait(state="input_required", timeout=TIMEOUT)
        key = next(iter(asked.input_requests or {}))
        answer = {key: {"action": "accept", "content": {"ok": True}}}
        forged = await _answer(_update(bob, task.task_id, answer), task.task_id)
        unknown = await _answer(_update(bob, UNKNOWN_ID, answer), UNKNOWN_ID)
        after = await asyncio.wait_for(task.status(), TIMEOUT)
    assert forged == unknown, f"bob's tasks/update on alice's task: {forged!r}"
    assert after.status == "input_required", f"alice's task took bob's answer: {after.result!r}"


async def test_tasks_cancel_is_bound_to_the_caller() -> None:
    """tasks/cancel on another caller's task answers as on an unknown id and cancels nothing."""
    release = asyncio.Event()
    mcp = _owned_server(release)
    async with serve_http(mcp) as url, _client(url, "alice") as alice, _client(url, "bob") as bob:
        task = await call_tool_task(alice, "slow", {}, timeout=TIMEOUT)
        cancel = ToolTask(bob, "slow", task.create_result).cancel()
        cancelled = await _answer(cancel, task.task_id)
        unknown_task = task.create_result.model_copy(update={"task_id": UNKNOWN_ID})
        unknown = await _answer(ToolTask(bob, "slow", unknown_task).cancel(), UNKNOWN_ID)
        release.set()
        final = await task.wait(timeout=TIMEOUT)
    assert cancelled == unknown, f"bob's tasks/cancel on alice's task: {cancelled!r}"
    assert final.status == "completed", f"alice's task ended {final.status!r}"


async def test_task_body_sees_the_submitting_caller() -> None:
    """Inside the worker, current_principal() is the caller the guard allowed the task for."""
    mcp: FastMCP[Any] = FastMCP("root")
    guard = _guard(POLICY)
    mcp.add_extension(_tasks(guard))

    @mcp.tool(task=True)
    @require_permission()
    async def whoami() -> str:
        principal = current_principal()
        return principal.key if principal is not None else "<nobody>"

    mcp.add_middleware(guard)
    async with serve_http(mcp) as url, _client(url, "alice") as alice:
        outcome = await _run_task(alice, "whoami")
    assert outcome == "alice"


async def test_task_tools_work_with_default_settings() -> None:
    """With the default known_methods a permitted task tool runs, and its owner gets the result."""
    mcp: FastMCP[Any] = FastMCP("root")
    guard = _guard(POLICY, known=None)
    mcp.add_extension(_tasks(guard))

    @mcp.tool(task=True)
    @require_permission()
    async def work() -> str:
        return "worked"

    mcp.add_middleware(guard)
    async with serve_http(mcp) as url, _client(url, "alice") as alice:
        outcome = await _run_task(alice, "work")
    assert outcome == "worked"


# ------------------------------------------------- a queued task starts later


class _Revocable:
    """The embedded engine less the (user, action) grants revoked since: a fake of the Protocol."""

    name = "revocable"

    def __init__(self, policy: dict[str, Any]) -> None:
        self._engine = LocalPolicyEngine.from_dict(policy)
        self.revoked: set[tuple[str, str]] = set()

    async def check(self, request: AuthzRequest) -> Decision:
        if (request.user.key, request.action) in self.revoked:
            return Decision(allowed=False, reason="revoked")
        return await self._engine.check(request)

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        return [await self.check(request) for request in requests]


async def test_queued_task_is_checked_again_when_it_starts() -> None:
    """A task still queued when its caller loses access to the tool does not run its body."""
    started, release = asyncio.Event(), asyncio.Event()
    ran: list[str] = []
    engine = _Revocable(POLICY)
    mcp: FastMCP[Any] = FastMCP("root")
    guard = _guard(POLICY, engine=engine)
    mcp.add_extension(_tasks(guard, concurrency=1))  # one worker slot: `slow` holds it

    @mcp.tool(task=True)
    @require_permission()
    async def slow() -> str:
        started.set()
        await asyncio.wait_for(release.wait(), TIMEOUT)
        return "done"

    @mcp.tool(task=True)
    @require_permission()
    async def secret() -> str:
        ran.append("secret")
        return "alice's secret"

    mcp.add_middleware(guard)
    async with serve_http(mcp) as url, _client(url, "alice") as alice:
        blocker = await call_tool_task(alice, "slow", {}, timeout=TIMEOUT)
        await asyncio.wait_for(started.wait(), TIMEOUT)  # the one slot is taken
        queued = await call_tool_task(alice, "secret", {}, timeout=TIMEOUT)
        engine.revoked.add(("alice", "secret"))
        release.set()
        await blocker.wait(timeout=TIMEOUT)
        final = await queued.wait(timeout=TIMEOUT)
    assert ran == [], f"the queued task ran after alice lost access ({final.status})"


# ------------------------------------------- a plain tasks extension fails closed


async def test_plain_tasks_extension_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    """Without GuardedTasks a call that would become a task is denied, and tasks/* refused."""
    ran: list[str] = []
    mcp: FastMCP[Any] = FastMCP("root")
    mcp.add_extension(TasksExtension(url="memory://", name=f"plain-{uuid.uuid4().hex}"))

    @mcp.tool(task=True)
    @require_permission()
    async def work() -> str:
        ran.append("work")
        return "worked"

    mcp.add_middleware(_guard(POLICY))
    async with serve_http(mcp) as url, _client(url, "alice") as alice:
        outcome = await _run_task(alice, "work")
        request = GetTaskRequest(params=GetTaskRequestParams(task_id=UNKNOWN_ID))
        status = await _answer(alice.session.send_request(request, mt.Result), UNKNOWN_ID)
    # The call is answered with the guard's denial instead of a task.
    assert outcome.startswith("error:"), outcome
    assert ran == []
    assert "register permit_guard.tasks.GuardedTasks" in caplog.text
    assert status[0] == "error"
    assert "not allowed" in status[2]
