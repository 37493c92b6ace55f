"""``permit-guard matrix``: who can do what, checked against the real middleware and a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.server.middleware import MiddlewareContext
from mcp import MCPError
from typer.testing import CliRunner

from permit_guard import (
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    abac_from_args,
    public,
    require_permission,
)
from permit_guard.cli import app
from permit_guard.cli.load import guard_settings
from permit_guard.cli.matrix import Matrix, build_matrix, policy_users
from permit_guard.cli.matrix_html import page
from permit_guard.settings import DEFAULT_KNOWN_METHODS as KNOWN
from tests.browser import CHROMIUM, Page, open_page
from tests.test_cli import POLICY, QUICKSTART, ROOT, SEED, SEED_POLICY, cli

POLICY_DATA: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["greet", "refund", "debug-dump", "sub-ping"]},
        "mcp_server_tools": {"actions": ["list"]},
        "mcp_server_resources": {"actions": ["read", "list"]},
        "mcp_server_prompts": {"actions": ["read", "list"]},
        "invoice": {"actions": ["delete"], "roles": {"owner": ["delete"]}},
    },
    "resource_sets": {
        "small_refunds": {
            "resource": "mcp_server",
            "condition": {"allOf": [{"resource.arg_amount": {"less-than-equals": 100}}]},
        }
    },
    "roles": {
        "admin": {
            "grants": {
                "mcp_server": ["*"],
                "mcp_server_tools": ["list"],
                "mcp_server_resources": ["*"],
                "mcp_server_prompts": ["*"],
                "invoice": ["*"],
            }
        },
        "clerk": {
            "grants": {
                "mcp_server": ["greet", "sub-ping", "debug-dump"],
                "small_refunds": ["refund"],
                "mcp_server_tools": ["list"],
                "mcp_server_resources": ["read", "list"],
                "mcp_server_prompts": ["list"],
            }
        },
        # May call greet, but has no tools/list: the list hides what a call allows.
        "caller": {"grants": {"mcp_server": ["greet"]}},
    },
    "users": {
        "alice": {"roles": ["admin"]},
        "bob": {"roles": ["clerk"], "resource_roles": {"invoice:42": ["owner"]}},
        "carol": {"roles": ["caller"]},
        "dana": {"roles": {"acme": ["admin"]}},
        "eve": {},
    },
}


@dataclass(frozen=True)
class Probe:
    """One component, and arguments a call may be allowed with (and, if any, refused with)."""

    kind: str
    name: str
    call: str
    allowed: dict[str, Any]
    refused: dict[str, Any] | None = None


PROBES = [
    Probe("tool", "greet", "greet", {}),
    Probe("tool", "refund", "refund", {"amount": 50}, {"amount": 500}),
    Probe("tool", "delete_invoice", "delete_invoice", {"invoice_id": "42"}, {"invoice_id": "43"}),
    Probe("tool", "health", "health", {}),
    Probe("tool", "debug_dump", "debug_dump", {}),
    Probe("tool", "sub_ping", "sub_ping", {}),
    Probe("resource", "data://info", "data://info", {}),
    Probe("template", "data://items/{item_id}", "data://items/7", {}),
    Probe("prompt", "summarize", "summarize", {"topic": "Q3"}),
]

LISTS = {
    "tools/list": "list_tools",
    "resources/list": "list_resources",
    "resources/templates/list": "list_resource_templates",
    "prompts/list": "list_prompts",
}


class Caller:
    """The caller of every request: a test switches ``key`` between users."""

    def __init__(self, tenant: str | None) -> None:
        self.key = "alice"
        self.tenant = tenant

    def __call__(self, context: MiddlewareContext[Any]) -> Principal:
        return Principal(key=self.key, tenant=self.tenant)


def zoo(caller: Caller, **options: Any) -> FastMCP[Any]:
    """A server with every kind of component, guarded by the real middleware."""
    mcp: FastMCP[Any] = FastMCP("zoo")

    @mcp.tool
    @require_permission()
    def greet() -> str:
        return "hi"

    @mcp.tool
    @require_permission()
    @abac_from_args("amount")
    def refund(amount: float) -> str:
        return f"refunded {amount}"

    @mcp.tool
    @require_permission("delete", resource="invoice", key="invoice_id")
    def delete_invoice(invoice_id: str) -> str:
        return f"deleted {invoice_id}"

    @mcp.tool
    @public
    def health() -> str:
        return "ok"

    @mcp.tool
    def debug_dump() -> str:
        return "state"

    @mcp.resource("data://info")
    @require_permission()
    def info() -> str:
        return "info"

    @mcp.resource("data://items/{item_id}")
    @require_permission()
    def item(item_id: str) -> str:
        return f"item {item_id}"

    @mcp.prompt
    @require_permission()
    def summarize(topic: str) -> str:
        return f"Summarize {topic}."

    sub: FastMCP[Any] = FastMCP("sub")

    @sub.tool
    @require_permission()
    def ping() -> str:
        return "pong"

    mcp.mount(sub, namespace="sub")
    engine = LocalPolicyEngine.from_dict(POLICY_DATA)
    PermitMcpMiddleware(
        engine=engine, identity=caller, audit_sink=lambda event: None, **options
    ).attach(mcp)
    return mcp


async def allowed(client: Client, kind: str, name: str, arguments: dict[str, Any]) -> bool:
    """Whether a real client's call, read or render goes through the middleware."""
    if kind == "tool":
        return not (await client.call_tool(name, arguments, raise_on_error=False)).is_error
    try:
        if kind == "prompt":
            await client.get_prompt(name, arguments)
        else:
            await client.read_resource(name)
    except MCPError:
        return False
    return True


