"""lectures/execute.py --inplace is stable: a notebook whose code and results did not change is not rewritten."""
import pathlib
import sys

import nbformat
import pytest

LECTURES = pathlib.Path(__file__).resolve().parent.parent / "lectures"
sys.path.insert(0, str(LECTURES))
import execute  # noqa: E402

CELLS = [
    "%matplotlib inline\nimport time\nimport numpy as np\nimport matplotlib.pyplot as plt\nimport nflows_np as nf",
    "print(nf.datasets.sample('moons', 3, rng=0).round(6))",
    "fig, ax = plt.subplots(figsize=(2, 2))\nax.plot(np.arange(5) ** 2)\nax.set_xlabel('k')\nax.set_ylabel('k²')\nplt.show()",
    "start = time.perf_counter_ns()\nprint(f'took {time.perf_counter_ns() - start} ns')",  # changes at every run
]


def notebook(path: pathlib.Path, volatile: bool) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    if volatile:
        nb.cells[-1].metadata["tags"] = [execute.VOLATILE_TAG]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.notebooks
def test_re_execution_leaves_an_unchanged_notebook_alone(tmp_path):
    path = tmp_path / "stable.ipynb"
    notebook(path, volatile=True)
    execute.execute(path, inplace=True)
    first = path.read_text()
    saved = nbformat.reads(first, as_version=4)
    assert "took" in saved.cells[3].outputs[0]["text"] and saved.cells[2].outputs[0]["data"]["image/png"]
    assert all("execution" not in cell.metadata for cell in saved.cells)  # no run timestamps
    execute.execute(path, inplace=True)
    assert path.read_text() == first
    # The volatile cell's outputs are refreshed on request; the others stay as they were.
    execute.execute(path, inplace=True, refresh_volatile=True)
    refreshed = nbformat.reads(path.read_text(), as_version=4)
    assert refreshed.cells[3].outputs != saved.cells[3].outputs
    assert [c.outputs for c in refreshed.cells[:3]] == [c.outputs for c in saved.cells[:3]]


def test_same_outputs_compares_pictures_by_their_pixels():
    import base64
    import io

    import numpy as np
    from PIL import Image

    def png(pixels: np.ndarray, **options) -> str:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", **options)
        return base64.b64encode(buffer.getvalue()).decode()

    pixels = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    other = pixels.copy()
    other[0, 0, 0] ^= 1

    def output(data: str) -> list:
        return [nbformat.v4.new_output("display_data", data={"image/png": data, "text/plain": "<Figure>"})]

    small, large = png(pixels, compress_level=9), png(pixels, compress_level=0)
    assert small != large
    assert execute._same_outputs(output(small), output(large))
    assert not execute._same_outputs(output(small), output(png(other)))
