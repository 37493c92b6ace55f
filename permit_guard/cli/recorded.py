"""Reading an audit log back: one recorded decision per line, each checked.

The log is what :class:`~permit_guard.audit.LoggingSink` writes to the
``permit_guard.audit`` logger: one JSON event per line. A line may carry a
logging prefix before the event (``WARNING:permit_guard.audit:{...}``, as
``logging.basicConfig`` writes it); the event is the JSON object from the
line's first ``{`` to its end. A line may also be a decision-log entry, as
:class:`~permit_guard.decision_log.DecisionLogSink` writes it (told by its
``decision_id``); its request counts only when nothing of it was masked or
erased (recorded with argument values on). Blank lines are skipped; any other
line is an error naming the file and the line.

Example::

    for event in read_audit_log(Path("audit.jsonl")):
        if event.request is not None:
            print(event.line, event.request.to_pdp_json())
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from permit_guard.exceptions import PermitGuardError
from permit_guard.model import AuthzRequest, MalformedRequest

__all__ = ["AuditLogError", "Recorded", "read_audit_log"]

#: Longest line read: an event with every argument value is far below it.
MAX_LINE_BYTES: Final = 1024 * 1024

_DECODER: Final = json.JSONDecoder()


class AuditLogError(PermitGuardError, ValueError):
    """An audit log that cannot be read back.

    Attributes:
        path: The log file.
        line: The line at fault (1-based), or 0 for the whole file.
        problem: What is wrong with it.
    """

    def __init__(self, path: Path, line: int, problem: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(frozen=True, kw_only=True, slots=True)
class Recorded:
    """One recorded decision (a :class:`~permit_guard.audit.DecisionEvent`, read back).

    Attributes:
        line: Where it stands in the log (1-based).
        method: The MCP method.
        component: The tool or prompt name, or the URI read (``None`` for a
            method-level check or a list).
        user: The user key (``None`` without valid credentials).
        tenant: The tenant checked.
        allowed: What was decided.
        reason: Why.
        engine: Which engine decided (``guard`` when none was asked).
        listing: Whether it is the event of a whole list request.
        request: The request the engine was asked, when the event records it
            (argument values on).
    """

    line: int
    method: str
    component: str | None
    user: str | None
    tenant: str | None
    allowed: bool
    reason: str
    engine: str
    listing: bool
    request: AuthzRequest | None


def read_audit_log(path: Path) -> list[Recorded]:
    """Every decision of an audit log, in order.

    Raises:
        AuditLogError: When the file cannot be read, or naming the first line
            that is not an audit event.
    """
    try:
        with path.open("rb") as stream:
            return [_event(path, number, raw) for number, raw in _lines(path, stream)]
    except OSError as exc:
        raise AuditLogError(path, 0, f"cannot be read: {exc.strerror or exc}") from exc


def _lines(path: Path, stream: Any) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > MAX_LINE_BYTES:
            raise AuditLogError(path, number, f"longer than {MAX_LINE_BYTES} bytes")
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise AuditLogError(path, number, "is not UTF-8 text") from exc
        if text:
            yield number, text


def _event(path: Path, number: int, text: str) -> Recorded:
    start = text.find("{")
    if start < 0:
        raise AuditLogError(path, number, "not an audit event (no JSON object on the line)")
    try:
        data, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise AuditLogError(
            path, number, f"not valid JSON: {exc.msg} at column {exc.colno}"
        ) from exc
    if text[end:].strip():
        raise AuditLogError(path, number, "text after the JSON event")
    try:
        return _recorded(number, data)
    except (MalformedRequest, _NotAnEvent) as exc:
        raise AuditLogError(path, number, str(exc)) from exc


class _NotAnEvent(ValueError):
    pass


def _recorded(number: int, data: object) -> Recorded:
    if not isinstance(data, Mapping):
        raise _NotAnEvent("not an audit event (a JSON object)")
    if "decision_id" in data:
        return _logged(number, data)
    missing = [name for name in ("allowed", "method", "reason", "engine") if name not in data]
    if missing:
        raise _NotAnEvent(f"not an audit event: no {', '.join(missing)}")
    if not isinstance(data["allowed"], bool):
        raise _NotAnEvent(f"allowed must be true or false, not {data['allowed']!r}")
    listing = data.get("listed") is not None or data.get("hidden") is not None
    request = data.get("request")
    return Recorded(
        line=number,
        method=_text(data, "method"),
        component=_optional(data, "component"),
        user=_optional(data, "user"),
        tenant=_optional(data, "tenant"),
        allowed=data["allowed"],
        reason=_text(data, "reason", empty=True),
        engine=_text(data, "engine"),
        listing=listing,
        request=None if request is None else AuthzRequest.from_pdp_json(request),
    )


def _logged(number: int, data: Mapping[str, Any]) -> Recorded:
    """A decision-log entry (:func:`~permit_guard.decision_log.decision_record`) read back."""
    missing = [name for name in ("input", "result", "reason", "engine") if name not in data]
    if missing:
        raise _NotAnEvent(f"not a decision-log entry: no {', '.join(missing)}")
    given, result = data["input"], data["result"]
    if not isinstance(given, Mapping) or not isinstance(result, Mapping):
        raise _NotAnEvent("not a decision-log entry: input and result must be JSON objects")
    if "method" not in given:
        raise _NotAnEvent("not a decision-log entry: no input.method")
    if not isinstance(result.get("allowed"), bool):
        raise _NotAnEvent(f"result.allowed must be true or false, not {result.get('allowed')!r}")
    request = given.get("request")
    # A masked or erased request is not the one the engine was asked: not replayable.
    complete = not data.get("masked") and not data.get("erased")
    return Recorded(
        line=number,
        method=_text(given, "method"),
        component=_optional(given, "component"),
        user=_optional(given, "user"),
        tenant=_optional(given, "tenant"),
        allowed=result["allowed"],
        reason=_text(data, "reason", empty=True),
        engine=_text(data, "engine"),
        listing=result.get("listed") is not None or result.get("hidden") is not None,
        request=AuthzRequest.from_pdp_json(request) if request is not None and complete else None,
    )


def _text(data: Mapping[str, Any], name: str, *, empty: bool = False) -> str:
    value = data[name]
    if not isinstance(value, str) or not (value or empty):
        raise _NotAnEvent(f"{name} must be a non-empty string, not {value!r}")
    return value


def _optional(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _NotAnEvent(f"{name} must be a string, not {value!r}")
    return value
