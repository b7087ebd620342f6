"""The CLI's pictures carry the run and its score in their title (the Figure objects, not pixels)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import nflows_np as nf
from nflows_np import cli, datasets, models
from nflows_np.cli import pictures


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    yield
    plt.close("all")


def titles(figures: dict) -> dict[str, str]:
    return {name: figure.get_suptitle() for name, figure in figures.items()}


def test_data_run_title_has_test_nll_and_gap_to_entropy():
    model = models.realnvp(2, num_layers=2, hidden=(8,), rng=0)
    test = datasets.sample("moons", 500, np.random.default_rng(1))
    history = nf.train.fit_mle(model, lambda n, rng: datasets.sample("moons", n, rng), steps=10, batch_size=64,
                               lr=1e-3, test_data=test, eval_every=5, rng=2).to_dict()
    nll = -np.mean(model.log_prob(test))  # computed here, not read from the history the title uses
    figures = pictures.draw_figures(model, np.random.default_rng(3), data="moons", history=history, flow="realnvp")
    assert set(figures) == {"density.png", "flow_steps.png", "space.png", "history.png"}
    expected = f"realnvp on moons: test NLL {nll:.3f} nats, gap to the entropy {nll - datasets.ENTROPY['moons']:.3f}"
    assert titles(figures) == dict.fromkeys(figures, expected)


def test_target_run_title_has_the_kl():
    model = models.planar(2, 2, rng=0)
    history = nf.train.fit_reverse_kl(model, "U1", steps=10, batch_size=64, lr=1e-3, eval_every=5,
                                      eval_samples=2000, rng=1).to_dict()
    kl, se = history["eval"]["kl"][-1], history["eval"]["free_energy_se"][-1]
    assert np.isfinite(kl) and se > 0
    figures = pictures.draw_figures(model, np.random.default_rng(3), target="U1", history=history, flow="planar")
    assert titles(figures) == dict.fromkeys(figures, f"planar on U1: KL(p‖π) = {kl:.3f} ± {se:.3f} nats")


def test_without_a_history_the_title_names_the_run_only():
    figures = pictures.draw_figures(models.planar(2, 2, rng=0), np.random.default_rng(0), target="U1", flow="planar")
    assert set(figures) == {"density.png", "flow_steps.png", "space.png"}
    assert titles(figures) == dict.fromkeys(figures, "planar on U1")


def test_train_command_titles_its_pictures_with_the_printed_score(monkeypatch, capsys, tmp_path):
    """End to end in this process: the title of every saved figure repeats the summary's test NLL."""
    saved = {}

    def keep_title(figure, path):
        saved[path.rsplit("/", 1)[-1]] = figure.get_suptitle()
        return path

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pictures, "_save", keep_title)
    monkeypatch.setattr("nflows_np.plotting.animate_flow", lambda *args, **kwargs: None)  # the GIF: not a figure
    status = cli.main(["train", "--flow", "realnvp", "--data", "moons", "--steps", "5", "--batch-size", "32",
                       "--num-layers", "2", "--hidden", "4", "--out", "run"])
    stdout = capsys.readouterr().out
    assert status == 0, stdout
    printed = re.search(r"test NLL (-?\d+\.\d{3}) nats", stdout).group(1)
    nll = json.loads((tmp_path / "run" / "history.json").read_text())["eval"]["test_nll"][-1]
    assert f"{nll:.3f}" == printed
    assert set(saved) == {"density.png", "flow_steps.png", "space.png", "history.png"}
    for name, title in saved.items():
        assert title.startswith(f"realnvp on moons: test NLL {printed} nats, gap to the entropy "), (name, title)


def test_digits_samples_title_has_the_printed_bits_per_dim(monkeypatch, capsys, tmp_path):
    from nflows_np.cli import images

    saved = {}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(images, "save_figure", lambda figure, path: saved.setdefault(path, figure.get_suptitle()))
    status = cli.main(["train", "--flow", "glow", "--data", "digits", "--steps", "4", "--num-layers", "1",
                       "--hidden", "4", "--out", "run"])
    stdout = capsys.readouterr().out
    assert status == 0, stdout
    printed = re.search(r"test (\d+\.\d{3}) bits/dim", stdout).group(1)
    assert list(saved.values()) == [f"glow (L=2, K=1, hidden 4) on digits: test {printed} bits/dim"], saved
