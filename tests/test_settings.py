"""Settings: environment, .env files and keywords, and their precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP

from permit_guard import (
    ConfigurationError,
    FixedIdentity,
    HeaderIdentity,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    require_permission,
)
from permit_guard.settings import DEFAULT_BYPASSED_METHODS, load_settings
from permit_guard.testing import RecordingEngine

from .conftest import POLICY

POLICY_YAML = """
resources:
  mcp_server: {actions: [greet]}
roles:
  r: {grants: {mcp_server: [greet]}}
users:
  client: {roles: [r]}
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts from an empty PERMIT_MCP_ environment in an empty directory."""
    import os

    for name in list(os.environ):
        if name.startswith("PERMIT_MCP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    """With nothing set, the documented defaults apply."""
    settings = load_settings()
    assert settings.mcp_server_name == "mcp_server"
    assert settings.resource_prefix == "mcp_"
    assert settings.action_prefix == ""
    assert settings.prefix_resource_with_server_name is True
    assert settings.enable_audit_logging is True
    assert settings.default_deny is False
    assert settings.identity_mode == "fixed"
    assert settings.identity_fixed_value == "client"
    assert tuple(settings.bypassed_methods) == DEFAULT_BYPASSED_METHODS


def test_environment_then_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment overrides defaults; keywords override the environment."""
    monkeypatch.setenv("PERMIT_MCP_MCP_SERVER_NAME", "billing")
    monkeypatch.setenv("PERMIT_MCP_BYPASSED_METHODS", '["initialize","ping"]')
    monkeypatch.setenv("PERMIT_MCP_DEFAULT_DENY", "true")
    settings = load_settings()
    assert (settings.mcp_server_name, settings.bypassed_methods, settings.default_deny) == (
        "billing",
        ["initialize", "ping"],
        True,
    )
    settings = load_settings(mcp_server_name="ledger", default_deny=False)
    assert (settings.mcp_server_name, settings.default_deny) == ("ledger", False)


def test_dotenv_file(tmp_path: Path) -> None:
    """A .env file in the working directory is read."""
    (tmp_path / ".env").write_text("PERMIT_MCP_ACTION_PREFIX=mcp_\nPERMIT_MCP_DEFAULT_DENY=1\n")
    settings = load_settings()
    assert (settings.action_prefix, settings.default_deny) == ("mcp_", True)


def test_malformed_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed environment value is an error at construction naming the variable."""
    monkeypatch.setenv("PERMIT_MCP_DEFAULT_DENY", "maybe")
    with pytest.raises(ConfigurationError, match="PERMIT_MCP_DEFAULT_DENY"):
        PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY))


def test_malformed_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list setting that is not JSON is a configuration error, not a crash."""
    monkeypatch.setenv("PERMIT_MCP_KNOWN_METHODS", "tools/list,tools/call")
    with pytest.raises(ConfigurationError, match="KNOWN_METHODS"):
        load_settings()


def test_unknown_keyword() -> None:
    """A keyword that is no setting is refused, listing the known ones."""
    with pytest.raises(ConfigurationError, match="unknown setting"):
        PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY), server_nmae="x")


def test_no_engine_is_a_configuration_error() -> None:
    """Without an engine or a policy file the middleware refuses to start."""
    with pytest.raises(ConfigurationError, match="PERMIT_MCP_POLICY_FILE"):
        PermitMcpMiddleware()


async def test_policy_file_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PERMIT_MCP_POLICY_FILE selects the local engine on that file."""
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    monkeypatch.setenv("PERMIT_MCP_POLICY_FILE", str(tmp_path / "policy.yaml"))
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission()
    def greet() -> str:
        return "hi"

    guard = PermitMcpMiddleware()
    assert isinstance(guard.engine, LocalPolicyEngine)
    mcp.add_middleware(guard)
    async with Client(mcp) as client:
        assert (await client.call_tool("greet", {})).data == "hi"


def test_identity_mode_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PERMIT_MCP_IDENTITY_MODE / _FIXED_VALUE / _HEADER choose the identity extractor."""
    engine = LocalPolicyEngine.from_dict(POLICY)
    monkeypatch.setenv("PERMIT_MCP_IDENTITY_FIXED_VALUE", "svc")
    guard = PermitMcpMiddleware(engine=engine)
    assert isinstance(guard.identity, FixedIdentity)
    assert repr(guard.identity) == "FixedIdentity('svc')"
    monkeypatch.setenv("PERMIT_MCP_IDENTITY_MODE", "header")
    monkeypatch.setenv("PERMIT_MCP_IDENTITY_HEADER", "X-User")
    guard = PermitMcpMiddleware(engine=engine)
    assert isinstance(guard.identity, HeaderIdentity)
    assert guard.identity.header == "X-User"
    monkeypatch.delenv("PERMIT_MCP_IDENTITY_HEADER")
    with pytest.raises(ConfigurationError, match="carries credentials"):
        PermitMcpMiddleware(engine=engine)  # header mode on the default Authorization header
    monkeypatch.setenv("PERMIT_MCP_IDENTITY_MODE", "telepathy")
    with pytest.raises(ConfigurationError, match="IDENTITY_MODE"):
        PermitMcpMiddleware(engine=engine)


