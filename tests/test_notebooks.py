"""Every lecture notebook runs from a fresh kernel, headless, without error.

Each notebook asserts its slide's claims, so a notebook that runs is a
notebook whose numbers hold. Committed notebooks must hold no error output.
"""
import json
import pathlib
import sys

import pytest

LECTURES = pathlib.Path(__file__).resolve().parent.parent / "lectures"
sys.path.insert(0, str(LECTURES))
import execute  # noqa: E402

NOTEBOOKS = execute.notebooks()


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path):
    execute.execute(path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_has_outputs_and_no_errors(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code"
    assert all(c.get("outputs") is not None for c in code)
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} was committed with error outputs"
    assert any(c.get("outputs") for c in code), f"{path.name} was committed without outputs"


def test_notebooks_total_size_is_small():
    total = sum(p.stat().st_size for p in LECTURES.rglob("*.ipynb"))
    assert total <= 20 * 2**20, f"notebooks weigh {total / 2**20:.1f} MiB (limit 20 MiB)"
