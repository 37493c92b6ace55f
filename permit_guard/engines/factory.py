"""Building the policy engine that the guard's arguments and settings name.

Example::

    from permit_guard.engines.factory import engine_from_settings
    from permit_guard.settings import load_settings

    engine = engine_from_settings(load_settings(policy_file="policy.yaml"), file_given=True)
"""

from __future__ import annotations

from typing import Any

from permit_guard.engines.authzen import AuthZENEngine
from permit_guard.engines.base import PolicyEngine
from permit_guard.engines.cache import CachedEngine
from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.engines.permit import PermitPDPEngine
from permit_guard.exceptions import ConfigurationError
from permit_guard.settings import GuardSettings

__all__ = ["engine_from_settings"]


def engine_from_settings(
    settings: GuardSettings,
    *,
    engine: PolicyEngine | None = None,
    permit_client: Any = None,
    file_given: bool = False,
    key_given: bool = False,
    authzen_given: bool = False,
) -> PolicyEngine:
    """The engine the arguments and settings name; exactly one must be named.

    An explicit engine or client wins; otherwise a keyword choice wins over the
    environment's, and two choices at the same level are an error. The
    choices: a policy file (:class:`LocalPolicyEngine`), a Permit.io API key
    (:class:`PermitPDPEngine`), an AuthZEN PDP URL (:class:`AuthZENEngine`).
    With ``settings.cache_ttl > 0`` the engine is wrapped in a
    :class:`CachedEngine`.

    Args:
        settings: The guard's settings (``policy_file``, ``permit_api_key``,
            ``permit_pdp_url``, ``authzen_url``, ``authzen_token``,
            ``pdp_timeout``, ``pdp_bulk_chunk_size``, ``cache_ttl``,
            ``cache_max_size``).
        engine: An engine given explicitly.
        permit_client: A ``permit.Permit`` client given explicitly.
        file_given: Whether ``policy_file`` was given as a keyword (not read
            from the environment).
        key_given: Whether ``permit_api_key`` was given as a keyword.
        authzen_given: Whether ``authzen_url`` was given as a keyword.

    Returns:
        The engine, cached when the settings say so.

    Raises:
        ConfigurationError: When two engines are named at the same level, or none.
        PolicyFileError: When the policy file cannot be loaded.
    """
    chosen: PolicyEngine
    if engine is not None or permit_client is not None:
        clashes = [
            name
            for name, given in (
                ("engine", engine is not None),
                ("permit_client", permit_client is not None),
                ("policy_file", file_given),
                ("permit_api_key", key_given),
                ("authzen_url", authzen_given),
            )
            if given
        ]
        if len(clashes) > 1:
            raise ConfigurationError(
                f"choose one policy engine: {' and '.join(clashes)} were both given"
            )
        chosen = (
            engine
            if engine is not None
            else PermitPDPEngine.from_permit(
                permit_client, bulk_chunk_size=settings.pdp_bulk_chunk_size
            )
        )
    else:
        chosen = _from_choices(settings, file_given, key_given, authzen_given)
    if settings.cache_ttl > 0:
        return CachedEngine(chosen, ttl=settings.cache_ttl, max_size=settings.cache_max_size)
    return chosen


def _from_choices(
    settings: GuardSettings, file_given: bool, key_given: bool, authzen_given: bool
) -> PolicyEngine:
    policy_file = settings.policy_file
    api_key = settings.permit_api_key.get_secret_value()
    authzen_url = settings.authzen_url.strip()
    if file_given or key_given or authzen_given:
        # A keyword choice wins over the environment's other choices.
        policy_file = policy_file if file_given else None
        api_key = api_key if key_given else ""
        authzen_url = authzen_url if authzen_given else ""
    named = [
        text
        for text, present in (
            ("a policy file (PERMIT_MCP_POLICY_FILE)", policy_file is not None),
            ("a Permit.io API key (PERMIT_MCP_PERMIT_API_KEY)", bool(api_key)),
            ("an AuthZEN PDP URL (PERMIT_MCP_AUTHZEN_URL)", bool(authzen_url)),
        )
        if present
    ]
    if len(named) > 1:
        hint = (
            "; to ask Permit's PDP over AuthZEN, give its API key as "
            "PERMIT_MCP_AUTHZEN_TOKEN instead"
            if api_key and authzen_url
            else ""
        )
        both = "both" if len(named) == 2 else "all"
        raise ConfigurationError(
            f"choose one policy engine: {' and '.join(named)} are {both} set{hint}"
        )
    if settings.policy_data_file is not None and policy_file is None:
        raise ConfigurationError(
            "a policy data file (PERMIT_MCP_POLICY_DATA_FILE) needs a policy file "
            "(PERMIT_MCP_POLICY_FILE) to check its facts against"
        )
    if policy_file is not None:
        return LocalPolicyEngine.from_file(
            policy_file, data=settings.policy_data_file, reload=settings.policy_reload
        )
    if api_key:
        return PermitPDPEngine(
            settings.permit_pdp_url,
            api_key,
            timeout=settings.pdp_timeout,
            bulk_chunk_size=settings.pdp_bulk_chunk_size,
        )
    if authzen_url:
        return AuthZENEngine(
            authzen_url,
            token=settings.authzen_token.get_secret_value(),
            timeout=settings.pdp_timeout,
            batch_size=settings.pdp_bulk_chunk_size,
        )
    raise ConfigurationError(
        "no policy engine: pass engine=..., a policy file (policy_file=... or "
        "PERMIT_MCP_POLICY_FILE), a Permit.io API key (permit_api_key=... or "
        "PERMIT_MCP_PERMIT_API_KEY) or an AuthZEN PDP URL (PERMIT_MCP_AUTHZEN_URL)"
    )
