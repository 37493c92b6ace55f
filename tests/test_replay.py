"""``permit-guard replay``: a real audit log, recorded from a served guard, decided again.

The log is recorded by driving the billing server through ``fastmcp.Client``
with argument values on, its events written by the real ``LoggingSink`` to a
file through a logging handler, exactly as an operator would record one.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from typer.testing import CliRunner

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware
from permit_guard.audit import LoggingSink
from permit_guard.cli import app
from permit_guard.model import AuthzRequest, MalformedRequest, Principal, Resource
from permit_guard.testing import LocalPDP, RecordingEngine
from tests.test_cli import cli

from .conftest import POLICY, Caller, build_server

#: POLICY with the clerk's small refunds taken away and refunds given to the lister.
EDITED: dict[str, Any] = copy.deepcopy(POLICY)
EDITED["roles"]["clerk"]["grants"].pop("small_refunds")
EDITED["roles"]["lister"]["grants"]["mcp_server"] = ["greet", "refund"]

#: (user, tool, arguments) driven through the server, in order.
CALLS: list[tuple[str | None, str, dict[str, Any]]] = [
    ("alice", "refund", {"amount": 5}),
    ("alice", "health", {}),
    ("carol", "refund", {"amount": 5}),
    ("carol", "refund", {"amount": 500}),
    ("carol", "greet", {"name": "x"}),
    ("lee", "refund", {"amount": 7}),
    ("lee", "undecorated", {}),
    (None, "refund", {"amount": 5}),
]


def write_policy(path: Path, policy: dict[str, Any]) -> Path:
    path.write_text(json.dumps(policy), encoding="utf-8")
    return path


async def record(
    log: Path, policy: Path, *, argument_values: bool = True, engine: Any = None
) -> None:
    """Serve the billing server under ``policy`` and drive CALLS; its audit log goes to ``log``."""
    logger = logging.getLogger(f"permit_guard.audit.test.{log.stem}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(log, mode="w", encoding="utf-8")
    logger.addHandler(handler)
    caller = Caller()
    mcp = build_server()
    PermitMcpMiddleware(
        engine=engine or LocalPolicyEngine.from_file(policy),
        identity=caller,
        default_deny=True,
        audit_argument_values=argument_values,
        audit_sink=LoggingSink(logger),
    ).attach(mcp)
    try:
        async with Client(mcp) as client:
            await client.list_tools()
            for user, tool, arguments in CALLS:
                caller.key = user
                await client.call_tool(tool, arguments, raise_on_error=False)
    finally:
        logger.removeHandler(handler)
        handler.close()


def replay(*args: str) -> Any:
    return CliRunner().invoke(app, ["replay", *map(str, args)], prog_name="permit-guard")


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the audit log, the policy it was recorded under, the edited policy)."""
    old = write_policy(tmp_path / "policy.json", POLICY)
    new = write_policy(tmp_path / "policy-next.json", EDITED)
    log = tmp_path / "audit.jsonl"
    asyncio.run(record(log, old))
    return log, old, new


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


# -- what the audit events record --------------------------------------------------------------


async def test_events_carry_the_exact_request(tmp_path: Path) -> None:
    """With argument values on, each engine decision's event holds the request the engine saw."""
    policy = write_policy(tmp_path / "policy.json", POLICY)
    engine = RecordingEngine(LocalPolicyEngine.from_file(policy))
    log = tmp_path / "audit.jsonl"
    await record(log, policy, engine=engine)
    asked = [r for r in engine.requests if r.resource.attributes.get("mcp_method") == "tools/call"]
    written = [e for e in events(log) if e["method"] == "tools/call" and "request" in e]
    assert [AuthzRequest.from_pdp_json(e["request"]) for e in written] == asked
    assert all(e["enforced"] is True for e in events(log))


async def test_events_without_argument_values_carry_no_request(tmp_path: Path) -> None:
    """Argument values off (the default): no request, so no user attributes, in any event."""
    policy = write_policy(tmp_path / "policy.json", POLICY)
    log = tmp_path / "audit.jsonl"
    await record(log, policy, argument_values=False)
    assert not [e for e in events(log) if "request" in e or "attribute_values" in e]


