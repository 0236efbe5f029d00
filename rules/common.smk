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

from gexnet import layout  # noqa: E402
from gexnet.config import ConfigError, experiment_settings, resolve  # noqa: E402
from gexnet.report.catalogue import KINDS, SECTIONS  # noqa: E402

# The run's config, resolved again from what Snakemake was given: the --configfile files (else
# config/config.yaml, as the Snakefile says), the schema's defaults, then --config on top (its
# nested values typed by the schema). `gexnet check-config` resolves the same way.
try:
    resolved = resolve(
        workflow.overwrite_configfiles or ["config/config.yaml"],
        dict(workflow.config_settings.config),
        workflow.source_path("../config/config.schema.yaml"),
    )
except ConfigError as e:
    raise WorkflowError(f"invalid configuration: {e}") from None
config.clear()
config.update(resolved)

RUN = config["run"]
DEMO = config["source"] == "demo"
QC = config["qc"]
SPECIES = config["species"]
RESOURCES = config["resources_dir"]
# Generated and converted compendia live in a folder named by their settings (gexnet.layout).
SOURCE_DIR = str(layout.source_dir(config))


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


def job_config(*sections, **values):
    """What a job reads of the run's config, as its `--config` argument (inline JSON): a param,
    so that the job reruns when those settings change, and only then."""
    return as_json({**{key: config[key] for key in sections}, **values})


def attempt_scaled(base):
    """A resource that grows with each retry (memory in MB, runtime in minutes)."""
    return lambda wildcards, attempt: base * attempt


def configured_file(key, path):
    """A file the config names under `key`; its absence is an error naming the key. Called from
    input functions, so only the jobs that read the file check it."""
    if not Path(path).is_file():
        raise WorkflowError(f"{key}: {path}: no such file")
    return path


def compendium(species, level="gene"):
    """The ARCHS4-layout HDF5 file for a species and level, from the configured source."""
    source = config["source"]
    if source == "archs4":
        key = f"{species}_{level}"
        local = config["archs4"]["local_files"].get(key)
        if local:
            return configured_file(f"archs4.local_files.{key}", local)
        return f"{RESOURCES}/archs4/{species}_{level}_v{config['archs4']['version']}.h5"
    if level != "gene" and source != "demo":
        raise WorkflowError(f"source {source} has gene-level counts only, not {level} level")
    return f"{SOURCE_DIR}/{species}_{level}_{source}.h5"


# How a job runs but not what it writes (the streaming budget, download retries) travels as a
# resource, not a param: Snakemake redoes a job whose params change, and shared outputs (the
# compendia, downloads) would be redone, under every run that reads them, for another run's
# retry count.
# A rule books these and passes them on as `--config KEY=VALUE` in its shell command.
# Snakemake rounds a float resource: the seconds travel as text.
BLOCK_RESOURCES = {"block_values": config["block_values"]}
DOWNLOAD_RESOURCES = {
    "download_retries": config["download"]["retries"],
    "download_backoff": str(config["download"]["backoff_seconds"]),
    "download_timeout": str(config["download"]["timeout_seconds"]),
}


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


def geo_downloads(species):
    """Where a species' GEO downloads go: NCBI counts per genome build, so runs counting
    against other builds keep their own."""
    return f"{RESOURCES}/geo/{species}/{config['geo']['builds'][species]}"


def geo_series_files(species):
    """Per GSE accession: its downloaded counts table and series matrix."""
    return {
        gse: [
            f"{geo_downloads(species)}/{gse}_raw_counts.tsv.gz",
            f"{geo_downloads(species)}/{gse}_series_matrix.txt.gz",
        ]
        for gse in config["geo"]["series"]
    }


# --- annotations ---------------------------------------------------------------------------

ANNOTATION = f"{RESOURCES}/annotation"
# The label table depends on the annotations settings: a folder of its own per settings.
LABELS_DIR = f"{ANNOTATION}/labels/{layout.settings_key(layout.label_settings(config))}"
ANNOTATION_FILES = [
    *expand(f"{ANNOTATION}/genes_{{species}}.parquet", species=["human", "mouse"]),
    f"{ANNOTATION}/orthologs.parquet",
    f"{LABELS_DIR}/labels.parquet",
]


