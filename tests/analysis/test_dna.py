"""DNA similarity of ortholog pairs: Biopython's scores against a hand-written Gotoh alignment,
the best over transcripts, shards, the planted identities of the demo, and the RNA x DNA groups
against a direct numpy computation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from gexnet.analysis import dna
from gexnet.errors import GexnetError
from gexnet.formats.fasta import read_cds

MATCH, MISMATCH, OPEN, EXTEND = 2, -1, -2, -1


def gotoh(a: str, b: str) -> float:
    """Global alignment score with affine gaps (a gap of k bases scores OPEN + (k - 1) EXTEND,
    end gaps included): M ends in a match/mismatch, X in a gap in b, Y in a gap in a."""
    inf = float("-inf")
    n, m = len(a), len(b)
    M = [[inf] * (m + 1) for _ in range(n + 1)]
    X = [[inf] * (m + 1) for _ in range(n + 1)]
    Y = [[inf] * (m + 1) for _ in range(n + 1)]
    M[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            if i and j:
                s = MATCH if a[i - 1] == b[j - 1] else MISMATCH
                M[i][j] = s + max(M[i - 1][j - 1], X[i - 1][j - 1], Y[i - 1][j - 1])
            if i:
                X[i][j] = max(M[i - 1][j] + OPEN, Y[i - 1][j] + OPEN, X[i - 1][j] + EXTEND)
            if j:
                Y[i][j] = max(M[i][j - 1] + OPEN, X[i][j - 1] + OPEN, Y[i][j - 1] + EXTEND)
    return max(M[n][m], X[n][m], Y[n][m])


def random_dna(rng, low, high) -> str:
    return "".join(rng.choice(list("ACGT"), rng.integers(low, high)))


def test_biopython_scores_equal_a_handwritten_gotoh_alignment():
    rng = np.random.default_rng(0)
    scorer = dna.aligner()
    for _ in range(150):
        a = random_dna(rng, 1, 25)
        # related pairs as well as unrelated ones, so that long gaps are optimal sometimes
        related = a[: rng.integers(0, len(a) + 1)] + random_dna(rng, 0, 8)
        b = (related if rng.random() < 0.5 else random_dna(rng, 1, 25)) or "A"
        assert scorer.score(a, b) == gotoh(a, b), (a, b)
    assert gotoh("GGGGGGGGGG", "GGGGGCCCGGGGG") == 20 + OPEN + 2 * EXTEND


def cds_table(genes: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(f"{g}_t{i}", g, s) for g, seqs in genes.items() for i, s in enumerate(seqs)]
    return pd.DataFrame(rows, columns=["transcript_id", "gene_id", "sequence"])


def kept(seqs: list[str], cap: int) -> list[str]:
    """A gene's distinct CDS, longest first (ties in transcript order), at most `cap`."""
    distinct = sorted(dict.fromkeys(seqs), key=lambda s: (-len(s), seqs.index(s)))
    return distinct[:cap]


def complement(s: str) -> str:
    return "".join({"A": "T", "C": "G", "G": "C", "T": "A"}[c] for c in reversed(s))


def test_best_over_transcripts_and_strands_longest_first_and_capped():
    rng = np.random.default_rng(1)
    human = {f"H{k}": [random_dna(rng, 5, 30) for _ in range(k % 3 + 1)] for k in range(6)}
    mouse = {f"M{k}": [random_dna(rng, 5, 30) for _ in range(k % 4 + 1)] for k in range(6)}
    human["H0"].append(human["H0"][0])  # an identical CDS counts once
    human["H1"], mouse["M1"] = human["H1"][:1], [complement(human["H1"][0])]  # the - strand matches
    pairs = pd.DataFrame({"human_gene_id": list(human), "mouse_gene_id": list(mouse)})
    for cap, strands in itertools.product((1, 2, 10), (False, True)):
        table = dna.score_shard(pairs, cds_table(human), cds_table(mouse), max_transcripts=cap,
                                min_length=1, both_strands=strands)  # fmt: skip
        for row in table.itertuples():
            h, m = kept(human[row.human_gene_id], cap), kept(mouse[row.mouse_gene_id], cap)
            m = m + [complement(b) for b in m] if strands else m
            best = max(gotoh(a, b) / ((len(a) + len(b)) / 2) for a, b in itertools.product(h, m))
            assert row.dna_similarity == pytest.approx(best)
            assert row.score / ((row.human_length + row.mouse_length) / 2) == row.dna_similarity
        m1 = table.set_index("mouse_gene_id").loc["M1"]
        assert (m1["dna_similarity"] == 2.0) == strands and (m1["mouse_strand"] == "-") == strands
    assert dna.similarity("ACGTACGT", "ACGTACGT") == 2.0


