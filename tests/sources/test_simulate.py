"""The demo compendium: ARCHS4 layout, real gene identities, and planted truth that the data obey.

The data are read with h5py at the ARCHS4 paths (not through gexnet's loader), and each truth
table is checked against statistics computed here from the counts.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from gexnet.errors import GexnetError
from gexnet.formats.demo import DEMO_TRUTH_TABLES
from gexnet.formats.fasta import read_cds
from gexnet.sources import genome

from ..conftest import demo_dir, generate, small_config

SAMPLE_FIELDS = (
    "geo_accession",
    "series_id",
    "singlecellprobability",
    "alignedreads",
    "title",
    "source_name_ch1",
    "characteristics_ch1",
)


def strings(ds) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else v for v in ds[:]], dtype=object)


@pytest.fixture(scope="module")
def demo(demo_run):
    """The default demo's files, read with h5py, and its truth tables."""
    base = demo_dir(demo_run)
    data = {}
    for sp in ("human", "mouse"):
        with h5py.File(base / f"{sp}_gene_demo.h5", "r") as f:
            data[sp] = {
                "counts": f["data/expression"][:],
                "genes": pd.DataFrame(
                    {
                        k: strings(f[f"meta/genes/{k}"])
                        for k in ("ensembl_gene", "symbol", "biotype")
                    }
                ),
                "samples": pd.DataFrame({k: f[f"meta/samples/{k}"][:] for k in SAMPLE_FIELDS}),
            }
            for k in ("geo_accession", "series_id"):
                data[sp]["samples"][k] = strings(f[f"meta/samples/{k}"])
    truth = {
        name: pd.read_parquet(base / "truth" / f"{name}.parquet") for name in DEMO_TRUTH_TABLES
    }
    return base, data, truth


def log_cpm(counts: np.ndarray) -> np.ndarray:
    return np.log1p(counts / counts.sum(axis=0) * 1e6)


def test_archs4_layout_shapes_and_dtypes(demo):
    base, data, _ = demo
    for sp in ("human", "mouse"):
        with h5py.File(base / f"{sp}_gene_demo.h5", "r") as f:
            expr = f["data/expression"]
            assert expr.dtype == np.uint32
            n_genes, n_samples = expr.shape
            for k in ("symbol", "ensembl_gene", "biotype"):
                assert f[f"meta/genes/{k}"].shape == (n_genes,)
            for k in SAMPLE_FIELDS:
                assert f[f"meta/samples/{k}"].shape == (n_samples,), k
            assert {"version", "creation-date"} <= set(f["meta/info"])
            assert expr.chunks is not None and expr.compression == "gzip"
        with h5py.File(base / f"{sp}_transcript_demo.h5", "r") as f:
            assert f["data/expression"].dtype == np.uint32
            assert f["data/expression"].shape == (len(f["meta/transcripts/ensembl_id"]), n_samples)
            assert (
                strings(f["meta/samples/geo_accession"]).tolist()
                == data[sp]["samples"]["geo_accession"].tolist()
            )
    human = data["human"]
    assert human["counts"].shape == (5000, 3000)
    assert (human["genes"]["biotype"] == "lncRNA").sum() >= 500
    assert human["samples"]["series_id"].nunique() == 40
    assert data["mouse"]["counts"].shape[1] == 2000
    assert human["samples"]["geo_accession"].is_unique


def test_gene_identities_are_real(demo):
    _, data, truth = demo
    for sp in ("human", "mouse"):
        genes = data[sp]["genes"]
        real = genome.genes(sp).set_index("gene_id").loc[genes["ensembl_gene"]]
        assert (real["symbol"].to_numpy() == genes["symbol"].to_numpy()).all()
        assert (real["biotype"].to_numpy() == genes["biotype"].to_numpy()).all()
        assert set(genes["biotype"]) == {"protein_coding", "lncRNA"}
    pairs = genome.one_to_one_orthologs()
    known = set(zip(pairs["human_gene_id"], pairs["mouse_gene_id"], strict=True))
    orth = truth["orthologs"]
    assert len(orth) > 3000
    assert all(
        pair in known for pair in zip(orth["human_gene_id"], orth["mouse_gene_id"], strict=True)
    )
    mouse_ids = set(data["mouse"]["genes"]["ensembl_gene"])
    assert set(orth["mouse_gene_id"]) <= mouse_ids
    assert set(orth["human_gene_id"]) <= set(data["human"]["genes"]["ensembl_gene"])