def is_url(value):
    return value.startswith(("http://", "https://", "ftp://"))


def label_download(name, url):
    """Where a label source downloaded from `url` goes: a folder named by the address, so that
    runs fetching the same file from other places never overwrite each other's."""
    path = f"{ANNOTATION}/downloads/{layout.settings_key({'url': url})}/{name}"
    LABEL_URLS[path] = url
    return path


LABEL_URLS = {}  # download path -> address, for download_label_source
LABEL_DOWNLOADS = {
    key: label_download(name, config["annotations"][key])
    for key, name in (("hpo", "hpo_phenotype_to_genes.txt"), ("go_gaf", "go.gaf.gz"))
    if is_url(config["annotations"][key])
}
for library in config["annotations"]["enrichr_libraries"]:
    LABEL_DOWNLOADS[f"gmt_{library}"] = label_download(
        f"{library}.gmt", config["annotations"]["enrichr_url"].format(library=library)
    )


def label_inputs(wildcards):
    """The configured label sources: downloads come from rules, paths are used as they are."""
    a = config["annotations"]
    files = {}
    for key in ("hpo", "go_gaf", "go_sqlite", "go_db"):
        if a[key]:
            files[key] = LABEL_DOWNLOADS.get(key) or configured_file(f"annotations.{key}", a[key])
    for library in a["enrichr_libraries"]:
        files[f"gmt_{library}"] = LABEL_DOWNLOADS[f"gmt_{library}"]
    return files


if config["annotations"]["go_gaf"] and config["annotations"]["go_sqlite"]:
    raise WorkflowError("annotations: give go_gaf or go_sqlite, not both")


# --- gene language models ------------------------------------------------------------------

EXPERIMENTS = config["experiments"]
# Each experiment's own gene_lm and train sections: the run's, with its overrides on top.
EXPERIMENT_SETTINGS = {name: experiment_settings(config, name) for name in EXPERIMENTS}


def experiment_species(name):
    """The species whose corpora experiment `name` reads, in its order (one or two)."""
    species = EXPERIMENTS[name]["species"]
    return [species] if isinstance(species, str) else list(species)


for name in EXPERIMENTS:
    if missing := [s for s in experiment_species(name) if s not in SPECIES]:
        raise WorkflowError(
            f"experiments.{name}.species: {', '.join(missing)} not among species {SPECIES}"
        )


# A joint experiment (two species, or the pseudo-species control) is one model over two
# vocabularies: its embeddings are for the human-mouse comparison, not for the classifiers,
# baselines, label counts or lncRNA transfer, which take one species' genes.
def joint_kind(name):
    """What kind of model of two sides an experiment is: joint (both species), pseudo (the
    pseudo-species control), or None (one species)."""
    if EXPERIMENTS[name]["pseudo_species"]:
        return "pseudo"
    return "joint" if len(experiment_species(name)) > 1 else None


JOINT_EXPERIMENTS = [name for name in EXPERIMENTS if joint_kind(name)]
SINGLE_EXPERIMENTS = [name for name in EXPERIMENTS if name not in JOINT_EXPERIMENTS]


def experiment(wildcards):
    """The config of one gene language model experiment (its effective sections included)."""
    return EXPERIMENT_SETTINGS[wildcards.experiment]


# --- training jobs (gene language models and autoencoders) ---------------------------------
# A training job's wildcard names its model: {experiment} (a gene LM) or {autoencoder}.


def training(wildcards):
    """(config key, effective train section) of the model a training job trains."""
    if "autoencoder" in wildcards.keys():
        name = wildcards.autoencoder
        return f"autoencoders.{name}", AUTOENCODER_SETTINGS[name]["train"]
    if "splicing_model" in wildcards.keys():
        name = wildcards.splicing_model
        return f"splicing_models.{name}", SPLICING_SETTINGS[name]["train"]
    return f"experiments.{wildcards.experiment}", EXPERIMENT_SETTINGS[wildcards.experiment]["train"]


