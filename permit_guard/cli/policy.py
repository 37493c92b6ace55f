"""``permit-guard policy``: work with local policy files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from permit_guard.cli.options import JsonOption
from permit_guard.cli.render import plural, print_json, say
from permit_guard.engines.local.policy import Policy
from permit_guard.engines.local.reading import read_policy_file
from permit_guard.exceptions import PolicyFileError

__all__ = ["counts", "policy_app"]

policy_app = typer.Typer(
    help="Work with local policy files.", no_args_is_help=True, add_completion=False
)


@policy_app.command("validate")
def _validate(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A policy file (.yaml, .yml or .json).")
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="FILE",
            help="A data file (users, resource_instances, relationships) whose facts replace "
            "the policy file's own, as LocalPolicyEngine.from_file(FILE, data=...) reads it.",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Load a local policy file and report every problem with its location.

    Resource instances of unknown types, tuples naming undeclared relations,
    derivations from roles that do not exist and cycles of tuples are
    problems too. Exit code 0 when the file is valid, 1 when it has problems.
    """
    label = f"{file} + {data}" if data is not None else str(file)
    try:
        loaded = read_policy_file(file, data=data)
    except PolicyFileError as exc:
        # A data file that is wrong on its own names itself; otherwise both files.
        where = exc.source if data is not None else str(file)
        if json_output:
            print_json({"file": where, "valid": False, "problems": exc.problems})
        else:
            say(f"{where}: {plural(len(exc.problems), 'problem')}")
            for problem in exc.problems:
                say(f"  - {problem}")
        raise typer.Exit(1) from None
    found = counts(loaded.policy)
    if json_output:
        print_json(
            {
                "file": label,
                "valid": True,
                "problems": [],
                "counts": {section: n for section, _, n in found},
            }
        )
        return
    # The ReBAC sections are counted when the policy has them.
    shown = ", ".join(plural(n, noun) for section, noun, n in found if n or section in _ALWAYS)
    say(f"{label}: valid ({shown})")


#: The sections every summary counts, even at zero.
_ALWAYS = ("resources", "resource_sets", "user_sets", "roles", "users")


def counts(policy: Policy) -> list[tuple[str, str, int]]:
    """``(section, singular noun, count)`` of each part of a policy, in the order summaries give.

    Relations and derivations are counted across resource types; a
    relationship is one tuple.
    """
    types = policy.resources.values()
    derivations = sum(
        len(role.granted_to.users_with_role) for r in types for role in r.roles.values()
    )
    return [
        ("resources", "resource type", len(policy.resources)),
        ("resource_sets", "resource set", len(policy.resource_sets)),
        ("user_sets", "user set", len(policy.user_sets)),
        ("roles", "role", len(policy.roles)),
        ("users", "user", len(policy.users)),
        ("relations", "relation", sum(len(r.relations) for r in types)),
        ("derivations", "derivation", derivations),
        ("resource_instances", "resource instance", len(policy.resource_instances)),
        ("relationships", "relationship tuple", len(policy.relationships)),
    ]
