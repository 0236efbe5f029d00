"""Where the workflow's inputs live, computed from the config alone (standard library only: the
rules import this when the Snakefile is parsed, and every cluster job parses it again).

A compendium that gexnet generates or converts (the demo, GEO series, your own matrix) depends on
settings, so it lives in a folder named by a digest of them: a run with other settings gets a
folder of its own and never overwrites another run's input, while runs with the same settings
share one. What a folder was made from is written inside it (the demo's settings.json, a
conversion's report). Downloads (ARCHS4 files, GEO series files, label libraries) depend on
their address only and are shared.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def settings_key(settings: dict) -> str:
    """A short digest of `settings` (canonical JSON): the name of what they generate."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def source_settings(config: dict, source: str | None = None) -> dict | None:
    """The settings a generated or converted compendium of `source` (default: the configured
    one) is made from; None for ARCHS4 downloads and files used in place."""
    source = source or config["source"]
    if source == "demo":
        return {key: config[key] for key in ("seed", "species", "simulate", "qc")}
    if source == "geo":
        return {"species": config["species"], "geo": config["geo"]}
    if source == "byo":
        return {"byo": config["byo"]}
    return None


def source_dir(config: dict, source: str | None = None) -> Path:
    """The folder of the compendia of `source` (default: the configured one; for ARCHS4, its
    download folder)."""
    source = source or config["source"]
    base = Path(config["resources_dir"]) / source
    settings = source_settings(config, source)
    return base if settings is None else base / settings_key(settings)


def label_settings(config: dict) -> dict:
    """What the gene-property label table is built from."""
    return {"annotations": config["annotations"]}
