"""The rough edges a new user hit: no silent no-ops, and errors that say what to write instead."""

from __future__ import annotations

import json
import logging
import re
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import typer
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from pydantic_settings import BaseSettings, SettingsConfigDict
from typer.testing import CliRunner

from permit_guard import (
    ClaimMapping,
    ConfigurationError,
    DecoratorError,
    FixedIdentity,
    JwtIdentity,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    PolicyFileError,
    Principal,
    TokenIdentity,
    abac_from_args,
    fixed,
    require_permission,
)
from permit_guard.cli import app
from permit_guard.cli.lint_command import lint_command
from permit_guard.settings import load_settings
from permit_guard.testing import RecordingEngine
from tests.keys import HMAC_SECRET
from tests.serving import serve_http

QUICKSTART = "examples/quickstart.py"
TRACKER = "tests/cli_servers/tracker.py"
TRACKED = "tests/cli_servers/tracker.yaml"

POLICY: dict[str, Any] = {
    "resources": {"mcp_server": {"actions": ["greet"]}},
    "roles": {"clerk": {"grants": {"mcp_server": ["greet"]}}},
    "users": {"bob": {"roles": {"acme": ["clerk"]}}},
}


def engine() -> LocalPolicyEngine:
    """A small real engine: bob is a clerk in tenant acme only."""
    return LocalPolicyEngine.from_dict(POLICY)


def settings_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings the settings logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "permit_guard.settings" and r.levelno == logging.WARNING
    ]


def flat(text: str) -> str:
    """Output with rich's box characters and line wrapping removed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# -- 1. explicit extractors and the claim settings -------------------------------------------------

EXTRACTORS: dict[str, Callable[[], Any]] = {
    "JwtIdentity": lambda: JwtIdentity(secret=HMAC_SECRET),
    "TokenIdentity": TokenIdentity,
    "FixedIdentity": lambda: FixedIdentity("bob"),
    "a function": lambda: lambda context: Principal(key="bob"),
}


@pytest.mark.parametrize("extractor", list(EXTRACTORS))
@pytest.mark.parametrize(
    ("setting", "value"),
    [("tenant_claim", "org"), ("user_attribute_claims", ["department"])],
)
def test_explicit_identity_with_claim_settings_is_refused(
    extractor: str, setting: str, value: Any
) -> None:
    """identity= with tenant_claim= / user_attribute_claims= is refused, naming both and the fix."""
    with pytest.raises(ConfigurationError) as info:
        PermitMcpMiddleware(engine=engine(), identity=EXTRACTORS[extractor](), **{setting: value})
    message = str(info.value)
    assert setting in message
    assert "identity=" in message
    assert "ClaimMapping(" in message
    assert "would be ignored" in message


def test_claim_setting_from_the_environment_is_refused_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PERMIT_MCP_TENANT_CLAIM with an explicit extractor is refused, naming the variable."""
    monkeypatch.setenv("PERMIT_MCP_TENANT_CLAIM", "org")
    with pytest.raises(ConfigurationError, match="PERMIT_MCP_TENANT_CLAIM"):
        PermitMcpMiddleware(engine=engine(), identity=JwtIdentity(secret=HMAC_SECRET))


def test_extractor_whose_claims_agree_with_the_settings_is_accepted() -> None:
    """An extractor whose ClaimMapping reads the same claims as the settings is kept as given."""
    identity = JwtIdentity(
        secret=HMAC_SECRET,
        claims=ClaimMapping(tenant_claim="org", attribute_claims=["department"]),
    )
    guard = PermitMcpMiddleware(
        engine=engine(), identity=identity, tenant_claim="org", user_attribute_claims=["department"]
    )
    assert guard.identity is identity


