"""Gene-property classifiers on gene embeddings: label matrices, cross-validated metrics,
baselines, their comparison per label source, and the transfer of properties to lncRNAs.

A label is a gene set of one source (HPO, GO, an Enrichr library, or the demo's planted
programs). For each label, positives are its genes and negatives the other genes annotated in
the same source (a gene no source term mentions is unknown, not negative), both restricted to
genes of the embedding and of the training biotypes. Labels with fewer than `min_genes` or more
than `max_genes` positives are dropped, counted by source and reason.

Mouse embeddings (`--species mouse`) are scored on the human labels through the 1:1 orthologs:
each human label gene is replaced by its one2one mouse ortholog, and a gene without one drops
out of its labels (the label counts say how many genes of each source had none). The planted
programs are read from the mouse rows of the truth table, which hold the mouse memberships
directly (orthologs may change program in the demo), so no ortholog stands in for them.

The fits are `gexnet.analysis.logreg`'s: every label of a shard at once over the shared embedding, with
fixed gene folds. The comparison of embeddings is per label source, never pooled: sources differ
in size and in signal, and a large source without signal would drown a small one with it.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError
from gexnet.formats.corpus import Corpus
from gexnet.formats.embeddings import embedding_table, read_embedding
from gexnet.formats.tables import LABEL_COLUMNS

PLANTED_SOURCE = "planted_programs"


@dataclass
class LabelMatrix:
    genes: pd.DataFrame  # gene_id, symbol, biotype: the rows, in embedding order
    labels: pd.DataFrame  # label, source, term_id, term_name, n_pos, n_neg
    positive: np.ndarray  # genes × labels, bool
    valid: np.ndarray  # genes × labels, bool: positives and the label's negatives


def planted_labels(programs: pd.DataFrame, species: str = "human") -> pd.DataFrame:
    """The demo's planted program memberships of `species` as a labels table (regulators
    included)."""
    members = programs[(programs["species"] == species) & programs["program"].notna()]
    return pd.DataFrame(
        {"source": PLANTED_SOURCE, "term_id": members["program"].astype(str),
         "term_name": members["program"].astype(str), "gene_id": members["gene_id"]}
    )  # fmt: skip


def module_labels(modules: pd.DataFrame, species: str = "human") -> pd.DataFrame:
    """The demo's graded modules of `species` as a labels table: one source per kind
    (planted_weak, planted_tissue, planted_overlap)."""
    members = modules[modules["species"] == species]
    return pd.DataFrame(
        {"source": members["source"], "term_id": members["module"],
         "term_name": members["module"], "gene_id": members["gene_id"]}
    )  # fmt: skip


def read_orthologs(path: str | Path) -> pd.DataFrame:
    """The one2one pairs (human_gene_id, mouse_gene_id) of an orthologs table."""
    table = pd.read_parquet(path)
    missing = {"human_gene_id", "mouse_gene_id", "type"} - set(table.columns)
    if missing:
        raise GexnetError(f"{path}: orthologs table lacks columns {sorted(missing)}")
    pairs = table.loc[table["type"] == "one2one", ["human_gene_id", "mouse_gene_id"]]
    for column in pairs.columns:  # a gene in two one2one pairs would get two partners
        repeated = pairs.loc[pairs[column].duplicated(), column]
        if len(repeated):
            raise GexnetError(
                f"{path}: {len(repeated)} genes are in more than one one2one pair "
                f"({column}, e.g. {repeated.iloc[0]})"
            )
    return pairs.reset_index(drop=True)


def mouse_labels(labels: pd.DataFrame, pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Human labels on mouse genes: every gene replaced by its one2one mouse ortholog (`pairs`
    as from `read_orthologs`), and per source the count of label genes without one (source,
    what, count). Their rows stay with gene_id missing, so that a term that loses every gene
    still counts among the source's terms (and as dropped for too few genes)."""
    partner = pairs.set_index("human_gene_id")["mouse_gene_id"]
    mapped = labels.assign(gene_id=labels["gene_id"].map(partner))
    orphans = labels.loc[mapped["gene_id"].isna().to_numpy(), ["source", "gene_id"]]
    orphans = orphans.drop_duplicates()
    sources = sorted(labels["source"].unique())
    left_out = orphans.groupby("source").size().reindex(sources, fill_value=0)
    counts = pd.DataFrame(
        {"source": sources, "what": "label genes without a 1:1 mouse ortholog (left out)",
         "count": left_out.to_numpy()}
    )  # fmt: skip
    return mapped, counts


