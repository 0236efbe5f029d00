"""Which samples an analysis runs on: a model's samples (corpus rows, with their split) joined to
the compendium's sample metadata, selected by split, series, accessions and regular expressions
on any metadata column, as the config's selections say (`perturbation.samples`, a request's
`samples`, a study's `start` and `goal`).

Every selection reports what it kept and what each condition removed; an empty one is an
error naming the selection and its conditions.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError
from gexnet.formats.archs4 import Archs4File

log = logging.getLogger(__name__)

SELECTION_STREAM = 0x534C


def with_metadata(samples: pd.DataFrame, compendium) -> pd.DataFrame:
    """A model's samples (geo_accession, series_id, split, row) with every metadata field of the
    compendium they came from (the model's own columns win)."""
    with Archs4File(compendium) as f:
        meta = f.samples()
    meta = meta.drop(columns=[c for c in samples.columns if c in meta.columns and
                              c != "geo_accession"])  # fmt: skip
    joined = samples.merge(meta, on="geo_accession", how="left", validate="one_to_one",
                           indicator=True)  # fmt: skip
    missing = (joined.pop("_merge") == "left_only").to_numpy()
    if missing.any():
        raise GexnetError(
            f"{compendium}: {int(missing.sum())} of the model's samples are not in it (first: "
            f"{joined.loc[missing, 'geo_accession'].iloc[0]}); give the compendium the model "
            "was trained on"
        )
    return joined


def matches(samples: pd.DataFrame, where: dict[str, str], what: str) -> np.ndarray:
    """Samples whose every named metadata column matches its regular expression (re.search)."""
    keep = np.ones(len(samples), bool)
    for column, pattern in where.items():
        if column not in samples.columns:
            known = ", ".join(c for c in samples.columns if c != "row")
            raise GexnetError(f"{what}: no sample metadata column {column!r} (there are: {known})")
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise GexnetError(
                f"{what}.{column}: {pattern!r} is not a regular expression ({e})"
            ) from None
        keep &= samples[column].astype(str).str.contains(regex, regex=True).to_numpy()
    return keep


def select(samples: pd.DataFrame, spec: dict, seed: int, what: str) -> pd.DataFrame:
    """The samples of a selection {split, series, where, samples, max_samples} (any left out:
    no condition), in corpus row order; logs what each condition removed."""
    keep = np.ones(len(samples), bool)
    removed = {}

    def condition(name: str, mask: np.ndarray) -> None:
        nonlocal keep
        removed[name] = int((keep & ~mask).sum())
        keep &= mask

    if spec.get("split", "all") != "all":
        condition(f"split {spec['split']}", (samples["split"] == spec["split"]).to_numpy())
    if spec.get("series"):
        unknown = sorted(set(spec["series"]) - set(samples["series_id"]))
        if unknown:
            raise GexnetError(f"{what}.series: {', '.join(unknown)} not among the model's samples")
        condition("series", samples["series_id"].isin(spec["series"]).to_numpy())
    if spec.get("samples"):
        unknown = sorted(set(spec["samples"]) - set(samples["geo_accession"]))
        if unknown:
            raise GexnetError(f"{what}.samples: {', '.join(unknown)} not among the model's samples")
        condition("samples", samples["geo_accession"].isin(spec["samples"]).to_numpy())
    if spec.get("where"):
        condition("where", matches(samples, spec["where"], f"{what}.where"))
    chosen = np.flatnonzero(keep)
    if len(chosen) == 0:
        conditions = {k: v for k, v in spec.items() if v not in (None, {}, [], "all", 0)}
        raise GexnetError(f"{what}: no sample is selected by {conditions} (removed: {removed})")
    limit = spec.get("max_samples") or 0
    if limit and len(chosen) > limit:
        rng = np.random.default_rng([seed, SELECTION_STREAM])
        removed["max_samples"] = len(chosen) - limit
        chosen = np.sort(rng.choice(chosen, limit, replace=False))
    log.info("%s: %d samples selected; removed by %s", what, len(chosen), removed)
    return samples.iloc[chosen].sort_values("row").reset_index(drop=True)
