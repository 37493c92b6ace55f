"""Policy engines: the protocol and its implementations."""

from permit_guard.engines.base import PolicyEngine
from permit_guard.engines.local import LocalPolicyEngine

__all__ = ["LocalPolicyEngine", "PolicyEngine"]