async def test_the_suggested_fix_reads_the_tenant_from_the_token() -> None:
    """JwtIdentity(claims=ClaimMapping(tenant_claim=...)) puts the token's tenant in the request."""
    recording = RecordingEngine(engine())
    mcp: FastMCP[Any] = FastMCP("billing")

    @mcp.tool
    @require_permission()
    def greet() -> str:
        return "hi"

    identity = JwtIdentity(secret=HMAC_SECRET, claims=ClaimMapping(tenant_claim="org"))
    PermitMcpMiddleware(engine=recording, identity=identity).attach(mcp)
    token = jwt.encode(
        {"sub": "bob", "org": "acme", "exp": int(time.time()) + 300}, HMAC_SECRET, "HS256"
    )
    async with serve_http(mcp) as url:
        transport = StreamableHttpTransport(url, headers={"Authorization": f"Bearer {token}"})
        async with Client(transport) as client:
            assert (await client.call_tool("greet", {})).data == "hi"
    assert {r.resource.tenant for r in recording.requests} == {"acme"}
    assert "greet" in [r.action for r in recording.requests]


# -- 2. names that are no setting ------------------------------------------------------------------


def test_misspelled_environment_variable_is_a_warning_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """PERMIT_MCP_TENANT_CLAM is logged as a warning suggesting PERMIT_MCP_TENANT_CLAIM."""
    monkeypatch.setenv("PERMIT_MCP_TENANT_CLAM", "org")
    caplog.set_level(logging.WARNING, logger="permit_guard.settings")
    PermitMcpMiddleware(engine=engine())
    (warning,) = settings_warnings(caplog)
    assert "PERMIT_MCP_TENANT_CLAM" in warning
    assert "did you mean PERMIT_MCP_TENANT_CLAIM?" in warning


def test_unknown_environment_variable_without_a_close_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A PERMIT_MCP_ variable like no setting is still a warning, saying it is ignored."""
    monkeypatch.setenv("PERMIT_MCP_XYZZY", "1")
    caplog.set_level(logging.WARNING, logger="permit_guard.settings")
    load_settings()
    (warning,) = settings_warnings(caplog)
    assert "PERMIT_MCP_XYZZY names no setting and is ignored" in warning


def test_misspelled_variable_in_a_dotenv_file_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A .env file's misspelled PERMIT_MCP_ name is warned about like the environment's."""
    (tmp_path / ".env").write_text("PERMIT_MCP_DEFAULT_DENNY=true\nOTHER_APP_SETTING=1\n")
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.WARNING, logger="permit_guard.settings")
    load_settings()
    (warning,) = settings_warnings(caplog)
    assert "PERMIT_MCP_DEFAULT_DENNY (in .env)" in warning
    assert "did you mean PERMIT_MCP_DEFAULT_DENY?" in warning


class _TelemetrySettings(BaseSettings):
    """Settings of another class whose prefix extends PERMIT_MCP_ (like an extension's)."""

    model_config = SettingsConfigDict(env_prefix="PERMIT_MCP_TELEMETRY_", extra="ignore")

    sample_rate: float = 1.0


def test_settings_and_other_variables_are_not_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Real settings, other prefixes' settings and variables of other programs log nothing."""
    monkeypatch.setenv("PERMIT_MCP_DEFAULT_DENY", "true")
    monkeypatch.setenv("permit_mcp_enforce", "true")  # names are case-insensitive
    monkeypatch.setenv("PERMIT_MCP_TELEMETRY_SAMPLE_RATE", "0.5")
    monkeypatch.setenv("PERMIT_API_KEY", "x")
    caplog.set_level(logging.WARNING, logger="permit_guard.settings")
    assert load_settings().default_deny is True
    assert _TelemetrySettings().sample_rate == 0.5
    assert settings_warnings(caplog) == []


def test_misspelled_keyword_is_refused_with_a_suggestion() -> None:
    """A misspelled keyword is a ConfigurationError suggesting the setting it resembles."""
    with pytest.raises(ConfigurationError, match=r"did you mean tenant_claim\?"):
        PermitMcpMiddleware(engine=engine(), tenant_clam="org")
    with pytest.raises(ConfigurationError, match=r"unknown setting defualt_deny"):
        load_settings(defualt_deny=True)


# -- 3, 4. decorators ------------------------------------------------------------------------------


def test_require_permission_without_parentheses_says_what_to_write() -> None:
    """@require_permission without () says to write @require_permission(), naming the function."""
    mcp: FastMCP[Any] = FastMCP("x")
    with pytest.raises(DecoratorError) as info:

        @mcp.tool
        @require_permission  # type: ignore[arg-type]
        def greet(name: str) -> str:
            return name

    assert "write @require_permission()" in str(info.value)
    assert info.value.function.endswith("greet")


