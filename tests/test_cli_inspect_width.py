"""inspect's component table reads at 100 columns: cells wrap at their seams, nothing is cut."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from permit_guard.cli import app
from permit_guard.cli.fit import Column, fit_table, wrap
from permit_guard.cli.inventory import Inventory, inventory
from permit_guard.cli.load import guard_settings, load_server
from permit_guard.cli.render import INSPECT_WIDTH, components_table

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ["examples/quickstart.py", "tests/cli_servers/files.py", "tests/cli_servers/seed.py"]


async def _inventory(spec: str, monkeypatch: pytest.MonkeyPatch) -> Inventory:
    monkeypatch.chdir(ROOT)
    server = load_server(spec)
    settings, _ = guard_settings(server)
    return await inventory(server, settings)


def _render(found: Inventory, width: int) -> list[str]:
    console = Console(width=200, markup=False, highlight=False, color_system=None)
    with console.capture() as captured:
        console.print(components_table(found, width=width))
    return [line.rstrip() for line in captured.get().splitlines()]


@pytest.mark.parametrize("spec", SERVERS)
@pytest.mark.parametrize("width", [INSPECT_WIDTH, 80])
async def test_every_cell_is_whole_within_the_width(
    spec: str, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each line fits the width, and no cell is cropped or cut between two seams."""
    found = await _inventory(spec, monkeypatch)
    lines = _render(found, width)
    assert max(len(line) for line in lines) <= width
    # Every part of every cell (cut after a seam) stands whole on some line.
    cells = [
        value
        for row in found.components
        for value in (
            row.name,
            f"{row.request.resource.type}:{row.request.action}" if row.request else "-",
            *(a.name for a in row.argument_attributes),
        )
    ]
    parts = {
        part.rstrip(" ,") for cell in cells for part in re.findall(r"[^ ,/:_.-]*[ ,/:_.-]*", cell)
    }
    assert [part for part in parts if part and not any(part in line for line in lines)] == []


async def test_the_quickstart_wraps_only_what_100_columns_need(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 100 columns the quickstart's table keeps types and actions on one line."""
    lines = _render(await _inventory(SERVERS[0], monkeypatch), INSPECT_WIDTH)
    assert any("mcp_server_resources:read" in line for line in lines)
    assert any("arg:invoice_id" in line for line in lines)
    assert lines[-1] == "tenant: the caller's, in every request"


async def test_uniform_columns_are_said_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key or tenant column that is the same on every row becomes the caption instead."""
    seed = _render(await _inventory(SERVERS[2], monkeypatch), INSPECT_WIDTH)
    assert seed[0].split() == ["kind", "name", "guard", "checked", "as", "argument", "attributes"]
    assert seed[-1] == "key: none, tenant: the caller's, in every request"
    files = _render(await _inventory(SERVERS[1], monkeypatch), INSPECT_WIDTH)
    assert "tenant" in files[0].split()
    assert "in every request" not in files[-1]


def test_the_console_script_prints_within_100_columns_whatever_columns_says() -> None:
    """Not on a terminal, COLUMNS does not change inspect's table: at most 100 columns."""
    result = CliRunner().invoke(app, ["inspect", SERVERS[1]], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    table = result.output.split("\n\n")[0].splitlines()[1:]  # the settings line is no table
    assert max(len(line) for line in table) <= INSPECT_WIDTH


@pytest.mark.parametrize(
    ("value", "width", "breaks", "lines"),
    [
        ("data://reports/summary", 16, "/:", ["data://reports/", "summary"]),
        ("mcp_server_resources:read", 21, "/:", ["mcp_server_resources:", "read"]),
        ("mcp_server_resources:read", 15, "/:_", ["mcp_server_", "resources:read"]),
        ("arg_amount, arg_currency", 14, " ,", ["arg_amount,", "arg_currency"]),
        ("arg_amount, arg_currency", 30, " ,", ["arg_amount, arg_currency"]),
        ("averyveryverylongname", 5, "/:", ["averyveryverylongname"]),  # rich folds it
        ("", 5, " ", [""]),
    ],
)
def test_wrap_cuts_after_seams_only(value: str, width: int, breaks: str, lines: list[str]) -> None:
    """wrap() packs whole parts into lines, cutting only after the given characters."""
    assert wrap(value, width, breaks).split("\n") == lines


def test_columns_give_way_by_tier_at_their_best_seams_first() -> None:
    """Tier 1 wraps before tier 2, and between words before inside an identifier."""
    columns = [
        Column(header="kind"),
        Column(header="name", shrink=2),
        Column(header="attributes", shrink=1, seams=(" ,",)),
    ]
    rows = [["resource", "data://reports/summary", "arg_amount, arg_currency"]]
    console = Console(width=200, markup=False, color_system=None)

    def render(width: int) -> list[str]:
        with console.capture() as captured:
            console.print(fit_table(columns, rows, width=width))
        return [line.rstrip() for line in captured.get().splitlines()]

    assert render(60)[2] == "resource  data://reports/summary  arg_amount, arg_currency"
    # 50: the attributes wrap between names; the name stays whole.
    assert render(50)[2:] == [
        "resource  data://reports/summary  arg_amount,",
        "                                  arg_currency",
    ]
    # 40: now the name wraps too, after a slash.
    assert render(40)[2:4] == [
        "resource  data://reports/  arg_amount,",
        "          summary          arg_currency",
    ]
