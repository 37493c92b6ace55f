"""Decision logs: OPA-style lines from a served guard, rotation, list events, and replay.

Logs are recorded by driving the billing server through ``fastmcp.Client``
with a real :class:`DecisionLogSink` on a file in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

from permit_guard import (
    ConfigurationError,
    DecisionEvent,
    DecisionLogSink,
    LocalPolicyEngine,
    LoggingSink,
    PermitMcpMiddleware,
)
from permit_guard.cli import app
from permit_guard.decision_log import MASKED, decision_record
from permit_guard.model import AuthzRequest

from .conftest import POLICY, Caller, build_server
from .test_replay import CALLS, EDITED, write_policy
from .test_telemetry import named, spans_recorded


@pytest.fixture
def recording() -> Iterator[InMemorySpanExporter]:
    """Spans of this test only (see tests/test_telemetry.py)."""
    with spans_recorded() as exporter:
        yield exporter


async def serve(
    sink: Callable[[DecisionEvent], None],
    calls: list[tuple[str | None, str, dict[str, Any]]],
    **options: Any,
) -> None:
    """Serve the billing server under POLICY with ``sink``; list tools, then make ``calls``."""
    caller = Caller()
    mcp = build_server()
    PermitMcpMiddleware(
        engine=options.pop("engine", None) or LocalPolicyEngine.from_dict(POLICY),
        identity=caller,
        default_deny=True,
        audit_sink=sink,
        **options,
    ).attach(mcp)
    async with Client(mcp) as client:
        await client.list_tools()
        for user, tool, arguments in calls:
            caller.key = user
            await client.call_tool(tool, arguments, raise_on_error=False)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def event(**fields: Any) -> DecisionEvent:
    base: dict[str, Any] = {"allowed": True, "user": "bob", "method": "tools/call"}
    return DecisionEvent(**(base | {"reason": "r", "engine": "local"} | fields))


# -- what a line holds -------------------------------------------------------------------------


async def test_lines_are_opa_style_with_argument_values_masked(tmp_path: Path) -> None:
    """By default a line has an id, time, input, result, reason, engine, timing; values masked."""
    log = tmp_path / "decisions.jsonl"
    with DecisionLogSink(log) as sink:
        await serve(sink, [("carol", "refund", {"amount": 5000.5, "memo": "secret"})])
    listing, call = lines(log)
    assert uuid.UUID(call["decision_id"]).version == 4
    assert call["timestamp"].endswith("+00:00")
    assert call["path"] == "tools/call"
    assert call["input"] == {
        "method": "tools/call",
        "component": "refund",
        "user": "carol",
        "tenant": "default",
        "request": {
            "user": {"key": "carol"},
            "action": "refund",
            "resource": {
                "type": "mcp_server",
                "tenant": "default",
                "attributes": {"arg_amount": MASKED, "mcp_method": MASKED, "tool_name": MASKED},
            },
            "context": {},
        },
    }
    assert call["masked"] == [
        "/input/request/resource/attributes/arg_amount",
        "/input/request/resource/attributes/mcp_method",
        "/input/request/resource/attributes/tool_name",
    ]
    assert call["erased"] == ["/input/request/user/attributes"]
    assert call["result"] == {"allowed": False, "enforced": True, "cached": False}
    assert "grants mcp_server:refund" in call["reason"]
    assert call["engine"] == "local"
    assert call["metrics"]["timer_decision_ns"] > 0
    assert listing["result"]["listed"] == 4
    assert "request" not in listing["input"]
    assert "secret" not in log.read_text()
    assert "5000.5" not in log.read_text()


async def test_with_argument_values_the_request_is_complete(tmp_path: Path) -> None:
    """With audit_argument_values the line holds the exact request the engine was asked."""
    log = tmp_path / "decisions.jsonl"
    with DecisionLogSink(log) as sink:
        await serve(sink, [("carol", "refund", {"amount": 5})], audit_argument_values=True)
    call = lines(log)[-1]
    request = AuthzRequest.from_pdp_json(call["input"]["request"])
    assert request.resource.attributes["arg_amount"] == 5
    assert (request.user.key, request.action) == ("carol", "refund")
    assert "masked" not in call
    assert "erased" not in call


async def test_trace_ids_are_the_decision_spans(
    tmp_path: Path, recording: InMemorySpanExporter
) -> None:
    """In a trace, a line's trace_id and span_id are its decision span's."""
    log = tmp_path / "decisions.jsonl"
    with DecisionLogSink(log) as sink:
        await serve(sink, [("alice", "greet", {"name": "x"})])
    call = lines(log)[-1]
    (span,) = named(recording.get_finished_spans(), "permit_guard.decide tools/call")
    assert call["trace_id"] == format(span.context.trace_id, "032x")
    assert call["span_id"] == format(span.context.span_id, "016x")


def test_no_trace_ids_outside_a_trace() -> None:
    """Outside any span a line has no trace_id or span_id; a stream target works too."""
    stream = io.StringIO()
    DecisionLogSink(stream)(event())
    record = json.loads(stream.getvalue())
    assert "trace_id" not in record
    assert "span_id" not in record
    assert record["result"] == {"allowed": True, "enforced": True, "cached": False}


def test_pointers_escape_slashes() -> None:
    """A masked attribute whose name holds '/' or '~' is escaped as a JSON pointer (RFC 6901)."""
    record = decision_record(
        event(resource_type="mcp_server", attributes=("a/b", "c~d")), trace=("t", "s")
    )
    assert record["masked"] == [
        "/input/request/resource/attributes/a~1b",
        "/input/request/resource/attributes/c~0d",
    ]
    assert (record["trace_id"], record["span_id"]) == ("t", "s")


# -- files: rotation, threads, errors ----------------------------------------------------------


def test_rotation_keeps_backups_like_rotating_file_handler(tmp_path: Path) -> None:
    """Past max_bytes the file moves to .1 (and on); at most `backups` are kept, each bounded."""
    log = tmp_path / "decisions.jsonl"
    sink = DecisionLogSink(log, max_bytes=1000, backups=2)
    for number in range(40):
        sink(event(reason=f"r{number:02d}"))
    sink.close()
    rotated = [log, tmp_path / "decisions.jsonl.1", tmp_path / "decisions.jsonl.2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in rotated)
    assert all(0 < p.stat().st_size <= 1000 for p in rotated)
    kept = [r["reason"] for p in reversed(rotated) for r in lines(p)]
    assert kept == [f"r{n:02d}" for n in range(40 - len(kept), 40)]  # the newest, in order


def test_appends_to_an_existing_file_counting_its_size(tmp_path: Path) -> None:
    """A reopened log is appended to, and its existing size counts toward rotation."""
    log = tmp_path / "decisions.jsonl"
    log.write_text("x" * 900 + "\n", encoding="utf-8")
    sink = DecisionLogSink(log, max_bytes=1000, backups=1)
    sink(event())
    sink.close()
    assert (tmp_path / "decisions.jsonl.1").read_text(encoding="utf-8") == "x" * 900 + "\n"
    assert len(lines(log)) == 1


def test_threads_write_whole_lines(tmp_path: Path) -> None:
    """Lines written from many threads at once, rotating, are never interleaved or lost."""
    log = tmp_path / "decisions.jsonl"
    sink = DecisionLogSink(log, max_bytes=20_000, backups=50)

    def write(thread: int) -> None:
        for number in range(100):
            sink(event(reason=f"{thread}-{number}"))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    sink.close()
    reasons = [r["reason"] for p in tmp_path.iterdir() for r in lines(p)]
    assert sorted(reasons) == sorted(f"{t}-{n}" for t in range(8) for n in range(100))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: DecisionLogSink(d / "missing" / "x.jsonl"), "cannot be opened for appending"),
        (lambda d: DecisionLogSink(d), "cannot be opened for appending"),
        (lambda d: DecisionLogSink(d / "x", max_bytes=10, backups=0), "at least one backup"),
        (lambda d: DecisionLogSink(d / "x", max_bytes=-1), "must be >= 0"),
        (lambda d: DecisionLogSink(io.StringIO(), max_bytes=10), "only a file can be rotated"),
    ],
)
def test_bad_targets_are_configuration_errors(
    tmp_path: Path, make: Callable[[Path], Any], message: str
) -> None:
    """A log that cannot be written or rotated fails at construction, naming the fix or path."""
    with pytest.raises(ConfigurationError, match=message) as raised:
        make(tmp_path)
    if "opened" in message:
        assert str(tmp_path.resolve()) in str(raised.value)


def test_settings_choose_the_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PERMIT_MCP_DECISION_LOG_FILE (with its rotation settings) replaces the logger sink."""
    log = tmp_path / "decisions.jsonl"
    monkeypatch.setenv("PERMIT_MCP_DECISION_LOG_FILE", str(log))
    monkeypatch.setenv("PERMIT_MCP_DECISION_LOG_MAX_BYTES", "5000")
    monkeypatch.setenv("PERMIT_MCP_DECISION_LOG_BACKUPS", "3")
    sink = PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY)).audit_sink
    assert isinstance(sink, DecisionLogSink)
    sink.close()
    assert (sink.path, sink.max_bytes, sink.backups) == (log, 5000, 3)
    silenced = PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(POLICY), enable_audit_logging=False
    )
    assert silenced.audit_sink is None
    monkeypatch.setenv("PERMIT_MCP_DECISION_LOG_FILE", str(tmp_path / "no" / "such.jsonl"))
    with pytest.raises(ConfigurationError, match="cannot be opened"):
        PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY))
    monkeypatch.delenv("PERMIT_MCP_DECISION_LOG_FILE")
    default = PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY)).audit_sink
    assert isinstance(default, LoggingSink)


