"""The ``permit-guard`` command on instances, relations and derived roles, run as a real process.

The server is ``tests/cli_servers/tracker.py`` and its policy
``tests/cli_servers/tracker.yaml``: organizations own workspaces, workspaces
hold projects, and resource roles flow down those relations.
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from typer.testing import CliRunner

from permit_guard.cli import app
from tests.test_cli import WORKERS, Run, cli

with warnings.catch_warnings():
    # The SDK warns about its own deprecated imports when imported.
    warnings.simplefilter("ignore", DeprecationWarning)
    from permit.api.models import (
        DerivedRoleRuleCreate,
        RelationCreate,
        ResourceCreate,
        ResourceRoleCreate,
    )

TRACKER = "tests/cli_servers/tracker.py"
POLICY = "tests/cli_servers/tracker.yaml"
BROKEN = "tests/policies/tracker-broken.yaml"
CYCLE = "tests/policies/tracker-cycle.yaml"
DATA = "tests/policies/tracker-data.yaml"
BROKEN_DATA = "tests/policies/tracker-data-broken.yaml"


#: Every command line of the tests below, run side by side once by ``runs``.
COMMANDS: list[tuple[str, ...]] = []


def command(*args: str) -> tuple[str, ...]:
    """Register a command line for ``runs``; a test reads its result with ``runs[line]``."""
    COMMANDS.append(args)
    return args


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, ...], Run]:
    """Every registered command, run once: each is a process that imports FastMCP."""
    unique = list(dict.fromkeys(COMMANDS))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(zip(unique, pool.map(lambda args: cli(*args), unique), strict=True))


# -- policy validate -------------------------------------------------------------------------------

VALID = command("policy", "validate", POLICY)
VALID_JSON = command("policy", "validate", POLICY, "--json")
INVALID = command("policy", "validate", BROKEN)
CYCLIC = command("policy", "validate", CYCLE)
WITH_DATA = command("policy", "validate", POLICY, "--data", DATA)
WITH_BROKEN_DATA = command("policy", "validate", POLICY, "--data", BROKEN_DATA, "--json")
DATA_WITH_MODEL = command("policy", "validate", POLICY, "--data", BROKEN)


def test_validate_counts_relations_derivations_instances_and_tuples(
    runs: dict[tuple[str, ...], Run],
) -> None:
    """A valid file's summary counts the ReBAC sections; --json gives every count."""
    valid, as_json = runs[VALID], runs[VALID_JSON]
    assert (valid.code, valid.err) == (0, "")
    assert valid.out == (
        f"{POLICY}: valid (5 resource types, 0 resource sets, 0 user sets, 2 roles, 4 users, "
        "2 relations, 3 derivations, 4 resource instances, 2 relationship tuples)\n"
    )
    assert (as_json.code, as_json.json()) == (
        0,
        {
            "file": POLICY,
            "valid": True,
            "problems": [],
            "counts": {
                "resources": 5,
                "resource_sets": 0,
                "user_sets": 0,
                "roles": 2,
                "users": 4,
                "relations": 2,
                "derivations": 3,
                "resource_instances": 4,
                "relationships": 2,
            },
        },
    )


def test_validate_names_each_bad_instance_tuple_and_derivation_with_its_location(
    runs: dict[tuple[str, ...], Run],
) -> None:
    """An unknown instance type, an undeclared relation, a missing derived-from role: exit 1."""
    run = runs[INVALID]
    assert (run.code, run.err) == (1, "")
    assert run.out == (
        f"{BROKEN}: 3 problems\n"
        "  - resources.project.roles.owner.granted_to.users_with_role[0].role: unknown resource "
        "role 'admn' on resource type 'workspace' (did you mean 'admin'? known: admin)\n"
        "  - resource_instances['task:t1']: unknown resource type 'task' (known: workspace, "
        "project)\n"
        "  - relationships[1].relation: unknown relation 'owner' on resource type 'project' "
        "(known: parent)\n"
    )


def test_validate_reports_a_cycle_of_tuples(runs: dict[tuple[str, ...], Run]) -> None:
    """Tuples that form a cycle are a problem of the relationships section."""
    run = runs[CYCLIC]
    assert (run.code, run.out) == (
        1,
        f"{CYCLE}: 1 problem\n"
        "  - relationships: the tuples form a cycle: folder:b -> folder:a -> folder:b\n",
    )


