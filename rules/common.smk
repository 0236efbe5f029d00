# Config validation, paths and helpers shared by every rule file.
import json
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
    if config["source"] == "demo":
        return f"{RESOURCES}/demo/{species}_{level}_demo.h5"
    local = config["archs4"]["local_files"].get(f"{species}_{level}")
    return local or f"{RESOURCES}/archs4/{species}_{level}_v{config['archs4']['version']}.h5"


def all_targets():
    targets = expand(results("qc/{species}_samples.parquet"), species=SPECIES)
    if config["source"] == "demo":
        targets += list(DEMO_FILES.values())
    return targets
