"""Kept for old imports: the code lives in ``engines/local/policy.py`` and ``loading.py``."""

from permit_guard.engines.local.loading import LoadedPolicy, load_policy
from permit_guard.engines.local.policy import (
    WILDCARD,
    Policy,
    PolicyResourceSet,
    PolicyResourceType,
    PolicyRole,
    PolicyUser,
    PolicyUserSet,
)
from permit_guard.engines.local.reading import SUFFIXES, read_policy_file

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
