"""OpenTelemetry for the guard: a span (or a span event) per decision, and two metrics.

FastMCP traces every request with one SERVER span. Each decision the guard
records adds, as a child of the span current when it decides (FastMCP's
request span), an INTERNAL span named ``permit_guard.decide <method>``
(``permit_guard.decide tools/call``) from the decision's start to its end, or
with ``decisions="event"`` an event of that name on the request span. Its
attributes: ``permit_guard.outcome`` (``allow``/``deny``), ``permit_guard.engine``,
``permit_guard.action``, ``permit_guard.resource.type``, ``permit_guard.resource.key``,
``permit_guard.tenant``, ``permit_guard.cache_hit``, ``enduser.id``,
``mcp.method.name``, ``permit_guard.component``, ``permit_guard.reason``,
``permit_guard.enforced``, and for lists ``permit_guard.listed`` and
``permit_guard.hidden``. A denial is an outcome, not an error: no span status
is ever set (FastMCP marks the request span failed when a refused request fails).

Metrics: the counter ``permit_guard.decisions`` (by outcome, engine and method)
and the histogram ``permit_guard.decision.duration`` (seconds, same attributes)
of the decisions the guard timed (those it asked an engine, and lists).

All through the OpenTelemetry API (the ``otel`` extra): without it installed,
or while no SDK provider is configured (the API's default proxy or no-op
providers), nothing is built or recorded.

Example::

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)  # FastMCP's spans and the guard's
    PermitMcpMiddleware(policy_file="policy.yaml").attach(mcp)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final, Literal

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
except ImportError:  # the `otel` extra is not installed: the guard records no telemetry
    AVAILABLE = False
else:
    AVAILABLE = True

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider

    from permit_guard.audit import DecisionEvent
    from permit_guard.settings import GuardSettings

__all__ = ["AVAILABLE", "SCOPE", "Telemetry", "current_trace_ids", "telemetry_from_settings"]

#: The instrumentation scope of the guard's spans and metrics.
SCOPE: Final = "permit_guard"

#: Decision latency buckets, in seconds: an embedded decision takes microseconds, a PDP's
#: milliseconds, a timeout seconds.
_BUCKETS: Final = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

#: ``engine`` of decisions the guard made without asking one (they are not timed).
_GUARD: Final = "guard"

#: Seconds between two looks for a provider while none records: asking the API costs
#: microseconds (it reads the environment), too much for every decision.
_RECHECK_SECONDS: Final = 1.0

Decisions = Literal["span", "event", "off"]


class Telemetry:
    """Where the guard's decisions go in OpenTelemetry.

    Args:
        decisions: ``span`` (a child span per decision), ``event`` (an event
            on the current span), or ``off``.
        metrics: Whether to record the decision counter and latency histogram.
        tracer_provider: The provider of the decision spans; default the global
            one (``opentelemetry.trace.set_tracer_provider``), as FastMCP uses.
        meter_provider: The provider of the metrics; default the global one.
    """

    __slots__ = (
        "_counter",
        "_histogram",
        "_meter_provider",
        "_metrics_ready",
        "_next_meter_check",
        "_next_tracer_check",
        "_tracer",
        "_tracer_provider",
        "decisions",
        "metrics",
    )

    def __init__(
        self,
        *,
        decisions: Decisions = "span",
        metrics: bool = True,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if decisions not in ("span", "event", "off"):
            raise ValueError(f"decisions must be 'span', 'event' or 'off', not {decisions!r}")
        self.decisions: Decisions = decisions
        self.metrics = metrics
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._tracer: Tracer | None = None
        self._counter: Counter | None = None
        self._histogram: Histogram | None = None
        self._metrics_ready = False
        self._next_tracer_check = 0.0
        self._next_meter_check = 0.0

    @property
    def active(self) -> bool:
        """Whether a decision now would be recorded (an SDK provider is configured).

        Until one is, the providers are looked up at most once a second, so a
        provider configured after the guard is built is used from then on.
        """
        return self._spans() is not None or self._instruments()

    @contextmanager
    def recorded(self, event: DecisionEvent) -> Iterator[None]:
        """Record one decision; the block runs inside its span (a sink writing its trace ids).

        The span starts when the decision did (``event.duration_ms`` ago) and
        ends when it was made, whatever the block takes.
        """
        end = time.time_ns()
        start = end - int(event.duration_ms * 1_000_000)
        self._count(event)
        tracer = self._spans()
        if tracer is None:
            yield
            return
        name = f"permit_guard.decide {event.method}"
        attributes = _attributes(event)
        if self.decisions == "event":
            span = otel_trace.get_current_span()
            if span.is_recording():
                span.add_event(name, attributes, timestamp=start)
            yield
            return
        span = tracer.start_span(name, start_time=start, attributes=attributes)
        try:
            with otel_trace.use_span(span, record_exception=False, set_status_on_exception=False):
                yield
        finally:
            span.end(end_time=end)

    # ------------------------------------------------------------------ internals

    def _spans(self) -> Tracer | None:
        """The tracer of decision spans, once a recording provider is there."""
        if self._tracer is not None or self.decisions == "off":
            return self._tracer
        now = time.monotonic()
        if now < self._next_tracer_check:
            return None
        self._next_tracer_check = now + _RECHECK_SECONDS
        provider = self._tracer_provider or otel_trace.get_tracer_provider()
        if _records(provider):  # the global provider is set once: it is final now
            self._tracer = provider.get_tracer(SCOPE, _version())
        return self._tracer

    def _instruments(self) -> bool:
        """Whether the metrics are recorded, creating them once a recording provider is there."""
        if self._metrics_ready or not self.metrics:
            return self._metrics_ready
        now = time.monotonic()
        if now < self._next_meter_check:
            return False
        self._next_meter_check = now + _RECHECK_SECONDS
        provider = self._meter_provider or otel_metrics.get_meter_provider()
        if not _records(provider):
            return False
        meter = provider.get_meter(SCOPE, _version())
        self._counter = meter.create_counter(
            "permit_guard.decisions",
            unit="{decision}",
            description="Decisions of the guard, by outcome, engine and MCP method.",
        )
        description = "Time the guard spent on a decision (engine calls included)."
        try:
            self._histogram = meter.create_histogram(
                "permit_guard.decision.duration",
                unit="s",
                description=description,
                explicit_bucket_boundaries_advisory=_BUCKETS,
            )
        except TypeError:  # opentelemetry-api before 1.23 takes no advice on buckets
            self._histogram = meter.create_histogram(
                "permit_guard.decision.duration", unit="s", description=description
            )
        self._metrics_ready = True
        return True

    def _count(self, event: DecisionEvent) -> None:
        if not self._instruments():
            return
        assert self._counter is not None
        assert self._histogram is not None
        labels = {
            "permit_guard.outcome": _outcome(event),
            "permit_guard.engine": event.engine,
            "mcp.method.name": event.method,
        }
        self._counter.add(1, labels)
        # A decision the guard made itself is not timed: its 0 would only skew the latency.
        if event.engine != _GUARD or event.listed is not None:
            self._histogram.record(event.duration_ms / 1000, labels)


def telemetry_from_settings(settings: GuardSettings) -> Telemetry | None:
    """The telemetry the settings ask for (``otel_decisions``, ``otel_metrics``).

    ``None`` when OpenTelemetry is not installed or both are off, so the
    guard does not even ask.
    """
    if not AVAILABLE or (settings.otel_decisions == "off" and not settings.otel_metrics):
        return None
    return Telemetry(decisions=settings.otel_decisions, metrics=settings.otel_metrics)


def default_telemetry() -> Telemetry | None:
    """The telemetry of a guard not told otherwise: spans and metrics on the global providers."""
    return _DEFAULT


def current_trace_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the current span, in W3C hex, when a trace is active."""
    if not AVAILABLE:
        return None
    context = otel_trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _records(provider: object) -> bool:
    """Whether a provider records: the API's own (its proxy before one is set, no-op) do not."""
    module = type(provider).__module__
    return not module.startswith(("opentelemetry.trace", "opentelemetry.metrics"))


def _outcome(event: DecisionEvent) -> str:
    return "allow" if event.allowed else "deny"


def _attributes(event: DecisionEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "permit_guard.outcome": _outcome(event),
        "permit_guard.engine": event.engine,
        "mcp.method.name": event.method,
        "permit_guard.reason": event.reason,
        "permit_guard.cache_hit": event.cached,
        "permit_guard.enforced": event.enforced,
    }
    optional = {
        "permit_guard.component": event.component,
        "permit_guard.action": event.action,
        "permit_guard.resource.type": event.resource_type,
        "permit_guard.resource.key": event.resource_key,
        "permit_guard.tenant": event.tenant,
        "enduser.id": event.user,
        "permit_guard.listed": event.listed,
        "permit_guard.hidden": event.hidden,
    }
    attributes.update((key, value) for key, value in optional.items() if value is not None)
    return attributes


def _version() -> str | None:
    try:
        return metadata.version("permit-guard")
    except metadata.PackageNotFoundError:
        return None


_DEFAULT: Final = Telemetry() if AVAILABLE else None
