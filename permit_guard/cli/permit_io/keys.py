"""Permit.io's rules for keys, checked before anything is written.

Permit.io takes URL-friendly keys only (the ``permit.api.models`` constraints:
letters, digits, ``-`` and ``_``; a user key also ``| @ + .``), and keeps
resource sets and user sets in one namespace of condition sets. A local
policy allows more (an instance ``doc:file:///a.txt``), so an export that
Permit.io would refuse halfway is refused here, whole, naming each key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from permit_guard.cli.permit_io.records import PermitExport

__all__ = ["key_problems"]

_SLUG: Final = re.compile(r"[A-Za-z0-9\-_]+")
_USER: Final = re.compile(r"[A-Za-z0-9|@+\-._]+")
_SLUG_RULE: Final = "Permit.io keys hold only letters, digits, '-' and '_'"
_USER_RULE: Final = "Permit.io user keys hold only letters, digits and | @ + - . _"
#: Permit.io's own condition sets (a role's user set, a type's resource set) start so.
_AUTOGEN: Final = "__autogen_"


def _slugs(what: str, keys: Iterable[str], of: str = "") -> Iterator[str]:
    for key in dict.fromkeys(keys):
        if not _SLUG.fullmatch(key):
            yield f"{what} {key!r}{of}: {_SLUG_RULE}"


def _instances(names: Iterable[str]) -> Iterator[str]:
    for name in dict.fromkeys(names):
        key = name.partition(":")[2]
        if not _SLUG.fullmatch(key):
            yield f"resource instance {name!r}: its key {key!r} is not one: {_SLUG_RULE}"


def key_problems(export: PermitExport) -> list[str]:
    """Every key of ``export`` that Permit.io would refuse, one line each."""
    problems = list(_slugs("tenant", export.tenants))
    for resource in export.resources:
        problems += _slugs("resource type", [resource.key])
        of = f" of resource type {resource.key!r}"
        problems += _slugs("action", resource.actions, of)
        problems += _slugs("attribute", resource.attributes, of)
    problems += _slugs("user attribute", export.user_attributes)
    problems += _slugs("role", [role.key for role in export.roles])
    for r in export.relations:
        problems += _slugs("relation", [r.key], f" of resource type {r.resource!r}")
    for role in export.resource_roles:
        problems += _slugs("resource role", [role.key], f" of resource type {role.resource!r}")
    seen: dict[str, str] = {}
    for condition_set in export.condition_sets:
        kind = "resource set" if condition_set.kind == "resourceset" else "user set"
        problems += _slugs(kind, [condition_set.key])
        if condition_set.key.startswith(_AUTOGEN):
            problems.append(
                f"{kind} {condition_set.key!r}: Permit.io keeps names starting {_AUTOGEN!r} "
                "for its own sets"
            )
        other = seen.setdefault(condition_set.key, kind)
        if other != kind:
            problems.append(
                f"{kind} {condition_set.key!r}: Permit.io keeps resource sets and user sets in "
                f"one namespace, and a {other} has this name: rename one of them"
            )
    for user in export.users:
        if not _USER.fullmatch(user.key):
            problems.append(f"user {user.key!r}: {_USER_RULE}")
    declared = {f"{i.resource}:{i.key}": None for i in export.instances}
    problems += _instances(declared)
    # An instance named only by an assignment or a tuple is created by Permit.io with that key.
    named = [a.instance for a in export.assignments if a.instance]
    named += [end for link in export.links for end in (link.subject, link.object)]
    problems += _instances(n for n in named if n not in declared)
    return problems
