"""The human–mouse comparison stage: two species' gene embeddings aligned, every 1:1 ortholog
ranked among all genes of the other species, controls beside, and RNA against DNA similarity.

A comparison is two separate models (a human and a mouse embedding), one model holding both
species (an embedding with a species column of human and mouse rows), or the pseudo-species
control (one species' rows and its `<species>_pseudo` copy, whose "orthologs" are the same
genes). The methods (`gexnet.analysis.align` does the mathematics):

- supervised: orthogonal Procrustes on the training dictionary, refined on dictionaries
  re-induced from mutual nearest neighbours under CSLS, the refinement kept by how well it ranks
  the validation part of the training dictionary;
- unsupervised: no dictionary; the same refinement from an initial dictionary matched on the
  within-species similarity distributions;
- none: the embeddings as they are (meaningful where one model holds both species);
- shuffled (the control): supervised, on the mouse embedding shuffled across genes.

The 1:1 pairs (Ensembl BioMart's one-to-one orthologs of both embeddings' genes) are split by
seed into the training dictionary, its validation part and the held-out pairs. Ranks on the
held-out pairs are the headline; ranks over all pairs (95% of which the alignment was fitted on)
are the published convention, reported beside them.

Tables of `compare` (one Parquet each, written by `write_comparison`):
- pairs: per pair and method: comparison, method, human_gene_id, human_symbol, mouse_gene_id,
  mouse_symbol, split (train, validation, held_out), similarity (cosine after alignment), the
  rank of the true ortholog among all genes of the other species by cosine and by CSLS, both
  ways (cosine_rank_human_to_mouse, ..., csls_rank_mouse_to_human; 1 = best), and, where DNA
  similarity is given, dna_similarity, rna_level, dna_level and group (on the rows of the
  method the groups are drawn from).
- methods: per method, pairs (held_out, all), measure (cosine, csls) and direction: n_pairs,
  rank1, top10, top100 (shares) and median_rank, with the published rank-1 and top-10 rates
  where the paper reports the same setting.
- curve: the dictionary-size curve (supervised, held-out pairs): fraction, n_pairs, measure,
  direction, rank1, top10, top100, median_rank.
- mappings: each method's matrix W (human vectors @ W ≈ mouse vectors): method, row, dim_1..
- refinements: per method and iteration: dictionary_size, score (the selection score), chosen.
- pca: the first two principal components of both species' vectors before and after the
  supervised alignment: stage, species, gene_id, symbol, pc1, pc2.
- groups: the RNA × DNA group sizes (rna, dna, pairs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.analysis import align, dna
from gexnet.errors import GexnetError
from gexnet.formats.embeddings import PSEUDO_SUFFIX, read_embedding
from gexnet.formats.io import write_table

log = logging.getLogger(__name__)

DIRECTIONS = {"human_to_mouse": "rank_ab", "mouse_to_human": "rank_ba"}
MEASURES = ("cosine", "csls")
RANK_COLUMNS = [f"{m}_rank_{d}" for m in MEASURES for d in DIRECTIONS]
GROUP_METHODS = ("supervised", "unsupervised", "none")  # the first one run gives the groups
TABLES = ("pairs", "methods", "curve", "mappings", "refinements", "pca", "groups")
# Published rates (seed 000, paper 2; cosine ranks over all 16,983 pairs, human → mouse), by
# (kind of comparison, method): rank-1 and top-10 shares.
PUBLISHED = {
    ("joint", "supervised"): (0.248, 0.479),
    ("separate", "supervised"): (0.215, 0.406),
    ("separate", "unsupervised"): (0.114, 0.287),
    ("separate", "shuffled"): (0.0026, 0.012),
    ("joint", "shuffled"): (0.0026, 0.012),
    ("pseudo", "supervised"): (0.997, np.nan),
}


@dataclass
class Sides:
    """The two sides of a comparison: each side's genes (gene_id, symbol) and vectors, the 1:1
    pairs as row indices into them, and what kind of comparison it is."""

    kind: str  # separate, joint or pseudo
    names: tuple[str, str]  # the sides' species: human, mouse (or <species>, <species>_pseudo)
    human: pd.DataFrame
    mouse: pd.DataFrame
    a: np.ndarray
    b: np.ndarray
    pairs: pd.DataFrame  # human_gene_id, mouse_gene_id, ia, ib


def _species_rows(path: Path, species: str | None) -> tuple[np.ndarray, dict]:
    """An embedding's vectors, and its genes split by its species column (one part, named
    `species`, when it has none)."""
    genes, vectors = read_embedding(path)
    if "species" not in genes:
        if species is None:
            raise GexnetError(f"{path}: no species column: is this a model of both species?")
        genes = genes.assign(species=species)
    parts = {}
    for name in genes["species"].unique():
        rows = (genes["species"] == name).to_numpy()
        parts[name] = (genes.loc[rows, ["gene_id", "symbol"]].reset_index(drop=True), rows)
    return vectors, parts


def load_sides(embeddings: list[Path], orthologs: pd.DataFrame | None) -> Sides:
    """The sides of a comparison from one embedding (both species, or a pseudo-species pair) or
    two (human, then mouse), with the 1:1 pairs found in both."""
    if len(embeddings) == 2:
        sides = []
        for path, species in zip(embeddings, ("human", "mouse"), strict=True):
            vectors, parts = _species_rows(path, species)
            if species not in parts:
                found = ", ".join(parts)
                raise GexnetError(f"{path}: no {species} genes in the embedding (it has {found})")
            part, rows = parts[species]
            sides.append((part, vectors[rows]))
        (human, a), (mouse, b) = sides
        kind, names, pairs = "separate", ("human", "mouse"), _pairs_of(orthologs, embeddings)
    elif len(embeddings) == 1:
        vectors, parts = _species_rows(embeddings[0], None)
        pseudo = [s for s in parts if s.endswith(PSEUDO_SUFFIX)]
        if pseudo:
            first = pseudo[0].removesuffix(PSEUDO_SUFFIX)
            names, kind = (first, pseudo[0]), "pseudo"
        else:
            names, kind = ("human", "mouse"), "joint"
        for name in names:
            if name not in parts:
                found = ", ".join(parts)
                raise GexnetError(
                    f"{embeddings[0]}: no {name} genes in the embedding (it has {found}); a "
                    "comparison of one embedding needs a model of both species or a "
                    "pseudo-species control"
                )
        (human, a_rows), (mouse, b_rows) = parts[names[0]], parts[names[1]]
        a, b = vectors[a_rows], vectors[b_rows]
        if kind == "pseudo":  # each gene's copy is its one "ortholog"
            pairs = pd.DataFrame(
                {"human_gene_id": human["gene_id"], "mouse_gene_id": human["gene_id"]}
            )
        else:
            pairs = _pairs_of(orthologs, embeddings)
    else:
        raise GexnetError(f"a comparison reads one or two embeddings, not {len(embeddings)}")
    if a.shape[1] != b.shape[1]:
        raise GexnetError(
            f"{', '.join(map(str, embeddings))}: the species' embeddings differ in width "
            f"({a.shape[1]} and {b.shape[1]}); orthogonal alignment needs the same"
        )
    return Sides(kind, names, human, mouse, a, b, _indexed(pairs, human, mouse, embeddings))


def _pairs_of(orthologs: pd.DataFrame | None, embeddings: list[Path]) -> pd.DataFrame:
    if orthologs is None:
        raise GexnetError(f"comparing {', '.join(map(str, embeddings))} needs the ortholog table")
    return dna.one_to_one(orthologs)


def _indexed(pairs, human, mouse, embeddings) -> pd.DataFrame:
    """The pairs whose genes are both in the embeddings, with their row numbers; how many were
    dropped, and why, goes to the log."""
    ia = pd.Series(np.arange(len(human)), index=human["gene_id"])
    ib = pd.Series(np.arange(len(mouse)), index=mouse["gene_id"])
    has_h, has_m = pairs["human_gene_id"].isin(ia.index), pairs["mouse_gene_id"].isin(ib.index)
    log.info(
        "1:1 pairs: %d; without the human gene in the embedding: %d; without the mouse gene: "
        "%d; kept: %d", len(pairs), (~has_h).sum(), (~has_m).sum(), (has_h & has_m).sum(),
    )  # fmt: skip
    kept = pairs[has_h & has_m].reset_index(drop=True)
    if kept.empty:
        raise GexnetError(
            f"{', '.join(map(str, embeddings))}: none of the {len(pairs):,} 1:1 ortholog pairs "
            "has both genes in the embeddings (do the gene IDs match the annotation's Ensembl IDs?)"
        )
    kept["ia"] = ia.loc[kept["human_gene_id"]].to_numpy()
    kept["ib"] = ib.loc[kept["mouse_gene_id"]].to_numpy()
    return kept


def compare(
    sides: Sides, settings: dict, seed: int, name: str, dna_table: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """Every table of one comparison (see the module docstring), by name."""
    pairs = sides.pairs
    split = align.split_dictionary(len(pairs), settings["held_out_fraction"],
                                   settings["validation_fraction"], seed)  # fmt: skip
    ia, ib = pairs["ia"].to_numpy(), pairs["ib"].to_numpy()
    part = {s: (ia[split == s], ib[split == s]) for s in align.SPLITS}
    log.info("%s: %s pairs: %s", name, sides.kind, {s: len(v[0]) for s, v in part.items()})
    a, b = align.normalize(sides.a), align.normalize(sides.b)
    k, refinements = settings["csls_k"], settings["refinements"]
    methods = list(settings["methods"]) + (["shuffled"] if settings["controls"] else [])
    tables = {"pairs": [], "methods": [], "mappings": [], "refinements": []}
    base = pairs[["human_gene_id", "mouse_gene_id"]].assign(split=split)
    base.insert(1, "human_symbol", sides.human["symbol"].to_numpy()[ia])
    base.insert(3, "mouse_symbol", sides.mouse["symbol"].to_numpy()[ib])
    fits = {}
    for method in methods:
        # the shuffled control: the mouse vectors dealt to genes at random, the pairs kept
        target = align.normalize(align.shuffle_rows(sides.b, seed)) if method == "shuffled" else b
        fit = fits[method] = _fit(method, a, target, part, settings)
        x = a @ fit.mapping
        table = base.assign(method=method)
        for measure in MEASURES:
            ranks = align.ortholog_ranks(x, target, ia, ib, measure, k)
            for direction, key in DIRECTIONS.items():
                table[f"{measure}_rank_{direction}"] = ranks[key]
        table["similarity"] = ranks["similarity"]  # the pair's cosine, whatever the measure
        tables["pairs"].append(table)
        tables["methods"].append(_rates(table, sides.kind, method))
        dims = pd.DataFrame(fit.mapping, columns=[f"dim_{i + 1}" for i in range(x.shape[1])])
        tables["mappings"].append(dims.assign(method=method, row=np.arange(len(dims))))
        tables["refinements"].append(fit.history.assign(method=method))
    out = {key: pd.concat(parts, ignore_index=True) for key, parts in tables.items()}
    out["pairs"] = out["pairs"][["method", *base.columns, "similarity", *RANK_COLUMNS]]
    front = ["method", "row"]
    out["mappings"] = out["mappings"][front + [c for c in out["mappings"] if c not in front]]
    out["refinements"] = out["refinements"][["method", "iteration", "dictionary_size", "score",
                                             "chosen"]]  # fmt: skip
    if "supervised" in fits:
        out["curve"] = align.dictionary_curve(
            a, b, part["train"], part["validation"], part["held_out"],
            settings["dictionary_fractions"], refinements, k, seed,
        ).replace({"direction": {"a_to_b": "human_to_mouse", "b_to_a": "mouse_to_human"}})  # fmt: skip
    else:
        out["curve"] = pd.DataFrame(columns=["fraction", "n_pairs", "measure", "direction",
                                             "rank1", "top10", "top100", "median_rank"])  # fmt: skip
    reference = fits.get("supervised") or next(iter(fits.values()))
    out["pca"] = _pca(sides, a, b, reference.mapping)
    out["pairs"], out["groups"] = _groups(out["pairs"], dna_table, settings["groups"])
    for key in out:
        out[key].insert(0, "comparison", name)
    return out


def _fit(method: str, a: np.ndarray, b: np.ndarray, part: dict, settings: dict) -> align.Alignment:
    """One method's mapping of a onto b (none: the identity)."""
    k, refinements = settings["csls_k"], settings["refinements"]
    if method in ("supervised", "shuffled"):
        return align.fit_supervised(a, b, part["train"], part["validation"], refinements, k)
    if method == "unsupervised":
        return align.fit_unsupervised(a, b, refinements, k, settings["unsupervised_init_size"])
    history = pd.DataFrame({"iteration": [0], "dictionary_size": [0], "score": [np.nan],
                            "chosen": [True]})  # fmt: skip
    return align.Alignment(np.eye(a.shape[1], dtype=np.float32), history)


