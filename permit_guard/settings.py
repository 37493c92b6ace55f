"""Settings: environment (prefix ``PERMIT_MCP_``), a ``.env`` file, or keywords.

Read once, when the middleware is constructed — never at import — and turned
into plain constructor values. Keywords win over the environment, which wins
over the defaults.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from permit_guard.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_BYPASSED_METHODS",
    "DEFAULT_KNOWN_METHODS",
    "GuardSettings",
    "load_settings",
    "settings_for",
]

ENV_PREFIX = "PERMIT_MCP_"

#: permit-fastmcp's documented list, plus ``resources/templates/list``, which newer
#: clients send and which would otherwise be refused as unknown, and
#: ``completion/complete``, answered per reference (only for a prompt or template
#: the caller's list would show).
DEFAULT_KNOWN_METHODS: tuple[str, ...] = (
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "tools/call",
    "resources/read",
    "prompts/get",
    "completion/complete",
)

#: permit-fastmcp's documented list, plus FastMCP 4's ``server/discover`` handshake.
DEFAULT_BYPASSED_METHODS: tuple[str, ...] = (
    "initialize",
    "ping",
    "notifications/*",
    "server/discover",
)


class GuardSettings(BaseSettings):
    """Every setting of the guard, named as in the permit-fastmcp configuration table.

    Each field ``name`` is read from ``PERMIT_MCP_<NAME>``; lists are JSON
    (``'["initialize","ping"]'``).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    mcp_server_name: str = Field(default="mcp_server", min_length=1)
    resource_prefix: str = "mcp_"
    action_prefix: str = ""
    prefix_resource_with_server_name: bool = True
    known_methods: list[str] = Field(default_factory=lambda: list(DEFAULT_KNOWN_METHODS))
    bypassed_methods: list[str] = Field(default_factory=lambda: list(DEFAULT_BYPASSED_METHODS))
    default_deny: bool = False
    enforce: bool = True
    enable_audit_logging: bool = True
    audit_argument_values: bool = False
    identity_mode: Literal["fixed", "header", "jwt", "token", "source"] = "fixed"
    identity_fixed_value: str = Field(default="client", min_length=1)
    identity_header: str = Field(default="Authorization", min_length=1)
    identity_header_regex: str = "[Bb]earer (.+)"
    identity_jwt_secret: SecretStr = SecretStr("")
    identity_jwks_url: str = ""
    identity_jwt_field: str = Field(default="sub", min_length=1)
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256", "RS256"])
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway: float = Field(default=0.0, ge=0, le=300)
    jwt_require_exp: bool = True
    tenant_claim: str | None = None
    user_attribute_claims: list[str] = Field(default_factory=list)
    tool_argument_prefix: str = "arg_"
    flatten_tool_arguments: bool = True
    unknown_methods: Literal["deny", "allow"] = "deny"
    policy_file: Path | None = None
    policy_data_file: Path | None = None
    policy_reload: bool = False
    permit_pdp_url: str = "http://localhost:7766"
    permit_api_key: SecretStr = SecretStr("")
    pdp_timeout: float = Field(default=5.0, gt=0, le=300)
    pdp_bulk_chunk_size: int = Field(default=10_000, ge=1)
    cache_ttl: float = Field(default=0.0, ge=0)
    cache_max_size: int = Field(default=10_000, ge=1)
    attribute_loader_timeout: float = Field(default=3.0, gt=0, le=300)

    @field_validator("known_methods", "bypassed_methods")
    @classmethod
    def _non_empty_entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not entry or entry != entry.strip():
                raise ValueError(f"method names must be non-empty without spaces, got {entry!r}")
        return value


def load_settings(**overrides: Any) -> GuardSettings:
    """Settings from keywords over environment over defaults.

    Args:
        **overrides: Field values; ``None`` means "not given".

    Raises:
        ConfigurationError: Naming each variable whose value is malformed, or
            an unknown keyword.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    unknown = sorted(set(given) - set(GuardSettings.model_fields))
    if unknown:
        known = ", ".join(sorted(GuardSettings.model_fields))
        raise ConfigurationError(f"unknown setting(s) {', '.join(unknown)}; known: {known}")
    try:
        return GuardSettings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            source = "keyword" if field in given else f"{ENV_PREFIX}{field.upper()}"
            problems.append(f"{source} ({field}): {error['msg']}")
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from exc
    except SettingsError as exc:
        # Raised for environment values that are not valid JSON (list settings).
        match = re.search(r'field "(\w+)"', str(exc))
        field = match.group(1) if match else "?"
        raise ConfigurationError(
            f"invalid settings: {ENV_PREFIX}{field.upper()} ({field}): not valid JSON "
            f'(lists are written like \'["initialize", "ping"]\')'
        ) from exc


def settings_for(settings: GuardSettings | None, **keywords: Any) -> GuardSettings:
    """Complete settings as given, or settings from keywords over the environment.

    Args:
        settings: Complete settings, used as they are; ``None`` to build them.
        **keywords: Field values; ``None`` means "not given".

    Raises:
        ConfigurationError: When both complete settings and keywords are
            given, or on a malformed value (see :func:`load_settings`).
    """
    if settings is None:
        return load_settings(**keywords)
    if any(value is not None for value in keywords.values()):
        raise ConfigurationError("pass either settings= or individual settings, not both")
    return settings
