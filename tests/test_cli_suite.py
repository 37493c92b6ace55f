"""``permit-guard test``: decision test suites, run through the guard core.

The suites are ``tests/suites/*.suite.yaml`` on ``tests/suites/app.py`` and
its policy, the quickstart's and the seed server's shipped suites, and suites
written into ``tmp_path`` for the edge cases. The command runs in process
(typer's runner), once through the console script.
"""

from __future__ import annotations

import json
import os
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from permit_guard.cli import app
from permit_guard.testing import LocalPDP
from tests.test_cli import ROOT, SCRIPT, cli

SUITES = "tests/suites"
APP = ROOT / SUITES / "app.py"
POLICY = ROOT / SUITES / "policy.yaml"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Suites are named relative to the repository, as a CI job names them.
    monkeypatch.chdir(ROOT)
    # The command reads PERMIT_MCP_* like the middleware does: start from none.
    for name in [n for n in os.environ if n.startswith("PERMIT_MCP_")]:
        monkeypatch.delenv(name)


def run(*args: str) -> Result:
    """``permit-guard test ARGS``, in process."""
    return CliRunner().invoke(app, ["test", *args], prog_name="permit-guard")


def write_suite(folder: Path, text: str, name: str = "case.suite.yaml") -> str:
    """A suite file in ``folder`` on the fixtures' server and policy (absolute paths)."""
    path = folder / name
    head = f"server: {APP}:mcp\npolicy: {POLICY}\n"
    path.write_text(head + textwrap.dedent(text), encoding="utf-8")
    return str(path)


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


# -- passing, failing, cannot run ------------------------------------------------------------------


def test_a_passing_suite_exits_0_and_lists_every_case() -> None:
    """Every case holding (coverage included) exits 0 with one ok line per case."""
    result = run(f"{SUITES}/passing.suite.yaml", "--coverage")
    assert result.exit_code == 0, result.output
    out = lines(result.stdout)
    assert out[0] == (
        "tests/suites/passing.suite.yaml (server tests/suites/app.py:mcp, "
        "local policy tests/suites/policy.yaml)"
    )
    assert out[1] == "  ok    bob reads acme's projects as a viewer"
    assert sum(line.startswith("  ok    ") for line in out) == 16
    assert out[-2:] == [
        "  coverage: every component but the @public ones has a case",
        "OK: 16 passed, 0 failed in 1 suite",
    ]
    assert result.stderr == ""


def test_a_failing_case_prints_its_name_expectation_answer_and_reason() -> None:
    """A call case that does not hold exits 1, naming the case, its line, expected, actual, why."""
    result = run(f"{SUITES}/failing.suite.yaml")
    assert result.exit_code == 1
    out = lines(result.stdout)
    at = out.index("  FAIL  bob deletes acme's projects (tests/suites/failing.suite.yaml:5)")
    assert out[at + 1 : at + 4] == [
        "          expected: allow",
        "          actual:   deny",
        "          reason:   no role, user set or resource role of user 'bob' in tenant 'acme' "
        "grants mcp_server:delete-project",
    ]
    at = out.index("  FAIL  alice may not read the read-me (tests/suites/failing.suite.yaml:11)")
    assert out[at + 1 : at + 4] == [
        "          expected: deny",
        "          actual:   allow",
        "          reason:   role 'admin' grants mcp_server_resources:read in tenant 'default'",
    ]
    assert "  ok    bob reads acme's projects" in out
    assert out[-1] == "FAILED: 1 passed, 3 failed in 1 suite"


def test_a_failing_list_case_says_why_each_wrong_name_is_or_is_not_listed() -> None:
    """A list case fails on a visible name absent or a hidden one listed, with each reason."""
    result = run(f"{SUITES}/failing.suite.yaml")
    out = lines(result.stdout)
    at = out.index("  FAIL  bob's tools in acme (tests/suites/failing.suite.yaml:21)")
    assert out[at + 1 : at + 4] == [
        "          expected: visible get_project, delete_project; hidden ping",
        "          actual:   listed get_project, ping; not listed delete_project",
        "          reason:   delete_project not listed: no role, user set or resource role of "
        "user 'bob' in tenant 'acme' grants mcp_server:delete-project; "
        "ping listed: @public: always listed",
    ]


