"""Configuration: schema validation fills defaults and names the offending key, from Python and
through Snakemake itself; `--configfile F` runs with F and the schema's defaults, nothing of the
demo, exactly as `gexnet check-config F --show` prints it."""

from __future__ import annotations

import sys

import pytest
import yaml

from gexnet import config

from .conftest import REPO, run, run_config, snakemake_env

# A user's own file: one mouse experiment, everything else from the schema.
MOUSE_USER_CONFIG = {
    "run": "mine",
    "species": ["mouse"],
    "experiments": {"gpt_mouse": {"objective": "gpt", "normalization": "binning",
                                  "species": "mouse"}},
}  # fmt: skip


def test_demo_and_paper_configs_are_valid():
    demo = config.load(REPO / "config" / "config.yaml")
    assert demo["run"] == "demo" and demo["source"] == "demo"
    paper = config.load(REPO / "config" / "paper.yaml")
    assert paper["source"] == "archs4" and paper["archs4"]["version"] == "2.2"
    assert (paper["gene_lm"]["hidden"], paper["gene_lm"]["layers"], paper["gene_lm"]["heads"]) == (
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


def experiment(**keys) -> dict:
    return {"experiments": {"x": {"objective": "gpt", "normalization": "binning", **keys}}}


@pytest.mark.parametrize("species", [["human", "mouse"], ["mouse", "human"], "mouse"])
def test_an_experiment_takes_one_species_or_both_in_order(species):
    assert config.validate(experiment(species=species))["experiments"]["x"]["species"] == species
    assert config.validate(experiment())["experiments"]["x"]["pseudo_species"] is False


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"species": ["human", "rat"]}, "config key 'experiments.x.species.1': 'rat' is not one"),
        ({"species": "rat"}, "config key 'experiments.x.species': 'rat' is not one"),
        ({"species": ["human"]}, "config key 'experiments.x.species': ['human'] is too short"),
        ({"species": ["mouse", "mouse"]}, "config key 'experiments.x.species': ['mouse', 'mouse'] has non-unique"),
        ({"species": ["human", "mouse"], "pseudo_species": True},
         "config key 'experiments.x.pseudo_species': the pseudo-species control splits one species"),
        ({"pseudo_species": "yes"}, "config key 'experiments.x.pseudo_species': 'yes' is not of type"),
    ],
)  # fmt: skip
def test_wrong_species_settings_are_named(keys, message):
    with pytest.raises(config.ConfigError) as error:
        config.validate(experiment(**keys))
    assert message in str(error.value)


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
def test_snakemake_stops_on_bad_config(workflow_copy, override, expected):
    proc = run([sys.executable, "-m", "snakemake", "-n", "--config", override], workflow_copy)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr


def test_snakemake_stops_on_bad_config_file(tmp_path, workflow_copy):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"qc": {"min_total_counts": "many"}}))
    cmd = [sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)]
    proc = run(cmd, workflow_copy)
    assert proc.returncode != 0
    assert "config key 'qc.min_total_counts'" in proc.stdout + proc.stderr


def test_cli_reports_bad_config_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: demo\nsimulate: {programs: many}\n")
    proc = run([sys.executable, "-m", "gexnet", "check-config", str(bad)], REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "config key 'simulate.programs'" in proc.stderr


def shown(path, cwd) -> dict:
    """What `gexnet check-config PATH --show` prints, parsed."""
    proc = run([sys.executable, "-m", "gexnet", "check-config", str(path), "--show"], cwd)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def snakemake_config(workdir, configfile, run_name, *extra) -> dict:
    """The config Snakemake runs with: the record it writes, results/<run>/config.yaml."""
    cmd = [sys.executable, "-m", "snakemake", f"results/{run_name}/config.yaml", "--cores", "1",
           "--configfile", str(configfile), *extra]  # fmt: skip
    proc = run(cmd, workdir, env=snakemake_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return run_config(workdir, run_name)


def test_paper_config_runs_as_check_config_shows_it(workflow_copy):
    used = snakemake_config(workflow_copy, "config/paper.yaml", "paper")
    assert used == shown("config/paper.yaml", workflow_copy)
    # Nothing of the demo: the paper's experiments as written (coding-only where it says so):
    # GeneRAIN's seven human configurations, then paper 2's mouse, mixed and pseudo-species
    # models; the schema's classifier jobs and simulator sizes.
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())["experiments"]
    assert list(used["experiments"]) == list(paper) and len(paper) == 10
    generain = {(e["objective"], e["normalization"]) for e in list(paper.values())[:7]}
    assert len(generain) == 3 * 2 and all(
        e["species"] == "human" for e in list(used["experiments"].values())[:7]
    )
    human_mouse = list(used["experiments"].values())[7:]
    assert [(e["species"], e["pseudo_species"]) for e in human_mouse] == [
        ("mouse", False), (["human", "mouse"], False), ("human", True)]  # fmt: skip
    for name, settings in paper.items():
        assert used["experiments"][name]["biotypes"] == settings.get("biotypes"), name
    assert (used["classifiers"]["shards"], used["classifiers"]["threads"]) == (8, 4)
    assert used["tokens"]["context"] == 2048 and used["gene_lm"]["hidden"] == 200
    assert used["simulate"] == config.validate({})["simulate"]  # the schema's, not the demo's


def test_a_users_file_replaces_dictionaries_and_takes_overrides(tmp_path, workflow_copy):
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(MOUSE_USER_CONFIG))
    used = snakemake_config(workflow_copy, mine, "mine")
    assert used == shown(mine, workflow_copy)
    assert list(used["experiments"]) == ["gpt_mouse"]  # the demo's two are not merged in
    assert used["species"] == ["mouse"] and used["classifiers"]["shards"] == 8
    # --config goes on top of the file (a nested key merges into its section)
    used = snakemake_config(workflow_copy, mine, "mine", "--config", "seed=3",
                            "classifiers={shards: 3}")  # fmt: skip
    assert used["seed"] == 3 and used["classifiers"]["shards"] == 3
    assert used["classifiers"]["threads"] == 4 and list(used["experiments"]) == ["gpt_mouse"]


