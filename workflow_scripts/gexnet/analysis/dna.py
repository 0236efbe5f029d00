"""DNA sequence similarity of 1:1 ortholog pairs, and the RNA × DNA similarity groups.

The similarity of a pair is the best, over the pair's coding sequences (each human CDS against
each mouse CDS), of a global alignment score divided by the mean length of the two sequences:
identical sequences score 2 (the match score), and dividing by length keeps long genes from
ranking as similar merely for being long.

Scoring (as published: match 2, mismatch -1, gap open -2, gap extend -1) with Biopython's
`PairwiseAligner` in global mode. Biopython's `open_gap_score` is the score of a gap's first
position and `extend_gap_score` that of each further one, so a gap of k bases scores
-2 - (k - 1). That is the convention of EMBOSS needle and of Biopython's own `pairwise2`, the
usual tools behind "gap open, gap extend" numbers, so the published values are used as they
stand. (Under BLAST's convention, open + k × extend, the same numbers would need
open_gap_score=-3.) End gaps score like any other gap: the pair is compared end to end.

As published, each mouse CDS is also aligned as its reverse complement and the better of the
two strands counts, and CDS shorter than `min_length` (100 nt) are left out.

A gene's transcripts are reduced to its distinct CDS (Ensembl lists many transcripts with the
same CDS), longest first, at most `max_transcripts`: the cost is quadratic in length and grows
with the product of the two genes' counts, and the longest CDS is the canonical one for most
genes. Pairs whose genes have no CDS are not scored but kept with the reason, so the count of
pairs left out, and why, is reported; only a run in which no pair is scored is an error.

The pairs are split into shards by their position in the sorted pair list (pair j goes to
shard j mod n), so every shard gets the same number of pairs whatever the input order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from Bio.Align import PairwiseAligner

from gexnet.errors import GexnetError

SCORES = {
    "match_score": 2.0,
    "mismatch_score": -1.0,
    "open_gap_score": -2.0,
    "extend_gap_score": -1.0,
}
PAIR = ["human_gene_id", "mouse_gene_id"]
RESULT_COLUMNS = [
    *PAIR,
    "dna_similarity",
    "score",
    "human_transcript_id",
    "mouse_transcript_id",
    "human_length",
    "mouse_length",
    "mouse_strand",  # "+" as given, "-" its reverse complement scored better
    "left_out",  # None for scored pairs, else why not
]
LEVELS = ("low", "high")
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def reverse_complement(sequence: str) -> str:
    return sequence.translate(_COMPLEMENT)[::-1]


def one_to_one(orthologs: pd.DataFrame) -> pd.DataFrame:
    """Ensembl BioMart's one-to-one human–mouse pairs of the annotation's ortholog table."""
    missing = {"human_gene_id", "mouse_gene_id", "type", "source"} - set(orthologs)
    if missing:
        raise GexnetError(f"the ortholog table has no column {', '.join(sorted(missing))}")
    keep = (orthologs["type"] == "one2one") & (orthologs["source"] == "biomart")
    return orthologs.loc[keep, PAIR].drop_duplicates().reset_index(drop=True)


def aligner() -> PairwiseAligner:
    """The published global alignment scoring (see the module docstring for the gap scores)."""
    return PairwiseAligner(mode="global", **SCORES)


def similarity(a: str, b: str, scorer: PairwiseAligner | None = None) -> float:
    """Global alignment score of two sequences divided by their mean length."""
    scorer = scorer or aligner()
    return scorer.score(a, b) / ((len(a) + len(b)) / 2)


def candidate_cds(
    cds: pd.DataFrame, max_transcripts: int, min_length: int = 100
) -> dict[str, list[tuple[str, str]]]:
    """Per gene, its distinct CDS of at least `min_length` nt as (transcript_id, sequence),
    longest first (ties by transcript ID, so the choice does not depend on file order), at most
    `max_transcripts`."""
    if max_transcripts < 1:
        raise GexnetError(f"max_transcripts must be at least 1, not {max_transcripts}")
    table = cds.assign(length=cds["sequence"].str.len())
    table = table[table["length"] >= min_length]
    table = table.sort_values(["gene_id", "length", "transcript_id"], ascending=[True, False, True])
    table = table.drop_duplicates(["gene_id", "sequence"])
    table = table.groupby("gene_id", sort=False).head(max_transcripts)
    out: dict[str, list[tuple[str, str]]] = {}
    for gene, transcript, sequence in zip(
        table["gene_id"], table["transcript_id"], table["sequence"], strict=True
    ):
        out.setdefault(gene, []).append((transcript, sequence))
    return out


def shard_pairs(pairs: pd.DataFrame, shard: int, shards: int) -> pd.DataFrame:
    """The pairs of shard `shard` of `shards` (0-based): every `shards`-th pair of the sorted,
    de-duplicated pair list."""
    if shards < 1 or not 0 <= shard < shards:
        raise GexnetError(f"shard must be in 0..{shards - 1}, not {shard}")
    missing = [c for c in PAIR if c not in pairs]
    if missing:
        raise GexnetError(f"the ortholog pairs have no column {', '.join(missing)}")
    ordered = pairs[PAIR].drop_duplicates().sort_values(PAIR).reset_index(drop=True)
    return ordered.iloc[shard::shards].reset_index(drop=True)


def score_shard(
    pairs: pd.DataFrame,
    human_cds: pd.DataFrame,
    mouse_cds: pd.DataFrame,
    shard: int = 0,
    shards: int = 1,
    max_transcripts: int = 3,
    min_length: int = 100,
    both_strands: bool = True,
) -> pd.DataFrame:
    """DNA similarity of each pair of one shard (RESULT_COLUMNS, one row per pair; pairs
    without CDS get NaN and the reason in `left_out`)."""
    todo = shard_pairs(pairs, shard, shards)
    human = candidate_cds(
        human_cds[human_cds["gene_id"].isin(todo["human_gene_id"])], max_transcripts, min_length
    )
    mouse = candidate_cds(
        mouse_cds[mouse_cds["gene_id"].isin(todo["mouse_gene_id"])], max_transcripts, min_length
    )
    strands = [("+", lambda s: s)] + ([("-", reverse_complement)] if both_strands else [])
    scorer = aligner()
    rows = []
    for h_gene, m_gene in zip(todo["human_gene_id"], todo["mouse_gene_id"], strict=True):
        h, m = human.get(h_gene), mouse.get(m_gene)
        if not h or not m:
            reason = (
                "no CDS for either gene" if not (h or m) else f"no {'mouse' if h else 'human'} CDS"
            )
            reason += f" of at least {min_length} nt" if min_length > 1 else ""
            rows.append((h_gene, m_gene, np.nan, np.nan, None, None, np.nan, np.nan, None, reason))
            continue
        best = None
        for h_tx, h_seq in h:
            for m_tx, m_seq in m:
                for strand, orient in strands:
                    raw = scorer.score(h_seq, orient(m_seq))
                    value = raw / ((len(h_seq) + len(m_seq)) / 2)
                    if best is None or value > best[0]:
                        best = (value, raw, h_tx, m_tx, len(h_seq), len(m_seq), strand)
        rows.append((h_gene, m_gene, *best, None))
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return table.astype({"human_length": "Int64", "mouse_length": "Int64"})


def gather(shards: list[pd.DataFrame], pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The shards' tables as one, sorted by pair. With `pairs`, every pair must be there once
    (shards of different splits, or a missing shard, would otherwise pass unnoticed). Raises
    if no pair was scored."""
    table = pd.concat(shards, ignore_index=True).sort_values(PAIR).reset_index(drop=True)
    doubled = table.duplicated(PAIR)
    if doubled.any():
        first = table.loc[doubled, PAIR].iloc[0].tolist()
        raise GexnetError(f"{doubled.sum()} pairs are in more than one shard (first: {first})")
    if pairs is not None:
        expected = pairs[PAIR].drop_duplicates()
        if len(expected) != len(table) or len(expected.merge(table[PAIR])) != len(table):
            raise GexnetError(
                f"the shards hold {len(table)} pairs, the pair list {len(expected)}: "
                "a shard is missing or from another split"
            )
    if table["dna_similarity"].notna().sum() == 0:
        raise GexnetError(f"no pair could be scored: {left_out_counts(table).to_dict()}")
    return table


