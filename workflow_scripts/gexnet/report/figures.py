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


# --- the human–mouse comparison (tables of gexnet.analysis.human_mouse) -----------------------

# Okabe–Ito colours, distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def species_pca(pca: pd.DataFrame, path: str | Path) -> None:
    """Both species' vectors on their first two principal components, before and after the
    alignment, coloured by species (the pca table)."""
    stages = [s for s in ("before", "after") if s in set(pca["stage"])]
    fig, axes = plt.subplots(1, len(stages), figsize=(3.4 * len(stages), 3.2), squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=True):
        part = pca[pca["stage"] == stage]
        for colour, (species, rows) in zip(
            PALETTE, part.groupby("species", sort=False), strict=False
        ):
            ax.scatter(rows["pc1"], rows["pc2"], s=2, alpha=0.4, color=colour, lw=0,
                       label=f"{species} ({len(rows):,})", rasterized=True)  # fmt: skip
        ax.set_title(f"{stage} alignment", fontsize=9)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    axes[0, 0].legend(frameon=False, fontsize=7, markerscale=4)
    fig.tight_layout()
    save(fig, path)


def ortholog_ranks(pairs: pd.DataFrame, path: str | Path) -> None:
    """Histograms of the true ortholog's cosine rank (human → mouse) per method, on a log axis;
    held-out pairs and all pairs side by side (the pairs table)."""
    top = max(int(pairs["cosine_rank_human_to_mouse"].max()), 10)
    bins = np.unique(np.round(np.logspace(0, np.log10(top + 1), 30)))
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.0), sharex=True, squeeze=False)
    for ax, (title, subset) in zip(
        axes[0],
        (("held-out pairs", pairs[pairs["split"] == "held_out"]), ("all pairs", pairs)),
        strict=True,
    ):
        for colour, (method, rows) in zip(
            PALETTE, subset.groupby("method", sort=False), strict=False
        ):
            ranks = rows["cosine_rank_human_to_mouse"]
            share = (ranks == 1).mean()
            ax.hist(ranks, bins=bins, histtype="step", color=colour, lw=1.2,
                    label=f"{method} (rank 1: {share:.1%})")  # fmt: skip
        ax.set_xscale("log")
        ax.set_title(f"{title} ({subset[['human_gene_id']].drop_duplicates().shape[0]:,})",
                     fontsize=9)  # fmt: skip
        ax.set_xlabel("true ortholog's rank (human → mouse)")
        ax.set_ylabel("pairs")
        ax.legend(frameon=False, fontsize=6)
    fig.tight_layout()
    save(fig, path)


