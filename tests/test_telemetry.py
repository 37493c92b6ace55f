"""OpenTelemetry: a decision span under FastMCP's request span, its attributes, and two metrics.

FastMCP's request spans come from the global tracer provider, which a process
can set only once: :func:`recording` installs one SDK provider for the whole
test session, whose sampler records only while a test here asks it to, so the
rest of the suite runs with spans that record nothing. Metrics go to an
explicit meter provider per test (``Telemetry(meter_provider=...)``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, Telemetry
from permit_guard.telemetry import telemetry_from_settings

from .conftest import POLICY, Caller, build_server

ROOT = Path(__file__).resolve().parent.parent


class _Switch(Sampler):
    """Records while ``on``; drops everything else (the rest of the suite)."""

    on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if not self.on:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)

    def get_description(self) -> str:
        return "permit_guard tests' switch"


_SWITCH = _Switch()
_EXPORTER = InMemorySpanExporter()


def _install() -> None:
    """The session's one global SDK tracer provider (or ours added to one already set)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        if not getattr(current, "_permit_guard_tests", False):
            current.add_span_processor(SimpleSpanProcessor(_EXPORTER))
            current._permit_guard_tests = True  # type: ignore[attr-defined]
        _SWITCH.on = True  # a provider set elsewhere samples as it likes: our switch is moot
        return
    provider = TracerProvider(sampler=_SWITCH)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    provider._permit_guard_tests = True  # type: ignore[attr-defined]
    trace.set_tracer_provider(provider)


@contextmanager
def spans_recorded() -> Iterator[InMemorySpanExporter]:
    """Spans recorded in the in-memory exporter while the block runs."""
    _install()
    _EXPORTER.clear()
    _SWITCH.on = True
    try:
        yield _EXPORTER
    finally:
        _SWITCH.on = False
        _EXPORTER.clear()


@pytest.fixture
def recording() -> Iterator[InMemorySpanExporter]:
    """Spans of this test only, in the in-memory exporter."""
    with spans_recorded() as exporter:
        yield exporter


@pytest.fixture
def reader() -> InMemoryMetricReader:
    """An in-memory metric reader of this test's own meter provider."""
    return InMemoryMetricReader()


def guarded(
    reader: InMemoryMetricReader | None = None, caller: Caller | None = None, **options: Any
) -> FastMCP[Any]:
    """The billing server under POLICY, its telemetry's metrics read by ``reader``."""
    mcp = build_server()
    telemetry = None
    if reader is not None:
        telemetry = Telemetry(
            decisions=options.pop("decisions", "span"),
            meter_provider=MeterProvider(metric_readers=[reader]),
        )
    PermitMcpMiddleware(
        engine=options.pop("engine", None) or LocalPolicyEngine.from_dict(POLICY),
        identity=caller or Caller(),
        telemetry=telemetry,
        **options,
    ).attach(mcp)
    return mcp


def attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def server_span(spans: Sequence[ReadableSpan], child: ReadableSpan) -> ReadableSpan:
    """The span ``child`` hangs under, which must be FastMCP's SERVER span."""
    assert child.parent is not None
    (parent,) = [s for s in spans if s.context.span_id == child.parent.span_id]
    assert parent.kind is SpanKind.SERVER
    assert parent.context.trace_id == child.context.trace_id
    return parent


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


# -- spans -------------------------------------------------------------------------------------


async def test_decision_span_is_a_child_of_the_request_span(
    recording: InMemorySpanExporter,
) -> None:
    """An allowed call adds one INTERNAL span under FastMCP's request span, fully attributed."""
    async with Client(guarded()) as client:
        recording.clear()
        await client.call_tool("refund", {"amount": 5})
    spans = recording.get_finished_spans()
    (span,) = named(spans, "permit_guard.decide tools/call")
    assert span.kind is SpanKind.INTERNAL
    request = server_span(spans, span)
    assert attrs(request)["mcp.method.name"] == "tools/call"
    assert dict(attrs(span)) == {
        "permit_guard.outcome": "allow",
        "permit_guard.engine": "local",
        "mcp.method.name": "tools/call",
        "permit_guard.component": "refund",
        "permit_guard.action": "refund",
        "permit_guard.resource.type": "mcp_server",
        "permit_guard.tenant": "default",
        "permit_guard.cache_hit": False,
        "permit_guard.enforced": True,
        "permit_guard.reason": "role 'admin' grants mcp_server:refund in tenant 'default'",
        "enduser.id": "alice",
    }
    assert span.status.status_code is StatusCode.UNSET
    times = (request.start_time, span.start_time, span.end_time, request.end_time)
    assert list(times) == sorted(t or 0 for t in times)  # within the request, in order


