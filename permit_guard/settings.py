"""Settings: environment (prefix ``PERMIT_MCP_``), a ``.env`` file, or keywords.

Read once, when the middleware is constructed — never at import — and turned
into plain constructor values. Keywords win over the environment, which wins
over the defaults. A misspelled keyword is an error; a misspelled variable is
a warning (both suggest the setting they resemble).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
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

logger = logging.getLogger("permit_guard.settings")

#: How each list setting is written in JSON, for the hint when a value is not JSON.
_LIST_EXAMPLES: Mapping[str, str] = {
    "known_methods": '["tools/list", "tools/call"]',
    "bypassed_methods": '["initialize", "ping"]',
    "jwt_algorithms": '["RS256"]',
    "user_attribute_claims": '["department", "email"]',
}

#: What a boolean setting accepts (pydantic's lax booleans, any case).
_BOOLEANS = "true or false (also 1/0, yes/no, on/off)"

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
    audit_hidden_names: bool = False
    decision_log_file: Path | None = None
    decision_log_max_bytes: int = Field(default=0, ge=0)
    decision_log_backups: int = Field(default=5, ge=0, le=1000)
    otel_decisions: Literal["span", "event", "off"] = "span"
    otel_metrics: bool = True
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
    authzen_url: str = ""
    authzen_token: SecretStr = SecretStr("")
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

    A ``PERMIT_MCP_*`` variable (or ``.env`` entry) that names no setting is
    logged as a warning on the ``permit_guard.settings`` logger, with the
    setting it resembles.

    Args:
        **overrides: Field values; ``None`` means "not given".

    Raises:
        ConfigurationError: Naming each variable whose value is malformed, or
            an unknown keyword (with the setting it resembles).
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    unknown = sorted(set(given) - set(GuardSettings.model_fields))
    if unknown:
        # A keyword is code: a typo there is an error, not a setting silently left out.
        fields = GuardSettings.model_fields
        known = ", ".join(sorted(fields))
        named = ", ".join(name + _did_you_mean(name, fields) for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigurationError(f"unknown setting{plural} {named}; known: {known}")
    _warn_unknown_variables()
    try:
        return GuardSettings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            source = "keyword" if field in given else f"{ENV_PREFIX}{field.upper()}"
            problems.append(f"{source} ({field}): {_problem(error)}")
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from exc
    except SettingsError as exc:
        # Raised for environment values that are not valid JSON (list settings).
        match = re.search(r'field "(\w+)"', str(exc))
        field = match.group(1) if match else "?"
        raise ConfigurationError(
            f"invalid settings: {ENV_PREFIX}{field.upper()} ({field}): not valid JSON "
            f"(write the list as JSON, e.g. '{_list_example(field)}')"
        ) from exc


def _problem(error: ErrorDetails) -> str:
    """What is wrong with one value; a boolean's says what it accepts."""
    if error["type"] in ("bool_parsing", "bool_type"):
        return f"{error['input']!r} is not a boolean; use {_BOOLEANS}"
    return error["msg"]


def _list_example(field: str) -> str:
    """A JSON example of the list setting ``field``: its own, else from its default."""
    if field in _LIST_EXAMPLES:
        return _LIST_EXAMPLES[field]
    info = GuardSettings.model_fields.get(field)
    default = info.get_default(call_default_factory=True) if info is not None else None
    if isinstance(default, list) and default and all(isinstance(v, str) for v in default):
        return json.dumps(default[:2])
    return '["a", "b"]'


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the known name ``name`` resembles, else nothing."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _warn_unknown_variables() -> None:
    """Log a warning for each ``PERMIT_MCP_*`` variable that names no setting.

    A misspelled variable would otherwise be ignored without a word, and the
    guard run on a default the operator meant to change. Variables of other
    settings classes whose prefix extends ``PERMIT_MCP_`` are settings too.
    """
    found = {name.upper(): "" for name in os.environ}
    env_file = GuardSettings.model_config.get("env_file")
    if isinstance(env_file, str) and Path(env_file).is_file():
        for name in dotenv_values(env_file, encoding="utf-8"):
            found.setdefault(name.upper(), f" (in {env_file})")
    known = _known_variables()
    suffixes = [name.removeprefix(ENV_PREFIX) for name in known]
    for name, where in sorted(found.items()):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        logger.warning("%s%s names no setting and is ignored%s", name, where, hint)


def _known_variables() -> frozenset[str]:
    """Every ``PERMIT_MCP_*`` name a settings class reads (GuardSettings', and any other's)."""
    names: set[str] = set()
    classes: list[type[BaseSettings]] = [BaseSettings]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        prefix = str(cls.model_config.get("env_prefix") or "").upper()
        for field, info in cls.model_fields.items():
            names.add(prefix + field.upper())
            alias = info.validation_alias or info.alias
            choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
            names.update(choice.upper() for choice in choices if isinstance(choice, str))
    return frozenset(name for name in names if name.startswith(ENV_PREFIX))


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
