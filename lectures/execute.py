"""Execute the lecture notebooks from a fresh kernel, headless.

    python lectures/execute.py            # run all, report time per notebook, change nothing
    python lectures/execute.py --inplace  # run all and save their outputs in place (commit these)
    python lectures/execute.py 03_forward_vs_reverse_kl.ipynb --inplace

The test suite (tests/test_notebooks.py) calls :func:`execute` on every notebook.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent
CELL_TIMEOUT = 240  # seconds a single cell may take before the run fails


def notebooks() -> list[pathlib.Path]:
    """The lecture notebooks, in order (homework is graded elsewhere)."""
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def execute(path: pathlib.Path, inplace: bool = False) -> float:
    """Run ``path`` top to bottom in a fresh ``python3`` kernel; return the seconds it took.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first failing cell.
    """
    nb = nbformat.read(path, as_version=4)
    # The kernel inherits this process's environment: headless plots, the library on
    # the path, and one BLAS thread (small matrices; see benchmarks/speed.py).
    pythonpath = os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    os.environ.update(MPLBACKEND="Agg", PYTHONPATH=pythonpath)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if inplace:
        nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the lecture notebooks headless.")
    parser.add_argument("names", nargs="*", help="notebook file names (default: all)")
    parser.add_argument("--inplace", action="store_true", help="save the outputs into the notebooks")
    args = parser.parse_args(argv)
    paths = [HERE / name for name in args.names] if args.names else notebooks()
    total = 0.0
    for path in paths:
        seconds = execute(path, args.inplace)
        total += seconds
        print(f"{path.name:45s} {seconds:6.1f} s", flush=True)
    print(f"{'total':45s} {total:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
