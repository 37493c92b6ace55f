"""``permit-guard policy``: work with local policy files (``validate``, ``import``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from permit_guard.cli.options import JsonOption
from permit_guard.cli.permit_io.importing import ImportFileError, import_policy
from permit_guard.cli.render import fail, plural, print_json, say
from permit_guard.engines.local.bounds import MAX_DATA_FILE_BYTES
from permit_guard.engines.local.loading import load_policy
from permit_guard.engines.local.policy import Policy
from permit_guard.engines.local.reading import read_document, read_policy_file
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
    say(f"{label}: valid ({_summary(loaded.policy)})")


#: The sections every summary counts, even at zero.
_ALWAYS = ("resources", "resource_sets", "user_sets", "roles", "users")


def _summary(policy: Policy) -> str:
    # The ReBAC sections are counted when the policy has them.
    found = counts(policy)
    return ", ".join(plural(n, noun) for section, noun, n in found if n or section in _ALWAYS)


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


@policy_app.command("import")
def _import(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="A .json file written by permit-guard export."),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the policy here (.yaml, .yml or .json) instead of to stdout (YAML).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Read a JSON export back into a local policy file (YAML, like examples/policy.yaml).

    Resource types with their relations, resource roles and derivations;
    roles and their permissions; condition sets as resource sets and user
    sets, each condition set rule as a grant; users with their attributes, role
    assignments (per tenant, and on instances), resource instances and
    relationship tuples. The policy made decides as the exported one did. A
    file that is not JSON, is not of an export's shape, or names something it
    does not declare (a role, a user set, a resource type, an action...) exits
    2, naming the item.
    """
    if file.suffix.lower() != ".json":
        fail(f"{file}: expected the .json file permit-guard export writes")
    try:
        document = read_document(file, limit=MAX_DATA_FILE_BYTES, what="an export file")
        policy = import_policy(document, source=str(file))
    except (PolicyFileError, ImportFileError) as exc:
        fail(f"cannot import {file}:\n" + "\n".join(f"  - {p}" for p in exc.problems))
    try:
        loaded = load_policy(policy, source=str(file))
    except PolicyFileError as exc:
        fail(
            f"the policy imported from {file} does not load:\n"
            + "\n".join(f"  - {p}" for p in exc.problems)
        )
    text = _policy_text(policy, file, output)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    say(f"{output}: {_summary(loaded.policy)}")


def _policy_text(policy: dict[str, Any], source: Path, output: Path | None) -> str:
    suffix = output.suffix.lower() if output is not None else ".yaml"
    if suffix == ".json":
        return json.dumps(policy, indent=2) + "\n"
    if suffix not in (".yaml", ".yml"):
        fail(f"--output {output}: use .yaml, .yml or .json")
    # ASCII only, like the engine's data files: every name reads back as written.
    body = yaml.safe_dump(
        policy, sort_keys=False, default_flow_style=None, width=100, allow_unicode=False
    )
    return f"# Imported from {source} by permit-guard policy import.\n{body}"
