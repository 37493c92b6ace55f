"""Reading and writing policy and data files: YAML or JSON, strictly and within bounds.

A policy file holds the model (resource types, roles, grants, derivations)
and may hold facts (users, resource instances, relationship tuples). A data
file holds facts only: when one is given, its sections replace the policy
file's own facts, and :meth:`LocalPolicyEngine.save
<permit_guard.engines.local.LocalPolicyEngine.save>` writes every current fact
to one, so saving and loading again gives the same decisions. YAML and JSON
are read strictly: a repeated key is an error rather than a silently replaced
entry.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from permit_guard.engines.local.bounds import (
    MAX_DATA_FILE_BYTES,
    MAX_FILE_BYTES,
    BoundedLoader,
    check_data,
    read_capped,
    too_deep,
    too_large,
)
from permit_guard.engines.local.facts import Facts
from permit_guard.engines.local.loading import LoadedPolicy, load_policy
from permit_guard.engines.local.policy import Policy
from permit_guard.exceptions import PolicyFileError, PolicyFileNotFound

__all__ = [
    "DATA_SECTIONS",
    "SUFFIXES",
    "PolicyFileNotFound",
    "data_document",
    "policy_document",
    "read_document",
    "read_policy_file",
    "with_facts",
    "write_data_file",
]

#: The file extensions policy and data files may have.
SUFFIXES: Final = (".yaml", ".yml", ".json")

#: The sections of a data file: the facts.
DATA_SECTIONS: Final = ("users", "resource_instances", "relationships")


def read_policy_file(
    path: str | os.PathLike[str], *, data: str | os.PathLike[str] | None = None
) -> LoadedPolicy:
    """Read, parse and validate a policy file (``.yaml``, ``.yml`` or ``.json``).

    Args:
        path: The file.
        data: A data file whose facts replace the policy file's own
            (:data:`DATA_SECTIONS`), e.g. one written by ``engine.save``.

    Returns:
        The checked policy; its ``source`` is the path (``policy + data`` with a data file).

    Raises:
        PolicyFileError: Naming the file, for an unsupported extension, a file
            that cannot be read, a syntax error, a file beyond the bounds of
            :mod:`~permit_guard.engines.local.bounds`, a top level that is not
            a mapping, a data file with other sections, or any problem
            :func:`~permit_guard.engines.local.loading.load_policy` finds.
    """
    document, source = policy_document(path, data=data)
    return load_policy(document, source=source)


def policy_document(
    path: str | os.PathLike[str], *, data: str | os.PathLike[str] | None = None
) -> tuple[object, str]:
    """The parsed policy file, with a data file's sections in place of its own, unchecked.

    Args:
        path: The policy file.
        data: A data file whose sections (:data:`DATA_SECTIONS`) replace the policy's.

    Returns:
        The document, and how errors name it (``policy`` or ``policy + data``).

    Raises:
        PolicyFileError: As :func:`read_policy_file`, for everything but the
            contents' checks.
    """
    source = os.fspath(path)
    document = read_document(source)
    if data is None:
        return document, source
    data_source = os.fspath(data)
    facts = read_document(data_source, limit=MAX_DATA_FILE_BYTES, what="a data file")
    if not isinstance(facts, Mapping):
        raise PolicyFileError(data_source, ["top level: expected a mapping of " + _sections()])
    extra = [name for name in facts if name not in DATA_SECTIONS]
    if extra:
        raise PolicyFileError(
            data_source,
            [
                f"{name}: not a data section ({_sections()}); it belongs in the policy"
                for name in extra
            ],
        )
    if not isinstance(document, Mapping):
        return document, source
    return with_facts(document, facts), f"{source} + {data_source}"


def with_facts(document: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with its data sections replaced by those of ``facts``."""
    merged = {k: v for k, v in document.items() if k not in DATA_SECTIONS}
    merged.update(facts)
    return merged


def read_document(
    path: str | os.PathLike[str], *, limit: int = MAX_FILE_BYTES, what: str = "a policy file"
) -> object:
    """Parse a policy or data file, strictly and within bounds, without checking its contents.

    ``limit`` is the most bytes it may have (:data:`~.bounds.MAX_FILE_BYTES`
    for a policy, :data:`~.bounds.MAX_DATA_FILE_BYTES` for a data file).

    Raises:
        PolicyFileNotFound: For a file that does not exist.
        PolicyFileError: For an unsupported extension, an unreadable or empty
            file, a syntax error, a repeated key or a file beyond the bounds.
    """
    source = os.fspath(path)
    suffix = _suffix(source)
    try:
        raw = read_capped(source, limit, what=what)
    except FileNotFoundError as exc:
        raise PolicyFileNotFound(source, what=what) from exc
    except OSError as exc:
        raise PolicyFileError(source, [f"cannot read the file: {exc.strerror or exc}"]) from exc
    try:
        # utf-8-sig: editors on Windows like to start files with a byte-order mark.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyFileError(source, [f"not UTF-8 text (byte {exc.start})"]) from exc
    data = _parse_json(text, source) if suffix == ".json" else _parse_yaml(text, source)
    if data is None:
        raise PolicyFileError(
            source, [f"the file is empty; expected the sections {', '.join(Policy.model_fields)}"]
        )
    return data


