"""Decision logs: one OPA-style JSON line per decision, to a file rotated by size or a stream.

:class:`DecisionLogSink` is an audit sink. Each line is one object, like an
Open Policy Agent decision log entry::

    {"decision_id": "4f0c...", "timestamp": "2026-12-02T05:10:00.123456+00:00",
     "trace_id": "...", "span_id": "...", "path": "tools/call",
     "input": {"method": "tools/call", "component": "refund", "user": "bob",
               "tenant": "default", "request": {"user": ..., "action": "refund",
               "resource": ..., "context": {}}},
     "result": {"allowed": false, "enforced": true, "cached": false},
     "reason": "...", "engine": "local", "metrics": {"timer_decision_ns": 41000}}

- ``trace_id`` and ``span_id`` (W3C hex) are there when a trace is active:
  the decision's own span (:mod:`permit_guard.telemetry`), a child of
  FastMCP's request span.
- ``input.request`` is the request the engine was asked, in the PDP's JSON
  form. With ``audit_argument_values`` it is complete (user attributes and
  argument values), and ``permit-guard replay`` decides it again; without,
  attribute values are replaced by ``"**masked**"`` and listed in ``masked``,
  and the user's attributes are left out and listed in ``erased`` (JSON
  pointers, as OPA writes them), so the line is not replayed.
- A list request's line has no ``input.request``; its ``result`` counts
  ``listed`` and ``hidden`` items, and names them in ``hidden_names`` with
  ``audit_hidden_names``. Its ``allowed`` is ``false`` when the list was cut
  to its ``@public`` items (see :mod:`permit_guard.audit`).
- ``metrics.timer_decision_ns`` is the time the guard spent deciding (0 for
  what it decides without an engine).

Example::

    sink = DecisionLogSink("decisions.jsonl", max_bytes=50_000_000, backups=5)
    PermitMcpMiddleware(policy_file="policy.yaml", audit_sink=sink).attach(mcp)

Or from the environment: ``PERMIT_MCP_DECISION_LOG_FILE``,
``PERMIT_MCP_DECISION_LOG_MAX_BYTES``, ``PERMIT_MCP_DECISION_LOG_BACKUPS``.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from permit_guard.audit import AuditSink, DecisionEvent, LoggingSink
from permit_guard.exceptions import ConfigurationError
from permit_guard.telemetry import current_trace_ids

if TYPE_CHECKING:
    from permit_guard.settings import GuardSettings

__all__ = ["MASKED", "DecisionLogSink", "decision_record", "default_sink"]

#: What stands in a decision log for an attribute value that is not logged.
MASKED: Final = "**masked**"


class DecisionLogSink:
    """Writes each audit event as one OPA-style decision-log JSON line.

    Thread-safe: one lock orders whole lines. One process per file (rotation
    renames it). Close it (or use it as a context manager) when done.

    Args:
        target: A file path (appended to, created if missing) or any text
            stream (``sys.stdout``; never closed here, never rotated).
        max_bytes: Rotate the file before a line would take it past this many
            bytes; 0 (the default) never rotates.
        backups: Rotated files kept: ``decisions.jsonl.1`` (the newest) to
            ``decisions.jsonl.<backups>``, like ``logging``'s
            ``RotatingFileHandler``; the oldest is dropped.

    Attributes:
        max_bytes: As given.
        backups: As given.

    Raises:
        ConfigurationError: On a negative size or count, rotation of a stream,
            or a file that cannot be opened for appending (with its path).
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[str],
        *,
        max_bytes: int = 0,
        backups: int = 5,
    ) -> None:
        if max_bytes < 0 or backups < 0:
            raise ConfigurationError(
                f"decision log: max_bytes and backups must be >= 0, got {max_bytes} and {backups}"
            )
        if max_bytes and not backups:
            raise ConfigurationError(
                "decision log: rotating (max_bytes) needs at least one backup file (backups >= 1)"
            )
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._stream: IO[str] | None = None
        self._file: _RotatingFile | None = None
        if isinstance(target, str | os.PathLike):
            self._file = _RotatingFile(Path(target), max_bytes=max_bytes, backups=backups)
        elif max_bytes:
            raise ConfigurationError("decision log: only a file can be rotated, not a stream")
        else:
            self._stream = target

    @classmethod
    def from_settings(cls, settings: GuardSettings) -> DecisionLogSink:
        """The sink on ``decision_log_file`` with its rotation settings.

        Raises:
            ConfigurationError: When ``decision_log_file`` is not set, or see the class.
        """
        if settings.decision_log_file is None:
            raise ConfigurationError("decision log: decision_log_file is not set")
        return cls(
            settings.decision_log_file,
            max_bytes=settings.decision_log_max_bytes,
            backups=settings.decision_log_backups,
        )

    @property
    def path(self) -> Path | None:
        """The file written to (``None`` for a stream)."""
        return self._file.path if self._file is not None else None

    def __call__(self, event: DecisionEvent) -> None:
        """Write one event as one line (read now, so it has the current trace's ids)."""
        line = json.dumps(decision_record(event), default=str) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)
            else:
                assert self._stream is not None
                self._stream.write(line)
                self._stream.flush()

    def close(self) -> None:
        """Close the file (a stream is left open: it is the caller's)."""
        with self._lock:
            if self._file is not None:
                self._file.close()

    def __enter__(self) -> DecisionLogSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        target = str(self.path) if self.path is not None else self._stream
        return f"DecisionLogSink({target!r})"