def label_matrix(
    labels: pd.DataFrame, genes: pd.DataFrame, min_genes: int, max_genes: int,
    sources: list[str] | None = None,
) -> tuple[LabelMatrix, pd.DataFrame]:  # fmt: skip
    """The label matrix over `genes` (gene_id, symbol, biotype), and per-source counts of
    labels kept and dropped (source, what, count)."""
    missing = {"source", "term_id", "term_name", "gene_id"} - set(labels.columns)
    if missing:
        raise GexnetError(f"labels table lacks columns {sorted(missing)}")
    if sources:
        unknown = set(sources) - set(labels["source"])
        if unknown:
            raise GexnetError(f"classifiers.sources: {sorted(unknown)} not in the labels table")
        labels = labels[labels["source"].isin(sources)]
    # Each annotation's row in the embedding (−1: not there), whole columns at once: a lookup
    # per term cost seconds at 5,000 terms, and every shard's job builds the whole matrix.
    rows = pd.Index(genes["gene_id"])
    if not rows.is_unique:
        raise GexnetError(
            f"the embedding lists genes more than once: {rows[rows.duplicated()][:5].tolist()}"
        )
    labels = labels.assign(row=rows.get_indexer(labels["gene_id"]))
    counts, positives, valids, kept = [], [], [], []
    for source, table in labels.groupby("source", sort=True):
        n_terms = table["term_id"].nunique()
        present = table[table["row"] >= 0].drop_duplicates(["term_id", "row"])
        annotated = np.zeros(len(genes), bool)
        annotated[present["row"].to_numpy()] = True
        sizes = present.groupby("term_id").size()  # sorted by term
        small = int((sizes < min_genes).sum()) + n_terms - len(sizes)  # (0 genes: not in sizes)
        large = int((sizes > max_genes).sum())
        chosen = sizes[(sizes >= min_genes) & (sizes <= max_genes)]
        members = present[present["term_id"].isin(chosen.index)]
        positive = np.zeros((len(genes), len(chosen)), bool)
        positive[members["row"].to_numpy(), chosen.index.get_indexer(members["term_id"])] = True
        positives.append(positive)
        valids.append(np.broadcast_to(annotated[:, None], positive.shape))
        names = table.drop_duplicates("term_id").set_index("term_id")["term_name"]
        kept.append(
            pd.DataFrame(
                {
                    "label": [f"{source}:{term}" for term in chosen.index],
                    "source": source,
                    "term_id": chosen.index.to_numpy(),
                    "term_name": names[chosen.index].to_numpy(),
                    "n_pos": chosen.to_numpy(dtype=int),
                    "n_neg": int(annotated.sum()) - chosen.to_numpy(dtype=int),
                }
            )
        )
        counts += [
            (source, "terms in the labels table", n_terms),
            (source, "genes annotated (in the embedding)", int(annotated.sum())),
            (source, f"dropped: fewer than {min_genes} genes in the embedding", small),
            (source, f"dropped: more than {max_genes} genes", large),
            (source, "kept", len(chosen)),
        ]
    kept = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()
    if kept.empty:
        raise GexnetError(
            f"no label has {min_genes}–{max_genes} genes among the {len(genes)} genes of the "
            "embedding (classifiers.min_genes, classifiers.max_genes)"
        )
    matrix = LabelMatrix(
        genes.reset_index(drop=True),
        kept,
        np.concatenate(positives, axis=1),
        np.concatenate(valids, axis=1),
    )
    return matrix, pd.DataFrame(counts, columns=["source", "what", "count"])


# --- embeddings: trained ones are read, baselines made ----------------------------------------

BASELINES = ("shuffled", "random", "coexpression")


def shuffled_embedding(reference: str | Path, seed: int) -> pd.DataFrame:
    """The reference embedding with its vectors dealt to the genes at random."""
    genes, vectors = read_embedding(reference)
    return embedding_table(genes, vectors[np.random.default_rng(seed).permutation(len(genes))])


def random_embedding(reference: str | Path, seed: int) -> pd.DataFrame:
    """Standard normal vectors of the reference's width for the reference's genes."""
    genes, vectors = read_embedding(reference)
    rng = np.random.default_rng(seed)
    return embedding_table(genes, rng.standard_normal(vectors.shape).astype(np.float32))