async def test_a_denial_sets_no_error_status(recording: InMemorySpanExporter) -> None:
    """A denied call and a filtered list leave every server-side span without an error status."""
    async with Client(guarded(caller=Caller("carol"))) as client:
        recording.clear()
        result = await client.call_tool("refund", {"amount": 500}, raise_on_error=False)
        await client.list_tools()
    assert result.is_error
    spans = recording.get_finished_spans()
    (call,) = named(spans, "permit_guard.decide tools/call")
    (listing,) = named(spans, "permit_guard.decide tools/list")
    assert attrs(call)["permit_guard.outcome"] == "deny"
    assert attrs(listing)["permit_guard.hidden"] == 1
    for span in (call, listing, server_span(spans, call), server_span(spans, listing)):
        assert span.status.status_code is StatusCode.UNSET, span.name


async def test_shadow_mode_denial_is_recorded_as_not_enforced(
    recording: InMemorySpanExporter,
) -> None:
    """In shadow mode a denied call that runs has outcome deny, enforced false, no error."""
    async with Client(guarded(caller=Caller("carol"), enforce=False)) as client:
        recording.clear()
        await client.call_tool("refund", {"amount": 500})
    spans = recording.get_finished_spans()
    (span,) = named(spans, "permit_guard.decide tools/call")
    assert attrs(span)["permit_guard.outcome"] == "deny"
    assert attrs(span)["permit_guard.enforced"] is False
    assert server_span(spans, span).status.status_code is StatusCode.UNSET


async def test_list_spans_count_and_a_denied_gate_is_a_deny(
    recording: InMemorySpanExporter,
) -> None:
    """A list span counts listed and hidden items; a list whose gate is denied is a deny."""
    caller = Caller("carol")
    async with Client(guarded(caller=caller)) as client:
        recording.clear()
        await client.list_tools()
        caller.key = "lee"  # no tools:list grant: only the @public health tool stays
        await client.list_tools()
    carol, lee = map(attrs, named(recording.get_finished_spans(), "permit_guard.decide tools/list"))
    assert (carol["permit_guard.outcome"], carol["permit_guard.listed"]) == ("allow", 4)
    assert (lee["permit_guard.outcome"], lee["permit_guard.listed"]) == ("deny", 1)
    assert str(lee["permit_guard.reason"]).startswith("gate denied")
    assert lee["enduser.id"] == "lee"


async def test_cache_hits_are_marked(recording: InMemorySpanExporter) -> None:
    """With the decision cache on, the second identical call's span says cache_hit."""
    async with Client(guarded(cache_ttl=60)) as client:
        recording.clear()
        await client.call_tool("greet", {"name": "x"})
        await client.call_tool("greet", {"name": "x"})
    spans = named(recording.get_finished_spans(), "permit_guard.decide tools/call")
    assert [attrs(span)["permit_guard.cache_hit"] for span in spans] == [False, True]


