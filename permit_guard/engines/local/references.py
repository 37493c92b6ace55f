"""The names a fact refers to, checked against the policy's model.

One set of checks for the policy file, a data file and the runtime directory:
an instance key is ``"<type>:<key>"`` of a known type, a role or resource role
exists, a tuple's relation is declared on its object's type and links the type
its subject has. Each check returns the problem as a sentence, or ``None``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from permit_guard.engines.local.policy import Policy

__all__ = [
    "names",
    "resource_role_problem",
    "role_problem",
    "split_instance",
    "tuple_problem",
    "unknown",
]


def names(items: Iterable[str]) -> str:
    """``a, b, c``, or ``none``."""
    return ", ".join(items) or "none"


def unknown(what: str, name: str, known: list[str], *, of: str = "") -> str:
    """``unknown role 'admn' (did you mean 'admin'? known: admin, viewer)``."""
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    # A policy with a hundred roles would drown the message in names.
    listing = f"known: {names(known)}" if len(known) <= 12 else f"{len(known)} known"
    return f"unknown {what} {name!r}{of} ({hint}{listing})"


def split_instance(policy: Policy, name: object) -> tuple[tuple[str, str] | None, str | None]:
    """``("type", "key")`` of ``"<type>:<key>"``, or the problem with it.

    Returns:
        ``(instance, None)``, or ``(None, problem)``.
    """
    if not isinstance(name, str):
        return None, f"expected '<resource type>:<instance key>', not {type(name).__name__}"
    type_name, colon, key = name.partition(":")
    if not colon or not type_name or not key:
        return None, "expected '<resource type>:<instance key>', e.g. 'invoice:42'"
    if type_name not in policy.resources:
        return None, unknown("resource type", type_name, list(policy.resources))
    return (type_name, key), None


def role_problem(policy: Policy, role: str) -> str | None:
    """What is wrong with the tenant role ``role``, or ``None``."""
    return None if role in policy.roles else unknown("role", role, list(policy.roles))


def resource_role_problem(policy: Policy, type_name: str, role: str) -> str | None:
    """What is wrong with the resource role ``role`` of a known ``type_name``, or ``None``."""
    roles = policy.resources[type_name].roles
    if role in roles:
        return None
    return unknown("resource role", role, list(roles), of=f" on resource type {type_name!r}")


def tuple_problem(policy: Policy, subject_type: str, relation: str, object_type: str) -> str | None:
    """What is wrong with a tuple ``<subject_type>:… relation <object_type>:…``, or ``None``."""
    relations = policy.resources[object_type].relations
    if relation not in relations:
        return unknown(
            "relation", relation, list(relations), of=f" on resource type {object_type!r}"
        )
    if relations[relation] != subject_type:
        return (
            f"relation {relation!r} of {object_type!r} links a {relations[relation]!r}, "
            f"not a {subject_type!r}"
        )
    return None