def coexpression_embedding(
    corpus: str | Path, dims: int, seed: int, block_values: int = 50_000_000,
    species: str | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Gene2vec-like: the top `dims` eigenvectors of the gene–gene correlation of the corpus's
    log values, scaled by the square root of their eigenvalues; the genes' species column is
    `species` when given. Randomized subspace iteration over blocks of samples of at most
    `block_values` values (samples × genes): besides one block, memory holds a few genes ×
    (dims + 10) arrays; the correlation matrix (genes²) is never formed."""
    reader = Corpus(corpus)
    dense, reference, genes = reader.array("dense"), reader.reference(), reader.genes
    mean = reference["mean"].to_numpy(np.float64)
    std = reference["std"].to_numpy(np.float64)
    scale = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0)  # constant genes: zero
    n, g = dense.shape
    block_rows = max(1, block_values // max(g, 1))
    k = min(dims, g)
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((g, min(g, k + 10))))[0]

    def correlation_times(v: np.ndarray) -> np.ndarray:
        out = np.zeros_like(v)
        for s0 in range(0, n, block_rows):
            z = np.array(dense[s0 : s0 + block_rows], np.float64)  # in place: one block held
            z -= mean
            z *= scale
            out += z.T @ (z @ v)
        return out / max(n, 1)  # (the stored std is the population one: a correlation)

    for _ in range(4):  # subspace iterations: the leading eigenvectors separate quickly
        basis = np.linalg.qr(correlation_times(basis))[0]
    small = basis.T @ correlation_times(basis)
    values, vectors = np.linalg.eigh((small + small.T) / 2)
    order = np.argsort(values)[::-1][:k]
    embedding = (basis @ vectors[:, order]) * np.sqrt(np.maximum(values[order], 0))
    if k < dims:  # fewer genes than dimensions: pad with zeros
        embedding = np.pad(embedding, ((0, 0), (0, dims - k)))
    if species is not None:
        genes = genes.assign(species=species)
    return embedding_table(genes, embedding.astype(np.float32))


# --- cross-validated metrics -------------------------------------------------------------------


def training_genes(genes: pd.DataFrame, biotypes: list[str]) -> np.ndarray:
    return genes["biotype"].isin(biotypes).to_numpy()


def cross_validated_metrics(
    embedding: str | Path, labels: pd.DataFrame, settings: dict, seed: int,
    shard: int = 0, n_shards: int = 1, threads: int | None = None,
) -> pd.DataFrame:  # fmt: skip
    """label, source, term_id, term_name, n_pos, n_neg, auroc, auprc of shard `shard` of the
    labels (every n_shards-th), by K-fold cross-validation over the training genes."""
    from gexnet.analysis import logreg

    genes, vectors = read_embedding(embedding)
    train = training_genes(genes, settings["train_biotypes"])
    matrix, _ = label_matrix(
        labels, genes[train], settings["min_genes"], settings["max_genes"], settings["sources"]
    )
    chosen = slice(shard, None, n_shards)  # (a view: no copy of the whole matrix)
    positive, valid = matrix.positive[:, chosen], matrix.valid[:, chosen]
    folds = logreg.fold_of(int(train.sum()), settings["folds"], seed)
    scores = logreg.cross_validate(
        vectors[train], positive, valid, folds, C=settings["C"], tol=settings["tol"],
        progress=True, threads=threads,
    )  # fmt: skip
    table = matrix.labels.iloc[chosen].reset_index(drop=True)
    table["auroc"], table["auprc"] = fold_mean_metrics(scores, positive, valid, folds)
    return table


def fold_mean_metrics(scores, positive, valid, folds) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and AUPRC per label, the mean over the folds whose test genes hold a positive and
    a negative (scikit-learn's cross_val_score convention). Pooling the out-of-fold scores
    instead would compare scores of different fold models, whose intercepts differ with the
    positives each fold left out: that biases labels without signal below 0.5."""
    from gexnet.analysis import logreg

    # Each fold's genes alone (a fifth of the sorting of masking the others), as consecutive
    # rows of one copy ordered by fold.
    order = np.argsort(folds, kind="stable")
    bounds = np.searchsorted(folds[order], np.unique(folds), side="right")
    scores, positive, valid = scores[order], positive[order], valid[order]
    per_fold = [
        logreg.ranking_metrics(scores[a:b], positive[a:b], valid[a:b])
        for a, b in itertools.pairwise([0, *bounds])
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every fold NaN: NaN, no warning
        auroc = np.nanmean(np.stack([a for a, _ in per_fold]), axis=0)
        auprc = np.nanmean(np.stack([b for _, b in per_fold]), axis=0)
    return auroc, auprc


def shared_auroc(metrics: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Per label source (sorted), the AUROC of the labels every embedding has and scored
    (labels × embeddings); a source without such labels maps to an empty table."""
    for name, m in metrics.items():
        missing = {"label", "source", "auroc"} - set(m.columns)
        if missing:
            raise GexnetError(f"metrics of {name} lack columns {sorted(missing)}")
        if m["label"].duplicated().any():
            raise GexnetError(f"metrics of {name} repeat labels (shards gathered twice?)")
    auroc = pd.DataFrame({name: m.set_index("label")["auroc"] for name, m in metrics.items()})
    source = pd.concat([m.set_index("label")["source"] for m in metrics.values()])
    source = source[~source.index.duplicated()]
    scored = auroc.dropna()  # a label missing from (or unscored by) any embedding is not shared
    shared = {s: scored.loc[sorted(set(scored.index) & set(labels))]
              for s, labels in source.groupby(source).groups.items()}  # fmt: skip
    if not any(len(t) for t in shared.values()):
        raise GexnetError("the embeddings share no scored label: nothing to compare")
    return dict(sorted(shared.items()))


def shared_auroc_table(metrics: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """shared_auroc as one long table (source, label, embedding, auroc): what the comparison's
    figure draws."""
    parts = [
        auroc.rename_axis("label").reset_index().melt("label", var_name="embedding",
                                                      value_name="auroc").assign(source=source)
        for source, auroc in shared_auroc(metrics).items()
    ]  # fmt: skip
    return pd.concat(parts, ignore_index=True)[["source", "label", "embedding", "auroc"]]


def comparison(metrics: dict[str, pd.DataFrame], reference: str) -> pd.DataFrame:
    """Per label source and embedding, over the labels of that source every embedding has:
    mean and median AUROC, the share of labels it wins against `reference` (ties half), and
    the paired Wilcoxon test against it."""
    from scipy.stats import wilcoxon

    if reference not in metrics:
        raise GexnetError(f"reference {reference} is not among the embeddings {list(metrics)}")
    rows = []
    for source, auroc in shared_auroc(metrics).items():
        for name in metrics:
            row = {"source": source, "embedding": name, "labels": len(auroc),
                   "mean_auroc": auroc[name].mean(), "median_auroc": auroc[name].median()}  # fmt: skip
            if name != reference:
                diff = auroc[name] - auroc[reference]
                row["share_won_vs_" + reference] = ((diff > 0) + 0.5 * (diff == 0)).mean()
                if (diff != 0).any():
                    p = wilcoxon(auroc[name], auroc[reference]).pvalue
                else:  # identical on every label (or no label): no evidence either way
                    p = 1.0 if len(diff) else np.nan
                row["wilcoxon_p_vs_" + reference] = p
            rows.append(row)
    return pd.DataFrame(rows)


# --- lncRNA transfer ---------------------------------------------------------------------------


def transfer_summary(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Per transferred label: its source and name, the lncRNAs predicted, how many it calls
    (probability ≥ 0.5) and their share, and the mean and largest probability."""
    p = predictions.groupby("label", observed=True)["probability"]
    table = pd.DataFrame({"lncrnas": p.size(), "called": p.apply(lambda v: int((v >= 0.5).sum())),
                          "mean_probability": p.mean(), "max_probability": p.max()})  # fmt: skip
    table["share_called"] = table["called"] / table["lncrnas"]
    terms = labels.drop_duplicates(["source", "term_id"])
    names = pd.Series(terms["term_name"].to_numpy(),
                      index=terms["source"].astype(str) + ":" + terms["term_id"].astype(str))  # fmt: skip
    table = table.rename_axis("label").reset_index()
    table["label"] = table["label"].astype(str)
    table["source"] = table["label"].str.split(":", n=1).str[0]
    table["term_name"] = table["label"].map(names)
    return table[["source", "label", "term_name", "lncrnas", "called", "share_called",
                  "mean_probability", "max_probability"]]  # fmt: skip


def transfer(
    embedding: str | Path, labels: pd.DataFrame, settings: dict, top: int = 10,
    threads: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Fit every label on all its labelled training genes; predict every lncRNA of the embedding.

    Returns the predictions (label, gene_id, probability, percentile: the lncRNA's rank within the
    label, 100 = most likely; sorted by label) and each lncRNA's `top` labels by percentile.
    """
    from gexnet.analysis import logreg

    genes, vectors = read_embedding(embedding)
    train = training_genes(genes, settings["train_biotypes"])
    lncrna = genes["biotype"].eq("lncRNA").to_numpy()
    target = lncrna & ~train
    if not target.any():  # e.g. an experiment trained on a coding-only vocabulary
        why = (
            "the lncRNAs are among classifiers.train_biotypes"
            if lncrna.any()
            else "the experiment's vocabulary has no lncRNA"
        )
        raise GexnetError(f"{embedding}: no lncRNA to transfer the labels to: {why}")
    matrix, _ = label_matrix(
        labels, genes[train], settings["min_genes"], settings["max_genes"], settings["sources"]
    )
    w, b = logreg.fit(
        vectors[train],
        matrix.positive,
        matrix.valid,
        C=settings["C"],
        tol=settings["tol"],
        progress=True,
        threads=threads,
    )
    logits = vectors[target] @ w + b  # lncRNAs × labels
    probability = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
    # percentile within each label: 100 · (1 − (rank − 1) / (n − 1)), equal scores in gene order
    n = probability.shape[0]
    rank = np.empty(logits.shape, np.int64)
    np.put_along_axis(rank, np.argsort(-logits, axis=0, kind="stable"), np.arange(n)[:, None], 0)
    percentile = (100.0 * (1 - rank / max(n - 1, 1))).astype(np.float32)
    lnc = genes.loc[target, "gene_id"].to_numpy()
    predictions = pd.DataFrame(
        {"label": pd.Categorical(np.repeat(matrix.labels["label"].to_numpy(), n),
                                 categories=matrix.labels["label"]),
         "gene_id": pd.Categorical(np.tile(lnc, len(matrix.labels)), categories=lnc),
         "probability": probability.T.ravel(), "percentile": percentile.T.ravel()}
    )  # fmt: skip
    best = np.argsort(-percentile, axis=1, kind="stable")[:, :top]
    top_table = pd.DataFrame(
        {"gene_id": np.repeat(lnc, best.shape[1]),
         "symbol": np.repeat(genes.loc[target, "symbol"].to_numpy(), best.shape[1]),
         "rank": np.tile(np.arange(1, best.shape[1] + 1), n),
         "label": matrix.labels["label"].to_numpy()[best].ravel(),
         "term_name": matrix.labels["term_name"].to_numpy()[best].ravel(),
         "percentile": np.take_along_axis(percentile, best, axis=1).ravel(),
         "probability": np.take_along_axis(probability, best, axis=1).ravel()}
    )  # fmt: skip
    return predictions, top_table


# --- command line ------------------------------------------------------------------------------


def read_labels(
    paths: list[Path], programs: Path | None, species: str = "human", orthologs: Path | None = None,
    modules: Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:  # fmt: skip
    """The labels tables at `paths`, the planted programs and the graded modules (truth tables)
    on the genes of `species`, and for mouse the count of label genes left out for want of a
    1:1 ortholog."""
    if species == "mouse" and not orthologs:
        raise GexnetError("--species mouse needs --orthologs")
    if species == "human" and orthologs:
        raise GexnetError("--orthologs is for --species mouse only")
    tables = []
    for path in paths:
        table = pd.read_parquet(path)
        missing = set(LABEL_COLUMNS) - set(table.columns)
        if missing:
            raise GexnetError(f"{path}: labels table lacks columns {sorted(missing)}")
        tables.append(table[LABEL_COLUMNS])
    left_out = None
    if tables and species == "mouse":
        mapped, left_out = mouse_labels(
            pd.concat(tables, ignore_index=True), read_orthologs(orthologs)
        )
        tables = [mapped]
    if programs:
        truth = pd.read_parquet(programs)
        missing = {"species", "gene_id", "program"} - set(truth.columns)
        if missing:
            raise GexnetError(f"{programs}: programs table lacks columns {sorted(missing)}")
        planted = planted_labels(truth, species)
        if planted.empty:
            raise GexnetError(f"{programs}: no {species} gene is in a program")
        tables.append(planted)
    if modules:
        truth = pd.read_parquet(modules)
        missing = {"species", "source", "module", "gene_id"} - set(truth.columns)
        if missing:
            raise GexnetError(f"{modules}: modules table lacks columns {sorted(missing)}")
        tables.append(module_labels(truth, species))
    if not tables:
        raise GexnetError("no labels: give --labels and/or --programs")
    return pd.concat(tables, ignore_index=True), left_out


def label_counts(
    embedding: str | Path, labels: pd.DataFrame, settings: dict,
    left_out: pd.DataFrame | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Per source, the labels kept and dropped on the embedding's training genes (source, what,
    count); for mouse, each source's genes without a 1:1 ortholog (`left_out`) first."""
    genes, _ = read_embedding(embedding)
    train = training_genes(genes, settings["train_biotypes"])
    _, counts = label_matrix(labels, genes[train], settings["min_genes"], settings["max_genes"],
                             settings["sources"])  # fmt: skip
    if left_out is not None:
        left_out = left_out[left_out["source"].isin(counts["source"])]
        counts = pd.concat([left_out, counts]).sort_values("source", kind="stable")
    return counts.reset_index(drop=True)