def write_data_file(path: str | os.PathLike[str], facts: Facts) -> None:
    """Write ``facts`` as a data file, atomically (a reader sees the old file or the new one).

    Args:
        path: The file; its extension chooses YAML or JSON.
        facts: The facts to write.

    Raises:
        PolicyFileError: For an unsupported extension or a file that cannot be written.
    """
    target = os.fspath(path)
    suffix = _suffix(target)
    document = data_document(facts)
    try:
        if suffix == ".json":
            text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
        else:
            # ASCII only: a YAML reader folds some Unicode line breaks (U+0085)
            # in plain scalars, which would move roles to another user's name.
            text = yaml.safe_dump(document, sort_keys=True, allow_unicode=False)
    except (TypeError, ValueError, yaml.YAMLError) as exc:
        raise PolicyFileError(target, [f"cannot write the facts: {exc}"]) from exc
    # Never write what could not be read back: a server saving its facts must restart.
    if len(text.encode()) > MAX_DATA_FILE_BYTES:
        raise PolicyFileError(target, [too_large(MAX_DATA_FILE_BYTES, "a data file")])
    check_data(document, source=target)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=folder, suffix=suffix, delete=False
        ) as out:
            out.write(text)
        os.replace(out.name, target)
    except OSError as exc:
        raise PolicyFileError(target, [f"cannot write the file: {exc.strerror or exc}"]) from exc


def data_document(facts: Facts) -> dict[str, Any]:
    """The data-file form of ``facts`` (the sections of :data:`DATA_SECTIONS`)."""
    users: dict[str, dict[str, Any]] = {}

    def user(key: str) -> dict[str, Any]:
        return users.setdefault(key, {})

    for key, attributes in facts.user_attributes.items():
        entry = user(key)
        if attributes:
            entry["attributes"] = dict(attributes)
    for (tenant, key), roles in facts.user_roles.items():
        user(key).setdefault("roles", {})[tenant] = list(roles)
    for (key, type_name, instance), roles in facts.instance_roles.items():
        user(key).setdefault("resource_roles", {})[f"{type_name}:{instance}"] = list(roles)
    return {
        "users": users,
        "resource_instances": {
            f"{type_name}:{key}": {"tenant": tenant, "attributes": dict(attributes)}
            for (type_name, key), (tenant, attributes) in facts.instances.items()
        },
        "relationships": [
            {"subject": f"{s[0]}:{s[1]}", "relation": relation, "object": f"{o[0]}:{o[1]}"}
            for s, relation, o in facts.links()
        ],
    }


def _suffix(source: str) -> str:
    """The file's extension, one of :data:`SUFFIXES`: it chooses YAML or JSON."""
    suffix = Path(source).suffix.lower()
    if suffix not in SUFFIXES:
        raise PolicyFileError(
            source,
            [f"unsupported file extension {suffix or '(none)'!r}: use {', '.join(SUFFIXES)}"],
        )
    return suffix


def _sections() -> str:
    return "the sections " + ", ".join(DATA_SECTIONS)


class _StrictLoader(BoundedLoader):
    """A bounded safe YAML loader that notes duplicate keys instead of keeping the last one."""

    def __init__(self, stream: str, *, source: str) -> None:
        super().__init__(stream, source=source)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        # A repeated `users:` or `bob:` would silently replace the first one,
        # and with it somebody's permissions.
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                ident = (key_node.tag, key_node.value)
                if ident in seen:
                    self.duplicates.append(
                        f"line {key_node.start_mark.line + 1}: duplicate key {key_node.value!r}"
                    )
                seen.add(ident)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, source: str) -> object:
    loader = _StrictLoader(text, source=source)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyFileError(source, [f"YAML syntax error{where}: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise PolicyFileError(source, [f"YAML syntax error: {exc}"]) from exc
    except RecursionError as exc:
        raise PolicyFileError(source, [too_deep("YAML")]) from exc
    except PolicyFileError:
        raise  # a bound the loader found, already said
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise PolicyFileError(source, [f"YAML value cannot be read: {exc}"]) from exc
    finally:
        loader.dispose()
    if loader.duplicates:
        raise PolicyFileError(source, loader.duplicates)
    return data


def _parse_json(text: str, source: str) -> object:
    duplicates: list[str] = []

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json keeps the last of repeated keys; a policy must not lose the first silently.
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                duplicates.append(f"duplicate key {key!r}")
            obj[key] = value
        return obj

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise PolicyFileError(
            source, [f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
        ) from exc
    except RecursionError as exc:
        raise PolicyFileError(source, [too_deep("JSON")]) from exc
    except PolicyFileError:
        raise  # a bound the loader found, already said
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise PolicyFileError(source, [f"JSON value cannot be read: {exc}"]) from exc
    if duplicates:
        raise PolicyFileError(source, duplicates)
    return data
