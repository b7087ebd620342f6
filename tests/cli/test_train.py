"""The command line, run as ``python -m nflows_np ...`` subprocesses, and the model builders behind it."""
from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nflows_np as nf
from nflows_np import checkpoint, cli, datasets, models
from nflows_np.cli import train as train_command

ROOT = pathlib.Path(__file__).resolve().parents[2]
PICTURES = ("density.png", "flow_steps.png", "space.png", "history.png", "flow.gif")
SMALL = ("--steps", "20", "--batch-size", "64", "--num-layers", "2")


def environment() -> dict:
    return {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def nflows(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nflows_np", *args], capture_output=True, text=True,
                          check=False, cwd=cwd or ROOT, env=environment(), timeout=300)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


# -- running ------------------------------------------------------------------------------

def test_default_job_without_arguments(tmp_path):
    result = nflows(cwd=tmp_path)
    assert_ok(result)
    for run in ("realnvp-moons", "planar-U1"):
        for name in PICTURES:
            path = tmp_path / "nflows_np_out" / run / name
            assert path.is_file() and path.stat().st_size > 0, f"missing {path}"
    summary = result.stdout[result.stdout.index("summary"):]
    assert "realnvp on moons" in summary and "test NLL" in summary and "entropy H" in summary
    assert "planar on U1" in summary and "KL(p‖π) = F + log Z" in summary


@pytest.fixture(scope="module")
def mle_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mle")
    return nflows("train", "--flow", "realnvp", "--data", "moons", *SMALL, "--hidden", "8,8", "--out", str(out)), out


def test_train_by_maximum_likelihood(mle_run):
    result, out = mle_run
    assert_ok(result)
    assert "realnvp on moons (MLE, 20 steps" in result.stdout and "test NLL" in result.stdout
    assert all((out / name).is_file() for name in PICTURES + ("model.npz", "history.json"))
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 20 and history["eval_steps"][-1] == 20 and "test_nll" in history["eval"]
    spec = checkpoint.read_checkpoint(out / "model.npz")[1]
    assert {key: spec[key] for key in ("flow", "num_layers", "hidden", "data")} == \
        {"flow": "realnvp", "num_layers": 2, "hidden": [8, 8], "data": "moons"}


def test_train_by_reverse_kl_anneals_beta(tmp_path):
    result = nflows("train", "--flow", "planar", "--target", "U1", *SMALL, "--out", str(tmp_path))
    assert_ok(result)
    assert "planar on U1 (reverse KL, 20 steps" in result.stdout and "KL(p‖π)" in result.stdout
    history = json.loads((tmp_path / "history.json").read_text())
    beta = np.array(history["beta"])
    # linear_beta(0.01, 1, 20 // 2): rises over the first half, then 1
    assert beta[0] == 0.01 and np.all(np.diff(beta[:11]) > 0) and np.all(beta[10:] == 1.0)
    assert "kl" in history["eval"]
    assert checkpoint.read_checkpoint(tmp_path / "model.npz")[1]["target"] == "U1"


def test_plot_redraws_a_trained_model(mle_run, tmp_path):
    _, out = mle_run
    result = nflows("plot", str(out / "model.npz"), "--out", str(tmp_path))
    assert_ok(result)
    assert all((tmp_path / name).is_file() for name in PICTURES)  # history.json beside the model: history.png too


def test_list_names_everything():
    result = nflows("list")
    assert_ok(result)
    for name in models.NAMES + datasets.NAMES + nf.targets.NAMES:
        assert name in result.stdout


# -- where a run goes, and whether to trust it ------------------------------------------------

@pytest.fixture
def in_process(monkeypatch, capsys, tmp_path):
    """``python -m nflows_np ARGS`` run in this process from ``tmp_path``, pictures skipped: (status, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train_command, "draw_pictures", lambda *args, **kwargs: [])

    def run(*args: str) -> tuple[int, str, str]:
        status = cli.main(list(args))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def test_output_folder_is_printed_numbered_and_never_silently_overwritten(in_process, tmp_path):
    tiny = ("train", "--flow", "realnvp", "--data", "moons", "--steps", "5", "--batch-size", "32",
            "--num-layers", "2", "--hidden", "4")
    first, second = in_process(*tiny), in_process(*tiny)
    assert first[0] == 0 and second[0] == 0, first + second
    assert "saved to nflows_np_out/realnvp-moons/" in first[1]
    assert "saved to nflows_np_out/realnvp-moons-2/" in second[1]  # the first run is left as it was
    runs = tmp_path / "nflows_np_out"
    assert sorted(path.name for path in runs.iterdir()) == ["realnvp-moons", "realnvp-moons-2"]
    before = (runs / "realnvp-moons" / "model.npz").read_bytes()
    status, _, stderr = in_process(*tiny, "--seed", "1", "--out", "nflows_np_out/realnvp-moons")
    assert status == 2 and "already holds a run" in stderr and "--force" in stderr
    assert (runs / "realnvp-moons" / "model.npz").read_bytes() == before
    status, stdout, _ = in_process(*tiny, "--seed", "1", "--out", "nflows_np_out/realnvp-moons", "--force")
    assert status == 0 and "saved to nflows_np_out/realnvp-moons/" in stdout
    assert (runs / "realnvp-moons" / "model.npz").read_bytes() != before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_training_saves_what_it_trained(tmp_path, signum):
    steps = 1_000_000  # hours of training: only the signal ends this run
    process = subprocess.Popen([sys.executable, "-m", "nflows_np", "train", "--flow", "realnvp", "--data", "moons",
                                "--steps", str(steps), "--batch-size", "64", "--num-layers", "2", "--hidden", "8",
                                "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, env=environment())
    first_line = process.stdout.readline()  # printed just before the model is built and trained
    assert "output folder" in first_line, first_line + process.stderr.read()
    time.sleep(1.5)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, f"exit {process.returncode}\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted at step ") and lines[0].endswith(f"; saved to {tmp_path}/")
    done = int(lines[0].split()[3].split("/")[0])
    assert lines[0].split()[3] == f"{done}/{steps};" and 0 < done < steps
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["interrupted"] and len(history["loss"]) == done and history["eval_steps"] == [done]
    model, spec = models.load(tmp_path / "model.npz")
    assert spec["data"] == "moons" and np.isfinite(model.log_prob(datasets.sample("moons", 10, 0))).all()
    assert all((tmp_path / name).is_file() for name in PICTURES)


def test_a_diverging_run_warns_with_a_hint_and_exits_3(in_process, tmp_path):
    status, stdout, stderr = in_process("train", "--flow", "realnvp", "--data", "moons", "--lr", "10", "--steps",
                                        "100", "--num-layers", "2", "--hidden", "8", "--out", "run")
    assert status == 3, stdout + stderr
    warning = [line for line in stdout.splitlines() if line.startswith("WARNING: ")]
    assert len(warning) == 1 and "training diverged" in warning[0] and "smaller learning rate" in warning[0]
    assert "--lr" in warning[0] and "worse than" in warning[0]
    assert json.loads((tmp_path / "run" / "history.json").read_text())["diverged"]


class GaussianInABox:
    """N(0, I) whose log Z is the mass inside [−1, 1]²: a model that learns N(0, I) leaks mass out of the box."""

    name, bounds, log_z_domain = "U3", ((-4.0, 4.0), (-4.0, 4.0)), "box [-1,1]^2"
    log_z = 2 * math.log(math.erf(1 / math.sqrt(2)))  # log P(|z₁| ≤ 1, |z₂| ≤ 1) = −0.763

    def log_prob(self, x):
        return -0.5 * np.sum(x**2, axis=-1) - math.log(2 * math.pi)

    def grad_log_prob(self, x):
        return -x

    def sample(self, n, rng):
        return np.random.default_rng(rng).standard_normal((n, 2))


def test_a_kl_estimate_below_zero_warns_with_its_cause_and_exits_3(in_process, tmp_path, monkeypatch):
    # U3 replaced: the real U3 leaks mass only while its box walls are soft enough.
    monkeypatch.setattr(nf.targets, "get", lambda name: GaussianInABox())
    status, stdout, stderr = in_process("train", "--flow", "planar", "--target", "U3", "--steps", "200", "--lr",
                                        "1e-2", "--num-layers", "2", "--out", "run")
    assert status == 3, stdout + stderr
    warning = [line for line in stdout.splitlines() if line.startswith("WARNING: ")]
    assert len(warning) == 1 and "below zero beyond its Monte Carlo error" in warning[0], stdout
    assert "mass outside the box [-1,1]^2" in warning[0]
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())["warnings"]) == 1


def test_exit_status_is_documented():
    for command in ("train", "demo"):
        result = nflows(command, "--help")
        assert_ok(result)
        text = " ".join(result.stdout.split())
        assert train_command.EXIT_STATUS in text


@pytest.mark.parametrize("buffered", [False, True], ids=["unbuffered", "buffered"])
@pytest.mark.parametrize("args", [("list",), ("grade", "--list"), ("--help",)], ids=" ".join)
def test_a_reader_that_stops_early_ends_the_command_quietly(args, buffered):
    """``... | head`` / ``... | grep -q``: the reader closes the pipe before the command writes."""
    env = environment()
    env.pop("PYTHONUNBUFFERED", None) if buffered else env.update(PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "nflows_np", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT, env=env)
    process.stdout.close()  # the reader is gone before the first line
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, stderr
    assert stderr == ""


# -- bad arguments: one line on stderr, exit status 2, no traceback -----------------------------

def bad_arguments(tmp: pathlib.Path) -> dict[str, tuple[tuple[str, ...], str]]:
    """name -> (arguments, a phrase the message must hold)."""
    (tmp / "a_file").write_text("not a folder")
    (tmp / "garbage.npz").write_bytes(np.random.default_rng(0).bytes(300))
    flow = models.realnvp(num_layers=2, hidden=(4,), rng=0)
    models.save(flow, tmp / "good.npz", data="moons")
    (tmp / "truncated.npz").write_bytes((tmp / "good.npz").read_bytes()[:200])
    checkpoint.save_params(flow, tmp / "no_spec.npz")
    moons = ("train", "--data", "moons")
    return {
        "unknown flow": (("train", "--flow", "nonesuch", "--data", "moons"), "unknown flow"),
        "unknown dataset": (("train", "--data", "nonesuch"), "unknown dataset"),
        "unknown target": (("train", "--target", "nonesuch"), "unknown target"),
        "zero steps": (moons + ("--steps", "0"), "--steps must be positive"),
        "negative lr": (moons + ("--lr", "-0.1"), "--lr must be positive"),
        "zero batch size": (moons + ("--batch-size", "0"), "--batch-size must be positive"),
        "zero lr": (moons + ("--lr", "0"), "--lr must be positive"),
        "both data and target": (moons + ("--target", "U1"), "exactly one of --data"),
        "neither data nor target": (("train", "--flow", "maf"), "exactly one of --data"),
        "hidden for a planar flow": (moons + ("--flow", "planar", "--hidden", "8"), "--hidden does not apply to planar"),
        "unwritable out": (moons + ("--out", str(tmp / "a_file" / "out")), "cannot write to output folder"),
        "missing model": (("plot", str(tmp / "missing.npz")), "no such model file"),
        "corrupt model": (("plot", str(tmp / "garbage.npz")), "not a model.npz"),
        "truncated model": (("plot", str(tmp / "truncated.npz")), "not a model.npz"),
        "model without spec": (("plot", str(tmp / "no_spec.npz")), "no spec"),
    }


BAD = ("unknown flow", "unknown dataset", "unknown target", "zero steps", "negative lr", "zero batch size", "zero lr",
       "both data and target", "neither data nor target", "hidden for a planar flow", "unwritable out", "missing model", "corrupt model",
       "truncated model", "model without spec")


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """Every bad invocation, started at once (each a separate ``python -m nflows_np``): name -> (exit, stderr, phrase)."""
    tmp = tmp_path_factory.mktemp("bad")
    cases = bad_arguments(tmp)
    assert tuple(cases) == BAD
    processes = {name: subprocess.Popen([sys.executable, "-m", "nflows_np", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, cwd=tmp, env=environment())
                 for name, (args, _) in cases.items()}
    results = {}
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=120)
        results[name] = (process.returncode, stderr, cases[name][1])
    return results


@pytest.mark.parametrize("name", BAD)
def test_bad_argument_is_one_line_and_exit_2(name, bad_runs):
    returncode, stderr, phrase = bad_runs[name]
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], f"expected one line holding {phrase!r}, got:\n{stderr}"
    assert lines[0].startswith("python -m nflows_np: error: ")
    assert returncode == 2


# -- the builders behind --flow ---------------------------------------------------------------------

SIZES = {"realnvp": {"hidden": (8,)}, "nice": {"hidden": (8,)}, "maf": {"hidden": (8,)}, "glow": {"hidden": (8,)},
         "planar": {}, "radial": {}, "sylvester": {"variant": "triangular"}}


def perturbed(name: str, seed: int = 0) -> nf.FlowModel:
    """A 3-layer model of builder ``name``, its parameters moved away from the initial ones."""
    model = models.BUILDERS[name](dim=2, num_layers=3, rng=seed, **SIZES[name])
    rng = np.random.default_rng(seed + 1)
    if name == "glow":
        model.forward(rng.standard_normal((64, 2)))  # ActNorm's data-dependent initialisation
    for value in model.params.values():
        value += 0.1 * rng.standard_normal(value.shape)
    return model


def test_builders_are_the_names():
    assert models.NAMES == ("realnvp", "nice", "maf", "glow", "planar", "radial", "sylvester")


@pytest.mark.parametrize("name", models.NAMES)
def test_spec_round_trips_to_the_same_architecture(name):
    model = models.BUILDERS[name](dim=2, num_layers=3, rng=4, **SIZES[name])
    spec = json.loads(json.dumps(model.spec))
    assert spec == model.spec and spec["flow"] == name and spec["seed"] == 4
    rebuilt = models.build(spec)
    assert rebuilt.spec == model.spec
    assert [type(layer) for layer in rebuilt.layers] == [type(layer) for layer in model.layers]
    assert list(rebuilt.params) == list(model.params)
    for key, value in model.params.items():
        assert np.array_equal(rebuilt.params[key], value), key


def test_spec_seed_restores_fixed_state_drawn_from_a_generator():
    model = models.glow(num_layers=3, hidden=(8,), rng=np.random.default_rng(11))
    rebuilt = models.build(model.spec)
    for original, copy in zip(model.layers[1::3], rebuilt.layers[1::3]):  # the LULinear layers
        assert np.array_equal(original.perm, copy.perm) and np.array_equal(original.sign, copy.sign)
        assert all(np.array_equal(original.params[key], copy.params[key]) for key in original.params)


def test_layer_structure_of_each_builder():
    layers = {name: [type(layer).__name__ for layer in models.BUILDERS[name](num_layers=3, rng=0).layers]
              for name in models.NAMES}
    assert layers["realnvp"] == ["AffineCoupling"] * 3
    assert layers["nice"] == ["AdditiveCoupling"] * 3 + ["ElementwiseAffine"]
    assert layers["maf"] == ["MaskedAutoregressive", "Reverse"] * 2 + ["MaskedAutoregressive"]
    assert layers["glow"] == ["ActNorm", "LULinear", "AffineCoupling"] * 3
    assert layers["planar"] == ["Planar"] * 3 and layers["radial"] == ["Radial"] * 3
    assert layers["sylvester"] == ["Sylvester"] * 3
    masks = [layer.mask.tolist() for layer in models.realnvp(num_layers=3, rng=0).layers]
    assert masks == [[1, 0], [0, 1], [1, 0]]


@pytest.mark.parametrize("name", models.NAMES)
def test_saved_model_reloads_with_identical_log_prob(name, tmp_path):
    model = perturbed(name)
    path = tmp_path / "model.npz"
    stored = models.save(model, path, target="U1")
    x = np.random.default_rng(9).standard_normal((50, 2))
    expected = model.log_prob(x)
    loaded, spec = models.load(path)
    assert spec == stored and spec["target"] == "U1"
    assert np.array_equal(loaded.log_prob(x), expected)
    rebuilt = models.build(checkpoint.read_checkpoint(path)[1])
    checkpoint.load_params(rebuilt, path)
    assert np.array_equal(rebuilt.log_prob(x), expected)


def test_save_any_flow_model(tmp_path):
    """A hand-built model saves its parameters (and run keys); load says how to get it back."""
    model = nf.FlowModel([nf.gradcheck.randomize_params(nf.ElementwiseAffine(2), 0), nf.Reverse(2)])
    path = tmp_path / "hand_built.npz"
    assert models.save(model, path, data="moons") == {"data": "moons"}
    with pytest.raises(ValueError, match="no spec naming a builder.*load_params"):
        models.load(path)
    copy = nf.FlowModel([nf.ElementwiseAffine(2), nf.Reverse(2)])
    assert checkpoint.load_params(copy, path) == {"data": "moons"}
    x = np.random.default_rng(1).standard_normal((5, 2))
    assert np.array_equal(copy.log_prob(x), model.log_prob(x))
    with pytest.raises(TypeError, match="FlowModel"):
        models.save("not a model", path)


def test_a_corrupt_checkpoint_is_named_without_numpy_advice(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(np.random.default_rng(0).bytes(300))
    single = tmp_path / "single.npz"
    with open(single, "wb") as handle:
        np.save(handle, np.zeros(3))
    for path in (garbage, single):
        with pytest.raises(ValueError, match="is not a readable nflows_np checkpoint") as caught:
            checkpoint.read_checkpoint(path)
        assert "pickle" not in str(caught.value)
    with pytest.raises(FileNotFoundError):
        checkpoint.read_checkpoint(tmp_path / "missing.npz")


def test_build_rejects_bad_specs():
    with pytest.raises(ValueError, match="unknown flow"):
        models.build({"flow": "nonesuch"})
    with pytest.raises(ValueError, match="width"):
        models.build({"flow": "realnvp", "width": 3})
