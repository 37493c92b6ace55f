"""Audit events: one per decision, one per list request.

A sink is any callable taking a :class:`DecisionEvent`. The default,
:class:`LoggingSink`, writes one JSON line per event to the
``permit_guard.audit`` logger (INFO for allows, WARNING for denials), with the
event's fields also attached to the record as ``record.permit_guard``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["AuditSink", "DecisionEvent", "LoggingSink"]


@dataclass(frozen=True, kw_only=True, slots=True)
class DecisionEvent:
    """What was decided, for whom, and why.

    Attributes:
        time: When the decision was made (UTC, ISO 8601).
        allowed: The outcome.
        user: The user key, or ``None`` without valid credentials.
        tenant: The tenant checked.
        method: The MCP method.
        component: Tool/prompt name or resource URI (``None`` for list requests).
        resource_type: The resource type checked.
        resource_key: The resource instance key, if any.
        action: The action checked.
        attributes: Names of the resource attributes sent (values only when
            the guard is told to log them, in ``attribute_values``).
        reason: Why: the engine's reason, or the guard's (public, default deny,
            unknown component, engine failure...).
        engine: Which engine decided (``guard`` when no engine was asked).
        duration_ms: Time spent deciding.
        listed: For list requests, how many components were returned.
        hidden: For list requests, how many were filtered out.
        attribute_values: Attribute values, when argument logging is on.
        cached: Whether the decision came from the decision cache.
    """

    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    allowed: bool
    user: str | None
    tenant: str | None = None
    method: str
    component: str | None = None
    resource_type: str | None = None
    resource_key: str | None = None
    action: str | None = None
    attributes: tuple[str, ...] = ()
    reason: str
    engine: str
    duration_ms: float = 0.0
    listed: int | None = None
    hidden: int | None = None
    attribute_values: Mapping[str, Any] | None = None
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The event as plain JSON-compatible data (empty optional fields dropped)."""
        data = asdict(self)
        data["attributes"] = list(self.attributes)
        if self.attribute_values is not None:
            data["attribute_values"] = dict(self.attribute_values)
        return {k: v for k, v in data.items() if v is not None}


AuditSink = Callable[[DecisionEvent], None]


class LoggingSink:
    """Writes each event as one JSON line to a logger (default ``permit_guard.audit``)."""

    def __init__(self, logger: logging.Logger | str = "permit_guard.audit") -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    def enabled_for(self, allowed: bool) -> bool:
        """Whether an event with this outcome would be written (the guard skips building it)."""
        return self.logger.isEnabledFor(logging.INFO if allowed else logging.WARNING)

    def __call__(self, event: DecisionEvent) -> None:
        level = logging.INFO if event.allowed else logging.WARNING
        if not self.logger.isEnabledFor(level):
            return
        data = event.as_dict()
        self.logger.log(
            level, json.dumps(data, default=str, sort_keys=True), extra={"permit_guard": data}
        )
