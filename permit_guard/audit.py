"""Audit events: one per decision, one per list request.

A sink is any callable taking a :class:`DecisionEvent`. The default,
:class:`LoggingSink`, writes one JSON line per event to the
``permit_guard.audit`` logger (INFO for allows, WARNING for denials), with the
event's fields also attached to the record as ``record.permit_guard``. A sink
that can say in advance which events it would drop implements
:class:`SelectiveSink`, and the guard then skips building them.

:class:`Auditor` is the one place events are made: the guard core hands it
each verdict. With argument values on, an event also carries the whole
request the engine was asked (``request``), which ``permit-guard replay``
decides again with another policy. Every event also goes to OpenTelemetry
(:mod:`permit_guard.telemetry`) when an SDK is configured, and the sink is
called inside the decision's span.

A list event's ``allowed`` says whether the list request itself was granted
and served as the engine filtered it: ``false`` whenever the caller had no
valid credentials, the method is not known, the method gate was denied or the
engine failed, even though the list still shows its ``@public`` items;
``listed`` and ``hidden`` count what it showed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol, runtime_checkable

from permit_guard.enforcement import held_in_shadow
from permit_guard.model import AuthzRequest, Principal
from permit_guard.telemetry import Telemetry, default_telemetry, telemetry_from_settings

if TYPE_CHECKING:
    from permit_guard.components.lookup import Target
    from permit_guard.settings import GuardSettings
    from permit_guard.verdict import ListVerdict

__all__ = [
    "AuditSink",
    "Auditor",
    "DecisionEvent",
    "ListRequest",
    "LoggingSink",
    "SelectiveSink",
]

logger = logging.getLogger("permit_guard")

_DEFAULT_TELEMETRY: Final = default_telemetry()


@dataclass(frozen=True, kw_only=True, slots=True)
class DecisionEvent:
    """What was decided, for whom, and why.

    Attributes:
        time: When the decision was made (UTC, ISO 8601).
        allowed: The outcome; for a list request, whether the list was granted
            and served as the engine filtered it (``false`` when missing
            credentials, an unknown method, a denied gate or an engine failure
            cut it to its ``@public`` items).
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
        hidden_names: For list requests, the names of those filtered out
            (with ``audit_hidden_names``).
        attribute_values: Attribute values, when argument logging is on.
        cached: Whether the decision came from the decision cache.
        request: The whole request the engine was asked, as the PDP takes it
            (:meth:`AuthzRequest.to_pdp_json`; user attributes included), when
            argument logging is on; :meth:`AuthzRequest.from_pdp_json` reads it back.
        enforced: Whether the outcome took effect: ``False`` only for a denial
            that shadow mode (``enforce=False``) let through.
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
    hidden_names: tuple[str, ...] | None = None
    attribute_values: Mapping[str, Any] | None = None
    cached: bool = False
    request: Mapping[str, Any] | None = None
    enforced: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The event as plain JSON-compatible data (empty optional fields dropped)."""
        data = asdict(self)
        data["attributes"] = list(self.attributes)
        if self.hidden_names is not None:
            data["hidden_names"] = list(self.hidden_names)
        if self.attribute_values is not None:
            data["attribute_values"] = dict(self.attribute_values)
        if self.request is not None:
            data["request"] = dict(self.request)
        return {k: v for k, v in data.items() if v is not None}


AuditSink = Callable[[DecisionEvent], None]


@runtime_checkable
class SelectiveSink(Protocol):
    """A sink that can tell, before an event is built, whether it would record it."""

    def enabled_for(self, allowed: bool) -> bool:
        """Whether an event with this outcome would be recorded."""
        ...

    def __call__(self, event: DecisionEvent) -> None:
        """Record one event."""
        ...


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


class ListRequest(NamedTuple):
    """A list request as its audit event names it, known before its verdict.

    Attributes:
        method: The method the event names (a completion's, for a list decided for one).
        items: The listed components, in the order of the verdict's ``allowed``.
    """

    method: str
    items: Sequence[Target]


class Auditor:
    """Turns the guard's verdicts into events for one sink; a failing sink is logged, never raised.

    Each event also goes to OpenTelemetry (:class:`~permit_guard.telemetry.Telemetry`),
    whether or not a sink records it.

    Args:
        sink: Where events go; ``None`` records nothing.
        engine: The engine's name, for list events.
        argument_values: Whether events carry attribute values and the whole request.
        enforce: ``False`` in shadow mode: denials it lets through are recorded
            with ``enforced=False``.
        hidden_names: Whether list events name the items they hid.
        telemetry: Decision spans and metrics; default: both, on OpenTelemetry's
            global providers (``None`` when it is not installed).
    """

    __slots__ = (
        "_enabled_for",
        "argument_values",
        "enforce",
        "engine",
        "hidden_names",
        "sink",
        "telemetry",
    )

    def __init__(
        self,
        sink: AuditSink | None,
        *,
        engine: str,
        argument_values: bool = False,
        enforce: bool = True,
        hidden_names: bool = False,
        telemetry: Telemetry | None = _DEFAULT_TELEMETRY,
    ) -> None:
        self.sink = sink
        self.engine = engine
        self.argument_values = argument_values
        self.enforce = enforce
        self.hidden_names = hidden_names
        self.telemetry = telemetry
        self._enabled_for = sink.enabled_for if isinstance(sink, SelectiveSink) else None

    def configure(
        self,
        settings: GuardSettings,
        *,
        sink: AuditSink | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        """Take what the guard core is not given: the sink, hidden names and telemetry.

        Args:
            settings: ``enable_audit_logging``, ``audit_hidden_names``, the
                ``decision_log_*`` and ``otel_*`` settings.
            sink: The sink; default a
                :class:`~permit_guard.decision_log.DecisionLogSink` on
                ``decision_log_file``, else a :class:`LoggingSink`.
            telemetry: Decision spans and metrics; default from the settings.

        Raises:
            ConfigurationError: When the decision log cannot be opened.
        """
        from permit_guard.decision_log import default_sink  # it builds on this module

        chosen = (sink or default_sink(settings)) if settings.enable_audit_logging else None
        self.sink = chosen
        self._enabled_for = chosen.enabled_for if isinstance(chosen, SelectiveSink) else None
        self.hidden_names = settings.audit_hidden_names
        self.telemetry = telemetry if telemetry is not None else telemetry_from_settings(settings)

    def wants(self, allowed: bool) -> bool:
        """Whether an event with this outcome would be recorded (skip building it if not)."""
        return self._sink_wants(allowed) or self._observed()

    def decision(
        self,
        *,
        allowed: bool,
        method: str,
        component: str | None,
        reason: str,
        engine: str,
        principal: Principal | None,
        request: AuthzRequest | None = None,
        started: float | None = None,
        cached: bool = False,
        no_credentials: bool = False,
    ) -> None:
        """One event for one decision; ``request`` is what the engine was asked, if it was."""
        to_sink, observed = self._sink_wants(allowed), self._observed()
        if not (to_sink or observed):
            return
        duration = 0.0 if started is None else _elapsed_ms(started)
        enforced = self._enforced(allowed, method, no_credentials)
        if request is None:
            event = DecisionEvent(
                allowed=allowed,
                user=principal.key if principal else None,
                tenant=principal.tenant if principal else None,
                method=method,
                component=component,
                reason=reason,
                engine=engine,
                duration_ms=duration,
                enforced=enforced,
            )
        else:
            attributes = request.resource.attributes
            event = DecisionEvent(
                allowed=allowed,
                user=request.user.key,
                tenant=request.resource.tenant,
                method=method,
                component=component,
                resource_type=request.resource.type,
                resource_key=request.resource.key,
                action=request.action,
                attributes=tuple(attributes),
                reason=reason,
                engine=engine,
                duration_ms=duration,
                attribute_values=dict(attributes) if self.argument_values else None,
                cached=cached,
                request=request.to_pdp_json() if self.argument_values else None,
                enforced=enforced,
            )
        self._emit(event, to_sink, observed)

    def listing(self, request: ListRequest, verdict: ListVerdict, started: float) -> None:
        """One event for one list request, with its counts (and hidden names, if asked)."""
        # Granted and filtered by the engine; a list cut to its public items was refused.
        allowed = verdict.why == "engine"
        to_sink, observed = self._sink_wants(allowed), self._observed()
        if not (to_sink or observed):
            return
        listed = sum(verdict.allowed)
        hidden = len(verdict.allowed) - listed
        names = None
        if self.hidden_names:
            pairs = zip(request.items, verdict.allowed, strict=True)
            names = tuple(item.name for item, kept in pairs if not kept)
        principal = verdict.principal
        no_credentials = verdict.why == "no-credentials"
        event = DecisionEvent(
            allowed=allowed,
            user=principal.key if principal else None,
            tenant=principal.tenant if principal else None,
            method=request.method,
            reason=verdict.reason,
            engine=self.engine,
            duration_ms=_elapsed_ms(started),
            listed=listed,
            hidden=hidden,
            hidden_names=names,
            enforced=self._enforced(hidden == 0, request.method, no_credentials),
        )
        self._emit(event, to_sink, observed)

    def _enforced(self, allowed: bool, method: str, no_credentials: bool) -> bool:
        """Whether an outcome takes effect (see :mod:`permit_guard.enforcement`)."""
        return allowed or self.enforce or held_in_shadow(method, no_credentials=no_credentials)

    def _sink_wants(self, allowed: bool) -> bool:
        if self.sink is None:
            return False
        return self._enabled_for is None or bool(self._enabled_for(allowed))

    def _observed(self) -> bool:
        """Whether OpenTelemetry records decisions now (an SDK provider is configured)."""
        return self.telemetry is not None and self.telemetry.active

    def _emit(self, event: DecisionEvent, to_sink: bool, observed: bool) -> None:
        if observed:
            assert self.telemetry is not None
            with self.telemetry.recorded(event):
                if to_sink:
                    self._write(event)
        elif to_sink:
            self._write(event)

    def _write(self, event: DecisionEvent) -> None:
        assert self.sink is not None
        try:
            self.sink(event)
        except Exception:
            logger.exception("audit sink %r failed", self.sink)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
