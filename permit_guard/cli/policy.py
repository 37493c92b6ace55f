"""``permit-guard policy``: work with local policy files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from permit_guard.cli.options import JsonOption
from permit_guard.cli.render import plural, print_json, say
from permit_guard.engines.local.reading import read_policy_file
from permit_guard.exceptions import PolicyFileError

__all__ = ["policy_app"]

policy_app = typer.Typer(
    help="Work with local policy files.", no_args_is_help=True, add_completion=False
)


@policy_app.command("validate")
def _validate(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A policy file (.yaml, .yml or .json).")
    ],
    json_output: JsonOption = False,
) -> None:
    """Load a local policy file and report every problem with its location.

    Exit code 0 when the file is valid, 1 when it has problems.
    """
    try:
        loaded = read_policy_file(file)
    except PolicyFileError as exc:
        if json_output:
            print_json({"file": str(file), "valid": False, "problems": exc.problems})
        else:
            say(f"{file}: {plural(len(exc.problems), 'problem')}")
            for problem in exc.problems:
                say(f"  - {problem}")
        raise typer.Exit(1) from None
    if json_output:
        print_json({"file": str(file), "valid": True, "problems": []})
        return
    policy = loaded.policy
    counts = ", ".join(
        plural(n, label)
        for n, label in (
            (len(policy.resources), "resource type"),
            (len(policy.resource_sets), "resource set"),
            (len(policy.user_sets), "user set"),
            (len(policy.roles), "role"),
            (len(policy.users), "user"),
        )
    )
    say(f"{file}: valid ({counts})")
