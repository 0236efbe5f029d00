"""The demo workflow on a real Slurm cluster, through the profile users run.

tests/slurm/cluster.sh starts a one-node cluster (munge, slurmctld, slurmd, two fake a100 GPUs,
memory enforced); the demo's path to one trained model (compendium, QC, corpus, training,
embeddings) then runs with `snakemake --profile profiles/slurm-ci`, which is
profiles/slurm-a100 with the test cluster's site values: what only Slurm can show, kept short
(the rest of the demo runs locally in test_workflow). Training books both GPUs and starts one
srun task per GPU; with no CUDA behind the fake GPUs the two tasks train on CPUs with gloo. Its
memory is set so that Slurm kills the first attempt, and the profile's retry doubles it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml

from .conftest import REPO, copy_workflow, demo_dir, job_stats, program_accuracy, run

CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
LOCAL = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
# The two BERT-genes training tasks need about 850 MB together (425 MB RSS a task, measured on
# the demo corpus): Slurm kills the first attempt at 600 MB and the retry, with 1,200 MB,
# completes.
TRAIN_MEM_MB = 600
SLURM_CONFIG = {
    "train": {
        "gpus": 2,
        "launcher": "srun",
        "require_cuda": False,
        "cpus_per_process": 1,
        # half the local batch on each of two tasks: the same global batch as the local run
        "batch_per_device": LOCAL["train"]["batch_per_device"] // 2,
        "mem_mb": TRAIN_MEM_MB,
    }
}
# Trained through Slurm and locally by the demo; BERT-genes is the demo's quickest model (its
# head runs at the masked 15% only), and one model shows all that Slurm adds.
EXPERIMENTS = ["bert_genes_binning"]
TARGETS = [
    *(f"results/demo/embeddings/{name}.parquet" for name in EXPERIMENTS),
    "results/demo/config.yaml",
]
TRAINED_FILES = ("model.safetensors", "metrics.tsv", "validation.tsv")
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")


def test_ci_profile_is_the_user_profile_with_site_values_only():
    profile = {}
    for name in ("slurm-a100", "slurm-ci"):
        text = (REPO / "profiles" / name / "config.v9+.yaml").read_text()
        profile[name] = yaml.safe_load(text)
    user, ci = profile["slurm-a100"], profile["slurm-ci"]
    site_keys = {"slurm-no-account", "slurm-status-command",
                 "slurm-init-seconds-before-status-checks", "seconds-between-status-checks"}  # fmt: skip
    assert set(ci) - set(user) == site_keys and set(user) <= set(ci)
    for key in set(user) - {"default-resources", "set-resources"}:
        assert ci[key] == user[key], key
    site = {"slurm_partition", "slurm_account"}  # the account: none, without accounting
    for key in user["default-resources"].keys() - site:
        assert ci["default-resources"][key] == user["default-resources"][key], key
    assert ci["default-resources"].keys() == user["default-resources"].keys() - {"slurm_account"}
    assert ci["set-resources"].keys() == user["set-resources"].keys()
    for rule, values in user["set-resources"].items():
        assert ci["set-resources"][rule].keys() == values.keys()
        for key in values.keys() - {"slurm_partition", "gpu_model"}:
            assert ci["set-resources"][rule][key] == values[key]
    assert ci["slurm-status-command"] == "squeue"  # sacct needs an accounting database


def cannot_run_slurm() -> str | None:
    """Why this machine cannot start the test cluster, or None."""
    if not sys.platform.startswith("linux"):
        return f"the Slurm test cluster needs Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return "the Slurm test cluster needs root (slurmctld and slurmd run as root); CI has it"
    daemons = ("slurmctld", "slurmd", "sbatch", "munged")
    if not all(shutil.which(d) for d in daemons) and not shutil.which("apt-get"):
        return "Slurm is not installed and there is no apt-get to install it"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The cluster's environment for clients; torn down (jobs cancelled) after the module."""
    reason = cannot_run_slurm()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "GEXNET_SLURM_DIR": str(state)}
    up = subprocess.run(["bash", str(CLUSTER), "up"], env=env, capture_output=True, text=True,
                        timeout=900)  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield {**env, "SLURM_CONF": str(state / "etc" / "slurm.conf")}
    finally:
        subprocess.run(["bash", str(CLUSTER), "down"], env=env, capture_output=True, timeout=120)