def test_abac_from_args_without_parentheses_says_what_to_write() -> None:
    """@abac_from_args without () says to write @abac_from_args(...) with the argument names."""
    mcp: FastMCP[Any] = FastMCP("x")
    with pytest.raises(DecoratorError) as info:

        @mcp.tool
        @require_permission()
        @abac_from_args  # type: ignore[arg-type]
        def refund(amount: float, currency: str) -> str:
            return currency

    assert "write @abac_from_args('amount', 'currency')" in str(info.value)
    assert info.value.function.endswith("refund")


def test_abac_from_args_takes_names_only() -> None:
    """An argument name that is not a string is refused at once."""
    with pytest.raises(DecoratorError, match="argument names as strings"):
        abac_from_args(3)  # type: ignore[arg-type]


def test_tenant_naming_no_argument_suggests_fixed() -> None:
    """tenant="acme" naming no argument suggests tenant=fixed('acme')."""
    with pytest.raises(DecoratorError) as info:

        @require_permission(tenant="acme")
        def report(period: str) -> str:
            return period

    assert "for the tenant 'acme' itself, write tenant=fixed('acme')" in str(info.value)


def test_close_argument_name_is_suggested() -> None:
    """A misspelled argument name suggests the argument it resembles."""
    with pytest.raises(DecoratorError, match=r"did you mean 'invoice_id'\?"):

        @require_permission(key="invoice")
        def delete(invoice_id: str) -> str:
            return invoice_id

    assert fixed("acme").value == "acme"


# -- 5. a missing policy file ----------------------------------------------------------------------


