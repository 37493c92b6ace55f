"""``permit-guard replay``: decide a recorded audit log again with another policy; what flips.

Every decision the engine made is recorded, with argument values on
(``PERMIT_MCP_AUDIT_ARGUMENT_VALUES=true``), with the exact request it was
asked. The command reads them back (:mod:`~permit_guard.cli.recorded`), asks
the new engine all of them in ONE ``check_many`` (the request is already
built, so the engine is the whole decision), and prints the decisions that
would change, grouped by component, the user's roles in the new policy, and
tenant. Decisions the guard made without an engine (public components,
default deny, unknown components, no credentials) and list events are counted,
not replayed. Exit code 0 when nothing flips, 1 when something does (a policy
change as a CI gate), 2 on bad input.

Example::

    permit-guard replay audit.jsonl --policy policy-next.yaml
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from permit_guard.asking import ask_many
from permit_guard.cli.options import (
    ApiKeyOption,
    DataOption,
    JsonOption,
    PdpOption,
    PolicyOption,
    run,
)
from permit_guard.cli.recorded import AuditLogError, Recorded, read_audit_log
from permit_guard.cli.render import fail, plural, print_json, say
from permit_guard.engines.base import PolicyEngine, close_engine
from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.engines.permit import PermitPDPEngine
from permit_guard.exceptions import ConfigurationError, PolicyFileError
from permit_guard.model import AuthzRequest, Decision
from permit_guard.settings import load_settings
from permit_guard.verdict import GUARD

__all__ = ["Flip", "Replay", "replay", "replay_command"]

#: At most this many line numbers are printed per group (all are in --json).
_SHOWN_LINES = 8

#: ``(tenant decided in, the user's roles there)`` of a request; roles ``None`` when unknown.
Roles = Callable[[AuthzRequest], tuple[str, tuple[str, ...] | None]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Flip:
    """A recorded decision the new engine decides the other way.

    Attributes:
        recorded: The decision as recorded.
        now: The new engine's decision.
        tenant: The tenant the new engine decides in.
        roles: The user's roles there in the new policy (``None``: the engine
            does not say, as a PDP).
    """

    recorded: Recorded
    now: Decision
    tenant: str
    roles: tuple[str, ...] | None

    @property
    def change(self) -> str:
        """``allow -> deny`` or ``deny -> allow``."""
        return "allow -> deny" if self.recorded.allowed else "deny -> allow"


@dataclass(frozen=True, kw_only=True, slots=True)
class Replay:
    """What replaying a log found.

    Attributes:
        events: Events in the log.
        replayed: Decisions asked again.
        flips: Those decided the other way, in log order.
        by_guard: Decisions the guard made without an engine (not replayable).
        without_request: Engine decisions whose event records no request.
        lists: List events (each item's check is not recorded).
    """

    events: int
    replayed: int
    flips: tuple[Flip, ...]
    by_guard: int
    without_request: int
    lists: int


async def replay(records: Sequence[Recorded], engine: PolicyEngine) -> Replay:
    """Every replayable decision of ``records`` decided again by ``engine``, in one ``check_many``.

    Raises:
        EngineError: On an answer that is not a decision, or a wrong count.
        Exception: Whatever the engine raised.
    """
    decided = [r for r in records if not r.listing and r.engine != GUARD]
    asked = [r for r in decided if r.request is not None]
    requests = [r.request for r in asked if r.request is not None]
    decisions = await ask_many(engine, requests) if requests else []
    roles = _roles_of(engine)
    flips = []
    for record, request, decision in zip(asked, requests, decisions, strict=True):
        if decision.allowed != record.allowed:
            tenant, held = roles(request)
            flips.append(Flip(recorded=record, now=decision, tenant=tenant, roles=held))
    return Replay(
        events=len(records),
        replayed=len(asked),
        flips=tuple(flips),
        by_guard=sum(not r.listing and r.engine == GUARD for r in records),
        without_request=len(decided) - len(asked),
        lists=sum(r.listing for r in records),
    )


def _roles_of(engine: PolicyEngine) -> Roles:
    """How to find a user's roles in the tenant the engine decides a request in."""
    if not isinstance(engine, LocalPolicyEngine):
        return lambda request: (request.resource.tenant, None)
    facts = engine.facts

    def roles(request: AuthzRequest) -> tuple[str, tuple[str, ...] | None]:
        # A known instance is decided in its own tenant, whatever the request names.
        tenant = facts.in_instance(request).resource.tenant
        return tenant, tuple(facts.user_roles.get((tenant, request.user.key), ()))

    return roles


def replay_command(
    log: Annotated[
        Path,
        typer.Argument(
            metavar="AUDIT.jsonl",
            help="An audit log or a decision log (DecisionLogSink): one JSON object per line, "
            "recorded with PERMIT_MCP_AUDIT_ARGUMENT_VALUES=true.",
            show_default=False,
        ),
    ],
    policy: PolicyOption = None,
    data: DataOption = None,
    pdp: PdpOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Decide the requests of an audit log again with another policy, and show what flips.

    Each decision the engine made, recorded with its request, is asked again
    of the engine given by --policy or --pdp, all in one batch; the decisions
    that would change (allow -> deny, deny -> allow) are printed grouped by
    component, the user's roles in the new policy and tenant, with the old and
    the new reason. Decisions the guard made itself (public, default deny,
    unknown component, no credentials) and list events are counted, not
    replayed. Exit code 0 when nothing flips, 1 when something does, 2 on a
    usage error or a log line that is not an audit event (named FILE:LINE).
    """
    if (policy is None) == (pdp is None):
        fail("give exactly one of --policy FILE or --pdp URL")
    if data is not None and policy is None:
        fail("--data FILE goes with --policy FILE: it holds the facts of that policy")
    try:
        records = read_audit_log(log)
    except AuditLogError as exc:
        fail(str(exc))
    if not records:
        fail(f"{log}: no audit events")
    engine, label = _engine(policy, data, pdp, api_key)
    try:
        found: Replay = run(_replay_and_close(records, engine))
    except typer.Exit:
        raise
    except Exception as exc:  # a CLI boundary: a broken engine is reported, never a traceback
        fail(f"the policy engine could not decide: {exc}")
    if found.replayed == 0 and found.without_request:
        fail(
            f"{log}: no decision records its request; record the log with "
            "PERMIT_MCP_AUDIT_ARGUMENT_VALUES=true to replay it"
        )
    if json_output:
        print_json(_json(found, log, label))
    else:
        _print(found, log, label)
    raise typer.Exit(1 if found.flips else 0)


def _engine(
    policy: Path | None, data: Path | None, pdp: str | None, api_key: str | None
) -> tuple[PolicyEngine, str]:
    """The engine the options name (never cached: replay asks what it decides now)."""
    try:
        if policy is not None:
            label = f"local policy {policy}" + (f" with data {data}" if data else "")
            return LocalPolicyEngine.from_file(policy, data=data), label
        assert pdp is not None
        settings = load_settings()
        key = api_key or settings.permit_api_key.get_secret_value()
        if not key:
            fail("--pdp needs --api-key KEY (or PERMIT_MCP_PERMIT_API_KEY)")
        engine = PermitPDPEngine(
            pdp,
            key,
            timeout=settings.pdp_timeout,
            bulk_chunk_size=settings.pdp_bulk_chunk_size,
        )
        return engine, f"Permit.io PDP at {engine.url}"
    except (ConfigurationError, PolicyFileError) as exc:
        fail(str(exc))


async def _replay_and_close(records: Sequence[Recorded], engine: PolicyEngine) -> Replay:
    try:
        return await replay(records, engine)
    finally:
        await close_engine(engine)


# -- output ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _Group:
    change: str
    method: str
    component: str | None
    roles: tuple[str, ...] | None
    tenant: str
    flips: tuple[Flip, ...]

    def reasons(self) -> list[tuple[str, str, int]]:
        """``(recorded reason, new reason, how many)``, in order of first appearance."""
        counted: dict[tuple[str, str], int] = {}
        for flip in self.flips:
            pair = (flip.recorded.reason, flip.now.reason)
            counted[pair] = counted.get(pair, 0) + 1
        return [(was, now, n) for (was, now), n in counted.items()]

    def users(self) -> list[str]:
        return list(dict.fromkeys(f.recorded.user or "?" for f in self.flips))


def _groups(flips: Sequence[Flip]) -> list[_Group]:
    grouped: dict[tuple[Any, ...], list[Flip]] = {}
    for flip in flips:
        key = (flip.change, flip.recorded.method, flip.recorded.component, flip.roles, flip.tenant)
        grouped.setdefault(key, []).append(flip)
    return [
        _Group(
            change=change,
            method=method,
            component=component,
            roles=roles,
            tenant=tenant,
            flips=tuple(members),
        )
        for (change, method, component, roles, tenant), members in grouped.items()
    ]


def _roles_text(roles: tuple[str, ...] | None) -> str:
    if roles is None:
        return "roles: unknown (PDP)"
    return f"roles: {', '.join(roles)}" if roles else "roles: none"


def _print(found: Replay, log: Path, label: str) -> None:
    say(
        f"Replayed {plural(found.replayed, 'decision')} of {log} with {label}: "
        f"{len(found.flips)} flipped"
    )
    for group in _groups(found.flips):
        lines = [f.recorded.line for f in group.flips]
        shown = ", ".join(map(str, lines[:_SHOWN_LINES]))
        if len(lines) > _SHOWN_LINES:
            shown += ", ..."
        users = group.users()
        target = group.method + (f" {group.component}" if group.component else "")
        say("")
        say(
            f"{group.change}  {target}  {_roles_text(group.roles)}  tenant: {group.tenant}  "
            f"({plural(len(lines), 'decision')}; {'user' if len(users) == 1 else 'users'} "
            f"{', '.join(users)}; {'line' if len(lines) == 1 else 'lines'} {shown})"
        )
        reasons = group.reasons()
        for was, now, count in reasons:
            times = f" ({count} decisions)" if len(reasons) > 1 else ""
            say(f"    was: {was}{times}")
            say(f"    now: {now}")
    to_deny = sum(f.recorded.allowed for f in found.flips)
    say("")
    say(
        f"{found.replayed} replayed: {found.replayed - len(found.flips)} unchanged, "
        f"{len(found.flips)} flipped ({to_deny} allow -> deny, "
        f"{len(found.flips) - to_deny} deny -> allow)"
    )
    say(
        f"not replayed: {found.by_guard} decided by the guard itself, "
        f"{found.without_request} without a recorded request, "
        f"{plural(found.lists, 'list event')}"
    )
    if found.without_request:
        say("(events record their request only with PERMIT_MCP_AUDIT_ARGUMENT_VALUES=true)")


def _json(found: Replay, log: Path, label: str) -> dict[str, Any]:
    to_deny = sum(f.recorded.allowed for f in found.flips)
    return {
        "log": str(log),
        "engine": label,
        "summary": {
            "events": found.events,
            "replayed": found.replayed,
            "unchanged": found.replayed - len(found.flips),
            "flipped": len(found.flips),
            "allow_to_deny": to_deny,
            "deny_to_allow": len(found.flips) - to_deny,
            "decided_by_guard": found.by_guard,
            "without_request": found.without_request,
            "lists": found.lists,
        },
        "groups": [
            {
                "change": group.change,
                "method": group.method,
                "component": group.component,
                "roles": None if group.roles is None else list(group.roles),
                "tenant": group.tenant,
                "decisions": len(group.flips),
                "users": group.users(),
                "lines": [f.recorded.line for f in group.flips],
                "reasons": [
                    {"was": was, "now": now, "decisions": n} for was, now, n in group.reasons()
                ],
            }
            for group in _groups(found.flips)
        ],
        "flips": [
            {
                "line": flip.recorded.line,
                "change": flip.change,
                "method": flip.recorded.method,
                "component": flip.recorded.component,
                "user": flip.recorded.user,
                "tenant": flip.tenant,
                "roles": None if flip.roles is None else list(flip.roles),
                "was": {"allowed": flip.recorded.allowed, "reason": flip.recorded.reason},
                "now": {"allowed": flip.now.allowed, "reason": flip.now.reason},
            }
            for flip in found.flips
        ],
    }
