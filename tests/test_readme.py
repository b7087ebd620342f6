"""The README's Python examples run as written (docs that work)."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["x"].shape == (1000, 2) and namespace["log_p"].shape == (1000,)
    assert namespace["report"].ok, str(namespace["report"])


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "pip install -r requirements.txt && python -m nflows_np" in text
    assert "pip install -r requirements.txt && python -m pytest" in text