def dictionary_curve(curve: pd.DataFrame, path: str | Path) -> None:
    """Rank-1, top-10 and top-100 rates of the held-out pairs against the share of the training
    dictionary used (the curve table; cosine, both directions)."""
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    rows = curve[curve["measure"] == "cosine"]
    styles = {"human_to_mouse": "-", "mouse_to_human": "--"}
    names = {"rank1": "rank 1", "top10": "top 10", "top100": "top 100"}
    for colour, (rate, name) in zip(PALETTE, names.items(), strict=False):
        for direction, line in styles.items():
            part = rows[rows["direction"] == direction].sort_values("fraction")
            ax.plot(part["fraction"], part[rate], line, marker="o", ms=3, color=colour,
                    label=f"{name}, {direction.replace('_to_', ' → ')}")  # fmt: skip
    ax.set_xlabel("share of the training dictionary")
    ax.set_ylabel("share of held-out pairs")
    top = rows[list(names)].to_numpy(float).max() if len(rows) else 1.0
    ax.set_ylim(0, min(1.0, max(0.05, 1.15 * top)))  # small rates stay readable
    ax.legend(frameon=False, fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    save(fig, path)


def rna_dna_groups(pairs: pd.DataFrame, groups: pd.DataFrame, path: str | Path) -> None:
    """Each pair's DNA similarity against its RNA-level rank (the groups' method), the four
    RNA × DNA groups coloured and counted (the pairs and groups tables)."""
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    if groups.empty:
        ax.text(0.5, 0.5, "no DNA similarity", transform=ax.transAxes, ha="center")
        save(fig, path)
        return
    method = groups["method"].iloc[0]
    rows = pairs[(pairs["method"] == method) & pairs["dna_similarity"].notna()]
    names = [f"{r}_rna_{d}_dna" for r in ("high", "low") for d in ("high", "low")]
    sizes = {f"{r}_rna_{d}_dna": n for r, d, n in groups[["rna", "dna", "pairs"]].itertuples(False)}
    middle = rows[rows["group"].isna()]
    ax.scatter(middle["cosine_rank_human_to_mouse"], middle["dna_similarity"], s=3, lw=0,
               color="#BBBBBB", label=f"between ({len(middle):,})", rasterized=True)  # fmt: skip
    for colour, name in zip(PALETTE, names, strict=False):
        part = rows[rows["group"] == name]
        ax.scatter(part["cosine_rank_human_to_mouse"], part["dna_similarity"], s=3, lw=0,
                   color=colour, label=f"{name.replace('_', ' ')} ({sizes.get(name, 0):,})",
                   rasterized=True)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel(f"ortholog rank, RNA ({method}, human → mouse)")
    ax.set_ylabel("DNA similarity (score / mean length)")
    ax.legend(frameon=False, fontsize=6, markerscale=3)
    fig.tight_layout()
    save(fig, path)


MODEL_COLOURS = {"autoencoder": "#4C72B0", "pca": "#DD8452", "gene_mean": "#8C8C8C"}
MODEL_NAMES = {"autoencoder": "autoencoder", "pca": "PCA (same latent size)",
               "gene_mean": "gene means"}  # fmt: skip


def autoencoder_loss(steps: pd.DataFrame, validation: pd.DataFrame, path: str | Path) -> None:
    """Training loss (mean of each epoch's steps) and validation loss by epoch."""
    fig, ax = plt.subplots(figsize=(5, 3.4), constrained_layout=True)
    by_epoch = steps.groupby("epoch")["loss"].mean()
    ax.plot(
        by_epoch.index + 1,
        by_epoch.to_numpy(),
        marker="o",
        ms=3,
        label="training (corrupted inputs)",
    )
    ax.plot(validation["epoch"] + 1, validation["validation_loss"], marker="o", ms=3,
            label="validation (held-out series)")  # fmt: skip
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("mean squared error (scaled units)")
    ax.legend(frameon=False)
    save(fig, path)


def reconstruction_density(density: pd.DataFrame, path: str | Path) -> None:
    """Predicted against observed held-out values (log10), a 2-D histogram per model."""
    models = [m for m in ("autoencoder", "pca") if m in set(density["model"])]
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.8),
                             constrained_layout=True, squeeze=False)  # fmt: skip
    # the table holds the bin centres of a square grid from 0: draw that grid as it is
    step = float(density["width"].iloc[0])
    n = round(max(density["observed"].max(), density["predicted"].max()) / step + 0.5)
    top = n * step
    for ax, model in zip(axes[0], models, strict=True):
        d = density[density["model"] == model]
        grid = np.zeros((n, n))
        i = np.round(d["observed"].to_numpy() / step - 0.5).astype(int)
        j = np.round(d["predicted"].to_numpy() / step - 0.5).astype(int)
        grid[j, i] = d["count"].to_numpy()
        edges = np.arange(n + 1) * step
        mesh = ax.pcolormesh(edges, edges, np.ma.masked_equal(grid, 0), cmap="viridis",
                             norm=matplotlib.colors.LogNorm())  # fmt: skip
        h = (None, None, None, mesh)
        ax.plot([0, top], [0, top], color="white", lw=0.8, ls="--")
        ax.set_xlabel("observed (log10 scaled count + 1)")
        ax.set_ylabel("predicted")
        ax.set_title(MODEL_NAMES[model])
        fig.colorbar(h[3], ax=ax, label="values")
    save(fig, path)