def test_validate_with_a_data_file(runs: dict[tuple[str, ...], Run]) -> None:
    """--data replaces the policy's facts; a bad tuple in it is named with its location."""
    valid, broken, model = runs[WITH_DATA], runs[WITH_BROKEN_DATA], runs[DATA_WITH_MODEL]
    assert (valid.code, valid.out) == (
        0,
        f"{POLICY} + {DATA}: valid (5 resource types, 0 resource sets, 0 user sets, 2 roles, "
        "1 user, 2 relations, 3 derivations, 3 resource instances, 1 relationship tuple)\n",
    )
    assert (broken.code, broken.json()) == (
        1,
        {
            "file": f"{POLICY} + {BROKEN_DATA}",
            "valid": False,
            "problems": [
                "relationships[0].relation: unknown relation 'owner' on resource type 'project' "
                "(known: parent)"
            ],
        },
    )
    assert (model.code, model.out) == (
        1,
        f"{BROKEN}: 1 problem\n"
        "  - resources: not a data section (the sections users, resource_instances, "
        "relationships); it belongs in the policy\n",
    )


# -- check --key -----------------------------------------------------------------------------------

CHECKS: dict[str, tuple[tuple[str, ...], int, str]] = {
    "derived-through-two-relations": (
        ("--user", "olga", "--tenant", "acme", "--tool", "get_project", "--key", "acme-1"),
        0,
        "allowed: tool 'get_project' for user 'olga' in tenant 'acme'\n"
        "instance: project:acme-1\n"
        "reason: resource role 'owner' on project:acme-1 grants read (derived: 'owner' on "
        "organization:acme -org-> 'admin' on workspace:w1 -parent-> 'owner' on project:acme-1)\n"
        f"decided by: local policy {POLICY}\n",
    ),
    "derived-through-one-relation": (
        ("--user", "wanda", "--tool", "close_project", "--key", "acme-1"),
        0,
        "allowed: tool 'close_project' for user 'wanda'\n"
        "instance: project:acme-1\n"
        "reason: resource role 'owner' on project:acme-1 grants close (derived: 'admin' on "
        "workspace:w1 -parent-> 'owner' on project:acme-1)\n"
        f"decided by: local policy {POLICY}\n",
    ),
    "the-instance-tenant-decides": (
        ("--user", "carol", "--tenant", "globex", "--tool", "get_project", "--key", "acme-1"),
        1,
        "denied: tool 'get_project' for user 'carol' in tenant 'globex'\n"
        "instance: project:acme-1\n"
        "reason: no role, user set or resource role of user 'carol' in tenant 'acme' grants "
        "project:read\n"
        f"decided by: local policy {POLICY}\n",
    ),
    "no-derivation-reaches-the-instance": (
        ("--user", "wanda", "--tool", "close_project", "--key", "acme-2"),
        1,
        "denied: tool 'close_project' for user 'wanda'\n"
        "instance: project:acme-2\n"
        "reason: no role, user set or resource role of user 'wanda' in tenant 'acme' grants "
        "project:close\n"
        f"decided by: local policy {POLICY}\n",
    ),
    "the-same-key-in-args": (
        (
            "--user",
            "alice",
            "--tool",
            "get_project",
            "--key",
            "acme-2",
            "--args",
            '{"project_id": "acme-2"}',
        ),
        0,
        "allowed: tool 'get_project' for user 'alice'\n"
        "instance: project:acme-2\n"
        "reason: resource role 'reader' on project:acme-2 grants read\n"
        f"decided by: local policy {POLICY}\n",
    ),
    "a-fixed-key-shows-its-instance": (
        ("--user", "carol", "--tool", "read_roadmap"),
        0,
        "allowed: tool 'read_roadmap' for user 'carol'\n"
        "instance: project:roadmap\n"
        "reason: resource role 'reader' on project:roadmap grants read\n"
        f"decided by: local policy {POLICY}\n",
    ),
    "no-key-no-instance": (
        (
            "--user",
            "olga",
            "--tenant",
            "acme",
            "--tool",
            "create_project",
            "--args",
            '{"name": "x"}',
        ),
        0,
        "allowed: tool 'create_project' for user 'olga' in tenant 'acme'\n"
        "reason: role 'member' grants project:create in tenant 'acme'\n"
        f"decided by: local policy {POLICY}\n",
    ),
}
CHECK_COMMANDS = {
    case: command("check", TRACKER, *args, "--policy", POLICY)
    for case, (args, _, _) in CHECKS.items()
}


@pytest.mark.parametrize("case", list(CHECKS))
def test_check_key_names_the_instance_and_the_reason_names_the_path(
    case: str, runs: dict[tuple[str, ...], Run]
) -> None:
    """--key sets the key argument; the output shows the instance and the derivation path."""
    _, code, output = CHECKS[case]
    run = runs[CHECK_COMMANDS[case]]
    assert (run.code, run.out, run.err) == (code, output, "")