def test_bad_yaml_cannot_run_and_names_the_file_and_line() -> None:
    """A suite YAML cannot parse exits 2 with the file and the line YAML names; nothing runs."""
    result = run(f"{SUITES}/broken.suite.yaml")
    assert result.exit_code == 2
    assert lines(result.stderr) == [
        "Error: tests/suites/broken.suite.yaml:7: invalid YAML: expected ',' or ']', "
        "but got '}' (while parsing a flow sequence)"
    ]
    assert lines(result.stdout) == [
        "ERROR: 1 of 1 suite cannot run (1 problem); 0 passed, 0 failed"
    ]


def test_every_unknown_component_is_reported_at_its_line_before_any_case_runs() -> None:
    """Unknown tools, URIs, prompts and listed names: all reported with lines, exit 2, none run."""
    result = run(f"{SUITES}/unknown.suite.yaml")
    assert result.exit_code == 2
    tools = "tools: archive_project, delete_project, get_project, ops_restart, ping, stats"
    assert lines(result.stderr) == [
        "Error: tests/suites/unknown.suite.yaml:5: case 'a tool the server does not have': "
        f"the server has no tool 'get_projects' ({tools})",
        "Error: tests/suites/unknown.suite.yaml:14: case 'a URI no resource or template matches': "
        "no resource or resource template of the server matches 'docs://nothing/here' "
        "(resources: docs://projects/{project_id}, docs://readme)",
        "Error: tests/suites/unknown.suite.yaml:18: case 'a prompt the server does not have': "
        "the server has no prompt 'summarize' (prompts: review)",
        "Error: tests/suites/unknown.suite.yaml:22: case 'a list naming a tool the server does "
        f"not have': the server has no tool 'drop_database' ({tools})",
    ]
    assert " ok " not in result.stdout


def test_every_wrong_key_and_type_is_reported_at_once() -> None:
    """Unknown keys (with a suggestion), wrong types and missing keys: every one, with its line."""
    result = run(f"{SUITES}/invalid.suite.yaml")
    assert result.exit_code == 2
    file = "Error: tests/suites/invalid.suite.yaml"
    known = (
        "(known: name, user, tenant, attributes, tool, resource, prompt, list, args, key, "
        "expect, visible, hidden)"
    )
    assert lines(result.stderr) == [
        f"{file}:4: the suite: unknown key 'timeout' (known: server, policy, data, cases)",
        f"{file}:7: case 'a number for a user': user: must be a non-empty string, "
        "not a number (42) (quote it)",
        f"{file}:10: case 'no expectation': expect: is missing (allow or deny)",
        f"{file}:13: case 'two targets': give exactly one of tool, resource, prompt, list "
        "(found tool, prompt)",
        f"{file}:18: case 'a misspelt key': expect: is missing (allow or deny)",
        f"{file}:21: case 'a misspelt key': unknown key 'expected' {known}; did you mean 'expect'?",
        f"{file}:24: case 'a list of the wrong kind': list: must be one of tools, resources, "
        "resource_templates, prompts, not a string ('widgets')",
        f"{file}:29: case 'a yes that YAML reads as true': expect: must be allow or deny, "
        "not a boolean (true)",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "case.suite.yaml: the suite is empty; it needs server: and cases:"),
        ("- a\n", "case.suite.yaml:1: a suite is a mapping of server, policy, data, cases"),
        ("server: nowhere.py\ncases: []\n", "case.suite.yaml:1: server file"),
        ("server: nowhere.py\ncases: []\n", "case.suite.yaml:2: cases: must be a non-empty list"),
        (
            "cases:\n  - &a {name: x, user: u, tool: ping, args: {self: *a}, expect: allow}\n",
            "case.suite.yaml:4: alias *a is used inside the value it names; "
            "a suite cannot contain itself",
        ),
        (
            "cases:\n  - {name: x, user: u, tool: ping, args: {a: 1, a: 2}, expect: allow}\n",
            "case.suite.yaml:4: case 'x': args: duplicate key 'a'",
        ),
        (
            "cases:\n  - {name: x, user: u, tool: ping, args: {at: 2024-01-01}, expect: allow}\n",
            "case.suite.yaml:4: case 'x': args.at: a date is not a JSON value (quote it)",
        ),
        (
            "cases:\n  - {name: x, user: u, tool: ping, args: {on: 1}, expect: allow}\n",
            "case.suite.yaml:4: case 'x': args: keys are names, not a boolean (true)",
        ),
        (
            "cases:\n  - {name: x, user: u, list: tools, visible: [ping], hidden: [ping]}\n",
            "case.suite.yaml:4: case 'x': both visible and hidden: ping",
        ),
        (
            "cases:\n  - {name: x, user: u, resource: 'docs://readme', args: {}, expect: deny}\n",
            "case 'x': args: applies to tool and prompt cases; a resource's parameters are in "
            "its URI",
        ),
        (
            "cases:\n  - {name: x, user: u, tool: ping, claims: {sub: u}, expect: allow}\n",
            "a suite names the caller with user, tenant and attributes",
        ),
        (
            "data: facts.yaml\ncases:\n  - {name: x, user: u, tool: ping, expect: allow}\n",
            "data file",
        ),
        (
            "cases:\n  - {name: x, user: u, tool: ping, expect: allow}\n"
            "  - {name: x, user: v, tool: ping, expect: allow}\n",
            "case.suite.yaml:5: case 'x': the name is already used at line 4; names must be unique",
        ),
    ],
)
def test_a_suite_that_cannot_be_read_exits_2_naming_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    """Each way a suite file can be wrong is a clear problem with its line, exit 2.

    Suites starting with ``cases:`` or ``data:`` get two lines first (server: and policy:).
    """
    path = tmp_path / "case.suite.yaml"
    if text.startswith("cases:") or text.startswith("data:"):
        path = Path(write_suite(tmp_path, text))
    else:
        path.write_text(text, encoding="utf-8")
    result = run(str(path))
    assert result.exit_code == 2
    assert problem in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_a_missing_suite_file_cannot_run(tmp_path: Path) -> None:
    """A suite file that does not exist exits 2 saying so."""
    result = run(str(tmp_path / "none.suite.yaml"))
    assert result.exit_code == 2
    assert lines(result.stderr) == [f"Error: {tmp_path}/none.suite.yaml: suite file not found"]


