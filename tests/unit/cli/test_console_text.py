"""What the CLI prints is shown as it is: no console markup is read in it, and on a
terminal a long line wraps between words (a word too wide folds whole, none is cut off)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from gristmill.cli import console as consoles
from gristmill.cli import summary
from gristmill.cli.console import PlainConsole, styled
from gristmill.cli.tables import table

CLI = Path(consoles.__file__).parent
MARKUP = re.compile(r"\[/\]|\[/?(bold|dim|italic|red|green|yellow|cyan|blue|magenta)[\] ]")
TRICKY = (
    "data/[/oops].csv",
    "[bold]not bold[/]",
    "expected ',' or ']', but got '[' at [1, 2]",
    "[link=http://x]",
)


def _terminal(width: int) -> tuple[PlainConsole, io.StringIO]:
    out = io.StringIO()
    return PlainConsole(file=out, width=width, force_terminal=True, color_system=None), out


@pytest.mark.parametrize("text", TRICKY)
def test_text_that_looks_like_markup_is_printed_verbatim(text: str) -> None:
    shown, out = _terminal(200)
    shown.print(text, soft_wrap=True)
    shown.print(styled(("error:", "bold red"), " ", text))
    ruled = table("value", title=text)
    ruled.add_row(text)
    shown.print(ruled)
    assert out.getvalue().count(text) == 4, out.getvalue()  # line, error, title, cell


def test_no_module_of_the_cli_writes_markup() -> None:
    """The consoles read no markup, so a ``[red]…[/]`` in a verb would be printed as is:
    styles go in ``style=`` or ``styled``."""
    found = [
        f"{path.name}:{number}"
        for path in sorted(CLI.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if MARKUP.search(line) and "MARKUP" not in line
    ]
    assert not found, f"console markup in {found}"


def test_a_long_line_wraps_between_words_on_a_terminal() -> None:
    line = (
        "✗ ingestion failed for sales: bad row in /data/landing/2024/sales-[eu].csv, "
        "row 31: expected 7 fields, found 9; fix the input, or set `on_bad_rows: quarantine`"
    )
    shown, out = _terminal(40)
    shown.print(line, soft_wrap=True, highlight=False)
    lines = out.getvalue().splitlines()
    assert len(lines) > 2 and all(len(printed) <= 40 for printed in lines)
    assert " ".join(out.getvalue().split()) == line  # every word whole, in order


def test_piped_output_keeps_a_line_whole() -> None:
    out = io.StringIO()
    PlainConsole(file=out, width=40).print("word " * 30, soft_wrap=True)
    assert len(out.getvalue().splitlines()) == 1


def test_a_leaderboard_on_an_80_column_terminal_loses_no_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown, out = _terminal(80)
    monkeypatch.setattr(summary, "console", shown)
    reason = "no model in production yet; the best candidate may deploy as penguins@champion"
    error = "algorithm 'decision_tree' has no parameter [max_deepth]; known: max_depth, criterion"
    summary.print_leaderboard(
        {
            "metric": "roc_auc",
            "leaderboard": [
                {
                    "rank": 1,
                    "candidate": "boosting",
                    "value": 0.98,
                    "best": True,
                    "candidate_id": "mc_01M8YBG74CYSTDEKQSST2W37PF",
                    "metrics": {"accuracy": 0.93, "f1_macro": 0.91},
                }
            ],
            "failed": [{"candidate": "typo", "error": error}],
            "gate": {"passed": True, "reason": reason, "model": "penguins"},
            "images": {},
        }
    )
    printed = out.getvalue()
    assert "…" not in printed and all(len(line) <= 80 for line in printed.splitlines())
    joined = " ".join(printed.split())
    assert f"it failed to train ({error})" in joined and reason in joined
    cells = printed.split()
    for word in ("mc_01M8YBG74CYSTDEKQSST2W37PF", "accuracy=0.93,", "f1_macro=0.91"):
        assert word in cells, f"{word!r} cut in:\n{printed}"
