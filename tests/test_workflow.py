"""The workflow as users run it: lint and format checks, the cluster profile's dry run, and the
demo end to end (ending in the HTML report)."""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gexnet import profiles

from .conftest import REPO, run

PY = sys.executable


def test_ruff_is_clean():
    proc = run([PY, "-m", "ruff", "check", "."], REPO)
    assert proc.returncode == 0, proc.stdout
    proc = run([PY, "-m", "ruff", "format", "--check", "."], REPO)
    assert proc.returncode == 0, proc.stdout


def test_snakefmt_is_clean():
    proc = run([PY, "-m", "snakefmt", "--check", "."], REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakemake_lint_is_clean():
    proc = run([PY, "-m", "snakemake", "--lint"], REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    """A user config directory of its own, so the test never touches ~/.config."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "snakemake"


def test_install_profile_links_and_is_idempotent(user_config):
    lines = list(profiles.install("slurm-a100"))
    link = user_config / "slurm-a100"
    assert link.is_symlink() and link.resolve() == (REPO / "profiles" / "slurm-a100").resolve()
    assert "already" in next(iter(profiles.install("slurm-a100")))
    assert any("snakemake --profile slurm-a100" in line for line in lines)


def test_install_profile_refuses_to_clobber(user_config):
    from gexnet.errors import GexnetError

    (user_config / "slurm-a100").mkdir(parents=True)
    with pytest.raises(GexnetError, match="directory of its own"):
        list(profiles.install("slurm-a100", force=True))
    with pytest.raises(GexnetError, match="no profile 'nope'"):
        list(profiles.install("nope"))


def test_slurm_profile_dry_run_after_documented_setup(user_config):
    env = {**os.environ, "XDG_CONFIG_HOME": str(user_config.parent)}
    setup = run([PY, "-m", "gexnet", "install-profile", "slurm-a100"], REPO, env=env)
    assert setup.returncode == 0, setup.stderr
    # exactly what the README tells users to type, as a dry run
    proc = run(
        [PY, "-m", "snakemake", "-n", "--forceall", "--profile", "slurm-a100"], REPO, env=env
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Using profile slurm-a100" in out
    assert re.search(r"simulate_compendium\s+1", out) and re.search(r"sample_qc\s+2", out)


def test_paper_config_dry_run_through_slurm_profile(user_config):
    """Full scale: the ARCHS4 downloads, then every stage, planned through the cluster profile."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(user_config.parent)}
    assert run([PY, "-m", "gexnet", "install-profile"], REPO, env=env).returncode == 0
    cmd = [PY, "-m", "snakemake", "-n", "--forceall", "--profile", "slurm-a100",
           "--configfile", "config/paper.yaml"]  # fmt: skip
    proc = run(cmd, REPO, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"download_archs4\s+2", out) and re.search(r"sample_qc\s+2", out)
    for species in ("human", "mouse"):
        assert f"https://s3.dev.maayanlab.cloud/archs4/files/{species}_gene_v2.2.h5" in out
        assert f"results/paper/qc/{species}_samples.parquet" in out


def test_multi_node_training_plan_through_slurm_profile(user_config, tmp_path):
    """Two nodes × three GPUs: six srun tasks, one per GPU, as the README shows."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(user_config.parent)}
    assert run([PY, "-m", "gexnet", "install-profile"], REPO, env=env).returncode == 0
    (tmp_path / "nodes.yaml").write_text("train: {nodes: 2}\n")
    cmd = [PY, "-m", "snakemake", "results/paper/models/gpt_binning/model.safetensors", "-n",
           "-p", "--forcerun", "train_gene_lm", "--profile", "slurm-a100", "--configfile",
           "config/paper.yaml", str(tmp_path / "nodes.yaml")]  # fmt: skip
    proc = run(cmd, REPO, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    resources = re.search(r"rule train_gene_lm:.*?resources: ([^\n]+)", out, flags=re.S)[1]
    assert re.search(r"train_gene_lm\s+1\n", out), "the one target asked for"
    for item in ("gpu=6", "cpus_per_task=8", "mpi=srun", "nodes=2", "tasks=6", "tasks_per_gpu=1",
                 "slurm_partition=gpu", "gpu_model=a100", "mem_mb=64000"):  # fmt: skip
        assert item in resources.split(", "), resources
    launch = "srun --kill-on-bad-exit=1 --nodes=2 --ntasks=6 --ntasks-per-gpu=1 --cpus-per-task=8"
    assert f"{launch} python -m gexnet train" in out


@pytest.mark.parametrize(
    "train, error",
    [
        ("{launcher: srun, gpus: 1}", "srun starts one Slurm task per process"),
        ("{launcher: torchrun, nodes: 2}", "train.nodes > 1 needs srun"),
    ],
)
def test_impossible_launch_is_a_clear_error(tmp_path, train, error):
    (tmp_path / "train.yaml").write_text(f"train: {train}\n")
    cmd = [PY, "-m", "snakemake", "-n", "--configfile", "config/config.yaml",
           str(tmp_path / "train.yaml")]  # fmt: skip
    proc = run(cmd, REPO)
    assert proc.returncode != 0 and error in proc.stdout + proc.stderr


def test_local_archs4_file_is_used_in_place(tmp_path):
    local = tmp_path / "my_human_gene_v2.2.h5"
    local.touch()
    override = f"archs4={{local_files: {{human_gene: {local}}}}}"
    cmd = [PY, "-m", "snakemake", "-n", "-p", "--forceall", "--configfile", "config/paper.yaml",
           "--config", override]  # fmt: skip
    proc = run(cmd, REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"download_archs4\s+1", out) and "mouse_gene_v2.2.h5" in out
    assert "human_gene_v2.2.h5 --url" not in out and f"qc {local}" in out


def test_slurm_profile_scales_resources_with_attempts():
    profile = yaml.safe_load((REPO / "profiles" / "slurm-a100" / "config.v9+.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["retries"] >= 1
    for key in ("mem_mb", "runtime"):
        assert "attempt" in str(profile["default-resources"][key])
    for key in ("slurm_partition", "slurm_account"):
        assert key in profile["default-resources"]
    # GPU placement is site knowledge: it lives in the profile, never in rules
    assert {"slurm_partition", "gpu_model"} <= set(profile["set-resources"]["train_gene_lm"])
    rules = "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    assert not re.search(r"slurm_partition|slurm_account|gpu_model", rules)


def test_conda_env_has_every_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs" / "gexnet.yaml").read_text())["dependencies"]
    names = {re.split(r"[<>=\s]", d)[0] for d in env if isinstance(d, str)}
    names |= {re.split(r"[<>=\s]", d)[0] for d in env if isinstance(d, dict) for d in d["pip"]}
    conda_names = {"matplotlib": "matplotlib-base", "torch": "pytorch-gpu"}
    for dep in project["dependencies"]:
        name = re.split(r"[<>=\s\[]", dep)[0]
        assert conda_names.get(name, name) in names, name


def program_accuracy(workdir: Path, embeddings: Path) -> tuple[float, float]:
    """5-fold accuracy of a logistic regression predicting each program member's planted
    program from its embedding, and the same with the embeddings shuffled across genes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    truth = pd.read_parquet(workdir / "resources" / "demo" / "truth" / "programs.parquet")
    truth = truth[(truth["species"] == "human") & truth["program"].notna()]
    table = pd.read_parquet(embeddings).merge(truth[["gene_id", "program"]], on="gene_id")
    x, y = table.filter(regex=r"^dim_\d+$").to_numpy(), table["program"].astype(str).to_numpy()
    assert len(table) > 1000 and len(set(y)) == 12
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    model = LogisticRegression(max_iter=3000)
    accuracy = cross_val_score(model, x, y, cv=folds).mean()
    shuffled = x[np.random.default_rng(0).permutation(len(x))]
    return accuracy, cross_val_score(model, shuffled, y, cv=folds).mean()


@pytest.mark.e2e
def test_demo_runs_end_to_end_to_the_report(demo_run: Path):
    results = demo_run / "results" / "demo"
    report = results / "report.html"
    assert report.stat().st_size > 100_000
    html = report.read_text()
    assert "human_summary.tsv" in html and "mouse_metrics.svg" in html
    for species in ("human", "mouse"):
        summary = pd.read_csv(results / "qc" / f"{species}_summary.tsv", sep="\t").set_index("step")
        assert (
            summary.loc["kept", "samples"] + summary.loc["removed", "samples"]
            == summary.loc["input", "samples"]
        )
        assert summary.loc["fails low_counts", "samples"] == 40
    # the token corpus, described by its header
    for species in ("human", "mouse"):
        header = json.loads((results / "corpus" / species / "corpus.json").read_text())
        assert header["n_train"] > 0 and header["n_validation"] > 0
        assert header["arrays"]["tokens_binning"]["shape"][1] == 128  # the demo's context
    assert "human_corpus.tsv" in html
    # the gene language models: falling validation loss, embeddings that know the programs
    for name in ("gpt_binning", "bert_genes_binning"):
        validation = pd.read_csv(results / "models" / name / "validation.tsv", sep="\t")
        assert len(validation) == 3
        assert validation["validation_loss"].is_monotonic_decreasing, validation
        accuracy, control = program_accuracy(demo_run, results / "embeddings" / f"{name}.parquet")
        assert accuracy > 0.8 and accuracy > control + 0.5, (name, accuracy, control)
    assert "validation.tsv" in html
    # classifiers: planted programs from the trained embedding, chance from the shuffled one
    for name, low, high in (("gpt_binning", 0.9, 1.0), ("baseline_shuffled", 0.45, 0.55)):
        metrics = pd.read_parquet(results / "classifiers" / name / "metrics.parquet")
        planted = metrics[metrics["source"] == "planted_programs"]
        assert len(planted) == 12
        assert low <= planted["auroc"].mean() <= high, (name, planted["auroc"].mean())
        assert (metrics["source"] == "HPO").sum() > 0  # the real-label path ran
    counts = pd.read_csv(results / "classifiers" / "label_counts.tsv", sep="\t")
    assert counts.query("source == 'HPO' and what == 'kept'")["count"].item() > 0
    comparison = pd.read_csv(results / "classifiers" / "comparison.tsv", sep="\t")
    assert set(comparison["embedding"]) >= {"gpt_binning", "baseline_coexpression"}
    assert "label_counts.tsv" in html and "auroc.svg" in html
    # lncRNA transfer: each planted lncRNA member ranks high for its own program
    predictions = pd.read_parquet(results / "lncrna" / "gpt_binning" / "predictions.parquet")
    truth = pd.read_parquet(demo_run / "resources" / "demo" / "truth" / "programs.parquet")
    members = truth[(truth["species"] == "human") & (truth["biotype"] == "lncRNA")]
    members = members[members["program"].notna()]
    planted = predictions[predictions["label"].astype(str).str.startswith("planted_programs:")]
    own = planted.assign(program=planted["label"].astype(str).str.split(":").str[1]).merge(
        members[["gene_id", "program"]], on=["gene_id", "program"]
    )
    assert len(own) > 50 and own["percentile"].median() > 90, own["percentile"].describe()
    # annotation tables built from the installed packages, label counts in the report
    annotation = demo_run / "resources" / "annotation"
    labels = pd.read_parquet(annotation / "labels.parquet")
    assert set(labels.columns) >= {"source", "term_id", "term_name", "gene_id"}
    assert labels["source"].eq("HPO").sum() > 100_000
    assert (pd.read_parquet(annotation / "orthologs.parquet")["type"] == "one2one").sum() >= 16_000
    assert "label_stats.tsv" in html
    # every rule wrote its log; no temporary file was left behind
    logs = {p.name for p in (results / "logs").iterdir()}
    assert {"simulate_compendium.log", "sample_qc_human.log", "sample_qc_mouse.log"} <= logs
    assert not [p for p in demo_run.rglob(".*.tmp*") if ".snakemake" not in p.parts]
    # a second run has nothing to do
    proc = run([PY, "-m", "snakemake", "-n", "--profile", "profiles/local"], demo_run)
    assert "Nothing to be done" in proc.stdout + proc.stderr