def test_gene_counts_are_transcript_sums(demo):
    base, data, _ = demo
    for sp in ("human", "mouse"):
        with h5py.File(base / f"{sp}_transcript_demo.h5", "r") as f:
            tx_counts = f["data/expression"][:]
            tx_gene = strings(f["meta/transcripts/ensembl_gene"])
            tx_ids = strings(f["meta/transcripts/ensembl_id"])
        genes = data[sp]["genes"]["ensembl_gene"].to_numpy()
        row = pd.Series(np.arange(len(genes)), index=genes).loc[tx_gene].to_numpy()
        summed = np.zeros(data[sp]["counts"].shape, np.int64)
        np.add.at(summed, row, tx_counts)
        assert (summed == data[sp]["counts"]).all()
        real = genome.transcripts(sp).set_index("transcript_id").loc[tx_ids, "gene_id"]
        assert (real.to_numpy() == tx_gene).all()


def test_planted_qc_failures_fail_exactly_their_rule(demo):
    _, data, truth = demo
    for sp in ("human", "mouse"):
        counts, samples = data[sp]["counts"], data[sp]["samples"]
        planted = truth["qc"][truth["qc"]["species"] == sp].set_index("geo_accession")
        planted = planted.loc[samples["geo_accession"], "planted_failure"].to_numpy()
        observed = {
            "low_counts": counts.sum(axis=0, dtype=np.int64) < 1_000_000,
            "single_cell": samples["singlecellprobability"].to_numpy() >= 0.5,
            "few_genes": (counts > 0).sum(axis=0) <= 2000,
        }
        for rule, failed in observed.items():
            assert (failed == (planted == rule)).all(), rule
        expected = {"low_counts": 40, "single_cell": 30, "few_genes": 25}
        assert {r: int((planted == r).sum()) for r in expected} == expected
    # realistic sparsity: some zeros, mostly in lowly expressed lncRNAs
    human = data["human"]
    zero = human["counts"] == 0
    lnc = (human["genes"]["biotype"] == "lncRNA").to_numpy()
    assert 0.01 < zero.mean() < 0.5
    assert zero[lnc].mean() > 2 * zero[~lnc].mean()


def program_scores(demo, species):
    """Standardized log expression of QC-passing samples, the genes' truth rows, and each
    program's score per sample (the mean over its ordinary members)."""
    _, data, truth = demo
    keep = (truth["qc"].query("species == @species")["planted_failure"] == "none").to_numpy()
    x = log_cpm(data[species]["counts"][:, keep])
    z = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-9)
    programs = truth["programs"].query("species == @species").set_index("gene_id")
    table = programs.loc[data[species]["genes"]["ensembl_gene"]]
    names = sorted(table["program"].dropna().unique())
    members = {
        p: np.flatnonzero((table["program"] == p) & (table["role"] == "member")) for p in names
    }
    return z, table, {p: z[rows].mean(axis=0) for p, rows in members.items()}


def test_programs_and_regulators_shape_the_data(demo):
    _, _, truth = demo
    z, table, score = program_scores(demo, "human")
    member = (table["role"] == "member").to_numpy()
    prog = table["program"].to_numpy()
    own, other = [], []
    for i in np.flatnonzero(member)[:400]:
        r = {p: np.corrcoef(z[i], s)[0, 1] for p, s in score.items()}
        own.append(r[prog[i]])
        other.append(np.mean([v for p, v in r.items() if p != prog[i]]))
    assert np.mean(own) > 0.5 and abs(np.mean(other)) < 0.15
    # each program's regulator follows its members, lncRNA members included
    regs = truth["regulators"].query("species == 'human'")
    for reg in regs.itertuples():
        row = int(np.flatnonzero(table.index == reg.gene_id)[0])
        assert np.corrcoef(z[row], score[reg.program])[0, 1] > 0.6, reg.symbol
    lnc_members = np.flatnonzero(member & (table["biotype"] == "lncRNA").to_numpy())
    assert len(lnc_members) > 200
    lnc_r = [np.corrcoef(z[i], score[prog[i]])[0, 1] for i in lnc_members[:100]]
    assert np.median(lnc_r) > 0.3