def test_missing_policy_file_says_not_found_with_the_absolute_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A policy file that does not exist is "not found" at its absolute path."""
    monkeypatch.chdir(tmp_path)
    for load in (
        lambda: LocalPolicyEngine.from_file("nope.yaml"),
        lambda: PermitMcpMiddleware(policy_file="nope.yaml"),
    ):
        with pytest.raises(PolicyFileError) as info:
            load()
        assert str(info.value) == f"policy file not found: {tmp_path / 'nope.yaml'}"
        assert info.value.source == "nope.yaml"
    with pytest.raises(PolicyFileError, match=r"^data file not found: "):
        LocalPolicyEngine.from_file(Path(__file__).parent / "cli_servers/files.yaml", data="x.json")


def test_missing_policy_file_on_the_command_line() -> None:
    """permit-guard check --policy MISSING exits 2 with "not found" and the absolute path."""
    result = CliRunner().invoke(
        app, ["check", QUICKSTART, "--user", "bob", "--tool", "greet", "--policy", "nope.yaml"]
    )
    assert result.exit_code == 2
    assert f"Error: policy file not found: {Path('nope.yaml').resolve()}" in result.output
    assert "invalid policy" not in result.output


# -- 6, 7. malformed setting values ----------------------------------------------------------------


def test_bad_boolean_names_the_accepted_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """PERMIT_MCP_DEFAULT_DENY=maybe names the variable, the value and the accepted values."""
    monkeypatch.setenv("PERMIT_MCP_DEFAULT_DENY", "maybe")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert str(info.value) == (
        "invalid settings: PERMIT_MCP_DEFAULT_DENY (default_deny): 'maybe' is not a boolean; "
        "use true or false (also 1/0, yes/no, on/off)"
    )


def test_json_list_hint_shows_the_settings_own_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """PERMIT_MCP_USER_ATTRIBUTE_CLAIMS that is not JSON shows a list of claims as the example."""
    monkeypatch.setenv("PERMIT_MCP_USER_ATTRIBUTE_CLAIMS", "department,level")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "PERMIT_MCP_USER_ATTRIBUTE_CLAIMS (user_attribute_claims): not valid JSON" in message
    assert '\'["department", "email"]\'' in message
    assert "initialize" not in message


# -- 8. lint on a server whose policy does not load ------------------------------------------------


def lint_app() -> typer.Typer:
    """A CLI with the lint command, as permit_guard.cli.app registers it."""
    cli = typer.Typer()
    cli.command("lint")(lint_command)
    cli.command("other")(lambda: None)  # two commands: typer keeps the name on the line
    return cli


@pytest.fixture
def broken_server(tmp_path: Path) -> Path:
    """A server whose middleware loads a broken policy when it is imported."""
    (tmp_path / "policy.yaml").write_text(
        "resources:\n  mcp_server:\n    actions: [greet]\nroles:\n  clerk:\n"
        "    grants:\n      mcp_server: [gret]\n"
    )
    server = tmp_path / "server.py"
    server.write_text(
        textwrap.dedent(
            f"""
            from fastmcp import FastMCP
            from permit_guard import PermitMcpMiddleware, require_permission

            mcp = FastMCP("broken")

            @mcp.tool
            @require_permission()
            def greet() -> str:
                return "hi"

            PermitMcpMiddleware(policy_file={str(tmp_path / "policy.yaml")!r}).attach(mcp)
            """
        )
    )
    return server


def test_lint_reports_a_policy_the_server_cannot_load_as_findings(broken_server: Path) -> None:
    """lint of a server whose policy breaks its import reports invalid-policy findings, exit 1."""
    result = CliRunner().invoke(lint_app(), ["lint", str(broken_server)])
    assert result.exit_code == 1, result.output
    output = flat(result.stdout)
    assert "cannot be imported: its policy" in output
    assert "error invalid-policy" in output
    assert "roles.clerk.grants.mcp_server" in output
    assert "importing" not in result.output


def test_lint_json_of_a_server_whose_policy_does_not_load(broken_server: Path) -> None:
    """--json gives the same findings, with no server name (it was never built)."""
    result = CliRunner().invoke(lint_app(), ["lint", str(broken_server), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["server"] is None
    assert report["policy"] == str(broken_server.parent / "policy.yaml")
    assert report["errors"] == len(report["findings"]) >= 1
    assert {f["kind"] for f in report["findings"]} == {"invalid-policy"}


def test_lint_command_still_lints_a_server_that_loads() -> None:
    """The lint command module lints a server that loads as before (its one undecorated tool)."""
    result = CliRunner().invoke(lint_app(), ["lint", QUICKSTART])
    assert result.exit_code == 1, result.output
    assert "Server 'billing', policy examples/policy.yaml, default deny on" in result.stdout
    assert "error undecorated tool debug_dump" in flat(result.stdout)


# -- 9. check with a missing required argument -----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--tool", "refund", "--args", '{"currency": "EUR"}'),
            "tool 'refund' needs its required argument amount: give it with --args "
            "'{\"amount\": ...}'",
        ),
        (
            ("--tool", "delete_invoice"),
            "tool 'delete_invoice' needs its required argument invoice_id: give it with --args "
            "'{\"invoice_id\": ...}' (or --key for its key argument invoice_id)",
        ),
        (
            ("--tool", "refund", "--args", "{}"),
            "tool 'refund' needs its required arguments amount, currency: give them with --args "
            '\'{"amount": ..., "currency": ...}\'',
        ),
    ],
)
def test_check_with_a_missing_required_argument_says_which(
    args: tuple[str, ...], message: str
) -> None:
    """check without a required argument its spec names exits 2 naming it and the component."""
    result = CliRunner().invoke(app, ["check", QUICKSTART, "--user", "alice", *args])
    assert result.exit_code == 2
    assert message in flat(result.output)


def test_check_with_a_prompt_missing_its_key_argument() -> None:
    """A prompt's missing key argument is named too."""
    result = CliRunner().invoke(
        app,
        ["check", TRACKER, "--user", "wanda", "--prompt", "summarize_project", "--policy", TRACKED],
    )
    assert result.exit_code == 2
    assert "prompt 'summarize_project' needs its required argument project_id" in flat(
        result.output
    )


def test_check_may_leave_out_an_argument_the_spec_does_not_name() -> None:
    """A required argument only passed through (greet's name) may be left out, as before."""
    result = CliRunner().invoke(app, ["check", QUICKSTART, "--user", "alice", "--tool", "greet"])
    assert result.exit_code == 0, result.output


def test_check_with_the_key_given_by_key_needs_no_args() -> None:
    """--key fills in the key argument, so the request is complete."""
    result = CliRunner().invoke(
        app, ["check", QUICKSTART, "--user", "alice", "--tool", "delete_invoice", "--key", "42"]
    )
    assert result.exit_code == 0, result.output
