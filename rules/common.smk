# Config validation, paths and helpers shared by every rule file.
import json
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Rules import the gexnet package of this checkout, whatever else is installed.
PACKAGE_DIR = Path(workflow.basedir) / "workflow_scripts"
sys.path.insert(0, str(PACKAGE_DIR))
# (shell.prefix is formatted like a command: braces are doubled once more.)
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={shlex.quote(str(PACKAGE_DIR))}:${{{{PYTHONPATH:-}}}}; "
)

from gexnet.config import ConfigError, validate  # noqa: E402

try:
    validate(config, workflow.source_path("../config/config.schema.yaml"))
except ConfigError as e:
    raise WorkflowError(f"invalid configuration: {e}") from None

RUN = config["run"]
SPECIES = config["species"]
RESOURCES = config["resources_dir"]


def results(path):
    """A path under results/<run>/."""
    return f"results/{RUN}/{path}"


def logs(name):
    return f"results/{RUN}/logs/{name}.log"


def benchmarks(name):
    return f"results/{RUN}/benchmarks/{name}.tsv"


def as_json(value):
    """Config sections travel to the command line as one quoted JSON argument."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def attempt_scaled(base):
    """A resource that grows with each retry (memory in MB, runtime in minutes)."""
    return lambda wildcards, attempt: base * attempt


def compendium(species, level="gene"):
    """The ARCHS4-layout HDF5 file for a species and level, from the configured source."""
    source = config["source"]
    if source == "archs4":
        local = config["archs4"]["local_files"].get(f"{species}_{level}")
        return local or f"{RESOURCES}/archs4/{species}_{level}_v{config['archs4']['version']}.h5"
    if level != "gene" and source != "demo":
        raise WorkflowError(f"source {source} has gene-level counts only, not {level} level")
    return f"{RESOURCES}/{source}/{species}_{level}_{source}.h5"


def download_options(local_key=None):
    """The shared retry/backoff/timeout flags of `gexnet download`."""
    d = config["download"]
    flags = f"--retries {d['retries']} --backoff {d['backoff_seconds']} --timeout {d['timeout_seconds']}"
    return flags + (f" --local-key {local_key}" if local_key else "")


def check_single_species_source():
    # A GEO selection or a user's matrix is one species: say so instead of a missing-file error.
    if config["source"] in ("geo", "byo") and len(SPECIES) != 1:
        raise WorkflowError(
            f"source {config['source']} holds one species; set species to one of {SPECIES}"
        )
    if config["source"] == "byo" and SPECIES != [config["byo"]["species"]]:
        raise WorkflowError(
            f"species {SPECIES} does not match byo.species ({config['byo']['species']})"
        )
    if config["source"] == "byo" and not (config["byo"]["counts"] and config["byo"]["samples"]):
        raise WorkflowError("source byo needs byo.counts and byo.samples (file paths)")
    if config["source"] == "geo" and not config["geo"]["series"]:
        raise WorkflowError("source geo needs at least one accession in geo.series")


check_single_species_source()


# --- sources -------------------------------------------------------------------------------


def geo_url(key, **fields):
    """A configured GEO address; {stub} is the series' FTP folder (GSE164073 -> GSE164nnn)."""
    gse = fields.get("gse", "")
    stub = (gse[:-3] or "GSE") + "nnn"
    return shlex.quote(config["geo"][key].format(stub=stub, **fields))


def geo_series_files(species):
    """Per GSE accession: its downloaded counts table and series matrix."""
    return {
        gse: [
            f"{RESOURCES}/geo/{species}/{gse}_raw_counts.tsv.gz",
            f"{RESOURCES}/geo/{species}/{gse}_series_matrix.txt.gz",
        ]
        for gse in config["geo"]["series"]
    }


# --- annotations ---------------------------------------------------------------------------

ANNOTATION = f"{RESOURCES}/annotation"
ANNOTATION_FILES = [
    *expand(f"{ANNOTATION}/genes_{{species}}.parquet", species=["human", "mouse"]),
    f"{ANNOTATION}/orthologs.parquet",
    f"{ANNOTATION}/labels.parquet",
]


def is_url(value):
    return value.startswith(("http://", "https://", "ftp://"))


def label_inputs(wildcards):
    """Label sources that are files: downloaded ones come from rules, local ones as they are."""
    a = config["annotations"]
    files = {}
    if a["hpo"]:
        files["hpo"] = f"{ANNOTATION}/hpo_phenotype_to_genes.txt" if is_url(a["hpo"]) else a["hpo"]
    if a["go_gaf"]:
        files["go_gaf"] = f"{ANNOTATION}/go.gaf.gz" if is_url(a["go_gaf"]) else a["go_gaf"]
    elif Path(a["go_sqlite"]).exists():
        files["go_sqlite"] = a["go_sqlite"]
    for library in a["enrichr_libraries"]:
        files[f"gmt_{library}"] = f"{ANNOTATION}/enrichr/{library}.gmt"
    return files


