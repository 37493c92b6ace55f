"""The matrix as one self-contained HTML page: a colour-coded grid, filters, explanations.

Nothing is loaded from anywhere: the CSS and the script are inline, and the
page's Content-Security-Policy forbids everything else (no network, no other
script: only the page's own, by its hash). Every name shown (components, users,
reasons) comes from the server and the policy, so every one is escaped: the
grid is written here with :func:`html.escape`, and the explanations travel as
JSON inside a non-executed ``<script type="application/json">`` with ``<``,
``>`` and ``&`` escaped, which the page's script only ever puts in the page as
text (``textContent``).

Hovering a cell shows its explanation (its ``title``); clicking it (or Enter)
shows the explanation tree in the details panel. Checkboxes hide users'
columns and kinds' rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any, Final

from permit_guard.cli.matrix import Cell, Matrix, Row
from permit_guard.methods import LIST_METHOD_KINDS

__all__ = ["page"]

_KINDS: Final = ("tool", "resource", "template", "prompt")

_STYLE: Final = """
:root { font-family: system-ui, sans-serif; font-size: 14px; color: #1f2328; }
body { margin: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
.subtitle { color: #59636e; margin: 0 0 1rem; }
[hidden] { display: none !important; }
#filters { display: flex; flex-wrap: wrap; gap: 1rem; margin-bottom: 1rem; }
#filters fieldset { border: 1px solid #d1d9e0; border-radius: 6px; padding: .4rem .8rem; }
#filters label { margin-right: .8rem; white-space: nowrap; }
.layout { display: flex; gap: 1.5rem; align-items: flex-start; flex-wrap: wrap; }
.scroll { overflow: auto; max-width: 100%; }
table { border-collapse: collapse; }
#matrix th, #matrix td { border: 1px solid #d1d9e0; padding: .3rem .6rem; text-align: left; }
#matrix thead th { background: #f6f8fa; position: sticky; top: 0; }
#matrix th.name { font-family: ui-monospace, monospace; font-weight: normal; max-width: 28rem;
  overflow-wrap: anywhere; }
#matrix td.kind { color: #59636e; }
.mounted { font-size: .75rem; color: #59636e; margin-left: .4rem; }
td.cell { cursor: pointer; text-align: center !important; font-weight: 600; min-width: 4.5rem; }
td.cell:focus, td.cell.selected { outline: 3px solid #0969da; outline-offset: -3px; }
.allow { background: #dafbe1; color: #116329; }
.deny { background: #ffebe9; color: #a40e26; }
.depends { background: #fff8c5; color: #7d4e00; }
.legend span { display: inline-block; padding: .1rem .5rem; margin-right: .5rem;
  border-radius: 4px; }
#details { flex: 1 1 24rem; min-width: 20rem; border: 1px solid #d1d9e0; border-radius: 6px;
  padding: .5rem 1rem; background: #f6f8fa; }
#details h2 { font-size: 1rem; margin: .3rem 0; overflow-wrap: anywhere; }
#details pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0;
  font-family: ui-monospace, monospace; font-size: .85rem; }
#lists h3 { margin: 1rem 0 .3rem; overflow-wrap: anywhere; }
#lists th, #lists td { border: 1px solid #d1d9e0; padding: .25rem .5rem; text-align: left;
  vertical-align: top; }
#lists td { font-family: ui-monospace, monospace; overflow-wrap: anywhere; max-width: 32rem; }
"""

_SCRIPT: Final = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("matrix-data").textContent);
  var title = document.getElementById("details-title");
  var lines = document.getElementById("details-lines");
  var selected = null;
  function show(cell) {
    var info = data.cells[Number(cell.dataset.row)][Number(cell.dataset.user)];
    title.textContent = info.heading;
    lines.textContent = info.lines.join("\\n");
    if (selected !== null) { selected.classList.remove("selected"); }
    selected = cell;
    cell.classList.add("selected");
  }
  var grid = document.getElementById("matrix");
  grid.addEventListener("click", function (event) {
    var cell = event.target.closest("td.cell");
    if (cell !== null) { show(cell); }
  });
  grid.addEventListener("keydown", function (event) {
    if ((event.key === "Enter" || event.key === " ") && event.target.matches("td.cell")) {
      event.preventDefault();
      show(event.target);
    }
  });
  function apply() {
    document.querySelectorAll("input[data-filter]").forEach(function (box) {
      var attribute = box.dataset.filter === "user" ? "data-user" : "data-kind";
      var shown = box.checked;
      document.querySelectorAll("[" + attribute + "]").forEach(function (element) {
        if (element.getAttribute(attribute) === box.value) { element.hidden = !shown; }
      });
    });
  }
  document.getElementById("filters").addEventListener("change", apply);
  apply();
})();
"""


def _digest(script: str) -> str:
    return base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


#: Nothing but the page's own style and script; no network at all.
_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_digest(_SCRIPT)}'; base-uri 'none'; form-action 'none'"
)


def page(found: Matrix, *, subtitle: str = "") -> str:
    """The matrix as one HTML page that needs nothing else.

    Args:
        found: The matrix.
        subtitle: A line under the title (the server's settings, the engine).

    Returns:
        The page.
    """
    server = escape(found.server_name)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>permit-guard matrix: {server}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>Who can do what on {server}</h1>",
        f'<p class="subtitle">{escape(subtitle)}</p>',
    ]
    if found.tenant is not None:
        parts.append(f'<p class="subtitle">Users in tenant {escape(found.tenant)}.</p>')
    if not found.enforced:
        parts.append('<p class="subtitle">Shadow mode: the server lets denials through.</p>')
    parts.extend(_filters(found))
    parts.append(
        '<p class="legend"><span class="allow">allow</span>for any arguments '
        '<span class="depends">depends</span>for some arguments only (click for the condition) '
        '<span class="deny">deny</span>never; * hidden from its list, yet callable</p>'
    )
    parts.append('<div class="layout"><div class="scroll">')
    parts.extend(_grid(found))
    parts.append("</div>")
    parts.append(
        '<aside id="details" aria-live="polite"><h2 id="details-title">Click a cell to see '
        'how it was decided</h2><pre id="details-lines"></pre></aside>'
    )
    parts.append("</div>")
    parts.extend(_lists(found))
    parts.append(f'<script type="application/json" id="matrix-data">{_data(found)}</script>')
    parts.append(f"<script>{_SCRIPT}</script>")
    parts.append("</body>")
    parts.append("</html>")
    return "\n".join(parts) + "\n"


def _filters(found: Matrix) -> list[str]:
    users = "".join(
        f'<label><input type="checkbox" data-filter="user" value="{i}" checked> '
        f"{escape(user)}</label>"
        for i, user in enumerate(found.users)
    )
    present = {row.kind for row in found.components}
    kinds = "".join(
        f'<label><input type="checkbox" data-filter="kind" value="{kind}" checked> {kind}</label>'
        for kind in _KINDS
        if kind in present
    )
    return [
        '<form id="filters">',
        f"<fieldset><legend>Users</legend>{users}</fieldset>",
        f"<fieldset><legend>Kinds</legend>{kinds}</fieldset>",
        "</form>",
    ]


def _grid(found: Matrix) -> list[str]:
    heads = "".join(
        f'<th scope="col" data-user="{i}">{escape(user)}</th>' for i, user in enumerate(found.users)
    )
    out = [
        '<table id="matrix">',
        f'<thead><tr><th scope="col">kind</th><th scope="col">component</th>{heads}</tr></thead>',
        "<tbody>",
    ]
    for r, (row, cells) in enumerate(zip(found.components, found.cells, strict=True)):
        mounted = '<span class="mounted">mounted</span>' if row.mounted else ""
        tds = "".join(
            _cell(r, u, user, row, cell)
            for u, (user, cell) in enumerate(zip(found.users, cells, strict=True))
        )
        out.append(
            f'<tr data-kind="{row.kind}"><td class="kind">{row.kind}</td>'
            f'<th scope="row" class="name">{escape(row.label)}{mounted}</th>{tds}</tr>'
        )
    out.extend(["</tbody>", "</table>"])
    return out


def _cell(r: int, u: int, user: str, row: Row, cell: Cell) -> str:
    mark = cell.outcome + ("*" if not cell.listed and cell.outcome != "deny" else "")
    tip = "\n".join([_heading(user, row, cell), *cell.lines()])
    return (
        f'<td class="cell {cell.outcome}" data-row="{r}" data-user="{u}" '
        f'data-outcome="{cell.outcome}" tabindex="0" title="{escape(tip)}">{mark}</td>'
    )


def _heading(user: str, row: Row, cell: Cell) -> str:
    return f"{user} \N{MULTIPLICATION SIGN} {row.kind} {row.label}: {cell.outcome}"


def _lists(found: Matrix) -> list[str]:
    out = ['<section id="lists">', "<h2>What each user's lists show</h2>"]
    for u, user in enumerate(found.users):
        out.append(f'<div class="user-lists" data-user="{u}"><h3>{escape(user)}</h3>')
        out.append(
            "<table><thead><tr><th>list method</th><th>visible</th><th>hidden</th>"
            "<th>reason</th></tr></thead><tbody>"
        )
        for listing in found.listings(user):
            kind = LIST_METHOD_KINDS[listing.method]
            visible = escape(", ".join(listing.visible) or "-")
            hidden = escape(", ".join(listing.hidden) or "-")
            out.append(
                f'<tr data-kind="{kind}"><th>{escape(listing.method)}</th><td>{visible}</td>'
                f"<td>{hidden}</td><td>{escape(listing.reason)}</td></tr>"
            )
        out.append("</tbody></table></div>")
    out.append("</section>")
    return out


def _data(found: Matrix) -> str:
    """The cells' explanations as JSON that cannot end the script element it sits in."""
    data: dict[str, Any] = {
        "users": list(found.users),
        "cells": [
            [
                {"heading": _heading(user, row, cell), "lines": cell.lines()}
                for user, cell in zip(found.users, cells, strict=True)
            ]
            for row, cells in zip(found.components, found.cells, strict=True)
        ],
    }
    text = json.dumps(data, ensure_ascii=False)
    for raw, safe in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, safe)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