@pytest.mark.parametrize(
    ("options", "expected_type", "expected_action"),
    [
        ({}, "mcp_server_prompts", "read"),
        ({"mcp_server_name": "billing"}, "billing_prompts", "read"),
        ({"action_prefix": "mcp_"}, "mcp_server_prompts", "mcp_read"),
        ({"prefix_resource_with_server_name": False}, "mcp_prompts", "read"),
        ({"prefix_resource_with_server_name": False, "resource_prefix": "x_"}, "x_prompts", "read"),
    ],
)
async def test_mapping_settings_take_effect(
    options: dict[str, Any], expected_type: str, expected_action: str
) -> None:
    """Server name and prefixes change the resource type and action the engine is asked."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.prompt
    def summary() -> str:
        return "s"

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, **options))
    async with Client(mcp) as client:
        await client.list_prompts()
    gate = engine.requests[0]
    assert gate.resource.type == expected_type
    assert gate.action == ("mcp_list" if "action_prefix" in options else "list")
    item = engine.requests[1]
    assert (item.resource.type, item.action) == (expected_type, expected_action)


def test_settings_and_keywords_are_exclusive() -> None:
    """Passing settings= together with individual settings is refused."""
    with pytest.raises(ConfigurationError, match="not both"):
        PermitMcpMiddleware(
            engine=LocalPolicyEngine.from_dict(POLICY), settings=load_settings(), default_deny=True
        )


def test_api_key_selects_the_pdp_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """PERMIT_MCP_PERMIT_API_KEY selects the PDP engine, with URL and timeout from settings."""
    from permit_guard import PermitPDPEngine

    monkeypatch.setenv("PERMIT_MCP_PERMIT_API_KEY", "permit_key_FAKE")
    monkeypatch.setenv("PERMIT_MCP_PERMIT_PDP_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("PERMIT_MCP_PDP_TIMEOUT", "1.5")
    guard = PermitMcpMiddleware()
    assert isinstance(guard.engine, PermitPDPEngine)
    assert (guard.engine.url, guard.engine.timeout) == ("http://127.0.0.1:9", 1.5)
    assert "permit_key_FAKE" not in repr(guard.settings)


def test_policy_file_and_api_key_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A policy file and an API key from the same source is an error naming both."""
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    monkeypatch.setenv("PERMIT_MCP_POLICY_FILE", str(tmp_path / "policy.yaml"))
    monkeypatch.setenv("PERMIT_MCP_PERMIT_API_KEY", "permit_key_FAKE")
    with pytest.raises(ConfigurationError, match=r"POLICY_FILE.*PERMIT_API_KEY"):
        PermitMcpMiddleware()
    with pytest.raises(ConfigurationError, match="policy_file and permit_api_key"):
        PermitMcpMiddleware(
            engine=LocalPolicyEngine.from_dict(POLICY),
            policy_file=str(tmp_path / "policy.yaml"),
            permit_api_key="permit_key_FAKE",
        )


def test_keyword_choice_beats_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A policy_file keyword wins over an API key in the environment, and vice versa."""
    from permit_guard import PermitPDPEngine

    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    monkeypatch.setenv("PERMIT_MCP_PERMIT_API_KEY", "permit_key_FAKE")
    guard = PermitMcpMiddleware(policy_file=str(tmp_path / "policy.yaml"))
    assert isinstance(guard.engine, LocalPolicyEngine)
    monkeypatch.delenv("PERMIT_MCP_PERMIT_API_KEY")
    monkeypatch.setenv("PERMIT_MCP_POLICY_FILE", str(tmp_path / "policy.yaml"))
    guard = PermitMcpMiddleware(permit_api_key="permit_key_FAKE")
    assert isinstance(guard.engine, PermitPDPEngine)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PERMIT_MCP_PDP_TIMEOUT", "0"),
        ("PERMIT_MCP_CACHE_TTL", "-1"),
        ("PERMIT_MCP_PDP_TIMEOUT", "x"),
    ],
)
def test_bad_pdp_settings(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """A non-positive timeout or a negative TTL is refused at construction, naming the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY))


def test_bad_pdp_url() -> None:
    """A PDP URL that is not http(s) is refused at construction."""
    with pytest.raises(ConfigurationError, match="http"):
        PermitMcpMiddleware(permit_api_key="permit_key_FAKE", permit_pdp_url="localhost:7766")