def test_sequences_shorter_than_the_minimum_are_left_out():
    human = cds_table({"H0": ["ACGT" * 30], "H1": ["ACGT" * 10]})
    mouse = cds_table({"M0": ["ACGT" * 30, "ACG"], "M1": ["ACGT" * 40]})
    pairs = pd.DataFrame({"human_gene_id": ["H0", "H1"], "mouse_gene_id": ["M0", "M1"]})
    table = dna.score_shard(pairs, human, mouse, min_length=100)
    assert table["dna_similarity"].tolist()[0] == 2.0 and table["mouse_length"].iloc[0] == 120
    assert dna.left_out_counts(table).to_dict() == {"no human CDS of at least 100 nt": 1}


def test_shards_partition_the_pairs_and_gather_checks_them():
    rng = np.random.default_rng(2)
    human = {f"H{k}": [random_dna(rng, 20, 40)] for k in range(10)}
    mouse = {f"M{k}": [random_dna(rng, 20, 40)] for k in range(10)}
    pairs = pd.DataFrame(
        {"human_gene_id": [*human, "H_none", "H0"], "mouse_gene_id": [*mouse, "M_none", "M_x"]}
    )
    h, m = cds_table(human), cds_table(mouse)
    whole = dna.score_shard(pairs, h, m, min_length=1)
    parts = [
        dna.score_shard(pairs.sample(frac=1, random_state=i), h, m, i, 3, min_length=1)
        for i in range(3)
    ]
    assert [len(p) for p in parts] == [4, 4, 4]
    pd.testing.assert_frame_equal(dna.gather(parts, pairs), dna.gather([whole]))
    assert dna.left_out_counts(whole).to_dict() == {"no CDS for either gene": 1, "no mouse CDS": 1}
    with pytest.raises(GexnetError, match="a shard is missing"):
        dna.gather(parts[:2], pairs)
    with pytest.raises(GexnetError, match="more than one shard"):
        dna.gather([parts[0], parts[0]])
    with pytest.raises(GexnetError, match="no pair could be scored"):
        dna.gather([dna.score_shard(pairs.tail(2), h, m, min_length=1)])
    with pytest.raises(GexnetError, match=r"shard must be in 0\.\.2"):
        dna.score_shard(pairs, h, m, 3, 3)


def test_similarity_follows_the_planted_identity(small_compendium):
    _, files = small_compendium
    truth = pd.read_parquet(files["orthologs"]).dropna(subset=["planted_dna_identity"])
    assert len(truth) > 300
    human, mouse = read_cds(files["human_cds"]), read_cds(files["mouse_cds"])
    table = dna.score_shard(truth, human, mouse, shard=0, shards=3)  # a third: fast enough
    table = table.merge(truth, on=dna.PAIR)
    assert len(table) > 100 and table["left_out"].isna().all()
    rho = spearmanr(table["planted_dna_identity"], table["dna_similarity"]).statistic
    assert rho >= 0.9


def test_groups_at_percentiles_equal_a_direct_computation():
    rng = np.random.default_rng(3)
    n = 1000
    table = pd.DataFrame({"rna": rng.normal(size=n), "dna": rng.normal(size=n)})
    table.loc[:9, "dna"] = np.nan  # left out
    sizes, labels = dna.similarity_groups(table, "rna", "dna", low=0.4, high=0.6)
    x, y = table.dropna().to_numpy().T
    level = {}
    for name, v in (("rna", x), ("dna", y)):
        level[name] = {"low": v <= np.percentile(v, 40), "high": v >= np.percentile(v, 60)}
    for r in sizes.itertuples():
        assert r.pairs == (level["rna"][r.rna] & level["dna"][r.dna]).sum()
    assert len(labels) == n - 10
    assert (labels["rna_level"] == "middle").sum() == pytest.approx(0.2 * len(labels), abs=2)
    expected = labels.query("rna_level != 'middle' and dna_level != 'middle'")
    assert labels["group"].notna().sum() == len(expected) == sizes["pairs"].sum()
    assert set(labels["group"].dropna()) == {
        "low_rna_low_dna",
        "low_rna_high_dna",
        "high_rna_low_dna",
        "high_rna_high_dna",
    }
    with pytest.raises(GexnetError, match="no column 'rank'"):
        dna.similarity_groups(table, "rank", "dna")
