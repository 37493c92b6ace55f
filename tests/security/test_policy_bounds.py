"""A hostile policy (an alias bomb, deep nesting, a huge file) is refused quickly, by name."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from permit_guard import LocalPolicyEngine
from permit_guard.engines.local.bounds import MAX_ALIASES, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from permit_guard.engines.local.loading import load_policy
from permit_guard.engines.local.reading import read_policy_file
from permit_guard.exceptions import PolicyFileError

ROOT = Path(__file__).resolve().parent.parent.parent

#: Refusing the bomb takes milliseconds; before the bounds it ran ~22 s and died
#: of MemoryError. The bound is generous so a loaded CI machine does not flake.
REFUSAL_SECONDS = 2.0

HEAD = """\
resources:
  invoice: {actions: [read]}
resource_sets:
  tagged:
    resource: invoice
    condition:
      allOf:
        - resource.arg_tags:
            array_subset:
"""


def alias_bomb() -> str:
    """Nine lists of ten aliases to the one before: 10**9 strings once expanded."""
    lines = ['              - &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 9):
        aliases = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"              - &a{level} [{aliases}]")
    return HEAD + "\n".join(lines) + "\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(call: Any, *args: Any) -> tuple[PolicyFileError, float]:
    """The PolicyFileError ``call(*args)`` raises, and how long it took."""
    start = time.perf_counter()
    with pytest.raises(PolicyFileError) as caught:
        call(*args)
    return caught.value, time.perf_counter() - start


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """An alias bomb is a PolicyFileError naming the file and the value bound, within 2 s."""
    path = write(tmp_path, "bomb.yaml", alias_bomb())
    assert len(path.read_bytes()) < 1000
    error, seconds = refusal(LocalPolicyEngine.from_file, path)
    assert seconds < REFUSAL_SECONDS
    assert error.source == str(path)
    assert str(path) in str(error)
    assert f"more than {MAX_NODES:,} values, counting each use of an alias" in str(error)


def test_alias_bomb_through_the_command(tmp_path: Path) -> None:
    """`permit-guard policy validate` on an alias bomb exits 1 with the problem, no traceback."""
    path = write(tmp_path, "bomb.yaml", alias_bomb())
    done = subprocess.run(
        [sys.executable, "-m", "permit_guard", "policy", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert f"{path}: 1 problem" in done.stdout
    assert f"more than {MAX_NODES:,} values" in done.stdout
    assert "Traceback" not in done.stderr
    assert "MemoryError" not in done.stderr


def test_too_many_aliases(tmp_path: Path) -> None:
    """More than MAX_ALIASES alias uses are refused, even when each is small."""
    roles = "".join(f"  r{i}: {{grants: {{invoice: *actions}}}}\n" for i in range(MAX_ALIASES + 1))
    text = f"resources:\n  invoice: {{actions: &actions [read]}}\nroles:\n{roles}"
    error, _ = refusal(read_policy_file, write(tmp_path, "aliases.yaml", text))
    assert error.problems == [
        f"line {MAX_ALIASES + 4}: more than {MAX_ALIASES} YAML aliases (*name); "
        f"a policy file may use at most {MAX_ALIASES}"
    ]


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    """Aliases within the bounds load as if the values were written out."""
    text = (
        "resources:\n  invoice: {actions: &actions [read, pay]}\n"
        "roles:\n  clerk: {grants: {invoice: *actions}}\n  boss: {grants: {invoice: *actions}}\n"
    )
    loaded = read_policy_file(write(tmp_path, "aliases.yaml", text))
    assert loaded.policy.roles["boss"].grants == {"invoice": ["read", "pay"]}


def test_recursive_alias(tmp_path: Path) -> None:
    """An alias inside the value it names is refused rather than validated forever."""
    text = "resources: &all\n  invoice: {actions: [read], roles: *all}\n"
    error, _ = refusal(read_policy_file, write(tmp_path, "recursive.yaml", text))
    assert error.problems == [
        "line 2: alias *all is used inside the value it names; a policy cannot contain itself"
    ]


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 100_000], ids=["just-too-deep", "very-deep"])
def test_too_deep_yaml(tmp_path: Path, levels: int) -> None:
    """YAML nested beyond MAX_DEPTH is refused at its line, before the composer recurses."""
    # The top-level mapping is one level; the lists under `resources` are the rest.
    text = "resources: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"
    path = write(tmp_path, "deep.yaml", text)
    error, seconds = refusal(read_policy_file, path)
    assert seconds < REFUSAL_SECONDS
    assert str(path) in str(error)
    assert error.problems == [
        f"line 1: nested more than {MAX_DEPTH} lists and mappings deep; "
        f"a policy may nest at most {MAX_DEPTH}"
    ]


def test_nesting_at_the_bound_is_checked_as_usual(tmp_path: Path) -> None:
    """Nesting of exactly MAX_DEPTH passes the bound and meets the ordinary shape checks."""
    text = "resources: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    error, _ = refusal(read_policy_file, write(tmp_path, "deep.yaml", text))
    assert "nested more than" not in str(error)


def test_alias_that_nests_too_deep(tmp_path: Path) -> None:
    """An alias that puts a deep value deeper still is refused at the alias."""
    inner = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    text = f"resources: &deep {inner}\nroles: [[*deep]]\n"
    error, _ = refusal(read_policy_file, write(tmp_path, "deep.yaml", text))
    assert error.problems == [
        f"line 2 (alias *deep): nested more than {MAX_DEPTH} lists and mappings deep; "
        f"a policy may nest at most {MAX_DEPTH}"
    ]


def test_too_large_file(tmp_path: Path) -> None:
    """A file over MAX_FILE_BYTES is refused by its size, without being parsed."""
    text = "resources: {}\n" + "#" * MAX_FILE_BYTES + "\n"
    path = write(tmp_path, "large.yaml", text)
    error, seconds = refusal(read_policy_file, path)
    assert seconds < REFUSAL_SECONDS
    assert error.problems == [
        f"the file is larger than 2 MiB ({MAX_FILE_BYTES:,} bytes), the most a policy file may be"
    ]


def test_file_at_the_size_bound_is_read(tmp_path: Path) -> None:
    """A file of exactly MAX_FILE_BYTES is read and checked as usual."""
    head = "resources: {}\n"
    path = write(tmp_path, "large.yaml", head + "#" * (MAX_FILE_BYTES - len(head) - 1) + "\n")
    assert len(path.read_bytes()) == MAX_FILE_BYTES
    assert read_policy_file(path).policy.resources == {}


@pytest.mark.parametrize(
    ("levels", "where"),
    [
        (MAX_DEPTH + 1, "resources" + "[0]" * (MAX_DEPTH - 1)),
        # Beyond the recursion limit the JSON parser itself gives up.
        (1_000_000, "JSON"),
    ],
    ids=["too-deep", "beyond-the-recursion-limit"],
)
def test_too_deep_json(tmp_path: Path, levels: int, where: str) -> None:
    """JSON nested beyond MAX_DEPTH is refused, never a RecursionError."""
    text = '{"resources": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"
    path = write(tmp_path, "deep.json", text)
    error, seconds = refusal(read_policy_file, path)
    assert seconds < REFUSAL_SECONDS
    assert str(path) in str(error)
    assert error.problems == [
        f"{where}: nested more than {MAX_DEPTH} lists and mappings deep; "
        f"a policy may nest at most {MAX_DEPTH}"
    ]


def test_self_referencing_dict() -> None:
    """A dict that contains itself is a PolicyFileError, not an endless validation."""
    data: dict[str, Any] = {"resources": {"invoice": {"actions": ["read"]}}}
    data["resources"]["invoice"]["roles"] = data
    error, _ = refusal(load_policy, data)
    assert error.problems == ["resources.invoice.roles: contains itself; a policy cannot"]


def test_deep_dict_is_not_a_recursion_error() -> None:
    """A condition nested far past the recursion limit is refused by the depth bound."""
    condition: dict[str, Any] = {"resource.arg_amount": {"equals": 1}}
    for _ in range(100_000):
        condition = {"not": condition}
    data = {
        "resources": {"invoice": {"actions": ["read"]}},
        "resource_sets": {"small": {"resource": "invoice", "condition": condition}},
    }
    error, seconds = refusal(load_policy, data)
    assert seconds < REFUSAL_SECONDS
    assert error.problems[0].startswith("resource_sets.small.condition.not.not.")
    assert error.problems[0].endswith(
        f"nested more than {MAX_DEPTH} lists and mappings deep; "
        f"a policy may nest at most {MAX_DEPTH}"
    )


def test_dict_sharing_lists_is_bounded() -> None:
    """A dict whose lists share lists (a bomb without YAML) is refused by the value bound."""
    operand: list[Any] = ["x"] * 10
    for _ in range(8):
        operand = [operand] * 10
    condition = {"resource.arg_tags": {"array_subset": operand}}
    data = {
        "resources": {"invoice": {"actions": ["read"]}},
        "resource_sets": {"tagged": {"resource": "invoice", "condition": condition}},
    }
    error, seconds = refusal(load_policy, data)
    assert seconds < REFUSAL_SECONDS
    assert f"more than {MAX_NODES:,} values" in error.problems[0]


@pytest.mark.parametrize(
    "path",
    [
        "examples/policy.yaml",
        "examples/seed_server/policy.yaml",
        "docs/example_policies/policy.yaml",
        "tests/policies/billing.yaml",
        "tests/policies/billing.json",
    ],
)
def test_example_policies_still_load(path: str) -> None:
    """The policies shipped with the project are well within the bounds."""
    assert read_policy_file(ROOT / path).policy.resources
    LocalPolicyEngine.from_file(ROOT / path)


def test_limits_are_documented() -> None:
    """The Limits table of docs/policy-file.md gives the value of every bound."""
    text = (ROOT / "docs" / "policy-file.md").read_text(encoding="utf-8")
    section = text[text.index("## Limits") : text.index("## Relation to Permit.io")]
    rows = dict(re.findall(r"^\| `(MAX_\w+)` \| ([^|]+) \|", section, re.MULTILINE))
    assert rows == {
        "MAX_FILE_BYTES": f"{MAX_FILE_BYTES // (1024 * 1024)} MiB",
        "MAX_ALIASES": str(MAX_ALIASES),
        "MAX_NODES": f"{MAX_NODES:,}",
        "MAX_DEPTH": str(MAX_DEPTH),
    }
