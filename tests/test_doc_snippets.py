"""The docs' promises: which examples run (scripts/run_doc_snippets.py), and what the site covers.

The runner itself (wheel, fresh venv, every snippet) is a CI step of its own;
these tests pin how it reads the docs, quickly, and that the docs name what
users look for.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

import permit_guard
from permit_guard import PermitMcpMiddleware

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "run_doc_snippets", ROOT / "scripts" / "run_doc_snippets.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


runner = _runner()

DOC = """\
# Title

```python
print("runs")
```

<!-- not run: needs Redis -->

```python
import redis
```

```sh
echo no
```

````markdown
```python
print("inside a markdown example: not a block of this page")
```
````

~~~python
x = 1
~~~
"""


def test_blocks_run_unless_marked_and_point_at_their_first_line() -> None:
    """Every ```python block is found, with the line of its first code line and any marker."""
    found = runner.extract(DOC, "docs/x.md")
    assert [(s.line, s.code, s.skip) for s in found] == [
        (4, 'print("runs")\n', None),
        (10, "import redis\n", "needs Redis"),
        (24, "x = 1\n", None),
    ]
    assert found[0].where == "docs/x.md:4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- not run -->\n```python\nx\n```\n", "docs/x.md:1: a not-run marker needs a reason"),
        (
            "<!-- not run:   -->\n```python\nx\n```\n",
            "docs/x.md:1: a not-run marker needs a reason",
        ),
        ("<!-- not run: a -->\ntext\n```python\nx\n```\n", "docs/x.md:1: a not-run marker must"),
        ("<!-- not run: a -->\n```sh\nx\n```\n", "docs/x.md:1: a not-run marker must"),
        ("text\n<!-- not run: a -->\n", "docs/x.md:2: a not-run marker must"),
        ("# t\n\n```python\nx = 1\n", "docs/x.md:3: this ``` fence is never closed"),
    ],
)
def test_bad_markers_and_open_fences_are_errors(text: str, message: str) -> None:
    """A marker without a reason or without its block, or an unclosed fence, names file:line."""
    with pytest.raises(runner.SnippetError, match=re.escape(message)):
        runner.extract(text, "docs/x.md")


def test_a_failure_points_at_the_document_line_of_its_last_frame() -> None:
    """A traceback's last frame in the snippet maps to the line of the document."""
    snippet = runner.Snippet(path="docs/x.md", line=40, code="a\nb\nc\n")
    script = Path("/tmp/doc-snippet-1/snippet.py")
    stderr = (
        "Traceback (most recent call last):\n"
        f'  File "{script}", line 1, in <module>\n'
        '  File "/venv/lib/python3.11/site-packages/fastmcp/x.py", line 9, in f\n'
        f'  File "{script}", line 3, in g\n'
        "NameError: name 'c' is not defined\n"
    )
    assert runner.failure_line(snippet, script, stderr) == 42
    assert runner.failure_line(snippet, script, "killed\n") == 40


def test_the_docs_read_cleanly_and_the_readme_example_runs() -> None:
    """Every document parses (no bad marker), and the README's usage example is one that runs."""
    snippets = runner.collect(runner.documents(ROOT), ROOT)
    readme = [s for s in snippets if s.path == "README.md"]
    assert readme
    assert readme[0].skip is None
    assert 'LocalPolicyEngine.from_file("examples/policy.yaml")' in readme[0].code
    assert "identity=" in readme[0].code  # who is calling is said, not left to a default


def test_every_python_example_fits_in_100_columns() -> None:
    """No line of a ```python block of the docs is longer than 100 characters."""
    long = [
        f"{s.path}:{s.line + number}"
        for s in runner.collect(runner.documents(ROOT), ROOT)
        for number, line in enumerate(s.code.splitlines())
        if len(line) > 100
    ]
    assert long == []


def test_the_docs_need_nothing_beyond_a_plain_install() -> None:
    """No runnable example imports httpx, pytest or another package permit-guard does not bring."""
    missing = ("httpx", "pytest", "requests")
    offending = [
        s.where
        for s in runner.collect(runner.documents(ROOT), ROOT)
        if s.skip is None
        and re.search(rf"^\s*(import|from) ({'|'.join(missing)})\b", s.code, re.MULTILINE)
    ]
    assert offending == []


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_middleware_keyword_is_described_in_the_guide() -> None:
    """The guide's PermitMcpMiddleware table has a row for each keyword of its __init__."""
    section = _section((DOCS / "guide.md").read_text(), "## PermitMcpMiddleware")
    rows = set(re.findall(r"^\| `(\*{0,2}\w+)` \|", section, re.MULTILINE))
    keywords = {
        ("**" if p.kind is p.VAR_KEYWORD else "") + name
        for name, p in inspect.signature(PermitMcpMiddleware.__init__).parameters.items()
        if name != "self"
    }
    assert keywords - rows == set()


def test_every_exported_identity_class_is_in_the_guide() -> None:
    """Each identity name permit_guard exports has a row in the guide's identity table."""
    section = _section((DOCS / "guide.md").read_text(), "## Identity: who is calling")
    identity = importlib.import_module("permit_guard.identity")
    exported = set(permit_guard.__all__) & set(identity.__all__)
    assert {name for name in exported if f"| `{name}" not in section} == set()
    assert "current_principal()" in section


def test_every_export_is_on_a_reference_page() -> None:
    """Each name permit_guard exports is a member of a module the API reference renders."""
    rendered = {
        name
        for page in (DOCS / "reference").glob("*.md")
        for module in re.findall(r"^::: ([\w.]+)$", page.read_text(), re.MULTILINE)
        if module != "permit_guard"
        for name in importlib.import_module(module).__all__
    }
    assert set(permit_guard.__all__) - rendered == set()


def _nav_pages(entries: object) -> list[str]:
    if isinstance(entries, str):
        return [entries]
    if isinstance(entries, list):
        return [page for entry in entries for page in _nav_pages(entry)]
    if isinstance(entries, dict):
        return [page for value in entries.values() for page in _nav_pages(value)]
    return []


def test_the_site_nav_lists_every_page() -> None:
    """mkdocs.yml's nav names every Markdown file under docs/, and only files that exist."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_pages(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
