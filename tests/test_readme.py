"""The README: its Python examples run as written, its commands parse, and it stays within the repository."""
import pathlib
import re
import shlex

import pytest

from nflows_np import cli
from nflows_np.cli import train as train_command

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text()


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["x"].shape == (1000, 2) and namespace["log_p"].shape == (1000,)
    assert namespace["report"].ok, str(namespace["report"])


def test_readme_names_the_two_commands():
    quick_start = TEXT[TEXT.index("## Quick start"):TEXT.index("### Installing")]
    assert "pip install -r requirements.txt && python -m nflows_np  " in quick_start
    assert "pip install -r requirements.txt && python -m pytest  " in quick_start


def readme_commands() -> list[list[str]]:
    """Every ``python -m nflows_np ...`` line of the README's bash blocks, as arguments."""
    lines = [line for block in re.findall(r"```bash\n(.*?)```", TEXT, flags=re.S) for line in block.splitlines()]
    return [shlex.split(line, comments=True)[3:] for line in lines if line.startswith("python -m nflows_np ")]


@pytest.mark.parametrize("args", readme_commands(), ids=" ".join)
def test_readme_commands_parse(args):
    parsed = cli.build_parser().parse_args(args)  # exits (status 2) on an unknown command or option
    assert parsed.func is not None


def test_readme_grades_the_file_it_assigned():
    commands = {args[0]: args for args in readme_commands()}
    assigned = commands["assign"][commands["assign"].index("-o") + 1]
    assert commands["grade"][1] == assigned


def test_readme_documents_the_exit_status():
    for status in (train_command.TRUSTWORTHY, train_command.DOUBTFUL, train_command.INTERRUPTED,
                   train_command.USAGE):
        assert f"| {status} |" in TEXT
    assert "interrupted at step N/M; saved to DIR" in TEXT


def test_readme_points_nowhere_outside_the_repository():
    for phrase in ("../", "DESIGN.md", "STYLE.md", "the issue", "issue's"):
        assert phrase not in TEXT, phrase
    for link in re.findall(r"\]\(([^)]+)\)", TEXT):
        if not link.startswith(("http://", "https://", "#")):
            assert (README.parent / link).exists(), link
