"""The README's leaderboard is generated from benchmarks/results/leaderboard.md, not typed."""
import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _leaderboard():
    spec = importlib.util.spec_from_file_location("leaderboard", ROOT / "benchmarks" / "leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("leaderboard", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_readme_tables_are_the_results_file():
    leaderboard = _leaderboard()
    results = (ROOT / "benchmarks" / "results" / "leaderboard.md").read_text()
    readme = (ROOT / "README.md").read_text()
    section = readme.split(leaderboard.BEGIN, 1)[1].split(leaderboard.END, 1)[0]
    assert section == "\n" + leaderboard.readme_section(results), \
        "README's leaderboard differs from the results file: run python benchmarks/leaderboard.py --readme-only"


def test_part_c_is_skipped_with_its_reason_without_torch(monkeypatch):
    leaderboard = _leaderboard()
    real_import = __import__

    def no_torch(name, *args, **kwargs):
        if name.split(".")[0] in ("torch", "normflows"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", no_torch)
    side, reason = leaderboard.normflows_side()
    assert side is None and "No module named" in reason, f"expected no normflows side, got {side!r}, {reason!r}"
    note = leaderboard.part_c_note(side, reason)
    assert note.startswith("(c)") and "skipped" in note and reason in note, f"the skip note says: {note!r}"


def test_results_files_have_part_c_rows_or_say_why_not():
    """Each results file written with part (c) either has normflows' rows or says (c) was skipped, not both."""
    checked = []
    for name in ("leaderboard.md", "leaderboard_quick.md"):
        path = ROOT / "benchmarks" / "results" / name
        results = path.read_text() if path.exists() else ""
        paragraph = next((line for line in results.splitlines() if line.startswith("(c) normflows side by side")), None)
        if paragraph is None:  # absent, or written before part (c) existed
            continue
        has_rows = "| realnvp (normflows) |" in results and "| planar (normflows) |" in results
        assert has_rows != ("skipped" in paragraph), f"{name}: rows present: {has_rows}; part (c) says: {paragraph!r}"
        checked.append(name)
    assert checked, "no results file has a part (c) paragraph: run python benchmarks/leaderboard.py [--quick]"