def listed_names(items: list[Any]) -> set[str]:
    return {
        getattr(item, "uri_template", None) or str(getattr(item, "uri", None) or item.name)
        for item in items
    }


CONFIGURATIONS = {
    "default deny": ({"default_deny": True}, None),
    "no default deny": ({"default_deny": False}, None),
    "tenant acme": ({"default_deny": True}, "acme"),
    "tools/list not known": (
        {"default_deny": True, "known_methods": [m for m in KNOWN if m != "tools/list"]},
        None,
    ),
}


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
async def test_every_cell_is_what_the_middleware_does(configuration: str) -> None:
    """Lists show exactly the matrix's visible names; allow, depends and deny hold for calls."""
    options, tenant = CONFIGURATIONS[configuration]
    caller = Caller(tenant)
    mcp = zoo(caller, **options)
    settings, _ = guard_settings(mcp)
    engine = LocalPolicyEngine.from_dict(POLICY_DATA)
    found = await build_matrix(mcp, settings, engine, policy_users(engine), tenant=tenant)
    assert found.users == ("alice", "bob", "carol", "dana", "eve")
    assert [(row.kind, row.name) for row in found.components] == [(p.kind, p.name) for p in PROBES]
    outcomes: dict[str, list[str]] = {}
    for user in found.users:
        caller.key = user
        async with Client(mcp) as client:
            for listing in found.listings(user):
                shown = listed_names(await getattr(client, LISTS[listing.method])())
                assert shown == set(listing.visible), (configuration, user, listing.method)
                assert not shown & set(listing.hidden)
            for index, probe in enumerate(PROBES):
                cell = found.cell(index, user)
                where = (configuration, user, probe.name, cell)
                assert cell.listed == (probe.name in _visible(found, user)), where
                ok = await allowed(client, probe.kind, probe.call, probe.allowed)
                assert ok == (cell.outcome != "deny"), where
                if probe.refused is not None and cell.outcome != "deny":
                    refused = not await allowed(client, probe.kind, probe.call, probe.refused)
                    assert refused == (cell.outcome == "depends"), where
                hidden = not cell.listed and cell.outcome != "deny"
                outcomes.setdefault(user, []).append(cell.outcome + ("*" if hidden else ""))
    expected = EXPECTED[configuration]
    assert outcomes == expected


def _visible(found: Matrix, user: str) -> set[str]:
    return {name for listing in found.listings(user) for name in listing.visible}


