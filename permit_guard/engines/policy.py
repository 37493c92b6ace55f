"""Kept for old imports: the code lives in ``engines/local/policy.py`` and ``loading.py``."""

from permit_guard.engines.local.loading import SUFFIXES, LoadedPolicy, load_policy, read_policy_file
from permit_guard.engines.local.policy import (
    WILDCARD,
    Policy,
    PolicyResourceSet,
    PolicyResourceType,
    PolicyRole,
    PolicyUser,
    PolicyUserSet,
)

__all__ = [
    "SUFFIXES",
    "WILDCARD",
    "LoadedPolicy",
    "Policy",
    "PolicyResourceSet",
    "PolicyResourceType",
    "PolicyRole",
    "PolicyUser",
    "PolicyUserSet",
    "load_policy",
    "read_policy_file",
]