def own_over_other(z, modules: dict[str, np.ndarray], samples=slice(None)) -> dict[str, float]:
    """Per module: its members' mean correlation with their own module's score (the mean of the
    other members) less their mean correlation with the other modules' scores."""
    z = z[:, samples]
    scores = {m: z[rows].mean(axis=0) for m, rows in modules.items()}
    out = {}
    for m, rows in modules.items():
        own = [np.corrcoef(z[i], (scores[m] * len(rows) - z[i]) / (len(rows) - 1))[0, 1]
               for i in rows]  # fmt: skip
        other = [np.corrcoef(z[i], scores[o])[0, 1] for i in rows for o in modules if o != m]
        out[m] = float(np.mean(own) - np.mean(other))
    return out


def test_graded_modules_are_harder_than_the_programs(demo):
    """Each member's correlation with its own module's score above its correlation with the
    other modules' (the samples' shared structure, depth and batches, cancels): weak modules far
    below the programs; tissue modules far below over the compendium and well above within their
    tissue; a gene shared by two overlapping modules follows both."""
    base, _, truth = demo
    z, table, _ = program_scores(demo, "human")
    with h5py.File(base / "human_gene_demo.h5", "r") as f:
        tissue = strings(f["meta/samples/source_name_ch1"])
    tissue = tissue[(truth["qc"].query("species == 'human'")["planted_failure"] == "none")]
    modules = truth["modules"].query("species == 'human'")
    row = pd.Series(np.arange(len(table)), index=table.index)
    programs = {p: np.flatnonzero((table["program"] == p) & (table["role"] == "member"))[:30]
                for p in sorted(table["program"].dropna().unique())}  # fmt: skip
    program = np.mean(list(own_over_other(z, programs).values()))
    kinds = {s: {m: row[g["gene_id"]].to_numpy() for m, g in part.groupby("module")}
             for s, part in modules.groupby("source")}  # fmt: skip
    weak = np.mean(list(own_over_other(z, kinds["planted_weak"]).values()))
    assert 0.02 < weak < 0.5 * program, (weak, program)
    everywhere = own_over_other(z, kinds["planted_tissue"])
    for name in kinds["planted_tissue"]:
        active = modules.loc[modules["module"] == name, "active_in"].iloc[0]
        inside = own_over_other(z, kinds["planted_tissue"], tissue == active)[name]
        assert everywhere[name] < 0.5 * program and inside > 1.5 * everywhere[name], name
    overlap = kinds["planted_overlap"]
    scores = {m: z[rows].mean(axis=0) for m, rows in overlap.items()}
    shared = modules[modules.duplicated("gene_id", keep=False)]
    assert len(shared) > 0 and set(shared["source"]) == {"planted_overlap"}
    for gene, pair in shared.groupby("gene_id")["module"]:
        r = {m: np.corrcoef(z[row[gene]], s)[0, 1] for m, s in scores.items()}
        theirs = [r[m] for m in pair]
        rest = [v for m, v in r.items() if m not in set(pair)]
        assert min(theirs) > np.mean(rest) + 0.05, (gene, r)