# Per user, in PROBES order: greet, refund, delete_invoice, health, debug_dump, sub_ping,
# data://info, the template, summarize. "*": hidden from its list, yet callable.
_DEFAULT = {
    "alice": ["allow"] * 4 + ["deny"] + ["allow"] * 4,
    "bob": ["allow", "depends", "depends", "allow", "deny", "allow", "allow", "allow", "deny"],
    "carol": ["allow*", "deny", "deny", "allow", "deny", "deny", "deny", "deny", "deny"],
    "dana": ["deny", "deny", "deny", "allow", "deny", "deny", "deny", "deny", "deny"],
    "eve": ["deny", "deny", "deny", "allow", "deny", "deny", "deny", "deny", "deny"],
}
EXPECTED = {
    "default deny": _DEFAULT,
    "no default deny": {
        **_DEFAULT,
        "alice": ["allow"] * 9,
        "bob": ["allow", "depends", "depends", "allow", "allow", "allow", "allow", "allow", "deny"],
    },
    "tenant acme": {
        **{user: ["deny", "deny", "deny", "allow"] + ["deny"] * 5 for user in _DEFAULT},
        "dana": ["allow"] * 4 + ["deny"] + ["allow"] * 4,
        # invoice:42's resource role holds from any tenant; acme lists bob no tools.
        "bob": ["deny", "deny", "depends*", "allow"] + ["deny"] * 5,
    },
    # tools/list shows the public health only; tools are still called.
    "tools/list not known": {
        user: [
            outcome.rstrip("*") + ("*" if i < 6 and i != 3 and outcome != "deny" else "")
            for i, outcome in enumerate(outcomes)
        ]
        for user, outcomes in _DEFAULT.items()
    },
}


async def test_depends_cells_carry_the_condition_and_the_engine_tree() -> None:
    """A depends cell shows the grant that holds for some arguments and its condition traces."""
    caller = Caller(None)
    mcp = zoo(caller, default_deny=True)
    settings, _ = guard_settings(mcp)
    engine = LocalPolicyEngine.from_dict(POLICY_DATA)
    found = await build_matrix(mcp, settings, engine, ["bob", "carol"])
    refund = found.cell(1, "bob")
    assert refund.condition == (
        "role 'clerk' grants refund on resource set 'small_refunds'",
        "  resource set 'small_refunds' -> unknown",
        "    resource.arg_amount = <missing> less-than-equals 100 -> unknown",
    )
    assert refund.explanation is not None
    assert refund.explanation.depends_on_arguments
    invoice = found.cell(2, "bob")
    assert invoice.condition == ("resource role 'owner' (held on invoice:42) grants delete",)
    dump = found.cell(4, "bob")
    assert (dump.outcome, dump.why, dump.explanation) == (
        "deny",
        "default-deny",
        None,
    )
    greet = found.cell(0, "carol")
    assert (greet.outcome, greet.listed) == ("allow", False)
    assert greet.list_reason.startswith("gate denied: no role, user set or resource role")
    assert greet.reason == "role 'caller' grants mcp_server:greet in tenant 'default'"


# -- the command -----------------------------------------------------------------------------------