# -- list events -------------------------------------------------------------------------------


async def list_events(**options: Any) -> dict[str | None, DecisionEvent]:
    """The tools/list event of alice, carol, lee and a caller without credentials, by user."""
    seen: list[DecisionEvent] = []
    caller = Caller()
    mcp = build_server()
    PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(POLICY),
        identity=caller,
        audit_sink=seen.append,
        **options,
    ).attach(mcp)
    found: dict[str | None, DecisionEvent] = {}
    async with Client(mcp) as client:
        for user in ("alice", "carol", "lee", None):
            caller.key = user
            seen.clear()
            await client.list_tools()
            (found[user],) = [e for e in seen if e.method == "tools/list"]
    return found


async def test_a_list_refused_but_showing_public_items_is_not_allowed() -> None:
    """A list cut to its @public items (gate denied, no credentials) says allowed: false."""
    found = await list_events()
    lee, anonymous = found["lee"], found[None]
    assert (lee.allowed, lee.listed, lee.hidden) == (False, 1, 4)
    assert lee.reason.startswith("gate denied")
    assert (anonymous.allowed, anonymous.listed) == (False, 1)
    carol = found["carol"]  # granted, and filtered by the engine
    assert (carol.allowed, carol.listed, carol.hidden, carol.reason) == (True, 4, 1, "filtered")
    assert found["alice"].allowed is True


