"""A new user's first minutes: clone, install as the README says, and use it from another folder.

The repository is cloned (its committed state: uncommitted edits are not part
of a clone) into a temporary folder, a virtual environment is made *without*
the system's site-packages, and the README's install runs in it:
``pip install -r requirements.txt`` from the clone's root, which reaches the
package index. Then, from a folder outside the clone and with no PYTHONPATH,
the command line, a short training run, an import and a lecture notebook
executed by plain ``jupyter nbconvert`` must all work.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = "lectures/01_change_of_variables.ipynb"
# The install (648 MB of small files, by du) goes to memory when the machine has room there: on this project's
# machine the disk is mounted with `discard`, and deleting the install from it took 68 s (in memory: seconds).
MEMORY = pathlib.Path("/dev/shm")
MEMORY_NEEDED = 2 * 1024**3  # bytes free


def scratch_folder(tmp_path_factory) -> pathlib.Path:
    if MEMORY.is_dir() and os.access(MEMORY, os.W_OK) and shutil.disk_usage(MEMORY).free > MEMORY_NEEDED:
        return pathlib.Path(tempfile.mkdtemp(prefix="nflows_np_fresh_", dir=MEMORY))
    return tmp_path_factory.mktemp("fresh")


pytestmark = pytest.mark.slow


def run(args: list, cwd: pathlib.Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, (f"{' '.join(map(str, args))} (in {cwd}) exited {result.returncode}\n"
                                    f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(clone, bin folder of the venv, an outside folder, the environment): the README's install, done once."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository to clone")
    tmp = scratch_folder(tmp_path_factory)
    try:
        clone, venv, outside = tmp / "clone", tmp / "venv", tmp / "elsewhere"
        outside.mkdir()
        # Nothing of this process's: no PYTHONPATH pointing at the checkout, no active virtual environment.
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["MPLBACKEND"] = "Agg"
        run(["git", "clone", "--quiet", ROOT, clone], tmp, env)
        run([sys.executable, "-m", "venv", venv], tmp, env)
        bin_dir = venv / "bin"
        # The README's install; --no-compile only skips byte-compiling the installed modules ahead of use (files
        # to write, then to delete), which changes nothing that is tested.
        run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-compile", "-r", "requirements.txt"],
            clone, env, timeout=900)
        env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
        yield clone, bin_dir, outside, env
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # not kept among pytest's last three temporary folders


def test_the_command_line_runs_from_any_folder(installed):
    _, bin_dir, outside, env = installed
    for command in ([bin_dir / "python", "-m", "nflows_np", "--help"], [bin_dir / "nflows-np", "--help"]):
        assert "train" in run(command, outside, env).stdout
    trained = run([bin_dir / "nflows-np", "train", "--flow", "realnvp", "--data", "moons", "--steps", "20",
                   "--batch-size", "64", "--num-layers", "2", "--hidden", "8"], outside, env)
    assert "saved to nflows_np_out/realnvp-moons/" in trained.stdout
    assert (outside / "nflows_np_out" / "realnvp-moons" / "model.npz").is_file()


def test_the_package_imports_from_any_folder_as_the_clone(installed):
    clone, bin_dir, outside, env = installed
    where = run([bin_dir / "python", "-c", "import nflows_np; print(nflows_np.__file__)"], outside, env).stdout
    assert pathlib.Path(where.strip()) == clone / "nflows_np" / "__init__.py"  # editable: the clone's own files


def test_a_notebook_runs_under_plain_jupyter(installed):
    clone, bin_dir, outside, env = installed
    run([bin_dir / "jupyter", "nbconvert", "--to", "notebook", "--execute", clone / NOTEBOOK,
         "--output-dir", outside, "--ExecutePreprocessor.timeout=600"], outside, env, timeout=900)
    assert (outside / pathlib.Path(NOTEBOOK).name).is_file()