def _rates(table: pd.DataFrame, kind: str, method: str) -> pd.DataFrame:
    rows = []
    for pairs_name, subset in (("held_out", table[table["split"] == "held_out"]), ("all", table)):
        for measure in MEASURES:
            for direction in DIRECTIONS:
                r = align.rates(subset[f"{measure}_rank_{direction}"].to_numpy())
                published = (np.nan, np.nan)
                if (pairs_name, measure, direction) == ("all", "cosine", "human_to_mouse"):
                    published = PUBLISHED.get((kind, method), published)
                rows.append({"kind": kind, "method": method, "pairs": pairs_name,
                             "measure": measure, "direction": direction, "n_pairs": len(subset),
                             **r, "published_rank1": published[0],
                             "published_top10": published[1]})  # fmt: skip
    return pd.DataFrame(rows)


def _pca(sides: Sides, a: np.ndarray, b: np.ndarray, mapping: np.ndarray) -> pd.DataFrame:
    """Both species' vectors on the first two principal components of the two together,
    before and after the alignment."""
    genes = pd.concat(
        [sides.human.assign(species=sides.names[0]), sides.mouse.assign(species=sides.names[1])],
        ignore_index=True,
    )
    parts = []
    for stage, x in (("before", a), ("after", a @ mapping)):
        both = np.concatenate([x, b]).astype(np.float64)
        both -= both.mean(axis=0)
        _, _, vt = np.linalg.svd(both, full_matrices=False)
        coords = both @ vt[:2].T
        vt_sign = np.sign(coords[np.abs(coords).argmax(axis=0), [0, 1]])  # a fixed orientation
        coords *= vt_sign
        parts.append(genes.assign(stage=stage, pc1=coords[:, 0], pc2=coords[:, 1]))
    table = pd.concat(parts, ignore_index=True)
    return table[["stage", "species", "gene_id", "symbol", "pc1", "pc2"]]