PROMPT = command(
    "check", TRACKER, "--user", "wanda", "--prompt", "summarize_project", "--key", "acme-1",
    "--policy", POLICY, "--json",
)  # fmt: skip


def test_check_key_of_a_prompt_as_json(runs: dict[tuple[str, ...], Run]) -> None:
    """A prompt's key argument takes --key too; the JSON request names the instance."""
    run = runs[PROMPT]
    assert (run.code, run.err) == (0, "")
    result = run.json()
    assert result["allowed"] is True
    assert (
        "(derived: 'admin' on workspace:w1 -parent-> 'owner' on project:acme-1)"
        in (result["reason"])
    )
    resource = result["request"]["resource"]
    assert (resource["type"], resource["key"], resource["attributes"]["arg_project_id"]) == (
        "project",
        "acme-1",
        "acme-1",
    )


DATA_CHECKS = [
    command(
        "check",
        TRACKER,
        "--user",
        "wanda",
        "--tool",
        "get_project",
        "--key",
        key,
        "--policy",
        POLICY,
        "--data",
        DATA,
    )
    for key in ("acme-1", "acme-2")
]


def test_check_with_a_data_file_decides_with_its_tuples(runs: dict[tuple[str, ...], Run]) -> None:
    """--data replaces the tuples: wanda's workspace now holds acme-2, and no longer acme-1."""
    before, after = (runs[c] for c in DATA_CHECKS)
    assert before.code == 1
    assert after.code == 0
    assert after.out.splitlines()[2:] == [
        "reason: resource role 'owner' on project:acme-2 grants read (derived: 'admin' on "
        "workspace:w1 -parent-> 'owner' on project:acme-2)",
        f"decided by: local policy {POLICY} with data {DATA}",
    ]


KEY_ERRORS = {
    "no-key-argument": (
        ("--tool", "create_project", "--key", "p9"),
        "Error: tool 'create_project' has no key argument: its @require_permission names no "
        "key=..., so its requests name no resource instance; --key applies to components "
        'declared with key="ARGUMENT"\n',
    ),
    "fixed-key": (
        ("--tool", "read_roadmap", "--key", "other"),
        "Error: tool 'read_roadmap' has a fixed key ('roadmap', key=fixed(...)): its requests "
        "always name that instance, so --key cannot choose another\n",
    ),
    "disagreeing-args": (
        ("--tool", "get_project", "--key", "acme-1", "--args", '{"project_id": "acme-2"}'),
        "Error: --key 'acme-1' and --args project_id='acme-2' name different instances; give "
        "the key of tool 'get_project' once\n",
    ),
    "bad-data-file": (
        ("--tool", "get_project", "--key", "acme-1", "--data", BROKEN_DATA),
        f"Error: invalid policy {POLICY} + {BROKEN_DATA}:\n"
        "  - relationships[0].relation: unknown relation 'owner' on resource type 'project' "
        "(known: parent)\n",
    ),
}
KEY_ERROR_COMMANDS = {
    case: command("check", TRACKER, "--user", "wanda", "--policy", POLICY, *args)
    for case, (args, _) in KEY_ERRORS.items()
}


