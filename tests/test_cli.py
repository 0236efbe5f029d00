"""One way to call the commands: the config a command reads from its --config arguments, and
the errors a user sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gexnet import cli, config
from gexnet.config import ConfigError


def test_config_arguments_merge_in_order_then_settings_on_top(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 4\nqc: {min_total_counts: 5}\nexperiments: {}\n")
    cfg = config.from_arguments(
        [str(path), '{"qc": {"min_detected_genes": 7}, "seed": 5}', "qc.min_total_counts=9",
         "download.backoff_seconds=0.25", "run=2"]
    )  # fmt: skip
    assert cfg["seed"] == 5  # the inline JSON after the file
    assert cfg["qc"]["min_detected_genes"] == 7 and cfg["qc"]["min_total_counts"] == 9
    assert cfg["download"]["backoff_seconds"] == 0.25  # typed by the schema, not text
    assert cfg["run"] == "2"  # text where the schema wants text
    assert cfg["experiments"] == {}  # a dictionary in a config replaces its default
    defaults = config.validate({})
    assert cfg["qc"]["max_singlecell_probability"] == defaults["qc"]["max_singlecell_probability"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["block_values=10"], "config key 'block_values': 10 is less than the minimum"),
        (["qc.bogus=1"], "bogus"),
        (['{"seed": 1'], "--config: not valid JSON"),
        (["[1, 2]"], "cannot read config"),
        (["seed=1", "seed.x=2"], "seed is given a value and keys"),
    ],
)
def test_bad_config_arguments_are_named(arguments, message):
    with pytest.raises(ConfigError, match=message):
        config.from_arguments(arguments)


def test_a_command_names_an_unknown_experiment(tmp_path, capsys):
    code = cli.main(["train", str(tmp_path), "--experiment", "nope", "--out", str(tmp_path / "o"),
                     "--checkpoints", str(tmp_path / "c"), "--config", '{"experiments": {}}'])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == "gexnet train: error: experiments: no experiment 'nope' (configured: none)"


def test_every_command_with_settings_takes_a_config_and_one_without_does_not():
    """The commands are called one way: settings from --config, files as arguments."""
    help_of = {}
    commands = [["simulate"], ["download"], ["geo"], ["byo"], ["qc"], ["normalize", "corpus"],
                ["normalize", "bin-new-samples"], ["train"], ["classify", "baseline"],
                ["classify", "metrics"], ["classify", "counts"], ["classify", "transfer"],
                ["embeddings"], ["classify", "gather"], ["classify", "compare"],
                ["annotate", "labels"]]  # fmt: skip
    for command in commands:
        proc = subprocess.run([sys.executable, "-m", "gexnet", *command, "--help"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        help_of[" ".join(command)] = proc.stdout
    without = {"embeddings", "classify gather", "classify compare", "annotate labels"}
    for name, text in help_of.items():
        assert ("--config CONFIG" in text) == (name not in without), name


def test_the_rules_pass_settings_only_through_config():
    """No rule hands a command a setting of its own making (`--seed`, `--settings`, JSON flags)."""
    rules = (Path(__file__).parents[1] / "rules").glob("*.smk")
    text = "\n".join(p.read_text() for p in rules)
    for flag in ("--settings", "--seed", "--block-values", "--thresholds", "--retries", "--model",
                 "--train ", "--shards"):  # fmt: skip
        assert flag not in text, flag