def train_processes(key, t):
    """(processes per node, nodes, launched by srun) of the training job of `key` with train
    section `t`, the launcher checked."""
    per_node = t["gpus"] or t["cpu_processes"]
    srun = t["launcher"] == "srun" or (t["launcher"] == "auto" and t["nodes"] > 1)
    if srun and per_node * t["nodes"] < 2:
        raise WorkflowError(
            f"{key}: train.launcher srun starts one Slurm task per process, and "
            "this job has one (train.gpus or train.cpu_processes, times train.nodes); use torchrun"
        )
    if not srun and t["nodes"] > 1:
        raise WorkflowError(
            f"{key}: train.launcher torchrun runs on one node; train.nodes > 1 needs srun"
        )
    return per_node, t["nodes"], srun


def train_launcher(wildcards):
    """How a training job starts: torchrun on one node (GPUs, or CPU processes with gloo), or
    one srun task per process (rank and world size from Slurm's variables). srun's task layout
    is spelled out: the jobstep plugin hides the allocation's SLURM_* settings from the job.
    `auto` starts a single process as itself: torchrun's agent adds seconds and nothing else."""
    key, t = training(wildcards)
    per_node, nodes, srun = train_processes(key, t)
    if t["launcher"] == "auto" and per_node * nodes == 1:
        return "python"
    if srun:
        # One task per GPU, each bound to its own (it sees it as device 0); on CPUs, the same
        # number of tasks on every node.
        tasks = "--ntasks-per-gpu=1" if t["gpus"] else f"--ntasks-per-node={per_node}"
        return (
            f"srun --kill-on-bad-exit=1 --nodes={nodes} --ntasks={per_node * nodes} {tasks}"
            f" --cpus-per-task={t['cpus_per_process']} python"
        )
    return f"python -m torch.distributed.run --standalone --nproc_per_node {per_node}"


# What a training job books but never reads: left out of its config, so that booking more
# memory or time does not redo a finished model.
BOOKING_KEYS = ("mem_mb", "runtime_minutes")


def unbooked(train):
    return {k: v for k, v in train.items() if k not in BOOKING_KEYS}


def train_job_config(wildcards):
    """A training job's `--config`: the seed, the run's model and train sections, and its
    model's entry with its own overrides."""
    if "autoencoder" in wildcards.keys():
        table, name, section = "autoencoders", wildcards.autoencoder, "autoencoder"
    elif "splicing_model" in wildcards.keys():
        table, name, section = "splicing_models", wildcards.splicing_model, "splicing_network"
    else:
        table, name, section = "experiments", wildcards.experiment, "gene_lm"
    entry = dict(config[table][name])
    if "train" in entry:
        entry["train"] = unbooked(entry["train"])
    return job_config("seed", section, train=unbooked(config["train"]), **{table: {name: entry}})


def lm_priority(wildcards):
    """Longer language-model trainings start first (epochs × corpora, their work in passes over
    a species' samples): started last, the longest one runs alone while a core waits."""
    epochs = EXPERIMENT_SETTINGS[wildcards.experiment]["train"]["epochs"]
    return epochs * len(experiment_species(wildcards.experiment))


def train_threads(wildcards):
    """CPUs of a training job on one node (each process gets train.cpus_per_process)."""
    key, t = training(wildcards)
    return t["cpus_per_process"] * train_processes(key, t)[0]


def train_resource(key):
    """A Slurm resource of a training job, from its own model's train section (None: the
    job has none of it). Memory grows with each retry; runtime does not: a job that runs out
    of time resumes from its checkpoint when retried. GPUs are the job's total (one task per
    GPU); srun launches carry nodes, tasks and `mpi`, which makes the jobstep plugin run the
    shell as it is instead of inside `srun -n1`. cpus_per_task is set here, not left to a
    profile's default: the plugin books it before cpus_per_gpu."""

    def value(wildcards, attempt):
        name, t = training(wildcards)
        per_node, nodes, srun = train_processes(name, t)
        values = {
            "mem_mb": t["mem_mb"] * attempt,
            "runtime": t["runtime_minutes"],
            "gpu": per_node * nodes if t["gpus"] else None,
            "mpi": "srun" if srun else None,
            "nodes": nodes if srun else None,
            "tasks": per_node * nodes if srun else None,
            "tasks_per_gpu": 1 if srun and t["gpus"] else None,
            # one srun task per process, or one task holding all of torchrun's processes
            "cpus_per_task": t["cpus_per_process"] * (1 if srun else per_node),
        }
        return values[key]

    return value