def test_case_control_groups_differ_through_named_regulators(demo):
    _, data, truth = demo
    for sp in ("human", "mouse"):
        samples, genes = data[sp]["samples"], data[sp]["genes"]["ensembl_gene"].to_numpy()
        x = log_cpm(data[sp]["counts"])
        groups = truth["case_control"].query("species == @sp").set_index("geo_accession")
        shifts = truth["case_control_regulators"].query("species == @sp")
        assert len(shifts) >= 4
        for s in shifts.itertuples():
            in_series = (samples["series_id"] == s.series_id).to_numpy()
            group = groups["group"].reindex(samples["geo_accession"]).to_numpy()
            row = int(np.flatnonzero(genes == s.gene_id)[0])
            diff = (
                x[row, in_series & (group == "case")].mean()
                - x[row, in_series & (group == "control")].mean()
            )
            assert np.sign(diff) == np.sign(s.shift) and abs(diff) > 0.5, (sp, s.symbol, diff)


def test_splicing_factors_set_isoform_ratios(demo):
    base, data, truth = demo
    with h5py.File(base / "human_transcript_demo.h5", "r") as f:
        tx_counts = f["data/expression"][:]
        tx_ids = strings(f["meta/transcripts/ensembl_id"])
        tx_gene = strings(f["meta/transcripts/ensembl_gene"])
    genes = data["human"]["genes"]["ensembl_gene"].to_numpy()
    x = log_cpm(data["human"]["counts"])
    rules = truth["splicing"].query("species == 'human'")
    assert len(rules) == 60
    agree = []
    for r in rules.itertuples():
        t = int(np.flatnonzero(tx_ids == r.transcript_id)[0])
        gene_total = tx_counts[tx_gene == r.target_gene_id].sum(axis=0)
        ok = gene_total >= 20
        assert ok.sum() > 1000, "targets are expressed well enough to see their isoforms"
        share = tx_counts[t, ok] / gene_total[ok]
        sf = x[int(np.flatnonzero(genes == r.splicing_factor_id)[0]), ok]
        rho = np.corrcoef(sf, share)[0, 1]
        agree.append(np.sign(rho) == np.sign(r.effect) and abs(rho) > 0.2)
    assert np.mean(agree) >= 0.9


def test_mouse_orthologs_keep_or_change_program(demo):
    _, _, truth = demo
    z, table, score = program_scores(demo, "mouse")
    orth = truth["orthologs"].dropna(subset=["human_program"])
    orth = orth[orth["human_program"] != orth["mouse_program"]]
    assert orth["diverged"].all() and len(orth) > 100
    row = pd.Series(np.arange(len(table)), index=table.index)
    follows_new = [
        np.corrcoef(z[row[o.mouse_gene_id]], score[o.mouse_program])[0, 1]
        > np.corrcoef(z[row[o.mouse_gene_id]], score[o.human_program])[0, 1] + 0.3
        for o in orth.itertuples()
    ]
    assert np.mean(follows_new) > 0.95


def test_deterministic_by_seed(tmp_path):
    cfg = small_config()
    first = generate(tmp_path / "a", cfg)
    second = generate(tmp_path / "b", cfg)
    cfg["seed"] += 1
    other = generate(tmp_path / "c", cfg)
    for key in ("human_gene", "mouse_transcript"):
        a, b, c = (h5py.File(f[key], "r")["data/expression"][:] for f in (first, second, other))
        assert (a == b).all()
        assert a.shape != c.shape or (a != c).any()
    for name in DEMO_TRUTH_TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(first[name]), pd.read_parquet(second[name]))
    for sp in ("human", "mouse"):
        assert first[f"{sp}_cds"].read_bytes() == second[f"{sp}_cds"].read_bytes()


def test_sizes_are_configurable(small_compendium):
    _cfg, files = small_compendium
    with h5py.File(files["human_gene"], "r") as f:
        assert f["data/expression"].shape == (750, 260)
    with h5py.File(files["mouse_gene"], "r") as f:
        assert f["data/expression"].shape[1] == 200


