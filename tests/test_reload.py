"""Hot reload of the embedded policy: whole swaps, invalid edits kept out, audited."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, require_permission
from permit_guard.exceptions import ConfigurationError
from permit_guard.model import AuthzRequest, Principal, Resource

#: How long a test waits for the watcher at most (it polls every 0.25 s).
PATIENCE = 10.0


def policy(grants: list[str], *, user: str = "alice", role: str = "viewer") -> dict[str, Any]:
    return {
        "resources": {"mcp_server": {"actions": ["greet", "refund", "list"]}},
        "roles": {role: {"grants": {"mcp_server": grants}}},
        "users": {user: {"roles": [role]}},
    }


def write(path: Path, document: dict[str, Any] | str) -> None:
    """Write as an editor saving by rename would: the reader sees the old or the new file."""
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    os.replace(partial, path)


def asks(user: str, action: str) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user), action=action, resource=Resource(type="mcp_server")
    )


def eventually(check: Callable[[], bool]) -> bool:
    """Whether ``check`` comes true within PATIENCE seconds (polled)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[LocalPolicyEngine, Path]]:
    path = tmp_path / "policy.yaml"
    write(path, policy(["greet"]))
    engine = LocalPolicyEngine.from_file(path, reload=True)
    try:
        yield engine, path
    finally:
        engine.close()


def reload_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "permit_guard.audit" and '"policy-reload"' in r.getMessage()
    ]