def left_out_counts(table: pd.DataFrame) -> pd.Series:
    """Pairs not scored, by reason."""
    return table["left_out"].dropna().value_counts().rename("pairs")


def similarity_groups(
    table: pd.DataFrame,
    rna_column: str,
    dna_column: str,
    low: float = 0.4,
    high: float = 0.6,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairs grouped by RNA similarity × DNA similarity, as in the paper's low-RNA/high-DNA and
    low/low groups.

    Both columns must grow with similarity (pass minus an ortholog rank). For each column, a
    pair is low at or below its `low` quantile and high at or above its `high` quantile
    (numpy's default, linear, quantiles over the pairs with both values); pairs in between are
    "middle" and in no group: a gap between the groups keeps pairs that differ by noise alone
    out of opposite groups. Pairs missing either value are left out.

    Returns the group sizes (rna, dna, pairs: the four low/high combinations) and the labels
    (the table's rows with both values, with rna_level, dna_level in low/middle/high and group
    such as "low_rna_high_dna", None for pairs in the middle of either).
    """
    if not 0 <= low < high <= 1:
        raise GexnetError(f"need 0 <= low < high <= 1, not low={low}, high={high}")
    for column in (rna_column, dna_column):
        if column not in table:
            raise GexnetError(f"the table has no column {column!r}")
    labels = table.dropna(subset=[rna_column, dna_column]).reset_index(drop=True)
    if labels.empty:
        raise GexnetError(f"no pair has both {rna_column} and {dna_column}")
    for kind, column in (("rna", rna_column), ("dna", dna_column)):
        x = labels[column].to_numpy(float)
        lo, hi = np.quantile(x, [low, high])
        level = np.where(x <= lo, "low", np.where(x >= hi, "high", "middle"))
        labels[f"{kind}_level"] = level
    grouped = labels["rna_level"].isin(LEVELS) & labels["dna_level"].isin(LEVELS)
    labels["group"] = np.where(
        grouped, labels["rna_level"] + "_rna_" + labels["dna_level"] + "_dna", None
    )
    sizes = pd.DataFrame(
        [
            (r, d, int(((labels["rna_level"] == r) & (labels["dna_level"] == d)).sum()))
            for r in LEVELS
            for d in LEVELS
        ],
        columns=["rna", "dna", "pairs"],
    )
    return sizes, labels
