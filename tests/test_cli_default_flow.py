"""``train --data D`` without other options runs the dataset's recipe (benchmarks/cli_defaults.py measures it)."""
import pathlib

import pytest

from nflows_np import datasets, train
from nflows_np.cli import build_parser
from nflows_np.cli.common import UsageError
from nflows_np.cli.train import ARCHITECTURE, DATA_RECIPES, DEFAULT_FLOW, DEFAULT_TARGET_FLOW, Run, run_from_args

RESULTS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "cli_defaults.md"


def parse(*args):
    return run_from_args(build_parser().parse_args(["train", *args]))


def test_default_flow_per_dataset_and_for_targets():
    assert set(DEFAULT_FLOW) == set(datasets.NAMES) == set(DATA_RECIPES)
    for data, flow in DEFAULT_FLOW.items():
        assert parse("--data", data).flow == flow
    assert parse("--target", "U2").flow == DEFAULT_TARGET_FLOW
    assert parse("--flow", "glow", "--data", "moons").flow == "glow"


@pytest.mark.parametrize("data", sorted(DATA_RECIPES))
def test_the_recipe_is_the_default_and_options_override_it(data):
    recipe = DATA_RECIPES[data]
    run = parse("--data", data)
    assert {key: getattr(run, key) for key in recipe} == recipe
    other = parse("--data", data, "--steps", "7", "--lr", "0.5", "--warmup", "0", "--final-lr", "1", "--hidden", "3")
    assert (other.steps, other.lr, other.warmup, other.final_lr, other.hidden) == (7, 0.5, 0.0, 1.0, (3,))
    assert other.schedule() is None  # no warm-up, no decay: the constant lr
    flow = "maf" if recipe["flow"] != "maf" else "realnvp"
    swapped = parse("--data", data, "--flow", flow)  # the training settings stay, the architecture is the builder's
    assert (swapped.steps, swapped.batch_size, swapped.lr) == (run.steps, run.batch_size, run.lr)
    assert all(getattr(swapped, key) is None for key in ARCHITECTURE)


def test_a_target_keeps_the_constant_lr():
    run = parse("--target", "U1")
    assert (run.steps, run.batch_size, run.lr, run.schedule()) == (Run.steps, Run.batch_size, Run.lr, None)


def test_the_schedule_is_warmup_then_cosine():
    run = Run("realnvp", data="moons", steps=1000, lr=2e-3, warmup=0.1, final_lr=0.01)
    factor, expected = run.schedule(), train.warmup_cosine(1000, 100, 0.01)
    assert [factor(t) for t in range(0, 1000, 7)] == [expected(t) for t in range(0, 1000, 7)]


@pytest.mark.parametrize("args, words", [
    (("--warmup", "1"), "--warmup must be a fraction"),
    (("--warmup", "-0.1"), "--warmup must be >= 0"),
    (("--final-lr", "1.5"), "--final-lr must be a fraction"),
    (("--final-lr", "x"), "--final-lr must be a number"),
])
def test_bad_schedule_options(args, words):
    with pytest.raises(UsageError, match=words):
        parse("--data", "moons", *args)


def test_default_flow_is_the_measured_one():
    """DEFAULT_FLOW says what the last run of benchmarks/cli_defaults.py ran as the default (its 'default flow')."""
    lines = RESULTS.read_text().splitlines()
    header = next(line for line in lines if line.startswith("| data |")).strip("| ").split(" | ")
    rows = [line.strip("| ").split(" | ") for line in lines if line.startswith("| ") and not line.startswith("| data")]
    column = header.index("default flow")
    best = {row[0]: row[column] for row in rows if row[0] in DEFAULT_FLOW}
    assert best == DEFAULT_FLOW