def experiment(wildcards):
    """The config of one gene language model experiment, its species checked."""
    settings = config["experiments"][wildcards.experiment]
    if settings["species"] not in SPECIES:
        raise WorkflowError(
            f"experiments.{wildcards.experiment}.species: {settings['species']} is not among "
            f"species {SPECIES}"
        )
    return settings


def train_processes():
    """(processes per node, nodes, launched by srun) of a training job, the launcher checked."""
    t = config["train"]
    per_node = t["gpus"] or t["cpu_processes"]
    srun = t["launcher"] == "srun" or (t["launcher"] == "auto" and t["nodes"] > 1)
    if srun and per_node * t["nodes"] < 2:
        raise WorkflowError(
            "train.launcher: srun starts one Slurm task per process, and this job has one "
            "(train.gpus or train.cpu_processes, times train.nodes); use torchrun"
        )
    if not srun and t["nodes"] > 1:
        raise WorkflowError("train.launcher: torchrun runs on one node; train.nodes > 1 needs srun")
    return per_node, t["nodes"], srun


def train_launcher():
    """How training starts: torchrun on one node (GPUs, or CPU processes with gloo), or one
    srun task per process (rank and world size from Slurm's variables). srun's task layout is
    spelled out: the jobstep plugin hides the allocation's SLURM_* settings from the job."""
    per_node, nodes, srun = train_processes()
    if srun:
        # One task per GPU, each bound to its own (it sees it as device 0); on CPUs, the same
        # number of tasks on every node.
        layout = (
            "--ntasks-per-gpu=1" if config["train"]["gpus"] else f"--ntasks-per-node={per_node}"
        )
        return (
            f"srun --kill-on-bad-exit=1 --nodes={nodes} --ntasks={per_node * nodes} {layout}"
            f" --cpus-per-task={config['train']['cpus_per_process']} python"
        )
    return f"python -m torch.distributed.run --standalone --nproc_per_node {per_node}"


def train_threads():
    """CPUs of a training job on one node (each process gets train.cpus_per_process)."""
    return config["train"]["cpus_per_process"] * train_processes()[0]


def train_resources():
    """Slurm resources of a training job: memory (scaled by attempt) and time, GPUs (the job's
    total, one task per GPU), CPUs per task; for srun launches, nodes, tasks and `mpi`, which
    makes the jobstep plugin run the shell as it is instead of inside `srun -n1`."""
    t = config["train"]
    per_node, nodes, srun = train_processes()
    resources = {
        "mem_mb": attempt_scaled(t["mem_mb"]),
        # Not scaled: a job that runs out of time resumes from its checkpoint when retried.
        "runtime": t["runtime_minutes"],
    }
    if t["gpus"]:
        resources["gpu"] = per_node * nodes
    if srun:
        resources.update(mpi="srun", nodes=nodes, tasks=per_node * nodes)
        if t["gpus"]:
            resources["tasks_per_gpu"] = 1
    # Set here, not left to the profile's default of 1: the plugin books cpus_per_task before
    # cpus_per_gpu. One srun task per process, or one task holding all of torchrun's processes.
    resources["cpus_per_task"] = t["cpus_per_process"] * (1 if srun else per_node)
    return resources


REFERENCE_EXPERIMENT = config["classifiers"]["reference"] or next(iter(config["experiments"]), None)
if REFERENCE_EXPERIMENT not in config["experiments"]:
    raise WorkflowError(
        f"classifiers.reference: {REFERENCE_EXPERIMENT} is not an experiment "
        f"({', '.join(config['experiments']) or 'none configured'})"
    )
EMBEDDINGS = [
    *config["experiments"],
    *(f"baseline_{b}" for b in config["classifiers"]["baselines"]),
]


def planted_programs():
    """The demo's planted programs, when they are labels too."""
    c = config["classifiers"]
    return c["planted_programs"] and config["source"] == "demo"


def label_files():
    """The classifiers' label sources: the annotation labels, the demo's planted programs."""
    files = {"labels": f"{ANNOTATION}/labels.parquet"}
    if planted_programs():
        files["programs"] = f"{RESOURCES}/demo/truth/programs.parquet"
    return files


def classifier_inputs(wildcards, embedding=None):
    embedding = embedding or wildcards.embedding
    return {"embedding": results(f"embeddings/{embedding}.parquet"), **label_files()}


def classifier_label_args(wildcards):
    return " ".join(f"--{name} {path}" for name, path in label_files().items())


def all_targets():
    targets = expand(results("corpus/{species}_corpus.tsv"), species=SPECIES)
    targets += expand(results("embeddings/{experiment}.parquet"), experiment=config["experiments"])
    targets += [results(f) for f in ("classifiers/comparison.tsv", "classifiers/label_counts.tsv")]
    targets += expand(
        results("lncrna/{embedding}/top_properties.tsv"), embedding=config["experiments"]
    )
    targets += ANNOTATION_FILES
    if config["source"] == "demo":
        targets += list(DEMO_FILES.values())
    return targets