def reconstruction_ranges(ranges: pd.DataFrame, path: str | Path) -> None:
    """Mean absolute error and R² within each observed-value range, per model."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    labels = list(dict.fromkeys(ranges["range"]))
    models = list(dict.fromkeys(ranges["model"]))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        r = ranges[ranges["model"] == model].set_index("range").loc[labels]
        x = np.arange(len(labels)) + (i - (len(models) - 1) / 2) * width
        for ax, column in zip(axes, ("mae", "r2"), strict=True):
            ax.bar(
                x,
                r[column],
                width,
                color=MODEL_COLOURS.get(model),
                label=MODEL_NAMES.get(model, model),
            )
    for ax, label in zip(axes, ("mean absolute error (log10)", "R² within the range"), strict=True):
        ax.set_xticks(np.arange(len(labels)), labels)
        ax.set_xlabel("observed value range (log10 scaled count + 1)")
        ax.set_ylabel(label)
    axes[1].axhline(0, color="black", lw=0.6)
    axes[1].set_yscale("symlog", linthresh=1.0)  # low ranges go far below 0
    axes[0].legend(frameon=False)
    save(fig, path)


def knockout_effects(summary: pd.DataFrame, path: str | Path, label: int = 8) -> None:
    """Every gene's knockout: its score (mean |change| of the other genes) by the autoencoder
    against the linear baseline, the strongest by the autoencoder's null z named; and the
    number of genes each knockout affects, by model."""
    ae = summary[summary["model"] == "autoencoder"].set_index("perturbation")
    lin = summary[summary["model"] == "linear"].set_index("perturbation").loc[ae.index]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    ax = axes[0]
    ax.scatter(lin["score"], ae["score"], s=4, alpha=0.5, color=MODEL_COLOURS["autoencoder"],
               lw=0)  # fmt: skip
    for name in ae["z"].nlargest(label).index:
        ax.annotate(name, (lin.loc[name, "score"], ae.loc[name, "score"]), fontsize=7)
    top = float(max(ae["score"].max(), lin["score"].max())) * 1.05
    ax.plot([0, top], [0, top], color="grey", lw=0.6, ls="--")
    ax.set_xlabel("linear baseline: mean |change| (log10)")
    ax.set_ylabel("autoencoder: mean |change| (log10)")
    ax.set_title("knockout of each gene")
    ax = axes[1]
    most = int(max(ae["n_affected"].max(), lin["n_affected"].max()))
    bins = np.linspace(0, max(most, 1), 40)
    for model, table in (("autoencoder", ae), ("pca", lin)):
        ax.hist(table["n_affected"], bins=bins, alpha=0.6, color=MODEL_COLOURS[model],
                label="linear (PCA)" if model == "pca" else model)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("genes changed beyond the threshold")
    ax.set_ylabel("knockouts")
    ax.legend(frameon=False)
    save(fig, path)


def master_regulator_genes(genes: pd.DataFrame, path: str | Path, top: int = 15) -> None:
    """The genes most often among the start samples' top master regulators, by model (share of
    start samples, over every series of the study)."""
    models = [m for m in ("autoencoder", "linear") if m in set(genes["model"])]
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 0.25 * top + 1.2),
                             constrained_layout=True, squeeze=False)  # fmt: skip
    for ax, model in zip(axes[0], models, strict=True):
        g = genes[genes["model"] == model]
        starts = g.drop_duplicates("series_id")["start_samples"].sum()
        share = g.groupby("symbol")["n_top"].sum() / starts
        best = share.nlargest(top)[::-1]
        colour = MODEL_COLOURS["pca" if model == "linear" else model]
        ax.barh(best.index, best.to_numpy(), color=colour)
        ax.set_xlabel("share of start samples with the gene in their top")
        ax.set_title("linear baseline (PCA)" if model == "linear" else model)
        ax.tick_params(axis="y", labelsize=7)
    save(fig, path)


def splicing_quality(isoforms: pd.DataFrame, path: str | Path) -> None:
    """Per-isoform Spearman and Pearson correlation of predicted with observed log expression
    on the test samples, for every model and the two baselines (box per model)."""
    names = list(dict.fromkeys(isoforms["model"]))
    kinds = isoforms.drop_duplicates("model").set_index("model")["kind"]
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.3 * len(names) + 2), 3.6),
                             constrained_layout=True)  # fmt: skip
    for ax, column in zip(axes, ("spearman", "pearson"), strict=True):
        values = [isoforms.loc[isoforms["model"] == n, column].dropna().to_numpy() for n in names]
        box = ax.boxplot(values, showfliers=False, patch_artist=True)
        for patch, name in zip(box["boxes"], names, strict=True):
            patch.set_facecolor("#bbbbbb" if kinds[name] == "baseline" else "#4477aa")
        ax.set_xticks(np.arange(1, len(names) + 1), names, rotation=30, ha="right")
        ax.set_ylabel(f"{column.capitalize()} r per isoform (test samples)")
    axes[0].set_title("grey: baselines", fontsize=9, loc="left")
    save(fig, path)


def splicing_heatmap(genes: pd.DataFrame, path: str | Path, n_factors: int = 30,
                     n_genes: int = 40) -> None:  # fmt: skip
    """SF × gene t-statistics (one reference) of the SFs and genes with the largest |t|."""
    table = genes.pivot_table(index="factor", columns="symbol", values="t", aggfunc="first")
    peak = table.abs()
    factors = peak.max(axis=1).nlargest(n_factors).index
    chosen = peak.loc[factors].max(axis=0).nlargest(n_genes).index
    shown = table.loc[factors, chosen]
    limit = float(np.nanmax(np.abs(shown.to_numpy()))) or 1.0
    fig, ax = plt.subplots(figsize=(0.2 * len(chosen) + 2.5, 0.2 * len(factors) + 1.8),
                           constrained_layout=True)  # fmt: skip
    image = ax.imshow(shown.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(np.arange(len(chosen)), chosen, rotation=90, fontsize=6)
    ax.set_yticks(np.arange(len(factors)), factors, fontsize=6)
    ax.set_xlabel("gene (its isoform of largest |t|)")
    ax.set_ylabel("splicing factor")
    fig.colorbar(image, ax=ax, label="DeepLIFT t-statistic over test samples", shrink=0.6)
    save(fig, path)


def splicing_validation(validation: pd.DataFrame, path: str | Path) -> None:
    """Overall ROC-AUC for the known edges, per model, reference and score (bars); per-SF
    AUROCs as points."""
    validation = validation.assign(what=validation["reference"] + " reference, "
                                   + validation["score"].map(SCORE_NAMES))  # fmt: skip
    overall = validation[validation["factor"] == "all"]
    models = list(dict.fromkeys(overall["model"]))
    kinds = list(dict.fromkeys(overall["what"]))
    width = 0.8 / max(len(kinds), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(models) + 2.5), 3.6),
                           constrained_layout=True)  # fmt: skip
    colours = ("#4477aa", "#66ccee", "#ee6677", "#ccbb44", "#228833", "#aa3377")
    for j, kind in enumerate(kinds):
        x = np.arange(len(models)) + (j - (len(kinds) - 1) / 2) * width
        rows = overall[overall["what"] == kind].set_index("model").reindex(models)
        ax.bar(x, rows["auroc"], width, color=colours[j % len(colours)], label=kind)
        per = validation[(validation["factor"] != "all") & (validation["what"] == kind)]
        for i, model in enumerate(models):
            points = per.loc[per["model"] == model, "auroc"]
            ax.scatter(np.full(len(points), x[i]), points, s=4, color="black", zorder=3)
    ax.axhline(0.5, color="grey", lw=0.6, ls="--")
    ax.set_xticks(np.arange(len(models)), models, rotation=30, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("ROC-AUC for the known edges")
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    save(fig, path)


SCORE_NAMES = {"abs_t": "|t|", "mean_abs": "mean |attribution|"}