TRAIN_RESOURCES = ("mem_mb", "runtime", "gpu", "mpi", "nodes", "tasks", "tasks_per_gpu",
                   "cpus_per_task")  # fmt: skip


# --- expression autoencoders ----------------------------------------------------------------

AUTOENCODERS = config["autoencoders"]
AUTOENCODER_SETTINGS = {
    name: experiment_settings(config, name, "autoencoders") for name in AUTOENCODERS
}
for name, entry in AUTOENCODERS.items():
    if entry["species"] not in SPECIES:
        raise WorkflowError(
            f"autoencoders.{name}.species: {entry['species']} is not among species {SPECIES}"
        )
PERTURBATION = config["perturbation"]
REQUESTS = PERTURBATION["requests"]
STUDIES = config["master_regulators"]["studies"]
# What the perturbation and master-regulator jobs read of the config (not the requests or
# studies they are not: adding one does not redo the others).
PERTURBATION_SETTINGS = {k: v for k, v in PERTURBATION.items() if k != "requests"}
MASTER_SETTINGS = {k: v for k, v in config["master_regulators"].items() if k != "studies"}


def autoencoder_corpus(wildcards):
    return results(f"corpus/{AUTOENCODERS[wildcards.autoencoder]['species']}")


def autoencoder_compendium(wildcards):
    """The compendium whose sample metadata selects a perturbation's samples."""
    return compendium(AUTOENCODERS[wildcards.autoencoder]["species"])


def virtual_inputs(wildcards):
    """What a virtual-experiment job reads: the autoencoder, its PCA baseline, its compendium."""
    model = results(f"autoencoders/{wildcards.autoencoder}")
    return {
        "weights": f"{model}/model.safetensors",
        "genes": f"{model}/genes.parquet",
        "linear": f"{model}/linear.safetensors",
        "compendium": autoencoder_compendium(wildcards),
    }


# --- splicing factors → isoforms ------------------------------------------------------------

SPLICING = config["splicing"]
SPLICING_MODELS = config["splicing_models"]
SPLICING_SETTINGS = {
    name: experiment_settings(config, name, "splicing_models") for name in SPLICING_MODELS
}
SPLICING_SPECIES = SPLICING["species"]
# What the data job reads (not the analysis settings: a new reference redoes no data set).
SPLICING_DATA_SETTINGS = {
    k: v for k, v in SPLICING.items()
    if k not in ("deeplift", "validation", "validation_reference", "ridge_alpha",
                 "branch_autoencoder")
}  # fmt: skip
if SPLICING_MODELS and SPLICING_SPECIES not in SPECIES:
    raise WorkflowError(f"splicing.species: {SPLICING_SPECIES} is not among species {SPECIES}")
BRANCH_MODELS = [n for n, s in SPLICING_SETTINGS.items() if s["splicing_network"]["branch"]]
if BRANCH_MODELS:
    branch = SPLICING["branch_autoencoder"]
    if branch not in AUTOENCODERS:
        raise WorkflowError(
            f"splicing_models.{BRANCH_MODELS[0]}: branch: true needs splicing.branch_autoencoder, "
            f"an autoencoder of autoencoders ({', '.join(AUTOENCODERS) or 'none configured'}), "
            f"not {branch!r}"
        )
    if AUTOENCODERS[branch]["species"] != SPLICING_SPECIES:
        raise WorkflowError(
            f"splicing.branch_autoencoder: {branch} is a model of "
            f"{AUTOENCODERS[branch]['species']}, the splicing stage reads {SPLICING_SPECIES}"
        )


def splicing_edges():
    """The known SF → target edges the scores are validated against: the configured table,
    else the demo's planted edges, else none."""
    if SPLICING["validation"]:
        return configured_file("splicing.validation", SPLICING["validation"])
    if config["source"] == "demo":
        return str(DEMO_FILES["splicing"])
    return None


def splicing_train_inputs(wildcards):
    files = {"data": results("splicing/data")}
    if wildcards.splicing_model in BRANCH_MODELS:
        files["branch"] = results(
            f"autoencoders/{SPLICING['branch_autoencoder']}/model.safetensors"
        )
    return files


# an impossible launch is an error at once, not when the job starts
for name, settings in EXPERIMENT_SETTINGS.items():
    train_processes(f"experiments.{name}", settings["train"])