def test_from_pdp_json_round_trips() -> None:
    """A request written with to_pdp_json reads back equal, user attributes and context included."""
    request = AuthzRequest(
        user=Principal(key="bob", attributes={"department": "finance"}),
        action="delete",
        resource=Resource(type="invoice", key="42", tenant="acme", attributes={"arg_x": [1]}),
        context={"ip": "10.0.0.1"},
    )
    assert AuthzRequest.from_pdp_json(json.loads(json.dumps(request.to_pdp_json()))) == request


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "request must be an object, not list"),
        ({"action": "a", "resource": {"type": "t"}}, "request has no user"),
        ({"user": {"key": ""}, "action": "a", "resource": {"type": "t"}}, "request.user.key"),
        ({"user": {"key": "u"}, "action": 3, "resource": {"type": "t"}}, "request.action"),
        ({"user": {"key": "u"}, "action": "a", "resource": {}}, "request.resource has no type"),
        (
            {"user": {"key": "u"}, "action": "a", "resource": {"type": "t", "key": 4}},
            "request.resource.key must be a string",
        ),
        (
            {"user": {"key": "u"}, "action": "a", "resource": {"type": "t", "attributes": []}},
            "request.resource.attributes must be an object",
        ),
        (
            {"user": {"key": "u"}, "action": "a", "resource": {"type": "t"}, "extra": 1},
            "request has unknown field(s) extra",
        ),
        (
            {"user": {"key": "u"}, "action": "a", "resource": {"type": "t", "context": {"x": 1}}},
            "request.resource.context must be empty",
        ),
    ],
)
def test_from_pdp_json_rejects_malformed_input(data: object, message: str) -> None:
    """Malformed request JSON is a MalformedRequest naming the field, never a half-built request."""
    with pytest.raises(MalformedRequest) as raised:
        AuthzRequest.from_pdp_json(data)
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError)


# -- replay ------------------------------------------------------------------------------------


def test_the_same_policy_flips_nothing(recorded: tuple[Path, Path, Path]) -> None:
    """Replayed against the policy it was recorded under, nothing flips: exit 0."""
    log, old, _ = recorded
    result = replay(log, "--policy", old)
    assert result.exit_code == 0, result.output
    assert "0 flipped" in result.stdout
    assert "allow -> deny " not in result.stdout


def test_flips_are_printed_grouped_with_both_reasons(recorded: tuple[Path, Path, Path]) -> None:
    """An edited policy's flips, per component, role and tenant, with old and new reason: exit 1."""
    log, _, new = recorded
    result = replay(log, "--policy", new)
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert (
        "allow -> deny  tools/call refund  roles: clerk  tenant: default  "
        "(1 decision; user carol; line "
    ) in out
    assert "    was: role 'clerk' grants refund on resource set 'small_refunds'" in out
    assert "    now: no role, user set or resource role of user 'carol'" in out
    assert "deny -> allow  tools/call refund  roles: lister  tenant: default  (1 decision; " in out
    assert "now: role 'lister' grants mcp_server:refund in tenant 'default'" in out
    # alice's refund, carol's two refunds and greet, and lee's refund were replayed; the public
    # health call, lee's undecorated call and the caller without credentials were not.
    assert "5 replayed: 3 unchanged, 2 flipped (1 allow -> deny, 1 deny -> allow)" in out
    assert "not replayed: 3 decided by the guard itself, 0 without a recorded request" in out


def test_json_output(recorded: tuple[Path, Path, Path]) -> None:
    """--json gives the summary, the groups and each flip with its log line."""
    log, _, new = recorded
    result = replay(log, "--policy", new, "--json")
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert found["summary"] == {
        "events": len(events(log)),
        "replayed": 5,
        "unchanged": 3,
        "flipped": 2,
        "allow_to_deny": 1,
        "deny_to_allow": 1,
        "decided_by_guard": 3,
        "without_request": 0,
        "lists": found["summary"]["lists"],
    }
    assert found["summary"]["lists"] >= 1
    by_change = {flip["change"]: flip for flip in found["flips"]}
    denied = by_change["allow -> deny"]
    assert (denied["user"], denied["component"], denied["roles"]) == ("carol", "refund", ["clerk"])
    assert (denied["was"]["allowed"], denied["now"]["allowed"]) == (True, False)
    line = events(log)[denied["line"] - 1]
    assert (line["user"], line["component"], line["attribute_values"]["arg_amount"]) == (
        "carol",
        "refund",
        5,
    )
    assert [g["users"] for g in found["groups"]] == [["carol"], ["lee"]]


def test_replay_through_a_pdp(recorded: tuple[Path, Path, Path]) -> None:
    """--pdp asks a real PDP over HTTP: the same flips, roles unknown."""
    log, _, new = recorded
    with LocalPDP.from_file(new) as pdp:
        result = replay(log, "--pdp", pdp.url, "--api-key", pdp.api_key, "--json")
    assert result.exit_code == 1, result.output
    found = json.loads(result.stdout)
    assert found["summary"]["flipped"] == 2
    assert {flip["roles"] for flip in found["flips"]} == {None}
    assert found["engine"].startswith("Permit.io PDP at http://127.0.0.1:")


