"""Running a decision test suite through the guard core, as the middleware would decide.

The server, its guard's settings and the engine are loaded once per suite
with the helpers ``permit-guard check`` uses (:mod:`~permit_guard.cli.load`).
Every component a case names is looked up first, so a suite naming a tool the
server does not have is reported, with every such problem, before any case
runs. Then each call case is decided by :func:`~permit_guard.cli.check.check`
(:meth:`Guard.decide <permit_guard.guard.Guard.decide>`), and each list case
by :meth:`Guard.decide_list <permit_guard.guard.Guard.decide_list>` over the
server's own listing of that kind, exactly as the middleware's list hook
filters it. Nothing a case names is ever run.

Example::

    from permit_guard.cli.suite_run import run_suite

    result = run_suite("examples/quickstart.suite.yaml", coverage=True)
    for outcome in result.outcomes:
        print("ok" if outcome.passed else "FAIL", outcome.case.name, outcome.reason)
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from fastmcp import FastMCP

from permit_guard.caller import known
from permit_guard.cli.check import check, require_component
from permit_guard.cli.inventory import inventory
from permit_guard.cli.load import chosen_engine, guard_settings, load_server, server_guard
from permit_guard.cli.suite import CallCase, Case, ListCase, Problem, Suite, SuiteError
from permit_guard.cli.suite_read import read_suite
from permit_guard.components.lookup import Component, Target, component_name, listed, target
from permit_guard.engines.base import PolicyEngine, close_engine
from permit_guard.exceptions import ConfigurationError, EngineError, PolicyFileError
from permit_guard.guard import Guard
from permit_guard.methods import KIND_LIST_METHODS, Kind
from permit_guard.model import Principal
from permit_guard.settings import GuardSettings
from permit_guard.verdict import ListVerdict

__all__ = ["NOUNS", "Outcome", "SuiteResult", "run_suite"]

#: How a kind of component is named in messages.
NOUNS: Final[Mapping[Kind, str]] = {
    "tool": "tool",
    "resource": "resource",
    "template": "resource template",
    "prompt": "prompt",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """What the guard answered one case.

    Attributes:
        case: The case.
        passed: Whether the answer is the one expected.
        reason: The verdict's reason (for a list case: why each name that is
            wrong is listed or not, else the list's reason).
        allowed: A call case's verdict.
        listed: A list case's names that are listed, of those it names.
        seconds: How long the decision took.
    """

    case: Case
    passed: bool
    reason: str
    allowed: bool | None = None
    listed: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def expected(self) -> Any:
        """``allow`` or ``deny``; for a list case, its visible and hidden names."""
        if isinstance(self.case, CallCase):
            return "allow" if self.case.allow else "deny"
        return {"visible": list(self.case.visible), "hidden": list(self.case.hidden)}

    @property
    def actual(self) -> Any:
        """``allow`` or ``deny``; for a list case, the names it names that are listed."""
        if isinstance(self.case, CallCase):
            return "allow" if self.allowed else "deny"
        return {"listed": list(self.listed)}


@dataclass(frozen=True, kw_only=True, slots=True)
class SuiteResult:
    """One suite, run (or not: see ``problems``).

    Attributes:
        file: The suite file, as given.
        server: The server the suite names (``None`` when it could not be read).
        engine: How the engine was called (``None`` when it could not be built).
        outcomes: Per case run, in file order.
        problems: Why the suite cannot run; empty when it ran.
        coverage: Whether coverage was asked for.
        uncovered: With coverage, the non-public components no call case names,
            as (kind, name).
    """

    file: str
    server: str | None = None
    engine: str | None = None
    outcomes: tuple[Outcome, ...] = ()
    problems: tuple[Problem, ...] = ()
    coverage: bool = False
    uncovered: tuple[tuple[Kind, str], ...] = ()

    @property
    def failed(self) -> tuple[Outcome, ...]:
        """The cases whose answer was not the one expected."""
        return tuple(o for o in self.outcomes if not o.passed)

    @property
    def passed(self) -> bool:
        """Whether the suite ran, every case held and (with coverage) nothing is uncovered."""
        return not self.problems and not self.failed and not self.uncovered


def run_suite(
    path: str | os.PathLike[str],
    *,
    pdp: str | None = None,
    api_key: str | None = None,
    coverage: bool = False,
) -> SuiteResult:
    """Read a suite and run every case; never raises for what is wrong with the suite.

    Args:
        path: The suite file.
        pdp: Decide with the Permit.io PDP at this URL instead of the suite's
            policy or the server's own engine.
        api_key: The PDP's API key (default: ``PERMIT_MCP_PERMIT_API_KEY``).
        coverage: Also report the components (all but ``@public`` ones) that
            no call, read or render case names.

    Returns:
        The result; its ``problems`` say why a suite could not run.
    """
    file = os.fspath(path)
    try:
        suite = read_suite(file)
    except SuiteError as exc:
        return SuiteResult(file=file, problems=exc.problems, coverage=coverage)
    loaded = _load(suite, pdp, api_key)
    if isinstance(loaded, list):
        return SuiteResult(
            file=file, server=suite.server, problems=tuple(loaded), coverage=coverage
        )
    server, settings, engine, label = loaded
    run = _Run(suite, server, settings, engine)
    outcomes = asyncio.run(run.all(coverage))
    return SuiteResult(
        file=file,
        server=suite.server,
        engine=label,
        outcomes=outcomes if not run.problems else (),
        problems=tuple(run.problems),
        coverage=coverage,
        uncovered=tuple(run.uncovered),
    )


def _load(
    suite: Suite, pdp: str | None, api_key: str | None
) -> tuple[FastMCP[Any], GuardSettings, PolicyEngine, str] | list[Problem]:
    """The server, its guard's settings, the engine and its label; else why not."""

    def problem(line: int | None, message: str) -> list[Problem]:
        return [Problem(file=suite.file, line=line, message=message)]

    # Loaded here, outside any event loop: a server built by an async function runs its own.
    try:
        server = load_server(suite.server)
        settings, _ = guard_settings(server)
    except ConfigurationError as exc:
        return problem(suite.server_line, str(exc))
    if pdp is not None:
        policy, data, line = None, None, None  # --pdp decides instead of the suite's policy
    else:
        policy, data, line = suite.policy, suite.data, suite.policy_line
    if policy is None and pdp is None and server_guard(server) is None:
        return problem(
            suite.server_line,
            "the server has no PermitMcpMiddleware to decide with: give policy: FILE in the "
            "suite, or --pdp URL --api-key KEY",
        )
    try:
        engine, label = chosen_engine(
            server, settings, policy=policy, data=data, pdp=pdp, api_key=api_key
        )
    except PolicyFileError as exc:
        return [
            Problem(file=suite.file, line=line, message=f"policy {exc.source}: {found}")
            for found in exc.problems
        ]
    except ConfigurationError as exc:
        return problem(line, str(exc))
    return server, settings, engine, label