def test_modules_lie_outside_the_programs_and_orthologs_keep_them(small_compendium):
    cfg, files = small_compendium
    m = cfg["simulate"]["modules"]
    modules = pd.read_parquet(files["modules"])
    programs = pd.read_parquet(files["programs"])
    assert set(modules["source"]) == {"planted_weak", "planted_tissue", "planted_overlap"}
    for species in ("human", "mouse"):
        part = modules[modules["species"] == species]
        in_program = programs.query("species == @species and program.notna()")["gene_id"]
        assert not set(part["gene_id"]) & set(in_program)
    human = modules[modules["species"] == "human"]
    assert (human.groupby("module").size() == m["genes"]).all()
    assert human.groupby("source")["module"].nunique().to_dict() == {
        "planted_overlap": m["per_kind"] // 2 * 2, "planted_tissue": m["per_kind"],
        "planted_weak": m["per_kind"]}  # fmt: skip
    shared = human[human.duplicated("gene_id", keep=False)]
    assert shared.groupby("gene_id").size().eq(2).all()
    assert len(shared) // 2 == m["per_kind"] // 2 * round(m["overlap_shared"] * m["genes"])
    weak = human[human["source"] == "planted_weak"]["loading"]
    assert weak.between(*m["weak_loadings"]).all()
    # a mouse ortholog keeps its human gene's modules
    orthologs = pd.read_parquet(files["orthologs"])
    mouse = modules[modules["species"] == "mouse"].merge(
        orthologs[["human_gene_id", "mouse_gene_id"]], left_on="gene_id", right_on="mouse_gene_id"
    )
    pairs = mouse.merge(human, left_on=["human_gene_id", "module"], right_on=["gene_id", "module"])
    assert len(pairs) == len(mouse) > 0


def test_coding_genes_have_cds_with_planted_identity(small_compendium):
    _, files = small_compendium
    programs = pd.read_parquet(files["programs"])
    orth = pd.read_parquet(files["orthologs"])
    cds = {}
    for sp in ("human", "mouse"):
        cds[sp] = read_cds(files[f"{sp}_cds"])
        with h5py.File(files[f"{sp}_transcript"], "r") as f:
            tx = pd.Series(
                strings(f["meta/transcripts/ensembl_gene"]),
                index=strings(f["meta/transcripts/ensembl_id"]),
            )
        coding = programs.query("species == @sp and biotype == 'protein_coding'")["gene_id"]
        assert set(cds[sp]["gene_id"]) == set(coding), "every coding gene, nothing else"
        assert (tx.loc[cds[sp]["transcript_id"]].to_numpy() == cds[sp]["gene_id"]).all()
        per_gene = cds[sp]["gene_id"].value_counts()
        assert set(per_gene) == {1, 2}
        length = cds[sp]["sequence"].str.len()
        assert length.between(30, 1600).all() and length.median() > 600
    coding_pairs = orth["mouse_gene_id"].isin(cds["mouse"]["gene_id"])
    coding_pairs &= orth["human_gene_id"].isin(cds["human"]["gene_id"])
    planted = orth["planted_dna_identity"]
    assert (planted.notna() == coding_pairs).all() and coding_pairs.sum() > 300
    assert planted.dropna().between(0.55, 0.98).all() and planted.std() > 0.1
    # (that the sequences follow the planted identity is tests/analysis/test_dna.py's check)


@pytest.mark.parametrize(
    ("overrides", "qc", "message"),
    [
        (
            {"protein_coding_genes": 200, "lncrna_genes": 50},
            {"min_detected_genes": 2000},
            "too few for qc.min_detected_genes",
        ),
        (
            {"samples": {"human": 60, "mouse": 60}, "series": {"human": 20, "mouse": 20}},
            {"min_detected_genes": 300},
            "need at least 4 a series",
        ),
        ({"qc_failures": {"low_counts": 200}}, {"min_detected_genes": 300}, "planted failures"),
        (
            {"modules": {"per_kind": 40, "genes": 30}},
            {"min_detected_genes": 300},
            r"modules \(genes outside the programs\)",
        ),
    ],
)
def test_impossible_settings_are_refused(tmp_path, overrides, qc, message):
    cfg = small_config(**overrides)
    cfg["qc"].update(qc)
    with pytest.raises(GexnetError, match=message):
        generate(tmp_path, cfg)
    assert not list(tmp_path.rglob("*.h5")), "nothing half-written"
