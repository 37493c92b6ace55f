"""The embedded policy engine: Permit's model (RBAC, ABAC, ReBAC) from a local file."""

from permit_guard.engines.local.engine import LISTING_METHODS, LocalPolicyEngine, is_listing

__all__ = ["LISTING_METHODS", "LocalPolicyEngine", "is_listing"]