async def test_span_events_instead_of_spans(
    recording: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    """decisions="event" adds an event to the request span and no span of its own."""
    async with Client(guarded(reader, decisions="event")) as client:
        recording.clear()
        await client.call_tool("refund", {"amount": 5})
    spans = recording.get_finished_spans()
    assert not [s for s in spans if s.name.startswith("permit_guard")]
    (request,) = [
        s
        for s in spans
        if s.kind is SpanKind.SERVER and attrs(s).get("mcp.method.name") == "tools/call"
    ]
    (event,) = [e for e in request.events if e.name == "permit_guard.decide tools/call"]
    assert event.attributes is not None
    assert (event.attributes["permit_guard.outcome"], event.attributes["enduser.id"]) == (
        "allow",
        "alice",
    )


async def test_audit_logging_off_still_traces(recording: InMemorySpanExporter) -> None:
    """Telemetry does not depend on the audit sink: enable_audit_logging=False still traces."""
    async with Client(guarded(enable_audit_logging=False)) as client:
        recording.clear()
        await client.call_tool("greet", {"name": "x"})
    assert named(recording.get_finished_spans(), "permit_guard.decide tools/call")


async def test_telemetry_can_be_turned_off(recording: InMemorySpanExporter) -> None:
    """otel_decisions="off" with otel_metrics=False records no decision span."""
    async with Client(guarded(otel_decisions="off", otel_metrics=False)) as client:
        recording.clear()
        await client.call_tool("greet", {"name": "x"})
    spans = recording.get_finished_spans()
    assert spans  # FastMCP's own
    assert not [s for s in spans if s.name.startswith("permit_guard")]


# -- metrics -----------------------------------------------------------------------------------


async def test_decisions_are_counted_and_timed(reader: InMemoryMetricReader) -> None:
    """The counter counts decisions by outcome, engine and method; the histogram times them."""
    caller = Caller("carol")
    async with Client(guarded(reader, caller=caller)) as client:
        await client.call_tool("refund", {"amount": 5})
        await client.call_tool("refund", {"amount": 500}, raise_on_error=False)
        await client.call_tool("refund", {"amount": 501}, raise_on_error=False)
        await client.call_tool("health", {})  # public: counted, not timed
        await client.list_tools()
    counted = {
        (
            p.attributes["permit_guard.outcome"],
            p.attributes["permit_guard.engine"],
            p.attributes["mcp.method.name"],
        ): p.value
        for p in points(reader, "permit_guard.decisions")
    }
    assert counted[("allow", "local", "tools/call")] == 1
    assert counted[("deny", "local", "tools/call")] == 2
    assert counted[("allow", "guard", "tools/call")] == 1
    assert counted[("allow", "local", "tools/list")] >= 1
    timed = {
        (p.attributes["permit_guard.outcome"], p.attributes["mcp.method.name"]): p
        for p in points(reader, "permit_guard.decision.duration")
        if p.attributes["permit_guard.engine"] == "local"
    }
    assert timed[("deny", "tools/call")].count == 2
    assert 0 < timed[("deny", "tools/call")].sum < 5  # seconds
    assert not [
        p
        for p in points(reader, "permit_guard.decision.duration")
        if p.attributes["permit_guard.engine"] == "guard"
    ]


def test_the_api_providers_record_nothing() -> None:
    """With the API's no-op providers a Telemetry is inactive: the guard builds no event for it."""
    telemetry = Telemetry(
        tracer_provider=trace.NoOpTracerProvider(), meter_provider=metrics.NoOpMeterProvider()
    )
    assert telemetry.active is False


def test_settings_choose_the_telemetry() -> None:
    """The otel_* settings pick span or event mode, or no telemetry object at all."""
    from permit_guard.settings import load_settings

    assert telemetry_from_settings(load_settings(otel_decisions="off", otel_metrics=False)) is None
    chosen = telemetry_from_settings(load_settings(otel_decisions="event"))
    assert chosen is not None
    assert (chosen.decisions, chosen.metrics) == ("event", True)
    with pytest.raises(ValueError, match="'span', 'event' or 'off'"):
        Telemetry(decisions="spans")  # type: ignore[arg-type]


# -- without an SDK, without the API -----------------------------------------------------------

_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys
    # FastMCP needs opentelemetry-api itself: its modules are loaded first.
    import fastmcp.server.middleware, fastmcp.server.telemetry
    from fastmcp import Client
    if sys.argv[1] == "without-api":
        sys.modules["opentelemetry"] = None  # from here on, `from opentelemetry import` fails
    from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, telemetry
    from tests.conftest import POLICY, Caller, build_server

    events = []
    mcp = build_server()
    guard = PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(POLICY), identity=Caller(), audit_sink=events.append
    )
    guard.attach(mcp)

    async def main():
        async with Client(mcp) as client:
            result = await client.call_tool("refund", {"amount": 5})
        t = guard.guard.audit.telemetry
        print(json.dumps({
            "available": telemetry.AVAILABLE,
            "telemetry": None if t is None else t.active,
            "result": result.data,
            "audited": [e.allowed for e in events if e.method == "tools/call"],
        }))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(
    ("mode", "available", "telemetry"),
    [("without-api", False, None), ("without-sdk", True, False)],
)
def test_without_opentelemetry_nothing_is_recorded(
    mode: str, available: bool, telemetry: bool | None
) -> None:
    """Without opentelemetry-api, or with it but no SDK provider, the guard records no telemetry."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "available": available,
        "telemetry": telemetry,
        "result": "refunded 5.0",
        "audited": [True],
    }