def decision_record(
    event: DecisionEvent, *, decision_id: str | None = None, trace: tuple[str, str] | None = None
) -> dict[str, Any]:
    """One event as a decision-log object (see the module's docstring).

    Args:
        event: The audit event.
        decision_id: Its id; default a new UUID 4.
        trace: ``(trace_id, span_id)``; default the current span's, when a trace is active.
    """
    record: dict[str, Any] = {
        "decision_id": decision_id or str(uuid.uuid4()),
        "timestamp": event.time,
    }
    ids = trace or current_trace_ids()
    if ids is not None:
        record["trace_id"], record["span_id"] = ids
    record["path"] = event.method
    given: dict[str, Any] = {
        "method": event.method,
        "component": event.component,
        "user": event.user,
        "tenant": event.tenant,
    }
    entry = {key: value for key, value in given.items() if value is not None}
    masked: list[str] = []
    erased: list[str] = []
    if event.request is not None:
        entry["request"] = dict(event.request)
    elif event.resource_type is not None:
        entry["request"] = _masked_request(event, masked, erased)
    record["input"] = entry
    result: dict[str, Any] = {"allowed": event.allowed, "enforced": event.enforced}
    if event.listed is not None:
        result["listed"] = event.listed
        result["hidden"] = event.hidden
        if event.hidden_names is not None:
            result["hidden_names"] = list(event.hidden_names)
    else:
        result["cached"] = event.cached
    record["result"] = result
    record["reason"] = event.reason
    record["engine"] = event.engine
    record["metrics"] = {"timer_decision_ns": round(event.duration_ms * 1_000_000)}
    if masked:
        record["masked"] = masked
    if erased:
        record["erased"] = erased
    return record


def default_sink(settings: GuardSettings) -> AuditSink:
    """The sink the settings choose: a decision log on ``decision_log_file``, else the logger.

    Raises:
        ConfigurationError: When the decision log cannot be opened.
    """
    if settings.decision_log_file is not None:
        return DecisionLogSink.from_settings(settings)
    return LoggingSink()


def _masked_request(event: DecisionEvent, masked: list[str], erased: list[str]) -> dict[str, Any]:
    """The request as far as an event without argument values knows it, masks noted."""
    resource: dict[str, Any] = {"type": event.resource_type, "tenant": event.tenant}
    if event.resource_key is not None:
        resource["key"] = event.resource_key
    resource["attributes"] = dict.fromkeys(event.attributes, MASKED)
    masked.extend(
        f"/input/request/resource/attributes/{_pointer(name)}" for name in event.attributes
    )
    erased.append("/input/request/user/attributes")
    return {
        "user": {"key": event.user},
        "action": event.action,
        "resource": resource,
        "context": {},
    }


def _pointer(name: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


class _RotatingFile:
    """An append-only file that moves to ``.1`` (and on) when the next line would overflow it."""

    __slots__ = ("_size", "_stream", "backups", "max_bytes", "path")

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._stream = self._open()
        self._size = self._stream.tell()

    def write(self, line: str) -> None:
        data = line.encode("utf-8")
        if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        self._stream.write(data)
        # Flushed per line: a crash loses no decision that was logged.
        self._stream.flush()
        self._size += len(data)

    def close(self) -> None:
        self._stream.close()

    def _open(self) -> IO[bytes]:
        try:
            return self.path.open("ab")
        except OSError as exc:
            raise ConfigurationError(
                f"decision log {self.path.resolve()}: cannot be opened for appending: "
                f"{exc.strerror or exc}"
            ) from exc

    def _rotate(self) -> None:
        self._stream.close()
        for number in range(self.backups - 1, 0, -1):
            older = self._backup(number)
            if older.exists():
                os.replace(older, self._backup(number + 1))
        os.replace(self.path, self._backup(1))
        self._stream = self._open()
        self._size = 0

    def _backup(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{number}")