for name, settings in AUTOENCODER_SETTINGS.items():
    train_processes(f"autoencoders.{name}", settings["train"])
for name, settings in SPLICING_SETTINGS.items():
    train_processes(f"splicing_models.{name}", settings["train"])


# --- classifiers and lncRNA transfer -------------------------------------------------------

REFERENCE_EXPERIMENT = config["classifiers"]["reference"] or next(iter(SINGLE_EXPERIMENTS), None)
if REFERENCE_EXPERIMENT is not None and REFERENCE_EXPERIMENT not in EXPERIMENTS:
    raise WorkflowError(
        f"classifiers.reference: {REFERENCE_EXPERIMENT} is not an experiment "
        f"({', '.join(EXPERIMENTS) or 'none configured'})"
    )
if REFERENCE_EXPERIMENT in JOINT_EXPERIMENTS:
    raise WorkflowError(
        f"classifiers.reference: {REFERENCE_EXPERIMENT} is a joint experiment (two species or "
        "pseudo_species); the classifiers and baselines need one species' genes: name a "
        f"single-species experiment ({', '.join(SINGLE_EXPERIMENTS) or 'none configured'})"
    )
EMBEDDINGS = (
    [*SINGLE_EXPERIMENTS, *(f"baseline_{b}" for b in config["classifiers"]["baselines"])]
    if SINGLE_EXPERIMENTS
    else []
)


def embedding_species(embedding):
    """Whose genes an embedding holds (a baseline: its reference experiment's)."""
    name = REFERENCE_EXPERIMENT if embedding.startswith("baseline_") else embedding
    return EXPERIMENTS[name]["species"]


# The comparison pairs labels across embeddings of one species: the reference's, whose genes the
# baselines are made of. Experiments of the other species are scored (metrics) but not paired.
COMPARED = [
    e for e in EMBEDDINGS if embedding_species(e) == embedding_species(REFERENCE_EXPERIMENT)
]
# Label counts per species, on its first experiment (for mouse: what the 1:1 orthologs keep).
COUNTED = {}
for name in SINGLE_EXPERIMENTS:
    COUNTED.setdefault(EXPERIMENTS[name]["species"], name)


def has_lncrnas_to_predict(name):
    """Whether an experiment's embedding holds lncRNAs that the classifiers do not train on:
    only those get the lncRNA transfer (a coding-only experiment has nothing to predict)."""
    vocabulary = set(config["genes"]["biotypes"]) & set(
        EXPERIMENTS[name]["biotypes"] or config["genes"]["biotypes"]
    )
    return "lncRNA" in vocabulary and "lncRNA" not in config["classifiers"]["train_biotypes"]


TRANSFER_EXPERIMENTS = [name for name in SINGLE_EXPERIMENTS if has_lncrnas_to_predict(name)]
# The clustering benchmark scores the compared embeddings on the classifiers' labels.
CLUSTERING = config["clustering"]["enabled"] and bool(SINGLE_EXPERIMENTS)


def planted_programs():
    """The demo's planted programs, when they are labels too."""
    return config["classifiers"]["planted_programs"] and config["source"] == "demo"


def classifier_inputs(wildcards, embedding=None):
    """An embedding and its labels: the annotation labels (human genes, mapped through the 1:1
    orthologs for a mouse embedding) and, on the demo, the planted programs and modules."""
    embedding = embedding or wildcards.embedding
    files = {
        "embedding": results(f"embeddings/{embedding}.parquet"),
        "labels": f"{LABELS_DIR}/labels.parquet",
    }
    if planted_programs():
        files["programs"] = f"{SOURCE_DIR}/truth/programs.parquet"
        files["modules"] = f"{SOURCE_DIR}/truth/modules.parquet"
    if embedding_species(embedding) == "mouse":
        files["orthologs"] = f"{ANNOTATION}/orthologs.parquet"
    return files


def classifier_label_args(embedding, input):
    """The label options of a classifier command on `embedding`, from its inputs."""
    args = [f"--species {embedding_species(embedding)}", f"--labels {input.labels}"]
    args += [
        f"--{name} {getattr(input, name)}"
        for name in ("programs", "modules", "orthologs")
        if hasattr(input, name)
    ]
    return " ".join(args)


