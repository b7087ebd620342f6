"""``train`` without --flow uses the flow measured best for the dataset (benchmarks/cli_defaults.py)."""
import pathlib

from nflows_np import datasets
from nflows_np.cli import build_parser
from nflows_np.cli.train import DEFAULT_FLOW, DEFAULT_TARGET_FLOW, run_from_args

RESULTS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "cli_defaults.md"


def test_default_flow_per_dataset_and_for_targets():
    parser = build_parser()
    assert set(DEFAULT_FLOW) == set(datasets.NAMES)
    for data, flow in DEFAULT_FLOW.items():
        assert run_from_args(parser.parse_args(["train", "--data", data])).flow == flow
    assert run_from_args(parser.parse_args(["train", "--target", "U2"])).flow == DEFAULT_TARGET_FLOW
    assert run_from_args(parser.parse_args(["train", "--flow", "glow", "--data", "moons"])).flow == "glow"


def test_default_flow_is_the_measured_best():
    """DEFAULT_FLOW says what the last run of benchmarks/cli_defaults.py found (its last column)."""
    rows = [line.strip("| ").split(" | ") for line in RESULTS.read_text().splitlines() if line.startswith("| ")]
    best = {row[0]: row[-1] for row in rows[1:] if row[0] in DEFAULT_FLOW}
    assert best == DEFAULT_FLOW