def _groups(
    pairs: pd.DataFrame, dna_table: pd.DataFrame | None, settings: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The RNA × DNA groups on the rows of the first method of GROUP_METHODS run: RNA
    similarity is minus its human→mouse cosine rank, over all pairs."""
    empty = pd.DataFrame(columns=["method", "rna", "dna", "pairs"])
    if dna_table is None:
        return pairs, empty
    method = next(m for m in (*GROUP_METHODS, "shuffled") if m in set(pairs["method"]))
    scored = dna_table.loc[dna_table["dna_similarity"].notna(), [*dna.PAIR, "dna_similarity"]]
    pairs = pairs.merge(scored, on=dna.PAIR, how="left")
    rows = pairs[pairs["method"] == method].assign(
        rna_similarity=lambda t: -t["cosine_rank_human_to_mouse"].astype(float)
    )
    if rows["dna_similarity"].notna().sum() == 0:
        raise GexnetError("no pair of the comparison has a DNA similarity (CDS of other genes?)")
    sizes, labels = dna.similarity_groups(rows, "rna_similarity", "dna_similarity",
                                          settings["low"], settings["high"])  # fmt: skip
    labels = labels[[*dna.PAIR, "rna_level", "dna_level", "group"]].assign(method=method)
    pairs = pairs.merge(labels, on=["method", *dna.PAIR], how="left")
    return pairs, sizes.assign(method=method)[["method", "rna", "dna", "pairs"]]


def write_comparison(tables: dict[str, pd.DataFrame], outdir: str | Path) -> None:
    """The tables of `compare` as <outdir>/<name>.parquet."""
    outdir = Path(outdir)
    for name in TABLES:
        write_table(tables[name], outdir / f"{name}.parquet")


def summary(methods: list[pd.DataFrame]) -> pd.DataFrame:
    """The comparisons' methods tables as one, the headline (held-out pairs) first."""
    table = pd.concat(methods, ignore_index=True)
    order = {"held_out": 0, "all": 1}
    table = table.sort_values(
        ["pairs", "comparison", "method", "measure", "direction"],
        key=lambda c: c.map(order) if c.name == "pairs" else c,
        kind="stable",
    )
    return table.reset_index(drop=True)