def test_a_policy_that_does_not_load_is_reported_at_its_line(tmp_path: Path) -> None:
    """Every problem of the suite's policy file is reported at the policy: line."""
    (tmp_path / "bad.yaml").write_text("roles: {a: {grants: {nothing: [y]}}}\n", encoding="utf-8")
    suite = tmp_path / "s.suite.yaml"
    suite.write_text(
        f"server: {APP}\npolicy: bad.yaml\ncases:\n"
        "  - {name: x, user: u, tool: ping, expect: allow}\n",
        encoding="utf-8",
    )
    result = run(str(suite))
    assert result.exit_code == 2
    assert f"{suite}:2: policy {tmp_path}/bad.yaml: roles.a.grants:" in result.stderr


def test_a_server_without_a_guard_needs_a_policy(tmp_path: Path) -> None:
    """A server with no PermitMcpMiddleware and no policy: in the suite cannot run."""
    (tmp_path / "bare.py").write_text(
        "from fastmcp import FastMCP\nmcp = FastMCP('bare')\n", encoding="utf-8"
    )
    suite = tmp_path / "s.suite.yaml"
    suite.write_text(
        "server: bare.py\ncases:\n  - {name: x, user: u, tool: hello, expect: deny}\n",
        encoding="utf-8",
    )
    result = run(str(suite))
    assert result.exit_code == 2
    assert lines(result.stderr) == [
        f"Error: {suite}:1: the server has no PermitMcpMiddleware to decide with: give policy: "
        "FILE in the suite, or --pdp URL --api-key KEY"
    ]


def test_a_key_for_a_component_without_one_cannot_run(tmp_path: Path) -> None:
    """key: on a tool whose spec names no key argument is a problem of that case, exit 2."""
    suite = write_suite(
        tmp_path, "cases:\n  - {name: x, user: alice, tool: get_project, key: p1, expect: allow}\n"
    )
    result = run(suite)
    assert result.exit_code == 2
    assert f"{suite}:4: case 'x': tool 'get_project' has no key argument" in result.stderr


# -- what cases decide -----------------------------------------------------------------------------


def test_without_a_policy_the_server_own_engine_decides(tmp_path: Path) -> None:
    """A suite without policy: is decided by the engine of the server's own middleware."""
    suite = tmp_path / "s.suite.yaml"
    suite.write_text(
        f"server: {APP}\ncases:\n"
        "  - {name: x, user: alice, tool: get_project, args: {project_id: p}, expect: allow}\n",
        encoding="utf-8",
    )
    result = run(str(suite))
    assert result.exit_code == 0, result.output
    assert "the server's local policy tests/suites/policy.yaml)" in result.stdout


def test_a_data_file_replaces_the_policy_facts() -> None:
    """data: beside policy: decides with the data file's users instead of the policy's."""
    result = run(f"{SUITES}/data.suite.yaml")
    assert result.exit_code == 0, result.output
    assert "local policy tests/suites/policy.yaml with data tests/suites/data.yaml" in result.stdout


