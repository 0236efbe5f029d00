"""Shared fixtures: the repository, a small generated compendium, the demo run and the
miniature paper run (each run once per session and shared by the tests that read it)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gexnet import config, layout
from gexnet.formats import demo
from gexnet.sources import simulate

REPO = Path(__file__).resolve().parents[1]
# What a fresh clone holds; results and caches of the checkout are left behind.
WORKFLOW_FILES = ("Snakefile", "rules", "workflow_scripts", "config", "envs", "profiles")
# Fixtures that run the workflow (or start the Slurm test cluster): a test using one is end to
# end, marked e2e, so that `pytest -m "not e2e"` runs none of them.
E2E_FIXTURES = ("demo_run", "paper_run", "slurm_run", "cluster")

# The miniature paper run: config/paper.yaml itself, with only sizes overridden (the source,
# the compendium, the model, one epoch on CPUs, one classifier job per embedding) and a detected-gene threshold
# scaled to the miniature's 750 genes.
MINIATURE = {
    "source": "demo",
    "simulate": {
        "protein_coding_genes": 600,
        "lncrna_genes": 150,
        "mouse_lncrna_genes": 60,
        "samples": {"human": 260, "mouse": 200},
        "series": {"human": 10, "mouse": 8},
        "programs": 6,
        "splicing_factors": 4,
        "targets_per_splicing_factor": 3,
        "case_control_series": 2,
        "qc_failures": {"low_counts": 8, "single_cell": 6, "few_genes": 5},
        "modules": {"per_kind": 2, "genes": 12},
    },
    "qc": {"min_detected_genes": 300},
    "tokens": {"context": 32},
    "gene_lm": {"hidden": 16, "layers": 1, "heads": 2, "ffn": 32},
    "train": {
        "gpus": 0,
        "epochs": 1,
        "batch_per_device": 4,
        "cpus_per_process": 1,
        "mem_mb": 1000,
        "runtime_minutes": 30,
    },
    "classifiers": {"shards": 2, "threads": 1},  # the run that merges shards (the demo has one)
    "clustering": {"trials": 20, "max_attempts": 200},
    "human_mouse": {"dna": {"shards": 2}, "unsupervised_init_size": 300},
    "autoencoder": {"hidden": [16], "latent": 4},
}
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


def miniature_models(section: str) -> dict:
    """The paper's per-model train and autoencoder settings scaled down like the rest: a
    model's own settings win over the top-level ones MINIATURE overrides."""
    scaled = {}
    for name, model in PAPER.get(section, {}).items():
        own = {key: MINIATURE[key] for key in ("train", "autoencoder") if key in model}
        if own:
            scaled[name] = own
    return scaled


MINIATURE.update(
    autoencoders=miniature_models("autoencoders"),
    splicing_models=miniature_models("splicing_models"),
)


def pytest_addoption(parser):
    parser.addoption("--gpu", action="store_true",
                     help="run the CUDA tests (marked gpu) and only those; "
                     "benchmarks/gpu_check.sh does")  # fmt: skip


def pytest_collection_modifyitems(config, items):
    for item in items:
        if set(E2E_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    # The CUDA tests run on a GPU machine, by choice (--gpu), never in CI: deselected, and
    # counted in the summary, everywhere else.
    gpu = config.getoption("--gpu")
    left = [item for item in items if (item.get_closest_marker("gpu") is None) == gpu]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = [item for item in items if item not in left]
    config.gexnet_gpu_deselected = 0 if gpu else len(left)


def pytest_terminal_summary(terminalreporter, config):
    if getattr(config, "gexnet_gpu_deselected", 0):
        terminalreporter.write_line(
            f"{config.gexnet_gpu_deselected} CUDA tests not run: they need a GPU "
            "(bash benchmarks/gpu_check.sh)"
        )


def run(cmd: list[str], cwd: Path, timeout: int = 900, env: dict | None = None):
    """Run a command, capturing its output for the assertion message."""
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy()
    )
    return proc


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake_env() -> dict:
    """The environment jobs need: this interpreter's bin directory first on PATH."""
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}