# --- the human–mouse comparison -----------------------------------------------------------

HUMAN_MOUSE = config["human_mouse"]
COMPARISONS = HUMAN_MOUSE["comparisons"]
# What an alignment job reads (not the comparisons list nor the DNA settings: adding a
# comparison, or another CDS address, does not redo the others).
ALIGNMENT_SETTINGS = {k: v for k, v in HUMAN_MOUSE.items() if k not in ("comparisons", "dna")}
# The tables of one comparison (gexnet.analysis.human_mouse.TABLES, which rules do not import).
COMPARISON_TABLES = ("pairs", "methods", "curve", "mappings", "refinements", "pca", "groups")


def comparison_embeddings(name):
    """The embeddings a comparison reads: human then mouse, or its one joint embedding."""
    entry, key = COMPARISONS[name], f"human_mouse.comparisons.{name}"
    if not (set(entry) == {"human", "mouse"} or set(entry) == {"experiment"}):
        raise WorkflowError(
            f"{key}: give human and mouse (two separate models) or experiment (one model of "
            f"both species, or a pseudo-species control), not {sorted(entry) or 'nothing'}"
        )
    for side, experiment_name in entry.items():
        if experiment_name not in EXPERIMENTS:
            raise WorkflowError(
                f"{key}.{side}: {experiment_name} is not an experiment ({', '.join(EXPERIMENTS)})"
            )
        species = EXPERIMENTS[experiment_name]["species"]
        if side != "experiment" and (species != side or joint_kind(experiment_name)):
            raise WorkflowError(
                f"{key}.{side}: experiment {experiment_name} is a model of {species}"
                f"{' (pseudo-species)' if joint_kind(experiment_name) == 'pseudo' else ''}, "
                f"not of {side} alone"
            )
        if side == "experiment" and joint_kind(experiment_name) is None:
            raise WorkflowError(
                f"{key}.experiment: experiment {experiment_name} holds {species} only; one "
                "embedding is compared when its model holds both species (species: [human, "
                "mouse]) or is a pseudo-species control (pseudo_species: true)"
            )
    return [results(f"embeddings/{e}.parquet") for e in entry.values()]


for name in COMPARISONS:  # a wrong comparison is an error at once
    comparison_embeddings(name)


def needs_dna(name):
    """Whether a comparison pairs real species (the pseudo-species control has no DNA side)."""
    entry = COMPARISONS[name]
    return "experiment" not in entry or joint_kind(entry["experiment"]) == "joint"


DNA_SHARDS = range(HUMAN_MOUSE["dna"]["shards"])
CDS_URLS = {}  # download path -> address, for download_cds


def cds_file(species):
    """A species' CDS FASTA: the demo's, a configured file, or a download (a folder named by
    its address, as label downloads)."""
    if config["source"] == "demo":
        return str(DEMO_FILES[f"{species}_cds"])
    given = HUMAN_MOUSE["dna"]["cds_files"].get(species)
    if given:
        return configured_file(f"human_mouse.dna.cds_files.{species}", given)
    url = HUMAN_MOUSE["dna"]["cds_urls"][species]
    name = Path(url.split("?")[0]).name or f"{species}_cds.fa.gz"
    path = f"{RESOURCES}/cds/{layout.settings_key({'url': url})}/{name}"
    CDS_URLS[path] = (species, url)
    return path


def comparison_inputs(wildcards):
    files = {
        "embeddings": comparison_embeddings(wildcards.comparison),
        "orthologs": f"{ANNOTATION}/orthologs.parquet",
    }
    if needs_dna(wildcards.comparison):
        files["dna"] = results("human_mouse/dna_similarity.parquet")
    return files


EXPLORER = config["explorer"]


def explorer_pages():
    """Page name -> the embedding table it shows: every experiment's (by its name), and every
    separate-models comparison's aligned pair (aligned_<comparison>); explorer.pages picks."""
    pages = {e: results(f"embeddings/{e}.parquet") for e in EXPERIMENTS}
    for name, entry in COMPARISONS.items():
        if "experiment" not in entry:
            pages[f"aligned_{name}"] = results(f"explorer/aligned/{name}.parquet")
    chosen = EXPLORER["pages"]
    if chosen is None:
        return pages
    known = list(EXPERIMENTS) + [c for c in COMPARISONS if "experiment" not in COMPARISONS[c]]
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise WorkflowError(
            f"explorer.pages: {', '.join(unknown)} is not an experiment nor a separate-models "
            f"comparison ({', '.join(known) or 'none'})"
        )
    return {
        p if p in EXPERIMENTS else f"aligned_{p}": pages[p if p in EXPERIMENTS else f"aligned_{p}"]
        for p in chosen
    }