def test_suite_paths_are_relative_to_the_suite_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """server:, policy: and data: are found from the suite's folder, whatever the working one."""
    monkeypatch.chdir(tmp_path)
    result = run(str(ROOT / SUITES / "data.suite.yaml"))
    assert result.exit_code == 0, result.output


def test_a_pdp_decides_instead_of_the_suite_policy() -> None:
    """--pdp asks a real PDP over HTTP; a key it rejects makes the suite unable to run."""
    with LocalPDP.from_file(POLICY, api_key="permit_key_FAKE_suite") as pdp:
        url = pdp.url
        allowed = run(f"{SUITES}/passing.suite.yaml", "--pdp", pdp.url, "--api-key", pdp.api_key)
        rejected = run(f"{SUITES}/passing.suite.yaml", "--pdp", pdp.url, "--api-key", "wrong")
    assert allowed.exit_code == 0, allowed.output
    assert f"(server tests/suites/app.py:mcp, Permit.io PDP at {url})" in allowed.stdout
    assert rejected.exit_code == 2
    assert "the policy engine could not decide" in rejected.stderr
    assert "HTTP 401" in rejected.stderr


def test_api_key_without_pdp_is_a_usage_error() -> None:
    """--api-key alone is refused before any suite is read."""
    result = run(f"{SUITES}/passing.suite.yaml", "--api-key", "k")
    assert result.exit_code == 2
    assert "--api-key goes with --pdp URL" in result.stderr


# -- coverage --------------------------------------------------------------------------------------


def test_coverage_fails_on_components_without_a_call_case(tmp_path: Path) -> None:
    """--coverage exits 1 naming each non-public component no call case names; lists do not."""
    suite = write_suite(
        tmp_path,
        """\
        cases:
          - {name: a, user: alice, tool: delete_project, args: {project_id: p}, expect: allow}
          - {name: b, user: alice, resource: 'docs://projects/p1', expect: allow}
          - {name: c, user: alice, list: tools, visible: [get_project, ops_restart]}
        """,
    )
    without = run(suite)
    assert without.exit_code == 0, without.output
    result = run(suite, "--coverage")
    assert result.exit_code == 1
    assert [line for line in lines(result.stdout) if "NO CASE" in line] == [
        "  NO CASE  tool get_project",
        "  NO CASE  tool archive_project",
        "  NO CASE  tool stats",
        "  NO CASE  tool ops_restart",
        "  NO CASE  resource docs://readme",
        "  NO CASE  prompt review",
    ]
    assert (
        lines(result.stdout)[-1]
        == "FAILED: 3 passed, 0 failed, 6 components without a case in 1 suite"
    )


def test_coverage_needs_no_case_for_public_components(tmp_path: Path) -> None:
    """The @public tool needs no case: the passing suite without its ping case still covers all."""
    text = (ROOT / SUITES / "passing.suite.yaml").read_text(encoding="utf-8")
    start = text.index("  - name: ping is public")
    end = text.index("  - name: stats is undecorated")
    suite = tmp_path / "passing.suite.yaml"
    suite.write_text(
        text[:start].replace("app.py:mcp", f"{APP}:mcp").replace("policy.yaml", str(POLICY))
        + text[end:],
        encoding="utf-8",
    )
    result = run(str(suite), "--coverage")
    assert result.exit_code == 0, result.output
    assert "ping is public" not in result.stdout


# -- reports ---------------------------------------------------------------------------------------


def test_junit_xml_has_a_testsuite_per_file_and_a_failure_per_failed_case(tmp_path: Path) -> None:
    """--junit writes XML: testsuite per file, testcase per case, failure/error with a message."""
    report = tmp_path / "report.xml"
    result = run(
        f"{SUITES}/passing.suite.yaml",
        f"{SUITES}/failing.suite.yaml",
        f"{SUITES}/broken.suite.yaml",
        "--coverage",
        "--junit",
        str(report),
    )
    assert result.exit_code == 2  # a suite that cannot run wins over failures
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("23", "4", "1")
    passing, failing, broken = root.findall("testsuite")
    assert passing.get("name") == "tests/suites/passing.suite.yaml"
    assert (passing.get("tests"), passing.get("failures")) == ("17", "0")
    assert passing.find("testcase[@name='coverage']/failure") is None
    cases = {case.get("name"): case for case in failing.findall("testcase")}
    assert list(cases) == [
        "bob deletes acme's projects",
        "alice may not read the read-me",
        "bob reads acme's projects",
        "bob's tools in acme",
        "coverage",
    ]
    failure = cases["bob deletes acme's projects"].find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "expected allow, got deny: no role, user set or resource role of user 'bob' in tenant "
        "'acme' grants mcp_server:delete-project"
    )
    assert cases["bob deletes acme's projects"].get("line") == "5"
    assert cases["bob reads acme's projects"].find("failure") is None
    coverage = cases["coverage"].find("failure")
    assert coverage is not None
    assert coverage.get("message", "").startswith("5 components without a case: tool archive")
    error = broken.find("testcase/error")
    assert error is not None
    assert error.get("message", "").startswith("tests/suites/broken.suite.yaml:7: invalid YAML")
    assert broken.get("errors") == "1"


