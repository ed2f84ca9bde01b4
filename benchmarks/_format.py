"""The one formatter of `benchmarks.compare` (private): a `Section` record and the text of its result.

A section is data: its name, its run function, a title, the columns of its table and the notes printed
under it. `format_section` prints every section the same way::

    == <name>: <title>
    <table: one line per row of the result>
      <notes>
      goal: <name> = <value> (<op> <threshold>): PASS | FAIL | n/a
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from benchmarks import _timing

__all__ = ["Column", "Section", "format_goals", "format_section", "goal_summary", "verdict"]

Result = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a section's table.

    Attributes:
      title: the header.
      value: a key of the row, or a function of the row.
      fmt: how a number is shown. None: as is (a number column, right-aligned, floats with 3 decimals);
        an int: rounded to that many decimals first (still a number column); a format spec such as
        ``".1f"``: as text (left-aligned), ``"-"`` for None. Text values are always shown as they are.
    """

    title: str
    value: str | Callable[[Result], Any]
    fmt: int | str | None = None

    def cell(self, row: Result) -> Any:
        """This column's cell of ``row``."""
        value = self.value(row) if callable(self.value) else row[self.value]
        if isinstance(value, str) or self.fmt is None:
            return value
        if isinstance(self.fmt, int):
            return round(value, self.fmt)
        return "-" if value is None else format(value, self.fmt)


def _result_rows(result: Result) -> Sequence[Result]:
    return result["rows"]


def _no_notes(result: Result) -> list[str]:
    del result
    return []


@dataclasses.dataclass(frozen=True)
class Section:
    """One section of the comparison: how to run it and how to print its result.

    Attributes:
      name: the section's name (``--only`` takes it).
      run: ``run(sizes, tref, seed) -> result``: a JSON-serialisable dict with at least ``config`` and
        ``goals`` (a list of `benchmarks._compare_setup.goal`).
      title: the heading after ``== name:``; a string is formatted with the result's ``config``.
      columns: the table's columns, or a function of the ``config`` that returns them.
      rows: the table's rows from the result (default: ``result["rows"]``).
      notes: the lines printed between the table and the goals.
      background_in_smoke: with ``--smoke``, run it in a background thread while the other sections run
        (for a section that only waits for child processes).
    """

    name: str
    run: Callable[..., dict[str, Any]]
    title: str | Callable[[Result], str]
    columns: Sequence[Column] | Callable[[Result], Sequence[Column]]
    rows: Callable[[Result], Sequence[Result]] = _result_rows
    notes: Callable[[Result], list[str]] = _no_notes
    background_in_smoke: bool = False


def verdict(g: Mapping[str, Any]) -> str:
    """``PASS``, ``FAIL``, or ``n/a`` for a goal that was not measured."""
    return "n/a" if g["passed"] is None else ("PASS" if g["passed"] else "FAIL")


def _value(g: Mapping[str, Any]) -> str:
    return "n/a" if g["value"] is None else f"{g['value']:.3g}{g['unit']}"


def format_goals(goals: Sequence[Mapping[str, Any]]) -> list[str]:
    """One ``goal:`` line per goal of a section."""
    return [
        f"  goal: {g['name']} = {_value(g)} ({g['op']} {g['threshold']:g}{g['unit']}): {verdict(g)}"
        for g in goals
    ]


def goal_summary(goals: Sequence[Mapping[str, Any]]) -> list[str]:
    """The closing summary: one line per goal of every section (each goal carries its ``section``)."""
    return [
        f"  [{verdict(g):4s}] {g['section']}: {g['name']} = {_value(g)} "
        f"(goal {g['op']} {g['threshold']:g}{g['unit']})"
        for g in goals
    ]


def format_section(section: Section, result: Result) -> str:
    """A section's result as text: heading, table, notes and goals.

    Args:
      section: the `Section`.
      result: what ``section.run`` returned.

    Returns:
      Printable text without a trailing newline.
    """
    cfg = result["config"]
    title = section.title.format(**cfg) if isinstance(section.title, str) else section.title(cfg)
    columns = section.columns(cfg) if callable(section.columns) else section.columns
    table = _timing.format_table(
        [c.title for c in columns], [[c.cell(row) for c in columns] for row in section.rows(result)]
    )
    lines = [f"== {section.name}: {title}", table, *section.notes(result), *format_goals(result["goals"])]
    return "\n".join(lines)