EXPLORER_PAGES = explorer_pages()
# The maps of the pages and of every experiment (the figures draw each experiment's).
MAPS = {**{e: results(f"embeddings/{e}.parquet") for e in EXPERIMENTS}, **EXPLORER_PAGES}


# --- figures and the report ---------------------------------------------------------------


def paper_figures():
    """Figure name -> its kind, subject, tables (role -> paths) and drawing options, for
    every stage the config runs."""
    figures = {}

    def add(kind, subject="", options=None, **tables):
        name = f"{kind}_{subject}" if subject else kind
        figures[name] = {
            "name": name,
            "kind": kind,
            "subject": subject,
            "tables": {r: [p] if isinstance(p, str) else list(p) for r, p in tables.items()},
            "options": options or {},
        }

    thresholds = ("min_total_counts", "max_singlecell_probability", "min_detected_genes")
    for species in SPECIES:
        add(
            "qc_metrics",
            species,
            {"thresholds": {k: QC[k] for k in thresholds}, "title": f"{species} sample QC"},
            table=results(f"qc/{species}_samples.parquet"),
        )
    if EXPERIMENTS:
        add(
            "lm_loss",
            options={
                "names": list(EXPERIMENTS),
                "objectives": [EXPERIMENTS[e]["objective"] for e in EXPERIMENTS],
            },
            steps=[results(f"models/{e}/metrics.tsv") for e in EXPERIMENTS],
            validation=[results(f"models/{e}/validation.tsv") for e in EXPERIMENTS],
        )
    if SINGLE_EXPERIMENTS:
        add(
            "classifier_auroc",
            options={"reference": REFERENCE_EXPERIMENT},
            auroc=results("classifiers/auroc.parquet"),
            comparison=results("classifiers/comparison.tsv"),
        )
    if CLUSTERING:
        add("clustering", trials=results("clustering/trials.parquet"))
    for experiment in TRANSFER_EXPERIMENTS:
        add(
            "lncrna_transfer",
            experiment,
            top=results(f"lncrna/{experiment}/top_properties.tsv"),
            labels=results(f"lncrna/{experiment}/labels.tsv"),
        )
    for experiment in EXPERIMENTS:
        truth = {"programs": f"{SOURCE_DIR}/truth/programs.parquet"} if DEMO else {}
        add(
            "gene_map",
            experiment,
            {"name": experiment},
            genes=results(f"explorer/maps/{experiment}.parquet"),
            **truth,
        )
    for comparison in COMPARISONS:
        pca, pairs, curve, groups = (
            results(f"human_mouse/{comparison}/{name}.parquet")
            for name in ("pca", "pairs", "curve", "groups")
        )
        add("species_pca", comparison, pca=pca)
        add("ortholog_ranks", comparison, pairs=pairs)
        add("dictionary_curve", comparison, curve=curve)
        add("rna_dna_groups", comparison, pairs=pairs, groups=groups)
    for name, settings in AUTOENCODERS.items():
        folder = results(f"autoencoders/{name}")
        add(
            "autoencoder_loss",
            name,
            steps=f"{folder}/metrics.tsv",
            validation=f"{folder}/validation.tsv",
        )
        add("reconstruction_density", name, density=f"{folder}/reconstruction/density.parquet")
        add("reconstruction_ranges", name, ranges=f"{folder}/reconstruction/ranges.parquet")
        if not settings["virtual_experiments"]:
            continue
        if PERTURBATION["systematic_knockout"]:
            add(
                "knockout_effects",
                name,
                summary=results(f"perturbation/{name}/knockouts/summary.parquet"),
            )
        for study in STUDIES:
            folder = results(f"master_regulators/{name}/{study}")
            add("master_regulator_genes", f"{name}_{study}", genes=f"{folder}/genes.parquet")
            add("master_regulator_pairs", f"{name}_{study}", pairs=f"{folder}/pairs.parquet")
    if SPLICING_MODELS:
        add("splicing_quality", isoforms=results("splicing/quality/isoforms.parquet"))
        deeplift = SPLICING["deeplift"]
        for model in SPLICING_MODELS:
            add(
                "splicing_heatmap",
                model,
                {
                    "reference": SPLICING["validation_reference"],
                    "factors": deeplift["heatmap_factors"],
                    "top_genes": deeplift["heatmap_genes"],
                },
                genes=results(f"splicing/{model}/attribution/genes.parquet"),
            )
        if splicing_edges():
            add(
                "splicing_validation",
                options={"names": list(SPLICING_MODELS)},
                validation=[results(f"splicing/{m}/validation_auroc.tsv") for m in SPLICING_MODELS],
            )
    return figures


