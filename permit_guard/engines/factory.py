"""Building the policy engine that the guard's arguments and settings name.

Example::

    from permit_guard.engines.factory import engine_from_settings
    from permit_guard.settings import load_settings

    engine = engine_from_settings(load_settings(policy_file="policy.yaml"), file_given=True)
"""

from __future__ import annotations

from typing import Any

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
) -> PolicyEngine:
    """The engine the arguments and settings name; exactly one must be named.

    An explicit engine or client wins; otherwise a keyword choice wins over the
    environment's, and two choices at the same level are an error. With
    ``settings.cache_ttl > 0`` the engine is wrapped in a :class:`CachedEngine`.

    Args:
        settings: The guard's settings (``policy_file``, ``permit_api_key``,
            ``permit_pdp_url``, ``pdp_timeout``, ``pdp_bulk_chunk_size``,
            ``cache_ttl``, ``cache_max_size``).
        engine: An engine given explicitly.
        permit_client: A ``permit.Permit`` client given explicitly.
        file_given: Whether ``policy_file`` was given as a keyword (not read
            from the environment).
        key_given: Whether ``permit_api_key`` was given as a keyword.

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
        policy_file = settings.policy_file
        api_key = settings.permit_api_key.get_secret_value()
        if file_given != key_given:
            # A keyword choice wins over the environment's other choice.
            policy_file, api_key = (policy_file, "") if file_given else (None, api_key)
        if policy_file is not None and api_key:
            raise ConfigurationError(
                "choose one policy engine: both a policy file (PERMIT_MCP_POLICY_FILE) and a "
                "Permit.io API key (PERMIT_MCP_PERMIT_API_KEY) are set"
            )
        if settings.policy_data_file is not None and policy_file is None:
            raise ConfigurationError(
                "a policy data file (PERMIT_MCP_POLICY_DATA_FILE) needs a policy file "
                "(PERMIT_MCP_POLICY_FILE) to check its facts against"
            )
        if policy_file is not None:
            chosen = LocalPolicyEngine.from_file(
                policy_file, data=settings.policy_data_file, reload=settings.policy_reload
            )
        elif api_key:
            chosen = PermitPDPEngine(
                settings.permit_pdp_url,
                api_key,
                timeout=settings.pdp_timeout,
                bulk_chunk_size=settings.pdp_bulk_chunk_size,
            )
        else:
            raise ConfigurationError(
                "no policy engine: pass engine=..., a policy file (policy_file=... or "
                "PERMIT_MCP_POLICY_FILE) or a Permit.io API key (permit_api_key=... or "
                "PERMIT_MCP_PERMIT_API_KEY)"
            )
    if settings.cache_ttl > 0:
        return CachedEngine(chosen, ttl=settings.cache_ttl, max_size=settings.cache_max_size)
    return chosen
