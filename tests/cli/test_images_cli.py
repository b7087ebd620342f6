"""``python -m nflows_np train --flow glow --data digits``: a tiny run writes its files and reloads."""
import os
import pathlib
import subprocess
import sys

import numpy as np

from nflows_np import models
from nflows_np.datasets.digits import load_digits
from nflows_np.images import LogitTransform

ROOT = pathlib.Path(__file__).resolve().parents[2]


def nflows(*args, cwd):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "nflows_np", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300, check=False)


def test_glow_on_digits_trains_saves_and_draws(tmp_path):
    result = nflows("train", "--flow", "glow", "--data", "digits", "--steps", "6", "--num-layers", "1",
                    "--hidden", "4", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "bits/dim" in result.stdout and "per-pixel categorical" in result.stdout
    assert {"model.npz", "history.json", "samples.png"} <= set(os.listdir(tmp_path))
    model, spec = models.load(tmp_path / "model.npz")
    assert spec["flow"] == "glow_image" and spec["steps"] == 1 and spec["hidden"] == 4
    x = LogitTransform(17).forward(load_digits("test").images[:5], rng=0)[0]
    assert np.all(np.isfinite(model.log_prob(x)))


def test_other_flows_on_digits_are_refused_in_one_line(tmp_path):
    result = nflows("train", "--flow", "maf", "--data", "digits", cwd=tmp_path)
    assert result.returncode == 2 and "--flow must be one of glow" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
