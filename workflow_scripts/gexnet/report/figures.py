"""Figures from the stages' summary tables: each function takes tables (DataFrames) and
settings and returns a matplotlib figure, drawn in the house style (gexnet.report.style) by
gexnet.report.catalogue, which knows each figure's tables and writes it as PDF and PNG."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gexnet.report.style import COLUMN, GREY, LIGHT, PAGE, PALETTE


def qc_metrics(table: pd.DataFrame, thresholds: dict, title: str):
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
    fig, axes = plt.subplots(1, 3, figsize=(PAGE, 2.2), constrained_layout=True)
    for ax, (_, label, values, cut) in zip(axes, panels, strict=True):
        values = np.asarray(values, dtype=float)
        unknown = np.isnan(values).sum()
        if unknown:  # GEO and own matrices carry no single-cell probability
            label += f" ({unknown:,} unknown)"
        if unknown < len(values):
            ax.hist(values[~np.isnan(values)], bins=60, color=PALETTE[0])
        ax.axvline(cut, color=PALETTE[5], linestyle="--", label="threshold")
        ax.set_xlabel(label)
        ax.set_ylabel("samples (log scale)")
        ax.set_yscale("log")  # the few failing samples stay visible
    axes[0].legend()
    kept = int(table["kept"].sum())
    fig.suptitle(f"{title}: {kept:,} of {len(table):,} samples kept")
    return fig


def lm_loss(steps: list[pd.DataFrame], validation: list[pd.DataFrame], names: list[str],
            objectives: list[str]):  # fmt: skip
    """Every gene language model's loss by epoch: validation (solid, held-out samples) and
    training (dashed, the mean of the epoch's steps), one panel per objective (their losses
    are over different targets and not comparable)."""
    kinds = list(dict.fromkeys(objectives))
    fig, axes = plt.subplots(1, len(kinds), figsize=(min(PAGE, COLUMN * 0.75 * len(kinds) + 0.8),
                                                      2.3), squeeze=False, constrained_layout=True)  # fmt: skip
    for ax, kind in zip(axes[0], kinds, strict=True):
        members = [i for i, o in enumerate(objectives) if o == kind]
        for colour, i in zip(PALETTE * 4, members, strict=False):
            train = steps[i].groupby("epoch")["loss"].mean()
            ax.plot(train.index + 1, train.to_numpy(), "--", color=colour, lw=0.8)
            ax.plot(validation[i]["epoch"] + 1, validation[i]["validation_loss"], "-o", ms=2.5,
                    color=colour, label=names[i])  # fmt: skip
        ax.set_title(kind, loc="left")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend()
    axes[0, 0].set_ylabel("cross-entropy per predicted token (nats)")
    return fig


def _p_text(p: float) -> str:
    return "" if not np.isfinite(p) else ("p<0.001" if p < 0.001 else f"p={p:.2g}")


def classifier_auroc(auroc: pd.DataFrame, comparison: pd.DataFrame, reference: str):
    """One panel per label source: the AUROC of its labels shared by all embeddings (the long
    table: source, label, embedding, auroc), embeddings side by side (the reference in blue,
    the baselines grey), each with its paired Wilcoxon p against the reference (the
    comparison table); chance at 0.5."""
    names = list(dict.fromkeys(auroc["embedding"]))
    sources = sorted(set(auroc["source"]))
    x = np.arange(len(names))
    fig, axes = plt.subplots(
        len(sources), 1, sharex=True, squeeze=False,
        figsize=(min(PAGE, max(COLUMN, 0.45 * len(names) + 1.2)), 1.3 * len(sources) + 0.8),
    )  # fmt: skip
    rng = np.random.default_rng(0)  # jitter of the dots only
    p_column = f"wilcoxon_p_vs_{reference}"
    for ax, source in zip(axes[:, 0], sources, strict=True):
        part = auroc[auroc["source"] == source].pivot(index="label", columns="embedding",
                                                       values="auroc")  # fmt: skip
        ax.axhline(0.5, color=GREY, lw=0.6, ls="--", zorder=0)
        boxes = ax.boxplot([part[n].to_numpy() for n in names], positions=x, widths=0.6,
                           showfliers=False, patch_artist=True,
                           medianprops={"color": "black"})  # fmt: skip
        for name, box in zip(names, boxes["boxes"], strict=True):
            colour = LIGHT if name.startswith("baseline_") else PALETTE[0] + "55"
            box.set_facecolor(PALETTE[4] if name == reference else colour)
        if len(part) <= 60:  # few labels: every one drawn, a box alone would hide them
            for i, name in enumerate(names):
                ax.plot(i + rng.uniform(-0.15, 0.15, len(part)), part[name], ".",
                        color="#333333", ms=2)  # fmt: skip
        rows = comparison[comparison["source"] == source].set_index("embedding")
        if p_column in rows:
            for i, name in enumerate(names):
                if name != reference and name in rows.index:
                    ax.text(i, 0.03, _p_text(rows.loc[name, p_column]), ha="center",
                            fontsize=5, color="#333333")  # fmt: skip
        ax.set_title(f"{source} ({len(part)} labels)", loc="left")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("AUROC (5-fold)")
    bottom = axes[-1, 0]
    bottom.set_xticks(x, names, rotation=30, ha="right")
    bottom.set_xlim(-0.6, len(names) - 0.4)
    fig.tight_layout()
    return fig


CLUSTER_METRICS = {"ari": "ARI", "nmi": "NMI", "fowlkes_mallows": "Fowlkes–Mallows"}


def clustering(trials: pd.DataFrame):
    """The clustering benchmark: per label source (columns) and score (rows), each embedding's
    scores over the trials (blue) beside the same trials on its shuffled vectors (grey)."""
    sources = sorted(set(trials["source"]))
    names = list(dict.fromkeys(trials["embedding"]))
    fig, axes = plt.subplots(len(CLUSTER_METRICS), len(sources), squeeze=False, sharex=True,
                             figsize=(min(PAGE, (0.3 * len(names) + 0.6) * len(sources)), 4.4),
                             constrained_layout=True)  # fmt: skip
    x = np.arange(len(names))
    for j, source in enumerate(sources):
        part = trials[trials["source"] == source]
        for i, (metric, label) in enumerate(CLUSTER_METRICS.items()):
            ax = axes[i, j]
            for null, offset, colour in ((False, -0.18, PALETTE[0]), (True, 0.18, LIGHT)):
                rows = part[part["null"] == null]
                values = [rows.loc[rows["embedding"] == n, metric].to_numpy() for n in names]
                box = ax.boxplot(values, positions=x + offset, widths=0.32, showfliers=False,
                                 patch_artist=True, medianprops={"color": "black"})  # fmt: skip
                for patch in box["boxes"]:
                    patch.set_facecolor(colour)
            ax.tick_params(axis="y", labelsize=5)
            if i == 0:
                ax.set_title(source, loc="left", fontsize=6)
            if j == 0:
                ax.set_ylabel(label)
        axes[-1, j].set_xticks(x, names, rotation=40, ha="right", fontsize=5)
    per = trials.groupby("source")["trial"].nunique()
    counts = f"{per.min()}" if per.min() == per.max() else f"{per.min()}–{per.max()}"
    fig.suptitle(f"{counts} trials per source; blue: the embedding's vectors, grey: the same "
                 "trials with its vectors shuffled", fontsize=6)  # fmt: skip
    return fig


def _categories(ax, x, y, groups: pd.Series, order: list, rest: str | None = None) -> None:
    """Scatter points by category: colours of the palette, then marker shapes once the
    colours run out; `rest` drawn first in light grey."""
    if rest is not None:
        mask = (groups == rest).to_numpy()
        ax.scatter(x[mask], y[mask], s=1, lw=0, color=LIGHT, label=f"{rest} ({mask.sum():,})",
                   rasterized=True)  # fmt: skip
    for k, name in enumerate(order):
        mask = (groups == name).to_numpy()
        ax.scatter(x[mask], y[mask], s=2, lw=0, color=PALETTE[k % len(PALETTE)],
                   marker="os^D"[k // len(PALETTE) % 4], label=f"{name} ({mask.sum():,})",
                   rasterized=True)  # fmt: skip


def gene_map(genes: pd.DataFrame, programs: pd.DataFrame | None = None, name: str = ""):
    """An embedding's 2-D map (UMAP of the genes by cosine, the explorer's) coloured by
    biotype and, where the compendium has planted programs, by program."""
    panels = 1 + (programs is not None)
    fig, axes = plt.subplots(1, panels, figsize=(COLUMN * panels * 0.9, 2.9), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    x, y = genes["x"].to_numpy(), genes["y"].to_numpy()
    biotypes = genes["biotype"].fillna("unknown")
    order = list(biotypes.value_counts().index)
    _categories(axes[0, 0], x, y, biotypes, order)
    axes[0, 0].set_title(f"{name}: biotype" if name else "biotype", loc="left")
    if programs is not None:
        member = genes[["gene_id"]].merge(programs[["gene_id", "program"]], how="left")
        program = member["program"].astype("string").fillna("no program")
        order = sorted(set(program) - {"no program"}, key=lambda p: (len(p), p))
        _categories(axes[0, 1], x, y, program, order, rest="no program")
        axes[0, 1].set_title("planted program", loc="left")
    for ax in axes[0]:
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        ax.legend(markerscale=3, fontsize=4, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def lncrna_transfer(top: pd.DataFrame, labels: pd.DataFrame):
    """The labels transferred to the lncRNAs: each lncRNA's best probability (its first label),
    and per label source the share of lncRNAs each label calls (probability ≥ 0.5)."""
    fig, axes = plt.subplots(1, 2, figsize=(PAGE * 0.8, 2.4), constrained_layout=True)
    best = top[top["rank"] == 1]["probability"].to_numpy(float)
    axes[0].hist(best, bins=np.linspace(0, 1, 41), color=PALETTE[0])
    axes[0].set_xlabel("probability of the lncRNA's first label")
    axes[0].set_ylabel("lncRNAs")
    axes[0].set_title(f"{len(best):,} lncRNAs", loc="left")
    sources = sorted(set(labels["source"]))
    shares = [labels.loc[labels["source"] == s, "share_called"].to_numpy(float) for s in sources]
    box = axes[1].boxplot(shares, showfliers=True, patch_artist=True,
                          medianprops={"color": "black"}, flierprops={"markersize": 2})  # fmt: skip
    for patch in box["boxes"]:
        patch.set_facecolor(PALETTE[4])
    axes[1].set_xticks(np.arange(1, len(sources) + 1), sources, rotation=30, ha="right")
    axes[1].set_ylabel("share of lncRNAs called (p ≥ 0.5), per label")
    return fig


# --- the human–mouse comparison (tables of gexnet.analysis.human_mouse) -----------------------


def species_pca(pca: pd.DataFrame):
    """Both species' vectors on their first two principal components, before and after the
    alignment, coloured by species (the pca table)."""
    stages = [s for s in ("before", "after") if s in set(pca["stage"])]
    fig, axes = plt.subplots(
        1, len(stages), figsize=(COLUMN * len(stages) * 0.8, 2.6), squeeze=False
    )
    for ax, stage in zip(axes[0], stages, strict=True):
        part = pca[pca["stage"] == stage]
        for colour, (species, rows) in zip(
            PALETTE, part.groupby("species", sort=False), strict=False
        ):
            ax.scatter(rows["pc1"], rows["pc2"], s=2, alpha=0.4, color=colour, lw=0,
                       label=f"{species} ({len(rows):,})", rasterized=True)  # fmt: skip
        ax.set_title(f"{stage} alignment")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    axes[0, 0].legend(markerscale=4)
    fig.tight_layout()
    return fig


def ortholog_ranks(pairs: pd.DataFrame):
    """Histograms of the true ortholog's cosine rank (human → mouse) per method, on a log axis;
    held-out pairs and all pairs side by side (the pairs table)."""
    top = max(int(pairs["cosine_rank_human_to_mouse"].max()), 10)
    bins = np.unique(np.round(np.logspace(0, np.log10(top + 1), 30)))
    fig, axes = plt.subplots(1, 2, figsize=(PAGE, 2.6), sharex=True, squeeze=False)
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
                     )  # fmt: skip
        ax.set_xlabel("true ortholog's rank (human → mouse)")
        ax.set_ylabel("pairs")
        ax.legend()
    fig.tight_layout()
    return fig


def dictionary_curve(curve: pd.DataFrame):
    """Rank-1, top-10 and top-100 rates of the held-out pairs against the share of the training
    dictionary used (the curve table; cosine, both directions)."""
    fig, ax = plt.subplots(figsize=(PAGE * 0.7, 2.4))
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
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def rna_dna_groups(pairs: pd.DataFrame, groups: pd.DataFrame):
    """Each pair's DNA similarity against its RNA-level rank (the groups' method), the four
    RNA × DNA groups coloured and counted (the pairs and groups tables)."""
    fig, ax = plt.subplots(figsize=(COLUMN * 1.2, 2.8))
    if groups.empty:
        ax.text(0.5, 0.5, "no DNA similarity", transform=ax.transAxes, ha="center")
        return fig
    method = groups["method"].iloc[0]
    rows = pairs[(pairs["method"] == method) & pairs["dna_similarity"].notna()]
    names = [f"{r}_rna_{d}_dna" for r in ("high", "low") for d in ("high", "low")]
    sizes = {f"{r}_rna_{d}_dna": n for r, d, n in groups[["rna", "dna", "pairs"]].itertuples(False)}
    middle = rows[rows["group"].isna()]
    ax.scatter(middle["cosine_rank_human_to_mouse"], middle["dna_similarity"], s=3, lw=0,
               color=LIGHT, label=f"between ({len(middle):,})", rasterized=True)  # fmt: skip
    for colour, name in zip(PALETTE, names, strict=False):
        part = rows[rows["group"] == name]
        ax.scatter(part["cosine_rank_human_to_mouse"], part["dna_similarity"], s=3, lw=0,
                   color=colour, label=f"{name.replace('_', ' ')} ({sizes.get(name, 0):,})",
                   rasterized=True)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel(f"ortholog rank, RNA ({method}, human → mouse)")
    ax.set_ylabel("DNA similarity (score / mean length)")
    ax.legend(markerscale=3)
    fig.tight_layout()
    return fig


MODEL_COLOURS = {"autoencoder": PALETTE[0], "pca": PALETTE[1], "gene_mean": GREY}
MODEL_NAMES = {"autoencoder": "autoencoder", "pca": "PCA (same latent size)",
               "gene_mean": "gene means"}  # fmt: skip


def autoencoder_loss(steps: pd.DataFrame, validation: pd.DataFrame):
    """Training loss (mean of each epoch's steps) and validation loss by epoch."""
    fig, ax = plt.subplots(figsize=(COLUMN, 2.4), constrained_layout=True)
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
    ax.legend()
    return fig


def reconstruction_density(density: pd.DataFrame):
    """Predicted against observed held-out values (log10), a 2-D histogram per model."""
    models = [m for m in ("autoencoder", "pca") if m in set(density["model"])]
    fig, axes = plt.subplots(1, len(models), figsize=(COLUMN * len(models), 2.9),
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
    return fig


def reconstruction_ranges(ranges: pd.DataFrame):
    """Mean absolute error and R² within each observed-value range, per model."""
    fig, axes = plt.subplots(1, 2, figsize=(PAGE, 2.5), constrained_layout=True)
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
    axes[0].legend()
    return fig


def knockout_effects(summary: pd.DataFrame, label: int = 8):
    """Every gene's knockout: its score (mean |change| of the other genes) by the autoencoder
    against the linear baseline, the strongest by the autoencoder's null z named; and the
    number of genes each knockout affects, by model."""
    ae = summary[summary["model"] == "autoencoder"].set_index("perturbation")
    lin = summary[summary["model"] == "linear"].set_index("perturbation").loc[ae.index]
    fig, axes = plt.subplots(1, 2, figsize=(PAGE, 2.9), constrained_layout=True)
    ax = axes[0]
    ax.scatter(lin["score"], ae["score"], s=4, alpha=0.5, color=MODEL_COLOURS["autoencoder"],
               lw=0)  # fmt: skip
    for name in ae["z"].nlargest(label).index:
        ax.annotate(name, (lin.loc[name, "score"], ae.loc[name, "score"]), fontsize=5)
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
    ax.legend()
    return fig


def master_regulator_genes(genes: pd.DataFrame, top: int = 15):
    """The genes most often among the start samples' top master regulators, by model (share of
    start samples, over every series of the study)."""
    models = [m for m in ("autoencoder", "linear") if m in set(genes["model"])]
    fig, axes = plt.subplots(1, len(models), figsize=(COLUMN * len(models), 0.15 * top + 1.0),
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
    return fig


def master_regulator_pairs(pairs: pd.DataFrame):
    """Gene pairs moved to the goal together: the joint effect against the sum of the two
    single effects (cooperation lies above the diagonal), and the distribution of joint − sum,
    per model."""
    fig, axes = plt.subplots(1, 2, figsize=(PAGE * 0.8, 2.6), constrained_layout=True)
    models = [m for m in ("autoencoder", "linear") if m in set(pairs["model"])]
    top = float(max(pairs["joint"].max(), pairs["additive"].max(), 1e-9)) * 1.05
    for model in models:
        part = pairs[pairs["model"] == model]
        colour = MODEL_COLOURS["pca" if model == "linear" else model]
        label = "linear baseline (PCA)" if model == "linear" else model
        axes[0].scatter(part["additive"], part["joint"], s=3, lw=0, alpha=0.5, color=colour,
                        label=label, rasterized=True)  # fmt: skip
        axes[1].hist(part["joint_minus_additive"], bins=50, alpha=0.6, color=colour, label=label)
    axes[0].plot([0, top], [0, top], color=GREY, lw=0.6, ls="--")
    axes[0].set_xlabel("sum of the single genes' effects (distance to goal, scaled units)")
    axes[0].set_ylabel("the pair's joint effect")
    axes[0].legend(markerscale=3)
    axes[1].axvline(0, color=GREY, lw=0.6, ls="--")
    axes[1].set_xlabel("joint − sum (> 0: the pair cooperates)")
    axes[1].set_ylabel("pairs (start sample × pair)")
    axes[1].set_yscale("log")
    return fig


def splicing_quality(isoforms: pd.DataFrame):
    """Per-isoform Spearman and Pearson correlation of predicted with observed log expression
    on the test samples, for every model and the two baselines (box per model)."""
    names = list(dict.fromkeys(isoforms["model"]))
    kinds = isoforms.drop_duplicates("model").set_index("model")["kind"]
    fig, axes = plt.subplots(1, 2, figsize=(max(PAGE * 0.75, 0.9 * len(names) + 1.5), 2.6),
                             constrained_layout=True)  # fmt: skip
    for ax, column in zip(axes, ("spearman", "pearson"), strict=True):
        values = [isoforms.loc[isoforms["model"] == n, column].dropna().to_numpy() for n in names]
        box = ax.boxplot(values, showfliers=False, patch_artist=True)
        for patch, name in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(LIGHT if kinds[name] == "baseline" else PALETTE[0])
        ax.set_xticks(np.arange(1, len(names) + 1), names, rotation=30, ha="right")
        ax.set_ylabel(f"{column.capitalize()} r per isoform (test samples)")
    axes[0].set_title("grey: baselines", loc="left")
    return fig


def splicing_heatmap(genes: pd.DataFrame, reference: str, factors: int = 30, top_genes: int = 40):
    """SF × gene t-statistics against one reference of the `factors` SFs and `top_genes` genes
    with the largest |t|."""
    n_factors, n_genes = factors, top_genes
    genes = genes[genes["reference"] == reference]
    table = genes.pivot_table(index="factor", columns="symbol", values="t", aggfunc="first")
    peak = table.abs()
    factors = peak.max(axis=1).nlargest(n_factors).index
    chosen = peak.loc[factors].max(axis=0).nlargest(n_genes).index
    shown = table.loc[factors, chosen]
    limit = float(np.nanmax(np.abs(shown.to_numpy()))) or 1.0
    fig, ax = plt.subplots(figsize=(0.12 * len(chosen) + 1.8, 0.12 * len(factors) + 1.4),
                           constrained_layout=True)  # fmt: skip
    image = ax.imshow(shown.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(np.arange(len(chosen)), chosen, rotation=90, fontsize=5)
    ax.set_yticks(np.arange(len(factors)), factors, fontsize=5)
    ax.set_xlabel("gene (its isoform of largest |t|)")
    ax.set_ylabel("splicing factor")
    fig.colorbar(image, ax=ax, label="DeepLIFT t-statistic over test samples", shrink=0.6)
    return fig


def splicing_validation(validation: list[pd.DataFrame], names: list[str]):
    """Overall ROC-AUC for the known edges, per model (a validation table each), reference and
    score (bars); per-SF AUROCs as points."""
    validation = pd.concat([v.assign(model=n) for v, n in zip(validation, names, strict=True)],
                           ignore_index=True)  # fmt: skip
    validation = validation.assign(what=validation["reference"] + " reference, "
                                   + validation["score"].map(SCORE_NAMES))  # fmt: skip
    overall = validation[validation["factor"] == "all"]
    models = list(dict.fromkeys(overall["model"]))
    kinds = list(dict.fromkeys(overall["what"]))
    width = 0.8 / max(len(kinds), 1)
    fig, ax = plt.subplots(figsize=(max(COLUMN, 1.0 * len(models) + 1.8), 2.6),
                           constrained_layout=True)  # fmt: skip
    colours = PALETTE
    for j, kind in enumerate(kinds):
        x = np.arange(len(models)) + (j - (len(kinds) - 1) / 2) * width
        rows = overall[overall["what"] == kind].set_index("model").reindex(models)
        ax.bar(x, rows["auroc"], width, color=colours[j % len(colours)], label=kind)
        per = validation[(validation["factor"] != "all") & (validation["what"] == kind)]
        for i, model in enumerate(models):
            points = per.loc[per["model"] == model, "auroc"]
            ax.scatter(np.full(len(points), x[i]), points, s=4, color="black", zorder=3)
    ax.axhline(0.5, color=GREY, lw=0.6, ls="--")
    ax.set_xticks(np.arange(len(models)), models, rotation=30, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("ROC-AUC for the known edges")
    ax.legend(loc="lower left")
    return fig


SCORE_NAMES = {"abs_t": "|t|", "mean_abs": "mean |attribution|"}
