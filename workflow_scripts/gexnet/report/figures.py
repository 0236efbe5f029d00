"""Figures from the stages' summary tables, drawn with matplotlib (no display) and written
atomically in the format the file's suffix names (SVG, PNG, PDF)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gexnet.formats.io import atomic_path


def save(fig, path: str | os.PathLike) -> None:
    """Write a figure atomically and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def qc_metrics(table: pd.DataFrame, thresholds: dict, path: str | os.PathLike, title: str) -> None:
    """Histograms of the three QC metrics (the per-sample QC table) with their thresholds."""

    panels = [
        (
            "total_counts",
            "total counts (log10)",
            np.log10(np.maximum(table["total_counts"], 1)),
            np.log10(thresholds["min_total_counts"]),
        ),
        (
            "singlecellprobability",
            "single-cell probability",
            table["singlecellprobability"],
            thresholds["max_singlecell_probability"],
        ),
        (
            "detected_genes",
            "detected genes",
            table["detected_genes"],
            thresholds["min_detected_genes"],
        ),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), constrained_layout=True)
    for ax, (_, label, values, cut) in zip(axes, panels, strict=True):
        values = np.asarray(values, dtype=float)
        unknown = np.isnan(values).sum()
        if unknown:  # GEO and own matrices carry no single-cell probability
            label += f" ({unknown:,} unknown)"
        if unknown < len(values):
            ax.hist(values[~np.isnan(values)], bins=60, color="#4C72B0")
        ax.axvline(cut, color="#C44E52", linestyle="--", label="threshold")
        ax.set_xlabel(label)
        ax.set_ylabel("samples (log scale)")
        ax.set_yscale("log")  # the few failing samples stay visible
    axes[0].legend(frameon=False)
    kept = int(table["kept"].sum())
    fig.suptitle(f"{title}: {kept:,} of {len(table):,} samples kept")
    save(fig, path)


def auroc_by_source(shared: dict[str, pd.DataFrame], reference: str, path: str | Path) -> None:
    """One panel per label source: the AUROC of its labels shared by all embeddings (a table
    per source: labels × embeddings), embeddings side by side (the reference in blue), chance
    at 0.5."""
    names = list(next(iter(shared.values())).columns)
    x = np.arange(len(names))
    fig, axes = plt.subplots(
        len(shared), 1, sharex=True, squeeze=False,
        figsize=(max(4.0, 0.65 * len(names) + 1.5), 1.8 * len(shared) + 1.0),
    )  # fmt: skip
    rng = np.random.default_rng(0)  # jitter of the dots only
    for ax, (source, auroc) in zip(axes[:, 0], shared.items(), strict=True):
        ax.axhline(0.5, color="grey", lw=0.8, ls="--", zorder=0)
        if len(auroc):
            boxes = ax.boxplot([auroc[n].to_numpy() for n in names], positions=x, widths=0.6,
                               showfliers=False, patch_artist=True,
                               medianprops={"color": "black"})  # fmt: skip
            for name, box in zip(names, boxes["boxes"], strict=True):
                box.set_facecolor("#56B4E9" if name == reference else "#DDDDDD")
            if len(auroc) <= 60:  # few labels: every one drawn, a box alone would hide them
                for i, name in enumerate(names):
                    jitter = rng.uniform(-0.15, 0.15, len(auroc))
                    ax.plot(i + jitter, auroc[name], ".", color="#333333", ms=3)
        else:
            ax.text(0.5, 0.5, "no label shared by all embeddings", transform=ax.transAxes,
                    ha="center", va="center", color="grey")  # fmt: skip
        ax.set_title(f"{source} ({len(auroc)} labels)", loc="left", fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_ylabel("AUROC")
    bottom = axes[-1, 0]
    bottom.set_xticks(x, names, rotation=30, ha="right")
    bottom.set_xlim(-0.6, len(names) - 0.4)
    fig.tight_layout()
    save(fig, path)
