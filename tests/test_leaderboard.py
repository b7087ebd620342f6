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