@pytest.mark.parametrize("case", list(KEY_ERRORS))
def test_check_key_errors_exit_2(case: str, runs: dict[tuple[str, ...], Run]) -> None:
    """--key on a component without a key argument, or against --args, is said clearly: exit 2."""
    run = runs[KEY_ERROR_COMMANDS[case]]
    assert (run.code, run.out, run.err) == (2, "", KEY_ERRORS[case][1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--resource", "files://a", "--key", "a"),
            "--key applies to --tool and --prompt; a resource's key is the URI it reads",
        ),
        (
            ("--tool", "get_project", "--key", "a", "--data", DATA),
            "--data FILE goes with --policy FILE",
        ),
    ],
)
def test_check_key_and_data_usage_errors(args: tuple[str, ...], message: str) -> None:
    """--key for a resource, --data without --policy: usage errors before loading (in process)."""
    result = CliRunner().invoke(app, ["check", TRACKER, "--user", "wanda", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


# -- lint ------------------------------------------------------------------------------------------

LINT = command("lint", TRACKER, "--policy", POLICY, "--json")
LINT_STRICT = command("lint", TRACKER, "--policy", POLICY, "--strict")
LINT_DATA = command("lint", TRACKER, "--policy", POLICY, "--data", DATA, "--json")

ONLY_RUNTIME = "no assignment in the policy or derivation grants it; only runtime assignments can"


def test_lint_finds_roles_nothing_in_the_policy_grants(runs: dict[tuple[str, ...], Run]) -> None:
    """A tenant role nobody holds, a resource role nobody is assigned, one derived only from it."""
    run = runs[LINT]
    assert (run.code, run.err) == (0, "")
    assert run.json()["findings"] == [
        {
            "kind": "ungrantable-role",
            "severity": "warning",
            "component": None,
            "location": "roles.guest",
            "message": "role 'guest': no assignment in the policy grants it in any tenant; only "
            "runtime assignments can",
        },
        {
            "kind": "ungrantable-role",
            "severity": "warning",
            "component": None,
            "location": "resources.workspace.roles.auditor",
            "message": f"resource role 'auditor' of 'workspace': {ONLY_RUNTIME}",
        },
        {
            "kind": "ungrantable-role",
            "severity": "warning",
            "component": None,
            "location": "resources.project.roles.auditor",
            "message": f"resource role 'auditor' of 'project': {ONLY_RUNTIME} (it is derived "
            "from 'auditor' on workspace, which nothing grants either)",
        },
    ]
    strict = runs[LINT_STRICT]
    assert strict.code == 1
    assert strict.out.endswith("0 errors, 3 warnings\n")


def test_lint_reads_assignments_from_a_data_file(runs: dict[tuple[str, ...], Run]) -> None:
    """With --data only its users' assignments count: olga's and alice's roles are gone."""
    run = runs[LINT_DATA]
    assert run.code == 0
    assert run.json()["policy"] == f"{POLICY} + {DATA}"
    assert [f["location"] for f in run.json()["findings"]] == [
        "roles.guest",
        "resources.organization.roles.owner",
        "resources.workspace.roles.auditor",
        "resources.project.roles.reader",
        "resources.project.roles.auditor",
    ]


# -- export --policy -------------------------------------------------------------------------------

EXPORT_JSON = command("export", TRACKER, "--policy", POLICY)
EXPORT_TERRAFORM = command("export", TRACKER, "--policy", POLICY, "--format", "terraform")
EXPORT_PLAIN = command("export", TRACKER)
EXPORT_BROKEN = command("export", TRACKER, "--policy", BROKEN)

SCHEMA = "/schema/{proj_id}/{env_id}/resources"


def test_export_json_carries_relations_roles_and_derivations(
    runs: dict[tuple[str, ...], Run],
) -> None:
    """Resource types first, then relations, resource roles and each role's derivations."""
    run = runs[EXPORT_JSON]
    assert (run.code, run.err) == (0, "")
    exported = run.json()
    resources = {body["key"]: body for body in exported["resources"]}
    assert list(resources) == [
        "project",
        "mcp_server_tools",
        "mcp_server_prompts",
        "organization",
        "workspace",
    ]
    # The instances' attributes join the project's; the policy's other types have their actions.
    assert resources["project"]["attributes"]["archived"] == {"type": "bool"}
    assert resources["workspace"] == {
        "key": "workspace",
        "name": "workspace",
        "actions": {"manage": {"name": "manage"}},
    }
    assert exported["resource_relations"] == [
        {
            "resource": "workspace",
            "body": {"key": "org", "name": "org", "subject_resource": "organization"},
        },
        {
            "resource": "project",
            "body": {"key": "parent", "name": "parent", "subject_resource": "workspace"},
        },
    ]
    assert [(r["resource"], r["body"]["key"]) for r in exported["resource_roles"]] == [
        ("organization", "owner"),
        ("workspace", "admin"),
        ("workspace", "auditor"),
        ("project", "owner"),
        ("project", "reader"),
        ("project", "auditor"),
    ]
    assert exported["resource_roles"][3]["body"] == {
        "key": "owner",
        "name": "owner",
        "permissions": ["read", "close"],
    }
    assert exported["role_derivations"][0] == {
        "resource": "workspace",
        "role": "admin",
        "body": {"role": "owner", "on_resource": "organization", "linked_by_relation": "org"},
    }
    assert [(d["resource"], d["role"]) for d in exported["role_derivations"]] == [
        ("workspace", "admin"),
        ("project", "owner"),
        ("project", "auditor"),
    ]


def test_export_json_bodies_are_what_the_permit_sdk_models_declare(
    runs: dict[tuple[str, ...], Run],
) -> None:
    """Each body parses as the permit SDK's model of its endpoint, with no undeclared field."""
    models: dict[str, Any] = {
        "resources": ResourceCreate,
        "resource_relations": RelationCreate,
        "resource_roles": ResourceRoleCreate,
        "role_derivations": DerivedRoleRuleCreate,
    }
    exported = runs[EXPORT_JSON].json()
    for key, model in models.items():
        for item in exported[key]:
            body = item.get("body", item)
            model.parse_obj(body)
            assert set(body) <= set(model.__fields__), (key, body)
    derived = DerivedRoleRuleCreate.parse_obj(exported["role_derivations"][0]["body"])
    assert derived.linked_by_relation == "org"


OWNER_DERIVATION = """\
resource "permitio_role_derivation" "workspace_admin_to_project_owner" {
  role        = permitio_role.workspace__admin.key
  on_resource = permitio_resource.workspace.key
  to_role     = permitio_role.project__owner.key
  resource    = permitio_resource.project.key
  linked_by   = permitio_relation.project__parent.key
}
"""

PARENT_RELATION = """\
resource "permitio_relation" "project__parent" {
  key              = "parent"
  name             = "parent"
  subject_resource = permitio_resource.workspace.key
  object_resource  = permitio_resource.project.key
}
"""

OWNER_ROLE = """\
resource "permitio_role" "project__owner" {
  key         = "owner"
  name        = "owner"
  resource    = permitio_resource.project.key
  permissions = ["read", "close"]
}
"""


def test_export_terraform_carries_relations_roles_and_derivations(
    runs: dict[tuple[str, ...], Run],
) -> None:
    """permitio_relation, permitio_role (with resource) and permitio_role_derivation blocks."""
    run = runs[EXPORT_TERRAFORM]
    assert (run.code, run.err) == (0, "")
    blocks = re.findall(r'^resource "(\w+)" "(\w+)"', run.out, flags=re.MULTILINE)
    assert blocks[:20] == [
        ("permitio_tenant", "acme"),
        ("permitio_tenant", "globex"),
        ("permitio_resource", "project"),
        ("permitio_resource", "mcp_server_tools"),
        ("permitio_resource", "mcp_server_prompts"),
        ("permitio_resource", "organization"),
        ("permitio_resource", "workspace"),
        ("permitio_role", "member"),
        ("permitio_role", "guest"),
        ("permitio_relation", "workspace__org"),
        ("permitio_relation", "project__parent"),
        ("permitio_role", "organization__owner"),
        ("permitio_role", "workspace__admin"),
        ("permitio_role", "workspace__auditor"),
        ("permitio_role", "project__owner"),
        ("permitio_role", "project__reader"),
        ("permitio_role", "project__auditor"),
        ("permitio_role_derivation", "organization_owner_to_workspace_admin"),
        ("permitio_role_derivation", "workspace_admin_to_project_owner"),
        ("permitio_role_derivation", "workspace_auditor_to_project_auditor"),
    ]
    for block in (PARENT_RELATION, OWNER_ROLE, OWNER_DERIVATION):
        assert block in run.out
    # Every reference names a block of the output.
    defined = {f"{kind}.{name}" for kind, name in blocks}
    assert set(re.findall(r"= (permitio_\w+\.\w+)\.key", run.out)) <= defined
    assert "no resource for users or relationship tuples" in run.out


def test_export_without_a_policy_has_no_relations_or_roles(
    runs: dict[tuple[str, ...], Run],
) -> None:
    """Without --policy the export is the server's resource types only, as before."""
    run = runs[EXPORT_PLAIN]
    assert run.code == 0
    exported = run.json()
    assert [k for k, v in exported.items() if isinstance(v, list) and v] == ["resources"]
    assert "archived" not in exported["resources"][0]["attributes"]


def test_export_with_an_invalid_policy_exits_2(runs: dict[tuple[str, ...], Run]) -> None:
    """An export --policy that does not load names every problem, exit 2."""
    run = runs[EXPORT_BROKEN]
    assert (run.code, run.out) == (2, "")
    assert run.err.startswith(f"Error: invalid policy {BROKEN}:\n")
    assert "relationships[1].relation: unknown relation 'owner'" in run.err


# -- help ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command_line", "option"),
    [
        (("check",), "--key"),
        (("check",), "--data"),
        (("lint",), "--data"),
        (("export",), "--policy"),
        (("policy", "validate"), "--data"),
    ],
)
def test_new_options_have_help(command_line: tuple[str, ...], option: str) -> None:
    """--help lists the new options (in process)."""
    result = CliRunner().invoke(app, [*command_line, "--help"], prog_name="permit-guard")
    assert result.exit_code == 0
    assert option in result.output