QUICKSTART_MATRIX = """\
Server 'billing': settings from the server's PermitMcpMiddleware, server name 'mcp_server', default
  deny on
Decided by local policy examples/policy.yaml

kind       component                alice   bob       eve
───────────────────────────────────────────────────────────
tool       greet                    allow   allow     deny
tool       refund                   allow   depends   deny
tool       delete_invoice           allow   depends   deny
tool       health                   allow   allow     allow
tool       debug_dump               deny    deny      deny
resource   data://reports/summary   allow   deny      deny
prompt     summarize                allow   allow     deny

allow: for any arguments; depends: for some arguments only (conditions below); deny: never.

alice:
  list method                visible                                 hidden
  ─────────────────────────────────────────────────────────────────────────────
  tools/list                 greet, refund, delete_invoice, health   debug_dump
  resources/list             data://reports/summary                  -
  resources/templates/list   -                                       -
  prompts/list               summarize                               -

bob:
  list method                visible                                 hidden
  ─────────────────────────────────────────────────────────────────────────────────────────
  tools/list                 greet, refund, delete_invoice, health   debug_dump
  resources/list             -                                       data://reports/summary
  resources/templates/list   -                                       -
  prompts/list               summarize                               -
  resources/list shows only public components: gate denied: no role, user set or resource role of
    user 'bob' in tenant 'default' grants mcp_server_resources:list
  depends on arguments:
    tool refund: user set 'finance' grants refund on resource set 'small_refunds'
        user set 'finance' -> true
          user.department = "finance" equals "finance" -> true
        resource set 'small_refunds' -> unknown
          allOf -> unknown
            resource.arg_amount = <missing> less-than-equals 100 -> unknown
            resource.arg_currency = <missing> equals "EUR" -> unknown
    tool delete_invoice: resource role 'owner' (held on invoice:42) grants delete

eve:
  list method                visible   hidden
  ──────────────────────────────────────────────────────────────────────────────
  tools/list                 health    greet, refund, delete_invoice, debug_dump
  resources/list             -         data://reports/summary
  resources/templates/list   -         -
  prompts/list               -         summarize
  tools/list shows only public components: gate denied: no role, user set or resource role of user
    'eve' in tenant 'default' grants mcp_server_tools:list
  resources/list shows only public components: gate denied: no role, user set or resource role of
    user 'eve' in tenant 'default' grants mcp_server_resources:list
  prompts/list shows only public components: gate denied: no role, user set or resource role of user
    'eve' in tenant 'default' grants mcp_server_prompts:list
"""


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the command from the repository, as the documented examples do."""
    monkeypatch.chdir(ROOT)
    for name in [n for n in os.environ if n.startswith("PERMIT_MCP_")]:
        monkeypatch.delenv(name)


def matrix(*args: str) -> Any:
    """``permit-guard matrix ARGS`` run in process."""
    return CliRunner().invoke(app, ["matrix", *args])


def test_table_of_the_quickstart(at_root: None) -> None:
    """The table: one row per component, one column per user, then each user's lists."""
    result = matrix(QUICKSTART, "--policy", POLICY)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == QUICKSTART_MATRIX
    assert max(len(line) for line in result.stdout.splitlines()) <= 100


def test_many_users_split_the_table_to_fit_100_columns(at_root: None) -> None:
    """With more users than fit, the grid is split by users; no line passes 100 columns."""
    users = ",".join(f"someone-with-a-long-name-{i}" for i in range(9))
    result = matrix(QUICKSTART, "--policy", POLICY, "--users", f"alice,{users}")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert sum(line.startswith("kind ") for line in lines) >= 2
    assert sum(line.startswith("tool       health") for line in lines) >= 2


