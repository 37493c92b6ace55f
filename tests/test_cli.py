"""The ``permit-guard`` command, run as a real process against the example servers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from permit_guard.cli import app
from permit_guard.testing import LocalPDP

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "permit-guard"
QUICKSTART = "examples/quickstart.py"
POLICY = "examples/policy.yaml"
FILES = "tests/cli_servers/files.py"
FILES_POLICY = "tests/cli_servers/files.yaml"
BROKEN = "tests/cli_servers/broken.yaml"
SEED = "tests/cli_servers/seed.py"
SEED_POLICY = "examples/seed_server/policy.yaml"


WORKERS = (os.cpu_count() or 2) + 1


@dataclass(frozen=True)
class Run:
    """What one command did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def _environment(extra: dict[str, str] | None) -> dict[str, str]:
    # The command reads PERMIT_MCP_* like the middleware does: start from none.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PERMIT_MCP_") and k != "COLUMNS"
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


def cli(*args: str, env: dict[str, str] | None = None, script: bool = False) -> Run:
    """Run the command: the permit-guard script, or ``python -m permit_guard``."""
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "permit_guard"]
    done = subprocess.run(
        [*command, *args],
        cwd=ROOT,
        env=_environment(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def cli_many(*commands: Sequence[str]) -> list[Run]:
    """Several commands at once: each one is a process that imports FastMCP."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(lambda args: cli(*args), commands))


@dataclass(frozen=True)
class Command:
    """A command line, with extra environment variables."""

    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    script: bool = False


#: The commands of the tests below, run side by side by the ``runs`` fixture: each
#: is a process that imports FastMCP, and most of their time is that import.
COMMANDS: list[Command] = []


def command(*args: str, env: dict[str, str] | None = None, script: bool = False) -> Command:
    """Register a command for ``runs``; the test reads its result with ``runs[command]``."""
    registered = Command(args, tuple(sorted((env or {}).items())), script)
    COMMANDS.append(registered)
    return registered


@pytest.fixture(scope="module")
def runs() -> dict[Command, Run]:
    """Every registered command, run once, side by side."""
    unique = list(dict.fromkeys(COMMANDS))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        done = pool.map(lambda c: cli(*c.args, env=dict(c.env), script=c.script), unique)
        return dict(zip(unique, done, strict=True))


# -- inspect ---------------------------------------------------------------------------------------

QUICKSTART_TABLE = """\
Server 'billing': settings from the server's PermitMcpMiddleware, server name 'mcp_server', default deny on
                                                                                    argument
kind      name             guard         checked as                 key             attributes
──────────────────────────────────────────────────────────────────────────────────────────────────
tool      greet            decorated     mcp_server:greet           -               arg_name
tool      refund           decorated     mcp_server:refund          -               arg_amount,
                                                                                    arg_currency
tool      delete_invoice   decorated     invoice:delete             arg:invoice_id  arg_invoice_id
tool      health           public        -                          -               -
tool      debug_dump       default-deny  -                          -               -
resource  data://reports/  decorated     mcp_server_resources:read  uri             -
          summary
prompt    summarize        decorated     mcp_server_prompts:read    name            arg_topic
tenant: the caller's, in every request

list method               resource type         action  checked
───────────────────────────────────────────────────────────────
tools/list                mcp_server_tools      list    yes
resources/list            mcp_server_resources  list    yes
resources/templates/list  mcp_server_resources  list    yes
prompts/list              mcp_server_prompts    list    yes
"""  # noqa: E501


INSPECT_QUICKSTART = command("inspect", QUICKSTART, script=True)


def test_inspect_table_through_the_console_script(runs: dict[Command, Run]) -> None:
    """The installed permit-guard script prints every component of the quickstart as a table."""
    run = runs[INSPECT_QUICKSTART]
    assert (run.code, run.err) == (0, "")
    assert run.out == QUICKSTART_TABLE  # and the quickstart's __main__ block did not run


def _attributes(*pairs: str) -> list[dict[str, str]]:
    return [{"name": p.split(":")[0], "type": p.split(":")[1]} for p in pairs]


FILES_COMPONENTS: list[dict[str, Any]] = [
    {
        "kind": "tool",
        "name": "share_document",
        "version": None,
        "guard": "decorated",
        "function": "files.share_document",
        "mounted": False,
        "resource_type": "document",
        "action": "share",
        "key": {"from": "argument", "argument": "doc_id"},
        "tenant": {"from": "argument", "argument": "org"},
        "attributes": _attributes(
            "p_doc_id:string", "p_recipients:array", "mcp_method:string", "tool_name:string"
        ),
        "note": None,
    },
    {
        "kind": "tool",
        "name": "ship",
        "version": None,
        "guard": "decorated",
        "function": "files.ship",
        "mounted": False,
        "resource_type": "mcp_server",
        "action": "ship",
        "key": None,
        "tenant": {"from": "fixed", "value": "acme"},
        "attributes": _attributes(
            "arg_address_city:string",
            "arg_address_zip_code:number",
            "arg_express:bool",
            "mcp_method:string",
            "tool_name:string",
        ),
        "note": None,
    },
    {
        "kind": "tool",
        "name": "login",
        "version": None,
        "guard": "public",
        "function": "files.login",
        "mounted": False,
        "resource_type": None,
        "action": None,
        "key": None,
        "tenant": None,
        "attributes": [],
        "note": "never checked",
    },
    {
        "kind": "tool",
        "name": "ping_backend",
        "version": None,
        "guard": "default",
        "function": None,
        "mounted": False,
        "resource_type": "mcp_server",
        "action": "ping-backend",
        "key": None,
        "tenant": {"from": "caller"},
        "attributes": _attributes("mcp_method:string", "tool_name:string"),
        "note": None,
    },
    {
        "kind": "tool",
        "name": "admin_wipe",
        "version": None,
        "guard": "decorated",
        "function": "files.wipe",
        "mounted": True,
        "resource_type": "mcp_server",
        "action": "admin-wipe",
        "key": None,
        "tenant": {"from": "caller"},
        "attributes": _attributes(
            "arg_target:string", "arg_force:bool", "mcp_method:string", "tool_name:string"
        ),
        "note": None,
    },
    {
        "kind": "resource",
        "name": "files://readme",
        "version": None,
        "guard": "decorated",
        "function": "files.readme",
        "mounted": False,
        "resource_type": "mcp_server_resources",
        "action": "read",
        "key": {"from": "uri"},
        "tenant": {"from": "caller"},
        "attributes": _attributes("mcp_method:string", "resource_uri:string"),
        "note": None,
    },
    {
        "kind": "template",
        "name": "files://{path}",
        "version": None,
        "guard": "decorated",
        "function": "files.read_file",
        "mounted": False,
        "resource_type": "mcp_server_resources",
        "action": "read",
        "key": {"from": "uri"},
        "tenant": {"from": "caller"},
        "attributes": _attributes("arg_path:string", "mcp_method:string", "resource_uri:string"),
        "note": None,
    },
    {
        "kind": "prompt",
        "name": "review",
        "version": None,
        "guard": "decorated",
        "function": "files.review",
        "mounted": False,
        "resource_type": "mcp_server_prompts",
        "action": "read",
        "key": {"from": "name"},
        "tenant": {"from": "caller"},
        "attributes": _attributes(
            "arg_document:string", "arg_depth:number", "mcp_method:string", "prompt_name:string"
        ),
        "note": None,
    },
]


INSPECT_FILES = command("inspect", FILES, "--json")


def test_inspect_json_covers_mounted_servers_templates_and_prompts(
    runs: dict[Command, Run],
) -> None:
    """--json lists mounted tools, templates and prompts with key, tenant and typed attributes."""
    run = runs[INSPECT_FILES]
    assert (run.code, run.err) == (0, "")
    data = run.json()  # JSON only on stdout: nothing else, and no __main__ block output
    assert data["server"] == "files"
    assert data["components"] == FILES_COMPONENTS
    assert data["settings"]["source"] == "environment"
    assert [(g["method"], g["resource_type"], g["checked"]) for g in data["gates"]] == [
        ("tools/list", "mcp_server_tools", True),
        ("resources/list", "mcp_server_resources", True),
        ("resources/templates/list", "mcp_server_resources", True),
        ("prompts/list", "mcp_server_prompts", True),
    ]


INSPECT_SETTINGS = command(
    "inspect",
    "tests.cli_servers.files",
    "--server-name",
    "files",
    "--default-deny",
    "--json",
    env={"PERMIT_MCP_ACTION_PREFIX": "mcp_", "PERMIT_MCP_BYPASSED_METHODS": '["tools/list"]'},
)


def test_inspect_follows_server_name_and_environment_settings(runs: dict[Command, Run]) -> None:
    """--server-name and PERMIT_MCP_* settings change the mapping shown; module:var specs load."""
    run = runs[INSPECT_SETTINGS]
    assert (run.code, run.err) == (0, "")
    data = run.json()
    rows = {c["name"]: (c["guard"], c["resource_type"], c["action"]) for c in data["components"]}
    assert rows == {
        "share_document": ("decorated", "document", "share"),
        "ship": ("decorated", "files", "ship"),
        "login": ("public", None, None),
        "ping_backend": ("default-deny", None, None),
        "admin_wipe": ("decorated", "files", "admin-wipe"),
        "files://readme": ("decorated", "files_resources", "mcp_read"),
        "files://{path}": ("decorated", "files_resources", "mcp_read"),
        "review": ("decorated", "files_prompts", "mcp_read"),
    }
    assert [(g["resource_type"], g["action"], g["checked"]) for g in data["gates"]] == [
        ("files_tools", "mcp_list", False),
        ("files_resources", "mcp_list", True),
        ("files_resources", "mcp_list", True),
        ("files_prompts", "mcp_list", True),
    ]
    assert data["components"][0]["function"] == "tests.cli_servers.files.share_document"


# -- check -----------------------------------------------------------------------------------------

BOB = (QUICKSTART, "--user", "bob", "--policy", POLICY)

#: check runs: arguments, exit code, output. All of them run at once (see check_runs).
CHECKS: dict[str, tuple[tuple[str, ...], int, str]] = {
    "allowed": (
        (*BOB, "--tool", "greet", "--args", '{"name": "Ada"}'),
        0,
        "allowed: tool 'greet' for user 'bob'\n"
        "reason: role 'clerk' grants mcp_server:greet in tenant 'default'\n"
        "decided by: local policy examples/policy.yaml\n",
    ),
    "denied-by-the-policy": (
        (*BOB, "--tool", "refund", "--args", '{"amount": 500, "currency": "EUR"}'),
        1,
        "denied: tool 'refund' for user 'bob'\n"
        "reason: no role, user set or resource role of user 'bob' in tenant 'default' "
        "grants mcp_server:refund\n"
        "decided by: local policy examples/policy.yaml\n",
    ),
    "undecorated-under-default-deny": (
        (QUICKSTART, "--user", "alice", "--tool", "debug_dump", "--policy", POLICY, "-v"),
        1,
        "denied: tool 'debug_dump' for user 'alice'\n"
        "reason: undecorated under default deny\n"
        "decided by: the guard, without asking the engine\n"
        "request: none was sent\n",
    ),
    "public": (
        (QUICKSTART, "--user", "eve", "--tool", "health", "--policy", POLICY),
        0,
        "allowed: tool 'health' for user 'eve'\n"
        "reason: public component\n"
        "decided by: the guard, without asking the engine\n",
    ),
    "argument-the-function-would-refuse": (
        (*BOB, "--tool", "refund", "--args", '{"amount": "lots", "currency": "EUR"}'),
        1,
        "denied: tool 'refund' for user 'bob'\n"
        "reason: refund: argument 'amount' is not valid: Input should be a valid number, "
        "unable to parse string as a number\n"
        "decided by: the guard, without asking the engine\n",
    ),
    "user-attributes": (
        (
            QUICKSTART,
            "--user",
            "dave",
            "--user-attributes",
            '{"department": "finance"}',
            "--tool",
            "refund",
            "--args",
            '{"amount": 20, "currency": "EUR"}',
            "--policy",
            POLICY,
        ),
        0,
        "allowed: tool 'refund' for user 'dave'\n"
        "reason: user set 'finance' grants refund on resource set 'small_refunds' "
        "(condition met)\n"
        "decided by: local policy examples/policy.yaml\n",
    ),
    "mounted-tool": (
        (
            FILES,
            "--user",
            "ada",
            "--tool",
            "admin_wipe",
            "--args",
            '{"target": "db"}',
            "--policy",
            FILES_POLICY,
        ),
        0,
        "allowed: tool 'admin_wipe' for user 'ada'\n"
        "reason: role 'admin' grants mcp_server:admin-wipe in tenant 'default'\n"
        "decided by: local policy tests/cli_servers/files.yaml\n",
    ),
    "prompt": (
        (*BOB, "--prompt", "summarize", "--args", '{"topic": "Q3"}'),
        0,
        "allowed: prompt 'summarize' for user 'bob'\n"
        "reason: role 'clerk' grants mcp_server_prompts:read in tenant 'default'\n"
        "decided by: local policy examples/policy.yaml\n",
    ),
}
VERBOSE = command(
    "check",
    QUICKSTART, "--user", "bob", "--tool", "refund",
    "--args", '{"amount": "50", "currency": "EUR"}', "-v",
)  # fmt: skip
TEMPLATE = command(
    "check",
    FILES, "--user", "bo", "--tenant", "acme", "--resource", "files://a.txt",
    "--policy", FILES_POLICY, "--json",
)  # fmt: skip


CHECK_COMMANDS = {name: command("check", *args) for name, (args, _, _) in CHECKS.items()}


@pytest.mark.parametrize("case", list(CHECKS))
def test_check_decides_like_the_middleware(case: str, runs: dict[Command, Run]) -> None:
    """check prints the decision and its reason, exit 0 when allowed and 1 when denied."""
    _, code, output = CHECKS[case]
    run = runs[CHECK_COMMANDS[case]]
    assert (run.code, run.out, run.err) == (code, output, "")


def test_check_verbose_prints_the_request_the_engine_gets(runs: dict[Command, Run]) -> None:
    """-v prints the exact PDP JSON: argument values as the function receives them."""
    run = runs[VERBOSE]
    assert (run.code, run.err) == (0, "")
    head, _, body = run.out.partition("request (as the PDP receives it on POST /allowed):\n")
    body, _, tree = body.partition("how the engine decided:\n")
    assert tree.splitlines()[0] == "bob in tenant 'default' asks mcp_server:refund"
    assert head == (
        "allowed: tool 'refund' for user 'bob'\n"
        "reason: user set 'finance' grants refund on resource set 'small_refunds' "
        "(condition met)\n"
        "decided by: the server's local policy examples/policy.yaml\n"
    )
    assert json.loads(body) == {
        "user": {"key": "bob", "attributes": {}},
        "action": "refund",
        "resource": {
            "type": "mcp_server",
            "tenant": "default",
            "attributes": {
                "arg_amount": 50.0,
                "arg_currency": "EUR",
                "mcp_method": "tools/call",
                "tool_name": "refund",
            },
            "context": {},
        },
        "context": {},
    }


def test_check_json_for_a_templated_resource_with_a_tenant(runs: dict[Command, Run]) -> None:
    """--json carries the decision and the request; template parameters become attributes."""
    run = runs[TEMPLATE]
    assert (run.code, run.err) == (1, "")
    assert run.json() == {
        "allowed": False,
        "reason": "no role, user set or resource role of user 'bo' in tenant 'acme' grants "
        "mcp_server_resources:read",
        "decided_by": "local",
        "engine": "local policy tests/cli_servers/files.yaml",
        "user": "bo",
        "tenant": "acme",
        "component": {"kind": "resource", "name": "files://a.txt"},
        "request": {
            "user": {"key": "bo", "attributes": {}},
            "action": "read",
            "resource": {
                "type": "mcp_server_resources",
                "key": "files://a.txt",
                "tenant": "acme",
                "attributes": {
                    "arg_path": "a.txt",
                    "mcp_method": "resources/read",
                    "resource_uri": "files://a.txt",
                },
                "context": {},
            },
            "context": {},
        },
    }


def test_check_against_a_pdp() -> None:
    """--pdp asks a real PDP over HTTP; the body it receives is the request -v prints."""
    with LocalPDP.from_file(ROOT / SEED_POLICY, api_key="permit_key_FAKE_cli") as pdp:
        url = pdp.url
        allowed, unauthorized = cli_many(
            (
                "check", SEED, "--user", "client", "--tool", "conditional_greet",
                "--args", '{"name": "Ada", "number": 11}',
                "--pdp", pdp.url, "--api-key", pdp.api_key, "-v",
            ),
            (
                "check", SEED, "--user", "client", "--tool", "greet",
                "--pdp", pdp.url, "--api-key", "permit_key_FAKE_wrong",
            ),
        )  # fmt: skip
        bodies = pdp.bodies
        assert pdp.errors == []
    assert (allowed.code, allowed.err) == (0, "")
    head, _, body = allowed.out.partition("request (as the PDP receives it on POST /allowed):\n")
    body, _, tree = body.partition("how the engine decided:\n")
    assert tree.startswith("the engine gives no explanation; its reason: ")
    assert head == (
        "allowed: tool 'conditional_greet' for user 'client'\n"
        "reason: PDP allowed: role 'user' grants conditional-greet on resource set 'big_greets' "
        "in tenant 'default' (condition met)\n"
        f"decided by: Permit.io PDP at {url}\n"
    )
    assert json.loads(body) in bodies
    assert (unauthorized.code, unauthorized.out) == (2, "")
    assert unauthorized.err == (
        f"Error: the policy engine could not decide: PDP at {url!r} (/allowed) answered "
        "HTTP 401: the PDP rejected the API key (check PERMIT_MCP_PERMIT_API_KEY)\n"
    )


CONFIGURATION_ERRORS = [
    command("check", *BOB, "--tool", "greet", "--args", "{name: Ada}"),
    command("check", *BOB, "--tool", "nope"),
    command("check", QUICKSTART, "--user", "bob", "--tool", "greet", "--policy", BROKEN),
]


def test_check_configuration_errors_exit_2(runs: dict[Command, Run]) -> None:
    """Bad --args JSON, an unknown tool or an invalid policy file: exit 2, said clearly."""
    bad_json, unknown, invalid_policy = (runs[c] for c in CONFIGURATION_ERRORS)
    assert (bad_json.code, bad_json.out, bad_json.err) == (
        2,
        "",
        "Error: --args is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)\n",
    )
    assert (unknown.code, unknown.out, unknown.err) == (
        2,
        "",
        "Error: the server has no tool 'nope' "
        "(tools: debug_dump, delete_invoice, greet, health, refund)\n",
    )
    assert (invalid_policy.code, invalid_policy.out, invalid_policy.err) == (
        2,
        "",
        "Error: invalid policy tests/cli_servers/broken.yaml:\n"
        "  - roles.viewer.grants.mcp_server: unknown action 'gret' (did you mean 'greet'? "
        "known: greet, refund)\n"
        "  - roles.viewer.grants: unknown resource type or resource set 'tiny_refunds' "
        "(known: mcp_server)\n"
        "  - users.alice.roles: unknown role 'admin' (known: viewer)\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--tool", "greet", "--args", '["Ada"]'),
            '--args must be a JSON object, not list: ["Ada"]',
        ),
        ((), "give exactly one of --tool NAME, --resource URI, --prompt NAME"),
        (("--tool", "a", "--prompt", "b"), "give exactly one of --tool NAME, --resource URI"),
        (("--resource", "data://x", "--args", "{}"), "--args applies to --tool and --prompt"),
        (("--tool", "greet", "--pdp", "http://127.0.0.1:9"), "give either --policy FILE or --pdp"),
    ],
)
def test_check_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    """Options that do not fit together exit 2 before the server is loaded (run in process)."""
    result = CliRunner().invoke(app, ["check", *BOB, *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_missing_caller_exits_2() -> None:
    """No --user, --token or --claims is a usage error, exit 2, naming the three."""
    result = CliRunner().invoke(app, ["check", QUICKSTART, "--tool", "greet"])
    assert result.exit_code == 2
    assert "exactly one of --user USER, --token JWT, --claims JSON" in " ".join(
        re.sub(r"[│╭╮╰╯─]", " ", result.output).split()
    )


LOADING_ERRORS = [
    command("inspect", "examples/nope.py"),
    command("inspect", f"{QUICKSTART}:events"),
    command("lint", "examples/seed_server/server.py"),
    command("export", "examples/seed_server/server.py:build_server"),
    command("inspect", "no_such_package.server:mcp"),
]


def test_server_loading_errors_exit_2(runs: dict[Command, Run]) -> None:
    """A missing file, a variable that is not a server, no `mcp` variable: exit 2, said clearly."""
    missing, not_server, no_variable, needs_arguments, no_module = (runs[c] for c in LOADING_ERRORS)
    assert [(r.code, r.out) for r in (missing, not_server, no_variable, needs_arguments)] == [
        (2, "")
    ] * 4
    assert missing.err == "Error: server file 'examples/nope.py' not found\n"
    assert (
        not_server.err == "Error: examples/quickstart.py:events is a list, not a FastMCP server\n"
    )
    assert no_variable.err == (
        "Error: examples/seed_server/server.py has no variable 'mcp' and defines no FastMCP "
        "server at module level; name one as FILE:VAR\n"
    )
    assert needs_arguments.err == (
        "Error: examples/seed_server/server.py:build_server is a function that takes arguments "
        "(secret); name a FastMCP server, or a function that builds one without arguments\n"
    )
    assert (no_module.code, no_module.err) == (
        2,
        "Error: no module named 'no_such_package.server' (a file is named path/to/file.py)\n",
    )


# -- lint ------------------------------------------------------------------------------------------


LINT_FILES = command("lint", FILES, "--policy", FILES_POLICY, "--json")


def test_lint_finds_every_kind_of_mistake(runs: dict[Command, Run]) -> None:
    """Unreachable components and list gates, undecorated tools and dead grants, as JSON; exit 1."""
    run = runs[LINT_FILES]
    assert (run.code, run.err) == (1, "")
    assert run.json() == {
        "server": "files",
        "policy": FILES_POLICY,
        "default_deny": False,
        "findings": [
            {
                "kind": "unreachable",
                "severity": "error",
                "component": "tool ping_backend",
                "location": None,
                "message": "resource type 'mcp_server' of the policy has no action "
                "'ping-backend': no role, user set or resource role can ever use tool "
                "'ping_backend'",
            },
            {
                "kind": "unreachable",
                "severity": "error",
                "component": "prompt review",
                "location": None,
                "message": "nothing in the policy grants mcp_server_prompts:read: no role, user "
                "set or resource role can ever use prompt 'review'",
            },
            {
                "kind": "undecorated",
                "severity": "warning",
                "component": "tool ping_backend",
                "location": None,
                "message": "tool 'ping_backend' has neither @require_permission nor @public: it "
                "is checked with the default mapping, as mcp_server:ping-backend",
            },
            {
                "kind": "unreachable",
                "severity": "warning",
                "component": "prompts/list",
                "location": None,
                "message": "nothing in the policy grants mcp_server_prompts:list: prompts/list "
                "answers everyone with the @public components only",
            },
            {
                "kind": "dead-grant",
                "severity": "warning",
                "component": None,
                "location": "roles.greeter.grants.mcp_server",
                "message": "grants mcp_server:greet, which no component of the server asks for",
            },
        ],
        "errors": 2,
        "warnings": 3,
    }


LINT_GATE = [
    command("lint", QUICKSTART),
    command("lint", QUICKSTART, "--no-default-deny", "--json"),
    command("lint", QUICKSTART, "--no-default-deny", "--strict", "--json"),
    command("lint", SEED),
    command("lint", QUICKSTART, "--policy", BROKEN, "--json"),
]


def test_lint_as_a_ci_gate(runs: dict[Command, Run]) -> None:
    """Errors exit 1, warnings 0 (1 with --strict), a clean server 0; finds the server's policy."""
    deny, allow, strict, clean, broken = (runs[c] for c in LINT_GATE)
    assert (deny.code, deny.err) == (1, "")
    assert deny.out == (
        "Server 'billing', policy examples/policy.yaml, default deny on\n"
        "severity   kind          where             message\n"
        + "─"
        * 160
        + "\nerror      undecorated   tool debug_dump   tool 'debug_dump' has neither "
        "@require_permission nor @public: under default deny it is hidden and denied to everyone\n"
        "1 error, 0 warnings\n"
    )
    assert (allow.code, [f["severity"] for f in allow.json()["findings"]]) == (0, ["warning"])
    assert (strict.code, strict.json()["warnings"]) == (1, 1)
    assert (clean.code, clean.err) == (0, "")
    assert clean.out == (
        "Server 'My MCP Server', policy examples/seed_server/policy.yaml, default deny off\n"
        "No problems found.\n"
    )
    assert broken.code == 1
    assert [(f["kind"], f["severity"], f["location"]) for f in broken.json()["findings"]] == [
        ("invalid-policy", "error", BROKEN),
        ("invalid-policy", "error", BROKEN),
        ("invalid-policy", "error", BROKEN),
        ("undecorated", "error", None),
    ]


# -- export ----------------------------------------------------------------------------------------


EXPORT_SEED = command("export", SEED)


def test_export_json_matches_the_permit_api_example(runs: dict[Command, Run]) -> None:
    """The example server's export is the resources of docs/example_policies/permit-api.json."""
    run = runs[EXPORT_SEED]
    assert (run.code, run.err) == (0, "")
    exported = run.json()
    example = json.loads((ROOT / "docs/example_policies/permit-api.json").read_text())
    expected = [r["body"] for r in example["requests"] if r["path"].endswith("/resources")]
    # Differences by design: @public login is never checked, so it needs no action;
    # the tools/list gate does carry mcp_method.
    del expected[0]["actions"]["login"]
    expected[1]["attributes"] = {"mcp_method": {"type": "string"}}
    assert exported["resources"] == expected
    # Without a policy, only the resource types: every other endpoint's list is empty.
    assert [key for key, items in exported.items() if isinstance(items, list) and items] == [
        "resources"
    ]


QUICKSTART_TERRAFORM_HEAD = """\
# The resource types the MCP server 'billing' needs in Permit.io
# (provider permitio/permit-io; see docs/example_policies/permit.tf for the provider
# block). Add your roles, resource sets and user sets beside them.

resource "permitio_resource" "mcp_server" {
  key  = "mcp_server"
  name = "mcp_server"
  actions = {
    "greet"  = { name = "greet" }
    "refund" = { name = "refund" }
  }
  attributes = {
    "arg_amount"   = { name = "arg_amount", type = "number" }
    "arg_currency" = { name = "arg_currency", type = "string" }
    "arg_name"     = { name = "arg_name", type = "string" }
    "mcp_method"   = { name = "mcp_method", type = "string" }
    "tool_name"    = { name = "tool_name", type = "string" }
  }
}

resource "permitio_resource" "invoice" {
"""


EXPORT_TERRAFORM = command("export", QUICKSTART, "--format", "terraform")


def test_export_terraform(runs: dict[Command, Run]) -> None:
    """Terraform output has one permitio_resource per resource type, list gates included."""
    run = runs[EXPORT_TERRAFORM]
    assert (run.code, run.err) == (0, "")
    assert run.out.startswith(QUICKSTART_TERRAFORM_HEAD)
    assert re.findall(r'resource "permitio_resource" "(\w+)"', run.out) == [
        "mcp_server",
        "invoice",
        "mcp_server_resources",
        "mcp_server_prompts",
        "mcp_server_tools",
    ]


# -- policy validate -------------------------------------------------------------------------------


VALIDATE = [
    command("policy", "validate", POLICY),
    command("policy", "validate", BROKEN),
    command("policy", "validate", BROKEN, "--json"),
]


def test_policy_validate(runs: dict[Command, Run]) -> None:
    """A valid file exits 0 with a summary; an invalid one lists each problem and exits 1."""
    valid, invalid, as_json = (runs[c] for c in VALIDATE)
    assert (valid.code, valid.out, valid.err) == (
        0,
        "examples/policy.yaml: valid (5 resource types, 1 resource set, 1 user set, 2 roles, "
        "3 users)\n",
        "",
    )
    problems = [
        "roles.viewer.grants.mcp_server: unknown action 'gret' (did you mean 'greet'? known: "
        "greet, refund)",
        "roles.viewer.grants: unknown resource type or resource set 'tiny_refunds' (known: "
        "mcp_server)",
        "users.alice.roles: unknown role 'admin' (known: viewer)",
    ]
    assert (invalid.code, invalid.err) == (1, "")
    assert invalid.out == "tests/cli_servers/broken.yaml: 3 problems\n" + "".join(
        f"  - {p}\n" for p in problems
    )
    assert (as_json.code, as_json.json()) == (
        1,
        {"file": BROKEN, "valid": False, "problems": problems},
    )


# -- help ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "summary"),
    [
        ((), "Inspect, check, explain, test, lint and export the authorization of a FastMCP"),
        (("inspect",), "Show how the guard checks every tool, resource, resource template"),
        (("check",), "Ask the guard whether USER may call a tool, read a resource"),
        (("explain",), "Show how the guard decides one request, as a tree"),
        (("test",), "Run decision test suites"),
        (("matrix",), "Show who can do what"),
        (("replay",), "Decide the requests of an audit log again with another policy"),
        (("lint",), "Find what would go wrong: usable as a CI gate."),
        (("export",), "Print the Permit.io schema the server needs"),
        (("policy",), "Work with local policy files."),
        (("policy", "validate"), "Load a local policy file and report every problem"),
        (("policy", "import"), "Read a JSON export back into a local policy file"),
    ],
)
def test_every_command_has_help(command: tuple[str, ...], summary: str) -> None:
    """--help works on every command (in process: the subprocess runs cover the entry points)."""
    result = CliRunner().invoke(app, [*command, "--help"], prog_name="permit-guard")
    assert result.exit_code == 0
    assert summary in " ".join(result.output.split())
    assert f"Usage: permit-guard {' '.join(command)}".strip() in result.output


def test_no_arguments_prints_the_help() -> None:
    """With no command, permit-guard prints its usage and the commands, exit 2."""
    result = CliRunner().invoke(app, [], prog_name="permit-guard")
    assert result.exit_code == 2  # click's code for "no command given"
    assert "Usage: permit-guard [OPTIONS] COMMAND [ARGS]..." in result.output
    commands = ("inspect", "check", "explain", "test", "matrix", "replay", "lint", "export")
    assert all(name in result.output for name in (*commands, "policy"))
