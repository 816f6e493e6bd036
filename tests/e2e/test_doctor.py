"""``gristmill doctor`` changes nothing on disk: in an empty folder it creates no home, and
against an existing home it writes, migrates and touches nothing (run as a process)."""

from __future__ import annotations

from pathlib import Path

from gristmill.testing.cli import run_cli


def _tree(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every file and folder under ``root``: (is a folder, size, mtime in ns)."""
    return {
        str(path.relative_to(root)): (path.is_dir(), path.stat().st_size, path.stat().st_mtime_ns)
        for path in [root, *root.rglob("*")]
    }


def test_doctor_in_an_empty_folder_creates_nothing(tmp_path: Path) -> None:
    before = _tree(tmp_path)
    result = run_cli("doctor", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _tree(tmp_path) == before
    assert result.stdout.count("✓ not created yet (its first use creates it") == 6


def test_doctor_against_an_existing_home_touches_nothing(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("name,age\nann,31\nbob,40\n")
    run_cli("ingest", "people.csv", cwd=tmp_path, check=True)
    before = _tree(tmp_path)
    assert "metadata.db" in " ".join(before)
    result = run_cli("doctor", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _tree(tmp_path) == before
    assert "✓ reachable, migrations applied" in result.stdout


def test_doctor_reports_a_store_it_cannot_read_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / ".gristmill").mkdir()
    (tmp_path / ".gristmill" / "metadata.db").write_text("not a database")
    before = _tree(tmp_path)
    result = run_cli("doctor", cwd=tmp_path)
    assert result.returncode == 1
    assert "metadata.db is not a readable SQLite database" in result.stdout
    assert "error: 1 backend(s) failed their check: metadata" in result.stderr
    assert _tree(tmp_path) == before
