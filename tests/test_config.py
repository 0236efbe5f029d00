"""Configuration: schema validation fills defaults and names the offending key, from Python and
through Snakemake itself."""

from __future__ import annotations

import sys

import pytest
import yaml

from gexnet import config

from .conftest import REPO, run


def test_demo_and_paper_configs_are_valid():
    demo = config.load(REPO / "config" / "config.yaml")
    assert demo["run"] == "demo" and demo["source"] == "demo"
    paper = config.load(REPO / "config" / "paper.yaml")
    assert paper["source"] == "archs4" and paper["archs4"]["version"] == "2.2"
    assert (paper["model"]["hidden"], paper["model"]["layers"], paper["model"]["heads"]) == (
        200,
        6,
        4,
    )
    assert (
        paper["train"]["batch_per_device"] * paper["train"]["gpus"] * paper["train"]["grad_accum"]
        == 180
    )


def test_defaults_are_filled_without_sharing_state():
    a, b = config.validate({}), config.validate({})
    assert a["qc"] == {
        "min_total_counts": 1_000_000,
        "max_singlecell_probability": 0.5,
        "min_detected_genes": 2000,
    }
    assert a["simulate"]["samples"] == {"human": 3000, "mouse": 2000}
    a["simulate"]["samples"]["human"] = 1
    assert b["simulate"]["samples"]["human"] == 3000


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"simulat": {}}, "'simulat'"),
        ({"qc": {"min_total_count": 5}}, "'qc.min_total_count'"),
        ({"simulate": {"samples": {"rat": 5}}}, "'simulate.samples.rat'"),
        ({"archs4": {"local_files": {"human_genes": "x.h5"}}}, "'archs4.local_files.human_genes'"),
    ],
)
def test_unknown_key_is_named(bad, key):
    with pytest.raises(config.ConfigError, match=f"unknown config key {key}"):
        config.validate(bad)


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"seed": "eight"}, "seed"),
        ({"qc": {"max_singlecell_probability": 2}}, "qc.max_singlecell_probability"),
        ({"simulate": {"samples": {"human": 10.5}}}, "simulate.samples.human"),
        ({"species": ["human", "rat"]}, "species.1"),
        ({"run": "a/b"}, "run"),
    ],
)
def test_wrong_value_is_named(bad, key):
    with pytest.raises(config.ConfigError, match=f"config key '{key}'"):
        config.validate(bad)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("bogus_key=1", "unknown config key 'bogus_key'"),
        ("seed=eight", "config key 'seed': 'eight' is not of type 'integer'"),
    ],
)
def test_snakemake_stops_on_bad_config(tmp_path, override, expected):
    proc = run([sys.executable, "-m", "snakemake", "-n", "--config", override], REPO)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr


def test_snakemake_stops_on_bad_config_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"qc": {"min_total_counts": "many"}}))
    proc = run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)], REPO)
    assert proc.returncode != 0
    assert "config key 'qc.min_total_counts'" in proc.stdout + proc.stderr


def test_cli_reports_bad_config_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: demo\nsimulate: {programs: many}\n")
    proc = run([sys.executable, "-m", "gexnet", "check-config", str(bad)], REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "config key 'simulate.programs'" in proc.stderr
