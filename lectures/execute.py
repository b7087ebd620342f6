"""Execute the lecture notebooks from a fresh kernel, headless.

    python lectures/execute.py            # run all, report time per notebook, change nothing
    python lectures/execute.py --inplace  # run all and save their outputs in place (commit these)
    python lectures/execute.py 03_forward_vs_reverse_kl.ipynb --inplace

The test suite (tests/test_notebooks.py) calls :func:`execute` on every notebook.

``--inplace`` is stable: a notebook whose code and results did not change is
not rewritten (no diff). Run timestamps are not recorded; a cell whose source
and outputs are unchanged keeps its stored outputs byte for byte (a PNG
counts as unchanged when its pixels are); a cell tagged ``volatile`` (its
outputs change at every run, e.g. timings) keeps its stored outputs, if it
has any, while its source is unchanged, unless ``--refresh-volatile``.
"""
from __future__ import annotations

import argparse
import base64
import copy
import io
import os
import pathlib
import sys
import time
from typing import Any

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent
CELL_TIMEOUT = 240  # seconds a single cell may take before the run fails
VOLATILE_TAG = "volatile"  # a cell whose outputs differ at every run (timings)


def notebooks() -> list[pathlib.Path]:
    """The lecture notebooks, in order (homework is graded elsewhere)."""
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def execute(path: pathlib.Path, inplace: bool = False, refresh_volatile: bool = False) -> float:
    """Run ``path`` top to bottom in a fresh ``python3`` kernel; return the seconds it took.

    With ``inplace``, save the outputs into ``path`` -- only where they changed (see the module's docstring).
    Raises ``nbclient.exceptions.CellExecutionError`` on the first failing cell.
    """
    nb = nbformat.read(path, as_version=4)
    stored = copy.deepcopy(nb)
    # The kernel inherits this process's environment: headless plots, the library on
    # the path (also when it is not installed), and one BLAS thread (small matrices; see benchmarks/speed.py).
    pythonpath = os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    os.environ.update(MPLBACKEND="Agg", PYTHONPATH=pythonpath)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(HERE)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if inplace:
        keep_unchanged_outputs(stored, nb, refresh_volatile)
        text = nbformat.writes(nb)
        text += "" if text.endswith("\n") else "\n"  # as nbformat.write ends a file
        if text != path.read_text():
            path.write_text(text)
    return seconds


def keep_unchanged_outputs(stored: Any, fresh: Any, refresh_volatile: bool = False) -> None:
    """Give ``fresh`` the outputs of ``stored`` cell by cell where nothing changed; drop run timestamps."""
    for cell in fresh.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    if len(stored.cells) != len(fresh.cells):
        return
    for old, new in zip(stored.cells, fresh.cells):
        if new.cell_type != "code" or old.cell_type != "code" or old.source != new.source:
            continue
        volatile = VOLATILE_TAG in new.metadata.get("tags", []) and bool(old.get("outputs")) and not refresh_volatile
        if volatile or _same_outputs(old.get("outputs", []), new.get("outputs", [])):
            new.outputs = old.get("outputs", [])
            new.execution_count = old.get("execution_count")


def merge_streams(outputs: list) -> list:
    """Consecutive stream outputs of one name as one: how a cell's printing is chunked depends on timing."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (previous is not None and output.get("output_type") == "stream" == previous.get("output_type")
                and output.get("name") == previous.get("name")):
            merged[-1] = copy.deepcopy(previous)
            merged[-1]["text"] = previous["text"] + output["text"]
        else:
            merged.append(output)
    return merged


def _same_outputs(old: list, new: list) -> bool:
    """Equal outputs, streams merged, where two PNGs are equal when their pixels are (the encoder's bytes may differ)."""
    old, new = merge_streams(old), merge_streams(new)
    if len(old) != len(new):
        return False
    for a, b in zip(old, new):
        if a.get("output_type") != b.get("output_type") or a.get("text") != b.get("text"):
            return False
        data_a, data_b = a.get("data", {}), b.get("data", {})
        if set(data_a) != set(data_b):
            return False
        for kind in data_a:
            if data_a[kind] != data_b[kind] and not (kind == "image/png" and _same_pixels(data_a[kind], data_b[kind])):
                return False
    return True


def _same_pixels(a: str, b: str) -> bool:
    import numpy as np
    from PIL import Image

    def pixels(encoded: str) -> np.ndarray:
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
            return np.asarray(image.convert("RGBA"))

    first, second = pixels(a), pixels(b)
    return first.shape == second.shape and bool(np.array_equal(first, second))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the lecture notebooks headless.")
    parser.add_argument("names", nargs="*", help="notebook file names (default: all)")
    parser.add_argument("--inplace", action="store_true",
                        help="save the outputs into the notebooks (those whose code or results changed)")
    parser.add_argument("--refresh-volatile", action="store_true",
                        help=f"with --inplace: also replace the outputs of cells tagged {VOLATILE_TAG!r} (timings)")
    args = parser.parse_args(argv)
    paths = [HERE / name for name in args.names] if args.names else notebooks()
    total = 0.0
    for path in paths:
        seconds = execute(path, args.inplace, args.refresh_volatile)
        total += seconds
        print(f"{path.name:45s} {seconds:6.1f} s", flush=True)
    print(f"{'total':45s} {total:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