def test_an_edit_takes_effect_without_a_restart_and_is_one_audit_event(
    watched: tuple[LocalPolicyEngine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Granting refund in the file allows it once the watcher has seen the change."""
    engine, path = watched
    caplog.set_level(logging.INFO, logger="permit_guard.audit")
    assert engine.decide(asks("alice", "refund")).allowed is False
    write(path, policy(["greet", "refund"]))
    assert eventually(lambda: engine.decide(asks("alice", "refund")).allowed)
    assert eventually(lambda: len(reload_events(caplog)) == 1)
    (event,) = reload_events(caplog)
    assert event == {
        "event": "policy-reload",
        "outcome": "loaded",
        "source": str(path),
        "generation": 2,
        "facts": "from the files",
    }


def test_an_invalid_edit_keeps_the_last_good_policy_and_logs_where(
    watched: tuple[LocalPolicyEngine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A grant of an unknown action is refused with its location; decisions do not change."""
    engine, path = watched
    caplog.set_level(logging.INFO)
    broken = policy(["greet", "fly"])
    write(path, broken)
    assert eventually(lambda: any(e["outcome"] == "refused" for e in reload_events(caplog)))
    (event,) = reload_events(caplog)
    assert event["generation"] == 1
    assert any("roles.viewer.grants.mcp_server" in p and "'fly'" in p for p in event["problems"])
    warning = [
        r for r in caplog.records if r.name == "permit_guard" and "not reloaded" in r.message
    ]
    assert warning
    assert "keeping the last good policy" in warning[0].getMessage()
    assert engine.decide(asks("alice", "greet")).allowed is True
    # A fix is loaded as usual.
    write(path, policy(["refund"]))
    assert eventually(lambda: engine.decide(asks("alice", "refund")).allowed)
    assert engine.decide(asks("alice", "greet")).allowed is False


def test_a_syntax_error_names_its_line(
    watched: tuple[LocalPolicyEngine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Broken YAML is refused with the line of the error."""
    engine, path = watched
    caplog.set_level(logging.INFO, logger="permit_guard.audit")
    write(path, "roles:\n  viewer: [\n")
    assert eventually(lambda: bool(reload_events(caplog)))
    (event,) = reload_events(caplog)
    assert event["outcome"] == "refused"
    assert "line" in event["problems"][0]
    assert engine.decide(asks("alice", "greet")).allowed is True


def test_a_deleted_file_keeps_the_policy_until_it_is_back(
    watched: tuple[LocalPolicyEngine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Removing the file refuses a reload; writing it again loads it."""
    engine, path = watched
    caplog.set_level(logging.INFO, logger="permit_guard.audit")
    path.unlink()
    assert eventually(lambda: bool(reload_events(caplog)))
    assert reload_events(caplog)[0]["outcome"] == "refused"
    assert "file not found" in reload_events(caplog)[0]["problems"][0]
    assert engine.decide(asks("alice", "greet")).allowed is True
    write(path, policy(["refund"]))
    assert eventually(lambda: engine.decide(asks("alice", "refund")).allowed)


def test_saving_the_same_content_is_not_a_reload(
    watched: tuple[LocalPolicyEngine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A touch, or a save without changes, swaps nothing and audits nothing."""
    engine, path = watched
    caplog.set_level(logging.INFO, logger="permit_guard.audit")
    write(path, policy(["greet"]))
    assert engine.reload() is False
    assert reload_events(caplog) == []


def test_no_decision_sees_half_a_policy(tmp_path: Path) -> None:
    """Flipping between two policies under concurrent decisions: each sees one whole policy.

    In the first, alice is a viewer and viewers greet; in the second, she is
    an editor and editors greet. Model of one with facts of the other denies.
    """
    path = tmp_path / "policy.yaml"
    first, second = policy(["greet"]), policy(["greet"], role="editor")
    write(path, first)
    engine = LocalPolicyEngine.from_file(path, reload=True)
    stop = threading.Event()
    denied: list[str] = []
    decided = [0]

    def decide() -> None:
        request = asks("alice", "greet")
        while not stop.is_set():
            decision = engine.decide(request)
            decided[0] += 1
            if not decision.allowed:
                denied.append(decision.reason)

    threads = [threading.Thread(target=decide) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for flip in range(60):
            write(path, second if flip % 2 == 0 else first)
            engine.reload()  # or the watcher did: one of the two loads it
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=PATIENCE)
        engine.close()
    assert decided[0] > 0
    assert denied == []
    assert engine.policy.policy.users["alice"].roles_by_tenant() == {"default": ["viewer"]}


def test_runtime_facts_survive_a_model_edit(tmp_path: Path) -> None:
    """An assignment made through engine.api is kept when only the model changes."""
    path = tmp_path / "policy.yaml"
    base = policy(["greet"])
    base["users"]["bob"] = {}
    write(path, base)
    engine = LocalPolicyEngine.from_file(path, reload=True)
    try:
        import asyncio

        asyncio.run(
            engine.api.users.assign_role({"user": "bob", "role": "viewer", "tenant": "default"})
        )
        assert engine.decide(asks("bob", "greet")).allowed is True
        base["roles"]["viewer"]["grants"]["mcp_server"] = ["greet", "refund"]
        write(path, base)
        assert engine.reload() is True
        assert engine.decide(asks("bob", "refund")).allowed is True
    finally:
        engine.close()


def test_runtime_facts_that_no_longer_fit_refuse_the_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Removing a role that an api assignment uses keeps the last good policy."""
    path = tmp_path / "policy.yaml"
    base = policy(["greet"])
    base["roles"]["auditor"] = {"grants": {"mcp_server": ["list"]}}
    write(path, base)
    engine = LocalPolicyEngine.from_file(path, reload=True)
    caplog.set_level(logging.INFO, logger="permit_guard.audit")
    try:
        import asyncio

        asyncio.run(
            engine.api.users.assign_role({"user": "alice", "role": "auditor", "tenant": "default"})
        )
        del base["roles"]["auditor"]
        write(path, base)
        assert engine.reload() is False
        (event,) = reload_events(caplog)
        assert event["why"] == "the facts changed at run time do not fit it"
        assert any("'auditor'" in problem for problem in event["problems"])
        assert engine.decide(asks("alice", "list")).allowed is True
    finally:
        engine.close()


def test_edited_file_facts_replace_runtime_facts_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When the file's users change, the file wins over api changes, and says so."""
    path = tmp_path / "policy.yaml"
    base = policy(["greet"])
    write(path, base)
    engine = LocalPolicyEngine.from_file(path, reload=True)
    caplog.set_level(logging.INFO)
    try:
        import asyncio

        asyncio.run(
            engine.api.users.assign_role({"user": "carol", "role": "viewer", "tenant": "default"})
        )
        base["users"]["dave"] = {"roles": ["viewer"]}
        write(path, base)
        assert engine.reload() is True
        assert engine.decide(asks("dave", "greet")).allowed is True
        assert engine.decide(asks("carol", "greet")).allowed is False
        assert reload_events(caplog)[-1]["facts"] == "replaced"
        assert any(
            "replace the facts changed at run time" in r.getMessage() for r in caplog.records
        )
    finally:
        engine.close()


def test_a_data_file_is_watched_too(tmp_path: Path) -> None:
    """Editing the data file (its users) reloads the policy with the new facts."""
    path, data = tmp_path / "policy.yaml", tmp_path / "data.yaml"
    write(path, policy(["greet"]))
    write(data, {"users": {"erin": {"roles": ["viewer"]}}})
    engine = LocalPolicyEngine.from_file(path, data=data, reload=True)
    try:
        assert engine.decide(asks("erin", "greet")).allowed is True
        write(data, {"users": {"frank": {"roles": ["viewer"]}}})
        assert eventually(lambda: engine.decide(asks("frank", "greet")).allowed)
        assert engine.decide(asks("erin", "greet")).allowed is False
    finally:
        engine.close()


def test_reload_needs_a_watched_engine(tmp_path: Path) -> None:
    """reload() on an engine loaded without reload=True says how to get one."""
    path = tmp_path / "policy.yaml"
    write(path, policy(["greet"]))
    with pytest.raises(ConfigurationError, match=r"from_file\(path, reload=True\)"):
        LocalPolicyEngine.from_file(path).reload()


def test_close_stops_the_watcher(tmp_path: Path) -> None:
    """After close(), edits are no longer loaded and the thread is gone."""
    path = tmp_path / "policy.yaml"
    write(path, policy(["greet"]))
    engine = LocalPolicyEngine.from_file(path, reload=True)
    engine.close()
    assert not any(
        t.name == "permit-guard-policy-reload" and t.is_alive() for t in threading.enumerate()
    )
    write(path, policy(["refund"]))
    time.sleep(0.6)  # longer than two polls
    assert engine.decide(asks("alice", "greet")).allowed is True


async def test_the_setting_reloads_a_guarded_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PERMIT_MCP_POLICY_RELOAD=true: a real server's tool call flips after an edit."""
    path = tmp_path / "policy.yaml"
    document = policy(["greet", "list"])
    document["resources"]["mcp_server_tools"] = {"actions": ["list"]}
    document["roles"]["viewer"]["grants"]["mcp_server_tools"] = ["list"]
    write(path, document)
    monkeypatch.setenv("PERMIT_MCP_POLICY_FILE", str(path))
    monkeypatch.setenv("PERMIT_MCP_POLICY_RELOAD", "true")
    monkeypatch.setenv("PERMIT_MCP_IDENTITY_MODE", "fixed")
    monkeypatch.setenv("PERMIT_MCP_IDENTITY_FIXED_VALUE", "alice")
    server: FastMCP[Any] = FastMCP("reloading")

    @server.tool
    @require_permission()
    def greet() -> str:
        """Say hello."""
        return "hello"

    middleware = PermitMcpMiddleware()
    server.add_middleware(middleware)
    engine = middleware.engine
    assert isinstance(engine, LocalPolicyEngine)
    try:
        async with Client(server) as client:
            assert (await client.call_tool("greet", {})).data == "hello"
            document["roles"]["viewer"]["grants"]["mcp_server"] = ["list"]
            write(path, document)
            assert eventually(lambda: not engine.decide(asks("alice", "greet")).allowed)
            with pytest.raises(ToolError):
                await client.call_tool("greet", {})
    finally:
        engine.close()