def test_log_without_requests_is_refused(tmp_path: Path) -> None:
    """A log recorded with argument values off replays nothing: exit 2, saying how to record one."""
    policy = write_policy(tmp_path / "policy.json", POLICY)
    log = tmp_path / "audit.jsonl"
    asyncio.run(record(log, policy, argument_values=False))
    result = replay(log, "--policy", policy)
    assert result.exit_code == 2
    assert "PERMIT_MCP_AUDIT_ARGUMENT_VALUES=true" in result.stderr


def test_events_without_request_are_counted(recorded: tuple[Path, Path, Path]) -> None:
    """Among recorded requests, an event without one is counted, not replayed."""
    log, old, _ = recorded
    lines = events(log)
    stripped = next(e for e in lines if e.get("component") == "refund" and "request" in e)
    del stripped["request"]
    log.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    result = replay(log, "--policy", old, "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)["summary"]
    assert (summary["replayed"], summary["without_request"]) == (4, 1)


def test_logging_prefixes_and_blank_lines_are_accepted(recorded: tuple[Path, Path, Path]) -> None:
    """Lines as logging.basicConfig writes them (LEVEL:logger:{...}) and blank lines are read."""
    log, _, new = recorded
    prefixed = [f"WARNING:permit_guard.audit:{line}\n\n" for line in log.read_text().splitlines()]
    log.write_text("".join(prefixed), encoding="utf-8")
    result = replay(log, "--policy", new, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["summary"]["replayed"] == 5


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json at all", "not an audit event (no JSON object on the line)"),
        ('{"allowed": true', "not valid JSON"),
        ('{"user": "bob"}', "not an audit event: no allowed, method, reason, engine"),
        (
            '{"allowed": "yes", "method": "tools/call", "reason": "r", "engine": "local"}',
            "allowed must be true or false",
        ),
        (
            '{"allowed": true, "method": "tools/call", "reason": "r", "engine": "local", '
            '"request": {"user": {"key": 1}, "action": "a", "resource": {"type": "t"}}}',
            "request.user.key must be a non-empty string",
        ),
        (
            '{"allowed": true, "method": "m", "reason": "r", "engine": "local"} trailing',
            "text after",
        ),
    ],
)
def test_a_bad_line_names_file_and_line(
    recorded: tuple[Path, Path, Path], line: str, problem: str
) -> None:
    """A line that is not an audit event is exit 2, naming FILE:LINE and the problem."""
    log, _, new = recorded
    good = log.read_text(encoding="utf-8").splitlines()
    log.write_text("\n".join([good[0], "", line, *good[1:]]) + "\n", encoding="utf-8")
    result = replay(log, "--policy", new)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {log}:3: ")
    assert problem in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--policy", "{policy}", "--pdp", "http://127.0.0.1:1"), "exactly one of --policy"),
        ((), "exactly one of --policy"),
        (("--pdp", "http://127.0.0.1:1", "--data", "{policy}"), "--data FILE goes with --policy"),
        (("--policy", "{missing}"), "missing.yaml"),
        (("--policy", "{policy}", "--log", "{missing}"), "cannot be read"),
        (("--policy", "{policy}", "--log", "{empty}"), "no audit events"),
        (("--pdp", "http://127.0.0.1:9", "--api-key", "k"), "the policy engine could not decide"),
    ],
)
def test_usage_errors_exit_2(
    recorded: tuple[Path, Path, Path], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """Bad options, policies, logs and an unreachable PDP are exit 2 with a one-line reason."""
    log, old, _ = recorded
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    names = {
        "policy": str(old),
        "missing": str(tmp_path / "missing.yaml"),
        "empty": str(tmp_path / "empty.jsonl"),
    }
    given = [a.format(**names) for a in args]
    if "--log" in given:
        at = given.index("--log")
        log = Path(given[at + 1])
        del given[at : at + 2]
    result = replay(log, *given)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_the_console_script(recorded: tuple[Path, Path, Path]) -> None:
    """The installed permit-guard script replays a log: the flips on stdout, exit 1."""
    log, _, new = recorded
    done = cli("replay", str(log), "--policy", str(new), script=True)
    assert done.code == 1, done.err
    assert "allow -> deny  tools/call refund  roles: clerk  tenant: default" in done.out
    assert done.err == ""
