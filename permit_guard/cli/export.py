"""``permit-guard export``: a server's Permit.io schema, a whole local policy, or both.

The command's body; the objects and their two forms (API requests, Terraform)
are :mod:`permit_guard.cli.permit_io`'s. ``SERVER`` gives the resource types
the guard asks about, with the actions and the attributes its requests carry;
``--policy`` gives everything the policy holds (see ``docs/cli.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

from permit_guard.cli.inventory import inventory
from permit_guard.cli.options import load, run
from permit_guard.cli.permit_io import ExportError, api_json, build_export, terraform
from permit_guard.cli.render import fail
from permit_guard.engines.local.reading import read_policy_file
from permit_guard.exceptions import PolicyFileError

__all__ = ["FORMATS", "export_text"]

#: The values of ``--format``.
FORMATS = ("json", "terraform")


def export_text(
    server: str | None,
    policy: Path | None,
    output_format: str,
    *,
    server_name: str | None = None,
    default_deny: bool | None = None,
) -> str:
    """What ``permit-guard export`` prints; every problem is a usage error (exit 2).

    Args:
        server: ``path/to/file.py[:var]`` or ``package.module[:var]``, or ``None``.
        policy: A local policy file, or ``None``.
        output_format: ``json`` or ``terraform``.
        server_name: Overrides the server's resource type of tool calls.
        default_deny: Overrides the server's default deny.

    Returns:
        The export, ending in a newline.
    """
    if output_format not in FORMATS:
        fail(f"--format must be json or terraform, not {output_format!r}")
    if server is None and policy is None:
        fail("give SERVER, --policy FILE, or both")
    if server is None and (server_name is not None or default_deny is not None):
        fail("--server-name and --default-deny go with SERVER")
    model = None
    if policy is not None:
        try:
            model = read_policy_file(policy).policy
        except PolicyFileError as exc:
            fail(str(exc))
    found = None
    if server is not None:
        loaded, settings, _ = load(server, server_name, default_deny)
        found = run(inventory(loaded, settings))
    try:
        export = build_export(found, model, policy_source=str(policy) if policy else None)
    except ExportError as exc:
        fail(str(exc))
    if output_format == "json":
        return json.dumps(api_json(export), indent=2) + "\n"
    return terraform(export)