async def test_list_events_name_hidden_items_when_asked(tmp_path: Path) -> None:
    """With audit_hidden_names a list event names what it hid; by default it does not."""
    assert {e.hidden_names for e in (await list_events()).values()} == {None}
    found = await list_events(audit_hidden_names=True)
    assert found["carol"].hidden_names == ("undecorated",)
    assert found["alice"].hidden_names == ()
    assert set(found["lee"].hidden_names or ()) == {
        "delete_invoice",
        "greet",
        "refund",
        "undecorated",
    }
    assert decision_record(found["carol"])["result"]["hidden_names"] == ["undecorated"]


# -- replay ------------------------------------------------------------------------------------


def replay(*args: Any) -> Any:
    return CliRunner().invoke(app, ["replay", *map(str, args)], prog_name="permit-guard")


def test_replay_reads_a_decision_log(tmp_path: Path) -> None:
    """`permit-guard replay` finds the same flips in a decision log as in the audit log of a run."""
    policy = write_policy(tmp_path / "policy.json", POLICY)
    new = write_policy(tmp_path / "policy-next.json", EDITED)
    decisions, audit = tmp_path / "decisions.jsonl", tmp_path / "audit.jsonl"
    logger = logging.getLogger("permit_guard.audit.test.decision_log")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(audit, mode="w", encoding="utf-8")
    logger.addHandler(handler)
    log_sink = DecisionLogSink(decisions)
    both = [log_sink, LoggingSink(logger)]
    try:
        run = serve(
            lambda e: [sink(e) for sink in both],
            CALLS,
            engine=LocalPolicyEngine.from_file(policy),
            audit_argument_values=True,
        )
        asyncio.run(run)
    finally:
        log_sink.close()
        logger.removeHandler(handler)
        handler.close()
    from_log, from_audit = (replay(log, "--policy", new, "--json") for log in (decisions, audit))
    assert from_log.exit_code == 1, from_log.output
    found, expected = json.loads(from_log.stdout), json.loads(from_audit.stdout)
    assert found["summary"] == expected["summary"]
    assert found["summary"]["flipped"] == 2
    assert found["flips"] == expected["flips"]  # line numbers included: one line per event
    denied = next(f for f in found["flips"] if f["change"] == "allow -> deny")
    line = lines(decisions)[denied["line"] - 1]
    assert line["input"]["request"]["resource"]["attributes"]["arg_amount"] == 5


def test_a_masked_decision_log_is_not_replayed(tmp_path: Path) -> None:
    """A decision log recorded without argument values replays nothing: exit 2, saying why."""
    log = tmp_path / "decisions.jsonl"
    with DecisionLogSink(log) as sink:
        asyncio.run(serve(sink, CALLS))
    result = replay(log, "--policy", write_policy(tmp_path / "policy.json", POLICY))
    assert result.exit_code == 2
    assert "PERMIT_MCP_AUDIT_ARGUMENT_VALUES=true" in result.stderr


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"decision_id": "x"}', "not a decision-log entry: no input, result, reason, engine"),
        (
            '{"decision_id": "x", "input": [], "result": {}, "reason": "", "engine": "local"}',
            "not a decision-log entry: input and result must be JSON objects",
        ),
        (
            '{"decision_id": "x", "input": {"method": "tools/call"}, "result": {"allowed": 1},'
            ' "reason": "", "engine": "local"}',
            "result.allowed must be true or false, not 1",
        ),
    ],
)
def test_a_bad_decision_log_line_names_file_and_line(
    tmp_path: Path, line: str, problem: str
) -> None:
    """A decision-log line that cannot be read is exit 2, naming FILE:LINE and the problem."""
    log = tmp_path / "decisions.jsonl"
    log.write_text("\n" + line + "\n", encoding="utf-8")
    result = replay(log, "--policy", write_policy(tmp_path / "policy.json", POLICY))
    assert result.exit_code == 2
    assert f"{log}:2: {problem}" in result.stderr