def figure_tables(wildcards):
    return FIGURES[wildcards.figure]["tables"]


def figure_caption(wildcards):
    """The report's caption of a figure: its kind's text (rules/report/figures/<kind>.rst)."""
    kind = FIGURES[wildcards.figure]["kind"]
    return Path(workflow.source_path(f"report/figures/{kind}.rst")).read_text()


def planted_tables():
    """The summary tables the demo's planted-truth checks read: (role, path) pairs."""
    tables = [("qc", results(f"qc/{s}_samples.parquet")) for s in SPECIES]
    if SINGLE_EXPERIMENTS:
        tables.append(("comparison", results("classifiers/comparison.tsv")))
    if CLUSTERING:
        tables.append(("clustering", results("clustering/summary.tsv")))
    for e in TRANSFER_EXPERIMENTS:
        tables.append(
            (f"lncrna:{embedding_species(e)}:{e}", results(f"lncrna/{e}/predictions.parquet"))
        )
    if SPLICING_MODELS and splicing_edges():
        tables.append(("splicing", results("splicing/summary.tsv")))
    return tables


def all_targets():
    targets = expand(results("corpus/{species}_corpus.tsv"), species=SPECIES)
    targets += expand(results("embeddings/{experiment}.parquet"), experiment=EXPERIMENTS)
    if SINGLE_EXPERIMENTS:
        targets.append(results("classifiers/comparison.tsv"))
        targets += expand(results("classifiers/{embedding}/metrics.parquet"), embedding=EMBEDDINGS)
        targets += expand(results("classifiers/label_counts_{species}.tsv"), species=COUNTED)
    if CLUSTERING:
        targets.append(results("clustering/summary.tsv"))
    targets += expand(
        results("lncrna/{embedding}/top_properties.tsv"), embedding=TRANSFER_EXPERIMENTS
    )
    if COMPARISONS:
        targets.append(results("human_mouse/summary.tsv"))
        targets += expand(
            results("human_mouse/{comparison}/methods.parquet"), comparison=COMPARISONS
        )
    if AUTOENCODERS:
        targets.append(results("autoencoders/reconstruction.tsv"))
        virtual = [n for n, a in AUTOENCODERS.items() if a["virtual_experiments"]]
        if PERTURBATION["systematic_knockout"]:
            targets += expand(
                results("perturbation/{autoencoder}/knockouts.tsv"), autoencoder=virtual
            )
        targets += expand(
            results("perturbation/{autoencoder}/requests/{request}.tsv"),
            autoencoder=virtual,
            request=REQUESTS,
        )
        targets += expand(
            results("master_regulators/{autoencoder}/{study}.tsv"),
            autoencoder=virtual,
            study=STUDIES,
        )
    if SPLICING_MODELS:
        targets.append(results("splicing/summary.tsv"))
        targets += expand(
            results("splicing/{splicing_model}/attribution/top_targets.tsv"),
            splicing_model=SPLICING_MODELS,
        )
    targets += expand(results("explorer/{page}/index.html"), page=EXPLORER_PAGES)
    targets += expand(results("figures/{figure}.{ext}"), figure=FIGURES, ext=("pdf", "png"))
    targets.append(results("figures/index.tsv"))
    targets += ANNOTATION_FILES
    if config["source"] == "demo":
        targets += list(DEMO_FILES.values())
        targets.append(results("planted_truth.tsv"))
    targets.append(results("config.yaml"))
    return targets
