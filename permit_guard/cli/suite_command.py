"""``permit-guard test``: decision test suites, run through the guard core, as a CI gate.

Reading a suite is :mod:`~permit_guard.cli.suite_read`, running it
:mod:`~permit_guard.cli.suite_run`, reporting it
:mod:`~permit_guard.cli.suite_report`; this module reads the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from permit_guard.cli.options import ApiKeyOption, JsonOption
from permit_guard.cli.render import fail, print_json
from permit_guard.cli.suite_report import exit_code, junit_xml, print_results, results_json
from permit_guard.cli.suite_run import run_suite

__all__ = ["suite_command", "test_command"]


def suite_command(
    suites: Annotated[
        list[str],
        typer.Argument(
            metavar="SUITE.yaml",
            help="Suite files: a server, a policy and cases (see docs/cli.md).",
            show_default=False,
        ),
    ],
    coverage: Annotated[
        bool,
        typer.Option(
            "--coverage",
            help="Also fail when a tool, resource, resource template or prompt of the server "
            "(@public ones aside) has no call, read or render case.",
        ),
    ] = False,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit",
            metavar="FILE",
            help="Also write the results as JUnit XML to FILE.",
            show_default=False,
        ),
    ] = None,
    pdp: Annotated[
        str | None,
        typer.Option(
            "--pdp",
            metavar="URL",
            help="Decide with the Permit.io PDP at URL instead of the suites' policies.",
            show_default=False,
        ),
    ] = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run decision test suites: every case must get the answer it expects.

    Each case is a tool call, resource read or prompt render that must be
    allowed or denied, or a list that must show some components and hide
    others, for a user (tenant and attributes optional). The guard decides
    each exactly as the server's middleware would, with the server's own
    settings, and the suite's policy (or --pdp, or the server's own engine);
    nothing is run. Exit code 0 when every case holds, 1 when one fails (or,
    with --coverage, a component has no case), 2 when a suite cannot run
    (with each problem's file and line).
    """
    if api_key is not None and pdp is None:
        fail("--api-key goes with --pdp URL")
    results = [run_suite(suite, pdp=pdp, api_key=api_key, coverage=coverage) for suite in suites]
    if json_output:
        print_json(results_json(results))
    else:
        print_results(results)
    if junit is not None:
        try:
            junit.write_bytes(junit_xml(results))
        except OSError as exc:
            fail(f"cannot write the JUnit report {str(junit)!r}: {exc.strerror or exc}")
    raise typer.Exit(exit_code(results))


#: The command's function, as ``app.py`` registers it (``app.command("test")(test_command)``);
#: defined under another name, as pytest and its linters take ``def test_*`` for a test.
test_command = suite_command
