"""docs/example_policies: the three forms of the example policy agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from permit_guard import LocalPolicyEngine

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "example_policies"


def test_yaml_is_the_example_servers_policy() -> None:
    """The documented YAML is the one the example server runs, and it loads."""
    documented = (DOCS / "policy.yaml").read_text()
    assert documented == (ROOT / "examples" / "seed_server" / "policy.yaml").read_text()
    LocalPolicyEngine.from_file(DOCS / "policy.yaml")


def test_api_json_matches_the_yaml() -> None:
    """The API requests create the same actions, roles, grants and condition as the YAML."""
    policy = yaml.safe_load((DOCS / "policy.yaml").read_text())
    requests = json.loads((DOCS / "permit-api.json").read_text())["requests"]
    bodies = [r["body"] for r in requests]
    resources = {b["key"]: sorted(b["actions"]) for b in bodies if "actions" in b}
    assert resources == {k: sorted(v["actions"]) for k, v in policy["resources"].items()}
    condition_set = next(b for b in bodies if b.get("type") == "resourceset")
    assert (
        condition_set["conditions"]["allOf"][0]
        == policy["resource_sets"]["big_greets"]["condition"]
    )
    roles = {b["key"]: set(b["permissions"]) for b in bodies if "permissions" in b}
    rules = {(b["user_set"], b["permission"]) for b in bodies if "user_set" in b}
    for name, role in policy["roles"].items():
        expected = {
            f"{target}:{action}"
            for target, actions in role["grants"].items()
            if target in policy["resources"]
            for action in actions
        }
        assert roles[name] == expected
        assert (name, "mcp_server:conditional-greet") in rules


def test_terraform_matches_the_yaml() -> None:
    """The Terraform declares the same actions, roles and condition as the YAML."""
    policy = yaml.safe_load((DOCS / "policy.yaml").read_text())
    terraform = (DOCS / "permit.tf").read_text()
    for resource, spec in policy["resources"].items():
        assert f'resource "permitio_resource" "{resource}"' in terraform
        for action in spec["actions"]:
            assert re.search(
                rf'"{re.escape(action)}"\s*=\s*{{ name = "{re.escape(action)}" }}', terraform
            )
    for role in policy["roles"]:
        assert f'resource "permitio_role" "{role}"' in terraform
    assert '"resource.arg_number" = { "greater-than" = 10 }' in terraform
    assert '"resource.mcp_method" = { equals = "tools/list" }' in terraform