def test_json_output_has_every_case_and_the_totals() -> None:
    """--json prints only JSON: per case name, passed, expected, actual, reason; and totals."""
    result = run(f"{SUITES}/failing.suite.yaml", "--json", "--coverage")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    (suite,) = data["suites"]
    assert suite["file"] == "tests/suites/failing.suite.yaml"
    assert suite["problems"] == []
    first, _, third, listing = suite["cases"]
    assert first == {
        "name": "bob deletes acme's projects",
        "line": 5,
        "kind": "tool",
        "target": "delete_project",
        "user": "bob",
        "passed": False,
        "expected": "allow",
        "actual": "deny",
        "reason": "no role, user set or resource role of user 'bob' in tenant 'acme' grants "
        "mcp_server:delete-project",
    }
    assert third["passed"] is True
    assert listing["kind"] == "list"
    assert listing["target"] == "tools"
    assert listing["expected"] == {"visible": ["get_project", "delete_project"], "hidden": ["ping"]}
    assert listing["actual"] == {"listed": ["get_project", "ping"]}
    assert {"kind": "template", "name": "docs://projects/{project_id}"} in suite["uncovered"]
    assert data["totals"] == {
        "suites": 1,
        "cases": 4,
        "passed": 1,
        "failed": 3,
        "uncovered": 5,
        "problems": 0,
        "exit_code": 1,
    }


def test_json_output_carries_the_problems_of_a_suite_that_cannot_run() -> None:
    """--json reports problems with file and line too, and nothing on stderr."""
    result = run(f"{SUITES}/unknown.suite.yaml", "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert [(p["line"], p["file"]) for p in data["suites"][0]["problems"]] == [
        (5, "tests/suites/unknown.suite.yaml"),
        (14, "tests/suites/unknown.suite.yaml"),
        (18, "tests/suites/unknown.suite.yaml"),
        (22, "tests/suites/unknown.suite.yaml"),
    ]
    assert result.stderr == ""


# -- the shipped suites ----------------------------------------------------------------------------


def test_the_seed_server_suite_passes_with_coverage() -> None:
    """examples/seed_server/seed.suite.yaml holds and covers the seed server."""
    result = run("examples/seed_server/seed.suite.yaml", "--coverage")
    assert result.exit_code == 0, result.output
    assert lines(result.stdout)[-1] == "OK: 12 passed, 0 failed in 1 suite"


def test_the_quickstart_suite_passes_with_coverage_through_the_console_script() -> None:
    """The permit-guard script runs examples/quickstart.suite.yaml with --coverage, exit 0."""
    done = cli("test", "examples/quickstart.suite.yaml", "--coverage", script=True)
    assert SCRIPT.is_file()
    assert done.code == 0, done.out + done.err
    out = lines(done.out)
    assert out[0] == (
        "examples/quickstart.suite.yaml (server examples/quickstart.py:mcp, "
        "local policy examples/policy.yaml)"
    )
    assert "  ok    debug_dump is denied under default deny, even for alice" in out
    assert out[-1] == "OK: 20 passed, 0 failed in 1 suite"
    assert done.err == ""


def test_test_has_help() -> None:
    """permit-guard test --help describes the command and its exit codes."""
    result = CliRunner().invoke(app, ["test", "--help"], prog_name="permit-guard")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Usage: permit-guard test [OPTIONS] {SUITE.yaml}..." in text
    assert "Run decision test suites" in text
    assert "--coverage" in text
    assert "--junit" in text


def test_a_junit_file_that_cannot_be_written_exits_2(tmp_path: Path) -> None:
    """--junit into a folder that does not exist: the results are printed, then exit 2."""
    result = run(f"{SUITES}/data.suite.yaml", "--junit", str(tmp_path / "no" / "report.xml"))
    assert result.exit_code == 2
    assert "OK: 2 passed, 0 failed in 1 suite" in result.stdout
    assert f"cannot write the JUnit report '{tmp_path}/no/report.xml'" in result.stderr