def test_without_a_configfile_the_run_is_the_demo(workflow_copy):
    cmd = [sys.executable, "-m", "snakemake", "results/demo/config.yaml", "--cores", "1"]
    proc = run(cmd, workflow_copy, env=snakemake_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert run_config(workflow_copy, "demo") == shown("config/config.yaml", workflow_copy)


def test_empty_experiments_remove_them_all(tmp_path, workflow_copy):
    none = tmp_path / "none.yaml"
    none.write_text("run: none\nexperiments: {}\n")
    cmd = [sys.executable, "-m", "snakemake", "-n", "--configfile", str(none)]
    proc = run(cmd, workflow_copy)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "train_gene_lm" not in out and "classifier_shard" not in out
    assert "corpus" in out  # the stages before training still run


def test_nested_overrides_are_typed_by_the_schema():
    # as Snakemake hands them over: `--config train={epochs: 1, max_lr: 1e-4} ...`
    given = {
        "train": {"epochs": "1", "max_lr": "1e-4", "require_cuda": "false"},
        "archs4": {"version": "2.3", "local_files": {"human_gene": "/data/1.h5"}},
        "classifiers": {"sources": "null", "baselines": ["random"]},
        "experiments": {"x": {"objective": "gpt", "normalization": "binning", "biotypes": "null"}},
        "seed": 3,
    }
    typed = config.typed_overrides(given, config.schema())
    assert typed["train"] == {"epochs": 1, "max_lr": 1e-4, "require_cuda": False}
    assert typed["archs4"] == given["archs4"]  # strings where the schema wants strings
    assert typed["classifiers"] == {"sources": None, "baselines": ["random"]}
    assert typed["experiments"]["x"]["biotypes"] is None and typed["seed"] == 3
    # a value that is not what the schema wants stays as it came, for validation to name
    assert config.typed_overrides({"train": {"epochs": "many"}}, config.schema()) == {
        "train": {"epochs": "many"}
    }


def test_file_then_defaults_then_overrides(tmp_path):
    """The order of point 1: an override merges into the defaults the file left in place, and
    a dictionary the file gives replaces the default one."""
    plain = tmp_path / "plain.yaml"
    plain.write_text("run: plain\n")
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(MOUSE_USER_CONFIG))
    extra = {"experiments": {"x": {"objective": "bert_genes", "normalization": "zscore"}}}
    assert list(config.resolve([plain], extra)["experiments"]) == ["gpt_binning", "x"]
    assert list(config.resolve([mine], extra)["experiments"]) == ["gpt_mouse", "x"]
    assert list(config.resolve([mine])["experiments"]) == ["gpt_mouse"]
    # several files merge in order; a number given where text is wanted becomes text
    later = tmp_path / "later.yaml"
    later.write_text("seed: 5\nclassifiers: {shards: 3}\n")
    both = config.resolve([mine, later], {"run": 2})
    assert (both["seed"], both["classifiers"]["shards"], both["run"]) == (5, 3, "2")
    assert both["species"] == ["mouse"] and both["classifiers"]["threads"] == 4
    # a file's mistake that an override mends is no error; one it leaves is named
    bad = tmp_path / "bad.yaml"
    bad.write_text("qc: {min_total_counts: many}\n")
    assert config.resolve([bad], {"qc": {"min_total_counts": "10"}})["qc"]["min_total_counts"] == 10
    with pytest.raises(config.ConfigError, match=r"qc\.min_total_counts"):
        config.resolve([bad])
