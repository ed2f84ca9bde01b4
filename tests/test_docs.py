"""The code of README.md and docs/**/*.md runs, and the numbers the pages show are the numbers it prints.

Every fenced ``python`` block of those pages is a test (``--8<-- "file.py"`` lines are replaced by the file
from docs/examples, as the site's snippets extension does), run in a fresh namespace in a temporary folder:

* a block of ``>>>`` lines is a doctest (``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``; print floats rounded);
* any other block is executed as a script. When the page shows its output, the ``text`` block holding it is
  marked ``<!-- docs-test: output -->`` and the printed lines must match it: the words exactly (runs of
  spaces collapsed) and every number to within one unit of its last printed digit — or within
  ``atol=`` / ``rtol=`` when the marker states one (``<!-- docs-test: output atol=0.02 -->``), for numbers
  that depend on the last bits of a long training run. Integers are compared exactly.

A marker comment on the line before a ``python`` block changes how it runs:

* ``<!-- docs-test: skip REASON -->``: not runnable as shown (a multi-host launch, a user's own files);
* ``<!-- docs-test: slow -->``: runs only with ``-m slow`` (a sweep of many long runs);
* ``<!-- docs-test: requires MODULE -->``: skipped when MODULE (an optional data package) is not installed,
  a failure instead under ``JAXIRM_REQUIRE_DATA=1`` (as in CI).
"""

from __future__ import annotations

import contextlib
import dataclasses
import doctest
import importlib.util
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->\s*$")
_SNIPPET = re.compile(r'^--8<-- "([^"]+)"\s*$', re.MULTILINE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_KINDS = ("skip", "slow", "requires", "output")


@dataclasses.dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: tuple[str, str] | None  # (kind, arguments) of the marker comment just above, if any
    output: Block | None = None  # the `text` block marked as this block's output

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse(page: Path) -> list[Block]:
    """The fenced blocks of a page and their markers; output blocks go to the python block before."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        prev = i - 1
        while prev >= 0 and not lines[prev].strip():
            prev -= 1
        marker = _MARKER.match(lines[prev]) if prev >= 0 else None
        end = i + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        blocks.append(
            Block(
                page,
                i + 1,
                fence.group(1),
                "\n".join(lines[i + 1 : end]) + "\n",
                (marker.group(1), marker.group(2)) if marker else None,
            )
        )
        i = end + 1
    for k, block in enumerate(blocks):
        if block.marker and block.marker[0] not in _KINDS:
            raise ValueError(
                f"{block.where}: unknown docs-test marker {block.marker[0]!r}; expected {_KINDS}"
            )
        if block.marker and block.marker[0] == "output":
            owners = [b for b in blocks[:k] if b.lang == "python"]
            if block.lang != "text" or not owners or owners[-1].output is not None:
                raise ValueError(
                    f"{block.where}: an output marker must precede a text block after a python block"
                )
            owners[-1].output = block
    return blocks


def expand_snippets(code: str) -> str:
    """Replaces each ``--8<-- "file"`` line by docs/examples/file, as pymdownx.snippets does for the site."""
    return _SNIPPET.sub(lambda m: (EXAMPLES / m.group(1)).read_text(), code)


def _tolerance(expected: str, atol: float, rtol: float) -> float:
    mantissa, _, exponent = expected.lower().partition("e")
    if "." not in mantissa and not exponent:
        return max(atol, rtol * abs(float(expected)))  # an integer: exact unless a tolerance is stated
    decimals = len(mantissa.partition(".")[2])
    unit = 10.0 ** (-decimals + (int(exponent) if exponent else 0))
    return max(unit, atol, rtol * abs(float(expected)))


def compare_output(expected: str, actual: str, atol: float = 0.0, rtol: float = 0.0) -> list[str]:
    """The differences between a page's output block and what the code printed (empty when they agree)."""
    exp_lines = [line for line in expected.strip("\n").splitlines()]
    act_lines = [line for line in actual.strip("\n").splitlines()]
    if len(exp_lines) != len(act_lines):
        return [f"{len(act_lines)} lines printed, the page shows {len(exp_lines)}"]
    problems = []
    for n, (e_line, a_line) in enumerate(zip(exp_lines, act_lines, strict=True), 1):
        e_words = [" ".join(w.split()) for w in _NUMBER.split(e_line)]
        a_words = [" ".join(w.split()) for w in _NUMBER.split(a_line)]
        if e_words != a_words:
            problems.append(f"line {n}: text differs:\n  page:    {e_line}\n  printed: {a_line}")
            continue
        for e_num, a_num in zip(_NUMBER.findall(e_line), _NUMBER.findall(a_line), strict=True):
            tol = _tolerance(e_num, atol, rtol)
            if abs(float(a_num) - float(e_num)) > tol * (1 + 1e-9) + 1e-12:
                problems.append(f"line {n}: printed {a_num} where the page shows {e_num} (tolerance {tol:g})")
    return problems


def _output_tolerances(args: str) -> dict[str, float]:
    out = {}
    for item in args.split():
        name, _, value = item.partition("=")
        if name not in ("atol", "rtol") or not value:
            raise ValueError(f"output marker: expected atol=X and/or rtol=Y, got {item!r}")
        out[name] = float(value)
    return out


ALL_BLOCKS = [block for page in PAGES for block in parse(page)]
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "python"]