def slurm_jobs(env: dict) -> pd.DataFrame:
    """Every job slurmctld remembers (MinJobAge keeps finished ones for an hour)."""
    out = subprocess.run(["squeue", "-t", "all", "-h", "-o", "%i|%k|%T|%m"], env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    rows = [line.split("|") for line in out.splitlines()]
    jobs = pd.DataFrame(rows, columns=["id", "comment", "state", "memory"])
    return jobs.astype({"id": int}).sort_values("id", ignore_index=True)


@pytest.fixture(scope="module")
def slurm_run(cluster, demo_run, tmp_path_factory):
    """The demo's path to one trained model through profiles/slurm-ci, on the local demo's
    compendium (copied: generating it under Slurm would show nothing more): (run directory,
    snakemake's output, Slurm's jobs)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm-demo"))
    compendium = demo_dir(demo_run)
    shutil.copytree(compendium, workdir / compendium.relative_to(demo_run))
    (workdir / "slurm-test.yaml").write_text(yaml.safe_dump(SLURM_CONFIG))
    bindir = str(Path(sys.executable).parent)  # jobs inherit PATH (sbatch --export=ALL)
    env = {**cluster, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", *TARGETS, "--profile", "profiles/slurm-ci",
           "--configfile", "config/config.yaml", "slurm-test.yaml"]  # fmt: skip
    proc = run(cmd, workdir, timeout=1500, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return workdir, output, slurm_jobs(cluster)


def rule_of(comment: str, rules) -> str:
    """The rule of a Slurm job, from the comment the executor plugin gives it."""
    return next(r for r in rules if comment == f"rule_{r}" or comment.startswith(f"rule_{r}_wild"))


def test_every_job_ran_as_a_slurm_job(slurm_run):
    _, output, jobs = slurm_run
    stats = job_stats(output)
    assert stats["train_gene_lm"] == len(EXPERIMENTS) and stats["sample_qc"] == 1
    assert set(stats) == {"sample_qc", "corpus", "train_gene_lm", "gene_embeddings", "run_config"}
    submitted = SUBMITTED.findall(output)  # (Snakemake's job, Slurm's job) per submission
    assert len({job for job, _ in submitted}) == sum(stats.values()), "a job ran outside Slurm"
    assert sorted(int(i) for _, i in submitted) == sorted(jobs.id), "Slurm has every submission"
    completed = jobs[jobs.state == "COMPLETED"]
    per_rule = completed.comment.map(lambda c: rule_of(c, stats)).value_counts().to_dict()
    assert per_rule == stats
    assert set(jobs.state) <= {"COMPLETED", "FAILED"}


def test_training_ran_as_two_srun_tasks_with_the_gpus_booked(slurm_run, cluster):
    workdir, _, jobs = slurm_run
    train = jobs[jobs.comment.str.startswith("rule_train_gene_lm") & (jobs.state == "COMPLETED")]
    assert len(train) == len(EXPERIMENTS)
    for job_id in train.id:
        record = subprocess.run(["scontrol", "show", "job", str(job_id)], env=cluster,
                                capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert "TresPerJob=gres:gpu:a100:2" in record, record
        assert re.search(r"\bNumTasks=2\b", record) and "Partition=ci" in record, record
    for name in EXPERIMENTS:
        log_file = workdir / "results" / "demo" / "logs" / f"train_{name}.log"
        log = log_file.read_text(errors="replace")  # two ranks' progress bars interleave
        for rank in (0, 1):  # rank and world size from srun's SLURM_PROCID and SLURM_NTASKS
            assert re.search(rf"process {rank} of 2 \(srun\) on \S+, device cpu", log), log[:2000]


def megabytes(squeue_memory: str) -> int:
    number, unit = float(squeue_memory[:-1]), squeue_memory[-1]
    return round(number * {"M": 1, "G": 1024, "T": 1024**2}[unit])


def test_a_job_killed_for_memory_is_retried_with_more(slurm_run, cluster):
    _, _, jobs = slurm_run
    slurmd_log = Path(cluster["GEXNET_SLURM_DIR"], "log", "slurmd.log").read_text(errors="replace")
    for name in EXPERIMENTS:
        attempts = jobs[jobs.comment == f"rule_train_gene_lm_wildcards_{name}"]
        memory = [megabytes(m) for m in attempts.memory]
        states = list(attempts.state)
        assert states[-1] == "COMPLETED" and set(states[:-1]) == {"FAILED"}, states
        assert memory == [TRAIN_MEM_MB * (k + 1) for k in range(len(attempts))], memory
        for job_id in attempts.id.iloc[:-1]:  # killed by Slurm for memory, not failed otherwise
            assert re.search(rf"StepId={job_id}\.\d+ exceeded memory limit", slurmd_log), job_id


def test_two_srun_tasks_train_as_the_local_process_does(slurm_run, demo_run):
    workdir, _, _ = slurm_run
    for name in EXPERIMENTS:
        local, slurm = (d / "results" / "demo" / "models" / name for d in (demo_run, workdir))
        a, b = (pd.read_csv(d / "metrics.tsv", sep="\t") for d in (local, slurm))
        assert len(a) == len(b) > 100
        # Same samples, masks and global batch each step: equal up to float rounding, which
        # the fast phase of training later amplifies (GPT: 0.4% apart by step 300).
        np.testing.assert_allclose(b.loss[:50], a.loss[:50], rtol=1e-5)
        va, vb = (pd.read_csv(d / "validation.tsv", sep="\t") for d in (local, slurm))
        np.testing.assert_allclose(vb.validation_loss, va.validation_loss, rtol=5e-3)
        assert vb.validation_loss.iloc[-1] < vb.validation_loss.iloc[0]
        ea, eb = (pd.read_parquet(d / "results" / "demo" / "embeddings" / f"{name}.parquet")
                  for d in (demo_run, workdir))  # fmt: skip
        assert ea["gene_id"].equals(eb["gene_id"])
        # the same geometry: gene–gene cosine similarities agree between the two runs
        r = np.corrcoef(cosines(ea).ravel(), cosines(eb).ravel())[0, 1]
        assert r > 0.95, r
        # and the same knowledge of the planted programs (an independent classifier)
        accuracy = {
            d: program_accuracy(d, d / "results" / "demo" / "embeddings" / f"{name}.parquet",
                                "human")[0]
            for d in (demo_run, workdir)
        }  # fmt: skip
        assert accuracy[workdir] > 0.8 and abs(accuracy[workdir] - accuracy[demo_run]) < 0.05


def cosines(table: pd.DataFrame, n: int = 500) -> np.ndarray:
    """Cosine similarities among the first n genes."""
    x = table.filter(regex=r"^dim_\d+$").to_numpy(np.float64)[:n]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def not_comparable(path: str) -> bool:
    """Outputs computed from trained weights, which match the local run only within tolerance
    (checked above), and files that are not data: logs, benchmarks (times), checkpoints, SVGs
    and figures (matplotlib's ids and dates) and the report (local run only)."""
    trained = [*EXPERIMENTS, "baseline_shuffled"]  # shuffled: the reference model's vectors
    parts = Path(path).parts
    return (
        bool({"logs", "benchmarks", "checkpoints", "lncrna"} & set(parts))
        or path.endswith((".svg", ".pdf", ".png", "report.html", "classifiers/comparison.tsv"))
        or path == "results/demo/config.yaml"  # the runs' settings differ (GPUs, launcher)
        or (parts[-3] == "models" and parts[-1] in TRAINED_FILES)
        or (parts[-2] == "embeddings" and parts[-1].split(".")[0] in trained)
        or (parts[-3] == "classifiers" and parts[-2] in trained)
    )


def test_deterministic_outputs_equal_the_local_run(slurm_run, demo_run):
    workdir, _, _ = slurm_run

    def outputs(root: Path) -> dict[str, Path]:
        files = [p for d in ("resources", "results") for p in (root / d).rglob("*") if p.is_file()]
        return {str(p.relative_to(root)): p for p in files}

    local, slurm = outputs(demo_run), outputs(workdir)
    compared = sorted(k for k in slurm if not not_comparable(k))
    assert set(compared) <= set(local), "the Slurm run made files the local run did not"
    assert len(compared) > 15 and any("corpus" in k for k in compared)
    differ = [k for k in compared if local[k].read_bytes() != slurm[k].read_bytes()]
    assert not differ, differ
    assert {k for k in slurm if k.endswith(("model.json", "vocabulary.tsv"))} <= set(compared)


def test_cluster_goes_down_without_leftovers(cluster):
    state = Path(cluster["GEXNET_SLURM_DIR"])
    pids = [int((state / f).read_text()) for f in ("slurmctld.pid", "slurmd.pid")]
    down = subprocess.run(["bash", str(CLUSTER), "down"], env=cluster, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert not [p for p in pids if psutil.pid_exists(p)] and not state.exists()
    for name in ("slurm.conf", "gres.conf"):  # the links `up` made are gone
        link = Path("/etc/slurm", name)
        assert not (link.is_symlink() and str(state) in os.readlink(link))
