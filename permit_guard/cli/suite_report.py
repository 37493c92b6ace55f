"""How ``permit-guard test`` reports: one line per case, JSON, or JUnit XML for CI.

Every form says, for each case that fails, its name, what was expected, what
the guard answered and the verdict's reason; for each suite that cannot run,
every problem with its file and line.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from permit_guard.cli.render import plural, say
from permit_guard.cli.suite import LIST_KINDS, CallCase, Case, ListCase
from permit_guard.cli.suite_run import NOUNS, Outcome, SuiteResult

__all__ = ["exit_code", "junit_xml", "print_results", "results_json"]

_LIST_NAMES = {kind: name for name, kind in LIST_KINDS.items()}


def exit_code(results: Sequence[SuiteResult]) -> int:
    """2 when a suite cannot run, 1 when a case fails or a component has no case, else 0."""
    if any(r.problems for r in results):
        return 2
    return 0 if all(r.passed for r in results) else 1


def print_results(results: Sequence[SuiteResult]) -> None:
    """Print every suite's cases and the totals; a suite's problems go to stderr."""
    for result in results:
        if result.problems:
            for problem in result.problems:
                sys.stderr.write(f"Error: {problem}\n")
            continue
        say(f"{result.file} (server {result.server}, {result.engine})")
        for outcome in result.outcomes:
            if outcome.passed:
                say(f"  ok    {outcome.case.name}")
                continue
            say(f"  FAIL  {outcome.case.name} ({result.file}:{outcome.case.line})")
            say(f"          expected: {expected_text(outcome)}")
            say(f"          actual:   {actual_text(outcome)}")
            say(f"          reason:   {outcome.reason}")
        for kind, name in result.uncovered:
            say(f"  NO CASE  {NOUNS[kind]} {name}")
        if result.coverage and not result.uncovered:
            say("  coverage: every component but the @public ones has a case")
    say(_totals(results))


def _totals(results: Sequence[SuiteResult]) -> str:
    """``OK: 20 passed, 0 failed in 1 suite``, or what failed and what cannot run."""
    outcomes = [o for r in results for o in r.outcomes]
    failed = sum(not o.passed for o in outcomes)
    parts = [f"{len(outcomes) - failed} passed", f"{failed} failed"]
    uncovered = sum(len(r.uncovered) for r in results)
    if uncovered:
        parts.append(plural(uncovered, "component") + " without a case")
    verdict = {0: "OK", 1: "FAILED", 2: "ERROR"}[exit_code(results)]
    suites = plural(len(results), "suite")
    broken = [r for r in results if r.problems]
    if not broken:
        return f"{verdict}: {', '.join(parts)} in {suites}"
    problems = plural(sum(len(r.problems) for r in broken), "problem")
    return f"{verdict}: {len(broken)} of {suites} cannot run ({problems}); {', '.join(parts)}"


def expected_text(outcome: Outcome) -> str:
    """What the case expects, in words."""
    case = outcome.case
    if isinstance(case, CallCase):
        return "allow" if case.allow else "deny"
    parts = [f"visible {', '.join(case.visible)}"] if case.visible else []
    if case.hidden:
        parts.append(f"hidden {', '.join(case.hidden)}")
    return "; ".join(parts)


def actual_text(outcome: Outcome) -> str:
    """What the guard answered, in words."""
    case = outcome.case
    if isinstance(case, CallCase):
        return "allow" if outcome.allowed else "deny"
    absent = [n for n in (*case.visible, *case.hidden) if n not in outcome.listed]
    parts = [f"listed {', '.join(outcome.listed)}"] if outcome.listed else []
    if absent:
        parts.append(f"not listed {', '.join(absent)}")
    return "; ".join(parts)


def results_json(results: Sequence[SuiteResult]) -> dict[str, Any]:
    """Every suite's cases, problems and coverage, and the totals, as JSON."""
    outcomes = [o for r in results for o in r.outcomes]
    failed = sum(not o.passed for o in outcomes)
    return {
        "suites": [
            {
                "file": result.file,
                "server": result.server,
                "engine": result.engine,
                "passed": result.passed,
                "problems": [
                    {"file": p.file, "line": p.line, "message": p.message} for p in result.problems
                ],
                "cases": [_case_json(o) for o in result.outcomes],
                "uncovered": [{"kind": kind, "name": name} for kind, name in result.uncovered]
                if result.coverage and not result.problems
                else None,
            }
            for result in results
        ],
        "totals": {
            "suites": len(results),
            "cases": len(outcomes),
            "passed": len(outcomes) - failed,
            "failed": failed,
            "uncovered": sum(len(r.uncovered) for r in results),
            "problems": sum(len(r.problems) for r in results),
            "exit_code": exit_code(results),
        },
    }


def _case_json(outcome: Outcome) -> dict[str, Any]:
    kind, target = _request(outcome.case)
    return {
        "name": outcome.case.name,
        "line": outcome.case.line,
        "kind": kind,
        "target": target,
        "user": outcome.case.caller.user,
        "passed": outcome.passed,
        "expected": outcome.expected,
        "actual": outcome.actual,
        "reason": outcome.reason,
    }


def _request(case: Case) -> tuple[str, str]:
    if isinstance(case, ListCase):
        return "list", _LIST_NAMES[case.kind]
    return case.kind, case.target


def junit_xml(results: Sequence[SuiteResult]) -> bytes:
    """JUnit XML: a ``testsuite`` per suite file, a ``testcase`` per case.

    A failed case has a ``failure`` element; a suite that cannot run has one
    ``testcase`` with an ``error`` element per problem; with coverage, the
    ``coverage`` testcase fails when a component has no case.
    """
    root = ET.Element("testsuites", name="permit-guard test")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for result in results:
        suite = ET.SubElement(root, "testsuite", name=result.file, file=result.file)
        counts = {"tests": 0, "failures": 0, "errors": 0}
        seconds = 0.0
        for outcome in result.outcomes:
            seconds += outcome.seconds
            case = _testcase(suite, result.file, outcome.case.name, outcome.case.line)
            case.set("time", f"{outcome.seconds:.6f}")
            counts["tests"] += 1
            if not outcome.passed:
                counts["failures"] += 1
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"expected {expected_text(outcome)}, got {actual_text(outcome)}: "
                    f"{outcome.reason}",
                    type="decision",
                )
                failure.text = (
                    f"expected: {expected_text(outcome)}\n"
                    f"actual:   {actual_text(outcome)}\n"
                    f"reason:   {outcome.reason}\n"
                )
        if result.problems:
            case = _testcase(suite, result.file, "the suite runs", None)
            counts["tests"] += 1
            counts["errors"] += len(result.problems)
            for problem in result.problems:
                error = ET.SubElement(case, "error", message=str(problem), type="suite")
                error.text = str(problem)
        if result.coverage and not result.problems:
            case = _testcase(suite, result.file, "coverage", None)
            counts["tests"] += 1
            if result.uncovered:
                counts["failures"] += 1
                missing = [f"{NOUNS[kind]} {name}" for kind, name in result.uncovered]
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"{plural(len(missing), 'component')} without a case: "
                    + ", ".join(missing),
                    type="coverage",
                )
                failure.text = "\n".join(missing) + "\n"
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("skipped", "0")
        suite.set("time", f"{seconds:.6f}")
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


def _testcase(suite: ET.Element, file: str, name: str, line: int | None) -> ET.Element:
    case = ET.SubElement(suite, "testcase", classname=file, name=name, file=file)
    if line is not None:
        case.set("line", str(line))
    return case