def config_overrides(overrides: dict) -> list[str]:
    """`--config` arguments (KEY=YAML) that deep-merge `overrides` into the run's config."""
    flow = {"default_flow_style": True, "width": 10_000}
    return ["--config", *(f"{k}={yaml.safe_dump(v, **flow).strip()}" for k, v in overrides.items())]


def job_stats(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table: jobs per rule."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M))
    return {rule: int(n) for rule, n in counts.items() if rule not in ("job", "total")}


def run_config(workdir: Path, run_name: str) -> dict:
    """The config a finished run used (its results/<run>/config.yaml record)."""
    return yaml.safe_load((workdir / "results" / run_name / "config.yaml").read_text())


def demo_dir(workdir: Path, run_name: str = "demo") -> Path:
    """The generated compendium a run read (its folder is named by its settings)."""
    return workdir / layout.source_dir(run_config(workdir, run_name))


def program_accuracy(workdir: Path, embeddings: Path | pd.DataFrame,
                     species: str) -> tuple[float, float]:  # fmt: skip
    """5-fold accuracy of a logistic regression predicting each program member's planted
    program from its embedding (a Parquet file, or its rows of one species), and the same with
    the embeddings shuffled across genes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    truth = pd.read_parquet(demo_dir(workdir) / "truth" / "programs.parquet")
    truth = truth[(truth["species"] == species) & truth["program"].notna()]
    if not isinstance(embeddings, pd.DataFrame):
        embeddings = pd.read_parquet(embeddings)
    table = embeddings.merge(truth[["gene_id", "program"]], on="gene_id")
    x, y = table.filter(regex=r"^dim_\d+$").to_numpy(), table["program"].astype(str).to_numpy()
    assert len(table) > 1000 and len(set(y)) == 12
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    accuracy = cross_val_score(model, x, y, cv=folds).mean()
    shuffled = x[np.random.default_rng(0).permutation(len(x))]
    return accuracy, cross_val_score(model, shuffled, y, cv=folds).mean()


def small_config(**simulate_overrides) -> dict:
    """A compendium small enough to generate in a second or two."""
    cfg = {
        "seed": 3,
        "simulate": copy.deepcopy(MINIATURE["simulate"]),
        "qc": copy.deepcopy(MINIATURE["qc"]),
    }
    cfg["simulate"].update(simulate_overrides)
    return config.validate(cfg)


def generate(outdir: Path, cfg: dict) -> dict[str, Path]:
    simulate.simulate(cfg["simulate"], cfg["qc"], cfg["seed"], cfg["species"], outdir)
    return demo.demo_files(outdir, cfg["species"])


@pytest.fixture(scope="session")
def small_compendium(tmp_path_factory) -> tuple[dict, dict[str, Path]]:
    cfg = small_config()
    return cfg, generate(tmp_path_factory.mktemp("small"), cfg)


@pytest.fixture(scope="session")
def workflow_copy(tmp_path_factory) -> Path:
    """A fresh copy of the workflow for dry runs and linting: Snakemake never runs in the
    checkout (it would write .snakemake/ and results/ there)."""
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The README's demo in a fresh copy of the workflow: the default config and the local
    profile, ending in the report. Returns the run directory."""
    workdir = copy_workflow(tmp_path_factory.mktemp("demo"))
    # README command 1, after its install step
    snakemake = [sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "2"]
    report = ["--report", "results/demo/report.html", "--report-after-run"]
    proc = run([*snakemake, *report], workdir, env=snakemake_env())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


@pytest.fixture(scope="session")
def paper_run(tmp_path_factory) -> tuple[Path, str]:
    """`--configfile config/paper.yaml` to completion at miniature size (MINIATURE on the
    command line): every experiment and every stage the paper config enables. Returns the run
    directory and Snakemake's output."""
    workdir = copy_workflow(tmp_path_factory.mktemp("paper"))
    cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "2",
           "--configfile", "config/paper.yaml", *config_overrides(MINIATURE)]  # fmt: skip
    proc = run(cmd, workdir, env=snakemake_env(), timeout=1500)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return workdir, proc.stdout + proc.stderr