class _Run:
    """One run of a suite's cases, on one server, one set of settings, one engine."""

    def __init__(
        self, suite: Suite, server: FastMCP[Any], settings: GuardSettings, engine: PolicyEngine
    ) -> None:
        self.suite = suite
        self.server = server
        self.settings = settings
        self.engine = engine
        self.problems: list[Problem] = []
        self.uncovered: list[tuple[Kind, str]] = []
        self.listings: dict[Kind, Sequence[Component]] = {}

    def note(self, case: Case | None, message: str) -> None:
        line = case.line if case is not None else self.suite.server_line
        where = f"case {case.name!r}: " if case is not None else ""
        self.problems.append(Problem(file=self.suite.file, line=line, message=where + message))

    async def all(self, coverage: bool) -> tuple[Outcome, ...]:
        try:
            guard = Guard.from_settings(self.settings, engine=self.engine)
            await guard.planner.survey(self.server)  # as the middleware does when it starts
            for case in self.suite.cases:
                await self.exists(case)
            if self.problems:
                return ()
            outcomes = []
            for case in self.suite.cases:
                started = time.perf_counter()
                try:
                    outcome = await self.decide(guard, case)
                except EngineError as exc:
                    # Every later case would fail alike: the suite cannot run.
                    self.note(case, f"the policy engine could not decide: {exc}")
                    return ()
                except ConfigurationError as exc:
                    self.note(case, str(exc))
                    continue
                outcomes.append(replace(outcome, seconds=time.perf_counter() - started))
            if coverage:
                await self.cover()
            return tuple(outcomes)
        except ConfigurationError as exc:
            self.note(None, str(exc))
            return ()
        finally:
            await close_engine(self.engine)

    async def listing(self, kind: Kind) -> Sequence[Component]:
        """The server's components of a kind, as its list method serves them before the guard."""
        if kind not in self.listings:
            server = self.server
            items: Sequence[Component]
            if kind == "tool":
                items = await server.list_tools(run_middleware=False)
            elif kind == "resource":
                items = await server.list_resources(run_middleware=False)
            elif kind == "template":
                items = await server.list_resource_templates(run_middleware=False)
            else:
                items = await server.list_prompts(run_middleware=False)
            self.listings[kind] = items
        return self.listings[kind]

    async def exists(self, case: Case) -> None:
        """Note a case naming a component the server does not have."""
        if isinstance(case, CallCase):
            try:
                await require_component(self.server, case.kind, case.target)
            except ConfigurationError as exc:
                self.note(case, str(exc))
            return
        names = {component_name(item) for item in await self.listing(case.kind)}
        unknown = [n for n in (*case.visible, *case.hidden) if n not in names]
        if unknown:
            noun = NOUNS[case.kind]
            self.note(
                case,
                f"the server has no {noun} {', '.join(map(repr, unknown))} "
                f"({noun}s: {', '.join(sorted(names)) or 'none'})",
            )

    async def decide(self, guard: Guard, case: Case) -> Outcome:
        caller = case.caller
        principal = Principal(
            key=caller.user, attributes=dict(caller.attributes), tenant=caller.tenant
        )
        if isinstance(case, CallCase):
            verdict = await check(
                self.server,
                self.settings,
                self.engine,
                principal,
                kind=case.kind,
                name=case.target,
                arguments=case.arguments,
                key=case.key,
            )
            return Outcome(
                case=case,
                passed=verdict.allowed == case.allow,
                reason=verdict.reason,
                allowed=verdict.allowed,
            )
        return await self.decide_list(guard, case, principal)

    async def decide_list(self, guard: Guard, case: ListCase, principal: Principal) -> Outcome:
        """A list case, decided as the middleware filters that list."""
        method = KIND_LIST_METHODS[case.kind]
        targets = await listed(self.server, case.kind, await self.listing(case.kind))
        verdict = await guard.decide_list(method, targets, identify=lambda: known(principal))
        if verdict.error is not None:
            raise EngineError(verdict.error)
        kept = {t.name for t, keep in zip(targets, verdict.allowed, strict=True) if keep}
        named = (*case.visible, *case.hidden)
        wrong = [n for n in case.visible if n not in kept] + [n for n in case.hidden if n in kept]
        reasons = []
        for name in wrong:
            state = "listed" if name in kept else "not listed"
            reasons.append(
                f"{name} {state}: {await self.why(guard, method, targets, verdict, name)}"
            )
        return Outcome(
            case=case,
            passed=not wrong,
            reason="; ".join(reasons) if reasons else verdict.reason,
            listed=tuple(n for n in named if n in kept),
        )

    async def why(
        self, guard: Guard, method: str, targets: Sequence[Target], verdict: ListVerdict, name: str
    ) -> str:
        """Why one item of a list is listed or not: the engine's reason, or the guard's."""
        if verdict.why != "engine":
            return verdict.reason  # the whole list: no credentials, gate denied...
        index = next(i for i, t in enumerate(targets) if t.name == name)
        decision = verdict.decisions[index]
        if decision is not None:
            return decision.reason
        plan = await guard.planner.plan(method, targets[index])
        return "@public: always listed" if plan.why == "public" else plan.reason or plan.why

    async def cover(self) -> None:
        """Note the non-public components no call, read or render case names."""
        covered = set()
        for case in self.suite.cases:
            if isinstance(case, CallCase):
                found = await target(self.server, case.kind, case.target)
                if found.component is not None:
                    covered.add((found.kind, component_name(found.component)))
        found_all = await inventory(self.server, self.settings)
        for row in found_all.components:
            if row.guard != "public" and (row.kind, row.name) not in covered:
                self.uncovered.append((row.kind, row.name))