def _params():
    for block in PYTHON_BLOCKS:
        marks = []
        kind = block.marker[0] if block.marker else None
        if kind == "slow":
            marks.append(pytest.mark.slow)
        if kind == "skip":
            marks.append(pytest.mark.skip(reason=block.marker[1] or "marked not runnable"))
        yield pytest.param(block, id=block.where, marks=marks)


@pytest.mark.parametrize("block", list(_params()))
def test_python_block(block, tmp_path, monkeypatch):
    if block.marker and block.marker[0] == "requires":
        module = block.marker[1]
        if importlib.util.find_spec(module) is None:
            message = f"{block.where} needs {module!r}, which is not installed"
            if os.environ.get("JAXIRM_REQUIRE_DATA"):
                pytest.fail(f"JAXIRM_REQUIRE_DATA=1: {message}")
            pytest.skip(message)
    monkeypatch.chdir(tmp_path)
    code = expand_snippets(block.code)
    namespace = {"__name__": "__main__"}
    if code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(code, namespace, block.where, str(block.page), block.line)
        report = io.StringIO()
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        runner = doctest.DocTestRunner(optionflags=flags)
        runner.run(test, out=report.write)
        assert runner.failures == 0, report.getvalue()
        return
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, block.where, "exec"), namespace)
    if block.output is not None:
        tolerances = _output_tolerances(block.output.marker[1])
        problems = compare_output(block.output.code, printed.getvalue(), **tolerances)
        assert not problems, f"{block.output.where} does not show what {block.where} prints:\n" + "\n".join(
            problems
        )


def test_every_example_is_shown_on_a_page():
    # The examples exist to be included in the pages; the page tests run them (and check their output).
    included = {m.group(1) for b in PYTHON_BLOCKS for m in _SNIPPET.finditer(b.code)}
    shown = {p.name for p in EXAMPLES.glob("*.py")}
    assert shown, "docs/examples holds the code the documentation pages include"
    assert shown <= included, f"examples no page includes: {sorted(shown - included)}"
    assert included <= shown, f"pages include missing examples: {sorted(included - shown)}"


def test_blocks_that_show_output_are_checked():
    assert any(b.output is not None for b in PYTHON_BLOCKS)
    for block in ALL_BLOCKS:
        if block.lang == "text" and block.marker is None:
            # A text block right after a python block shows its output: it must be marked (and so checked).
            before = [b for b in ALL_BLOCKS if b.page == block.page and b.line < block.line]
            assert not before or before[-1].lang != "python", (
                f"{block.where}: mark it <!-- docs-test: output -->"
            )


@pytest.mark.parametrize(
    ("expected", "printed", "ok"),
    [
        ("mean 0.8742  worst 0.8312", "mean 0.8743  worst 0.8311", True),  # the last digit may differ by 1
        ("mean 0.8742  worst 0.8312", "mean 0.8745  worst 0.8312", False),
        ("step  5000", "step 5000", True),
        ("step 5000", "step 5001", False),  # integers are exact
        ("w = 0.16", "w = 0.17", True),
        ("w = 0.16", "w = 0.18", False),
        ("g = 1.5e-03", "g = 1.6e-03", True),
        ("mean 0.87", "worst 0.87", False),
        ("a\nb", "a", False),
    ],
)
def test_compare_output(expected, printed, ok):
    assert (compare_output(expected, printed) == []) == ok


def test_compare_output_with_a_stated_tolerance():
    assert compare_output("acc 0.700", "acc 0.698", atol=0.005) == []
    assert compare_output("acc 0.700", "acc 0.690", atol=0.005) != []
    assert compare_output("n 1000", "n 1010", rtol=0.02) == []
