"""Shared fixtures: the repository, a small generated compendium, and one end-to-end demo run."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gexnet import config, simulate

REPO = Path(__file__).resolve().parents[1]
# What a fresh clone holds; results and caches of the checkout are left behind.
WORKFLOW_FILES = ("Snakefile", "rules", "workflow_scripts", "config", "envs", "profiles")


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


def small_config(**simulate_overrides) -> dict:
    """A compendium small enough to generate in a second or two."""
    cfg = {
        "seed": 3,
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
        },
        "qc": {"min_detected_genes": 300},
    }
    cfg["simulate"].update(simulate_overrides)
    return config.validate(copy.deepcopy(cfg))


def generate(outdir: Path, cfg: dict) -> dict[str, Path]:
    simulate.simulate(cfg["simulate"], cfg["qc"], cfg["seed"], cfg["species"], outdir)
    return simulate.output_files(outdir, cfg["species"])


@pytest.fixture(scope="session")
def small_compendium(tmp_path_factory) -> tuple[dict, dict[str, Path]]:
    cfg = small_config()
    return cfg, generate(tmp_path_factory.mktemp("small"), cfg)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The README's demo in a fresh copy of the workflow: the default config and the local
    profile, ending in the report. Returns the run directory."""
    workdir = copy_workflow(tmp_path_factory.mktemp("demo"))
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    # README command 1, after its install step
    snakemake = [sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "2"]
    report = ["--report", "results/demo/report.html", "--report-after-run"]
    proc = run([*snakemake, *report], workdir, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir
