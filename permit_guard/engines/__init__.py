"""Policy engines: the protocol and its implementations."""

from permit_guard.engines.authzen import AuthZENEngine
from permit_guard.engines.base import Closable, PolicyEngine
from permit_guard.engines.cache import CachedEngine
from permit_guard.engines.factory import engine_from_settings
from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.engines.permit import PermitPDPEngine

__all__ = [
    "AuthZENEngine",
    "CachedEngine",
    "Closable",
    "LocalPolicyEngine",
    "PermitPDPEngine",
    "PolicyEngine",
    "engine_from_settings",
]