def test_json_has_every_cell_with_reason_and_explanation(at_root: None) -> None:
    """JSON: users, components, one cell per pair with outcome, reason, explanation; lists."""
    result = matrix(QUICKSTART, "--policy", POLICY, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["users"] == ["alice", "bob", "eve"]
    assert len(data["cells"]) == 3 * len(data["components"]) == 21
    refund = next(c for c in data["cells"] if (c["user"], c["name"]) == ("bob", "refund"))
    assert refund["outcome"] == "depends"
    assert (
        refund["condition"][0] == "user set 'finance' grants refund on resource set 'small_refunds'"
    )
    assert refund["explanation"]["depends_on_arguments"] is True
    assert refund["explanation"]["listing"] is True
    dump = next(c for c in data["cells"] if (c["user"], c["name"]) == ("alice", "debug_dump"))
    assert dump == {
        "user": "alice",
        "kind": "tool",
        "name": "debug_dump",
        "outcome": "deny",
        "why": "default-deny",
        "reason": "undecorated under default deny",
        "listed": False,
        "list_reason": None,
        "condition": [],
        "explanation": None,
    }
    eve_tools = next(
        item for item in data["lists"] if (item["user"], item["method"]) == ("eve", "tools/list")
    )
    assert eve_tools["visible"] == ["health"]
    assert eve_tools["reason"].startswith("gate denied: ")


def test_named_users_and_a_tenant(at_root: None) -> None:
    """--users picks the columns (unknown users too); --tenant is where they call from."""
    result = matrix(QUICKSTART, "--policy", POLICY, "--users", "bob,nobody", "--format", "json")
    data = json.loads(result.stdout)
    assert data["users"] == ["bob", "nobody"]
    nobody = [c["outcome"] for c in data["cells"] if c["user"] == "nobody"]
    assert nobody == ["deny", "deny", "deny", "allow", "deny", "deny", "deny"]
    result = matrix(QUICKSTART, "--policy", POLICY, "--tenant", "acme", "--format", "json")
    data = json.loads(result.stdout)
    assert data["tenant"] == "acme"
    alice = [c["outcome"] for c in data["cells"] if c["user"] == "alice"]
    assert alice == ["deny", "deny", "deny", "allow", "deny", "deny", "deny"]


def test_the_seed_server(at_root: None) -> None:
    """The permit-fastmcp example: login is public, client may not greet."""
    result = matrix(SEED, "--policy", SEED_POLICY, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    cells = {(c["user"], c["name"]): c["outcome"] for c in data["cells"]}
    assert cells == {
        ("admin", "login"): "allow",
        ("client", "login"): "allow",
        ("admin", "greet"): "allow",
        ("client", "greet"): "deny",
        ("admin", "greet-jwt"): "allow",
        ("client", "greet-jwt"): "allow",
        # The policy lists it through a resource.mcp_method branch (for a PDP), but the
        # branch on number > 10 was left unknown: a call depends on its arguments.
        ("admin", "conditional_greet"): "depends",
        ("client", "conditional_greet"): "depends",
    }


def test_output_file_and_data_file(at_root: None, tmp_path: Path) -> None:
    """--output writes the file instead of stdout; --data replaces the policy's users."""
    data_file = tmp_path / "data.yaml"
    data_file.write_text("users:\n  zoe: {roles: [admin]}\n")
    target = tmp_path / "matrix.json"
    result = matrix(
        QUICKSTART, "--policy", POLICY, "--data", str(data_file), "--format", "json",
        "-o", str(target),
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, "")
    data = json.loads(target.read_text())
    assert data["users"] == ["zoe"]
    assert data["engine"] == f"local policy {POLICY} with data {data_file}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "pdf"), "--format must be table, json or html, not 'pdf'"),
        (("--data", "x.yaml"), "--data FILE goes with --policy FILE"),
        (("--users", "alice,,bob"), "--users takes user keys separated by commas"),
        (("--tenant", " "), "--tenant must not be empty"),
        (("-o", "/nonexistent-dir/m.html"), "the folder /nonexistent-dir does not exist"),
        (("--policy", "tests/cli_servers/broken.yaml"), "unknown action 'gret'"),
    ],
)
def test_usage_and_configuration_errors_exit_2(
    at_root: None, args: tuple[str, ...], message: str
) -> None:
    """Bad options and bad policy files exit 2 with one clear message, never a traceback."""
    result = matrix(QUICKSTART, *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_no_users_to_show_exits_2(at_root: None, tmp_path: Path) -> None:
    """A policy without users needs --users; so does a server without a local policy."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("resources:\n  mcp_server:\n    actions: [greet]\n")
    result = matrix(QUICKSTART, "--policy", str(empty))
    assert result.exit_code == 2
    assert f"the policy {empty} names no users: name them with --users a,b" in result.stderr
    server = tmp_path / "bare.py"
    server.write_text("from fastmcp import FastMCP\nmcp = FastMCP('bare')\n")
    result = matrix(str(server))
    assert result.exit_code == 2
    assert "the server has no PermitMcpMiddleware: give --policy FILE" in result.stderr


PDP_SERVER = """\
from typing import Any
from fastmcp import FastMCP
from permit_guard import PermitMcpMiddleware, require_permission

mcp: FastMCP[Any] = FastMCP("pdp")

@mcp.tool
@require_permission()
def greet() -> str:
    return "hi"

PermitMcpMiddleware(permit_pdp_url="http://127.0.0.1:9", permit_api_key="permit_key_x").attach(mcp)
"""


def test_an_engine_that_cannot_decide_exits_2(at_root: None, tmp_path: Path) -> None:
    """A PDP that does not answer is an error naming it, not a matrix of denials."""
    server = tmp_path / "pdp_server.py"
    server.write_text(PDP_SERVER)
    result = matrix(str(server))
    assert result.exit_code == 2
    assert "the engine 'permit-pdp' cannot tell its users: name them with --users" in result.stderr
    result = matrix(str(server), "--users", "ada")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "Error: the policy engine could not decide: tools/list for user 'ada': PDP at "
    )


def test_the_console_script_writes_the_html_page(tmp_path: Path) -> None:
    """The installed permit-guard script writes one self-contained page."""
    target = tmp_path / "matrix.html"
    run = cli("matrix", QUICKSTART, "--format", "html", "--output", str(target), script=True)
    assert (run.code, run.out, run.err) == (0, "", "")
    html = target.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert 'class="cell depends"' in html


# -- the page --------------------------------------------------------------------------------------

EVIL = "<img src=x onerror=alert(1)>"
EVIL_SERVER = """\
from typing import Any
from fastmcp import FastMCP
from permit_guard import public, require_permission

mcp: FastMCP[Any] = FastMCP("<b>zoo</b> & co")

@mcp.tool(name="<img src=x onerror=alert(1)>")
@require_permission("greet")
def evil() -> str:
    return "x"

@mcp.tool(name='x"></td><script>window.pwned = 1</script>')
@public
def quoted() -> str:
    return "x"

@mcp.prompt(name="</script><script>window.pwned = 2</script>")
@require_permission()
def closing() -> str:
    return "x"
"""


@pytest.fixture
def evil_page(at_root: None, tmp_path: Path) -> Path:
    """The page of a server whose names, and one of whose users, are HTML and script."""
    server = tmp_path / "evil_server.py"
    server.write_text(EVIL_SERVER)
    target = tmp_path / "evil.html"
    result = matrix(
        str(server), "--policy", POLICY, "--users", f"alice,{EVIL}", "--format", "html",
        "-o", str(target),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return target


def test_the_page_escapes_every_name_and_loads_nothing(evil_page: Path) -> None:
    """Names and users appear only escaped; the page names no outside resource at all."""
    html = evil_page.read_text()
    assert EVIL not in html
    assert "<script>window.pwned" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<script") == 2  # the data (not run) and the page's own script
    assert not re.search(r"<link|<img|<iframe|@import|url\(|https?://", html)
    assert "default-src 'none'" in html


def test_page_cells_are_the_matrix(at_root: None) -> None:
    """Every grid cell of the page carries its outcome, and the hover text is its explanation."""
    result = matrix(QUICKSTART, "--policy", POLICY, "--format", "html")
    html = result.stdout
    assert html.count('class="cell allow"') == 10
    assert html.count('class="cell depends"') == 2
    assert html.count('class="cell deny"') == 9


# -- in a real browser -----------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(
    shutil.which(str(CHROMIUM)) is None,
    reason="chromium is not installed: apt-get install chromium",
)


async def click(page: Page, selector: str) -> None:
    """A real mouse click (pressed and released) in the middle of the element."""
    box = await page.evaluate(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
        " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    for event in ("mousePressed", "mouseReleased"):
        await page.send(
            "Input.dispatchMouseEvent",
            {"type": event, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
        )


GRID = """[...document.querySelectorAll('#matrix tbody tr')].map(tr => ({
  kind: tr.dataset.kind, hidden: tr.offsetParent === null,
  cells: [...tr.querySelectorAll('td.cell')].map(td => ({
    text: td.textContent, outcome: td.dataset.outcome, title: td.title,
    hidden: td.offsetParent === null}))}))"""


@needs_chromium
async def test_the_page_in_chromium(tmp_path: Path) -> None:
    """In a real browser: the grid is the matrix; a click explains a cell; filters hide."""
    caller = Caller(None)
    mcp = zoo(caller, default_deny=True)
    settings, _ = guard_settings(mcp)
    engine = LocalPolicyEngine.from_dict(POLICY_DATA)
    found = await build_matrix(mcp, settings, engine, policy_users(engine))
    target = tmp_path / "matrix.html"
    target.write_text(page(found, subtitle="zoo"))
    async with open_page(target.as_uri()) as browser:
        grid = await browser.evaluate(GRID)
        assert [row["kind"] for row in grid] == [row.kind for row in found.components]
        for row, cells in zip(grid, found.cells, strict=True):
            assert [c["outcome"] for c in row["cells"]] == [cell.outcome for cell in cells]
            for shown, cell in zip(row["cells"], cells, strict=True):
                assert shown["text"].rstrip("*") == cell.outcome
                assert shown["title"].splitlines()[1:] == cell.lines()
        colours = await browser.evaluate(
            "['allow', 'deny', 'depends'].map(o => getComputedStyle("
            "document.querySelector(`td.cell.${o}`)).backgroundColor)"
        )
        assert colours == ["rgb(218, 251, 225)", "rgb(255, 235, 233)", "rgb(255, 248, 197)"]

        # bob's refund: a click shows the condition and the engine's tree in the panel.
        await click(browser, 'td.cell[data-row="1"][data-user="1"]')
        heading = await browser.evaluate("document.getElementById('details-title').textContent")
        lines = await browser.evaluate("document.getElementById('details-lines').textContent")
        assert heading == "bob \N{MULTIPLICATION SIGN} tool refund: depends"
        assert lines.splitlines() == found.cell(1, "bob").lines()
        assert "resource.arg_amount = <missing> less-than-equals 100 -> unknown" in lines

        # Unticking bob hides his column and his lists; unticking tool hides the tool rows.
        await click(browser, 'input[data-filter="user"][value="1"]')
        await click(browser, 'input[data-filter="kind"][value="tool"]')
        grid = await browser.evaluate(GRID)
        for row in grid:
            assert row["hidden"] == (row["kind"] == "tool")
            if not row["hidden"]:
                assert [c["hidden"] for c in row["cells"]] == [False, True, False, False, False]
        hidden = await browser.evaluate(
            "[...document.querySelectorAll('[data-user=\"1\"]')]"
            ".every(e => e.offsetParent === null)"
        )
        assert hidden is True
        await click(browser, 'input[data-filter="user"][value="1"]')
        grid = await browser.evaluate(GRID)
        assert all(not c["hidden"] for row in grid if not row["hidden"] for c in row["cells"])


@needs_chromium
async def test_names_are_text_in_chromium(evil_page: Path) -> None:
    """HTML and script in component and user names are shown as text and never run."""
    async with open_page(evil_page.as_uri()) as browser:
        found = await browser.evaluate(
            "({images: document.querySelectorAll('img').length, pwned: window.pwned ?? null,"
            " users: [...document.querySelectorAll('#matrix thead th[data-user]')]"
            ".map(th => th.textContent),"
            " names: [...document.querySelectorAll('#matrix th.name')].map(th => th.textContent),"
            " title: document.title})"
        )
        assert found == {
            "images": 0,
            "pwned": None,
            "users": ["alice", EVIL],
            "names": [
                EVIL,
                'x"></td><script>window.pwned = 1</script>',
                "</script><script>window.pwned = 2</script>",
            ],
            "title": "permit-guard matrix: <b>zoo</b> & co",
        }
        await click(browser, 'td.cell[data-row="0"][data-user="1"]')
        heading = await browser.evaluate("document.getElementById('details-title').textContent")
        assert heading == f"{EVIL} \N{MULTIPLICATION SIGN} tool {EVIL}: deny"
        assert await browser.evaluate("document.querySelectorAll('img').length") == 0
