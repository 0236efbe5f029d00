"""Bring-your-own matrices (TSV, Parquet, h5ad; Ensembl, Entrez or symbol IDs) to the ARCHS4
layout, with real human gene identities and simulated counts."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gexnet import cli
from gexnet.formats.archs4 import Archs4File
from gexnet.sources import byo

from .test_geo import assert_fails, fixture_genes, simulate_counts

FORMATS = ("tsv", "parquet", "h5ad", "h5ad_sparse")
ID_TYPES = ("ensembl_versioned", "ensembl", "entrez", "symbol")
SERIES = ("PRJ_A", "PRJ_B")
SAMPLES_PER_SERIES = 12
# HTSeq's summary rows: in real count tables, never genes
HTSEQ_ROWS = ("__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned")
SUFFIX = {"tsv": ".tsv", "parquet": ".parquet", "h5ad": ".h5ad", "h5ad_sparse": ".h5ad"}


# --- fixture writers (reused by end-to-end tests) ---------------------------------------------


def write_counts(path: Path, fmt: str, counts: pd.DataFrame, gene_index: bool = False) -> Path:
    """Write a genes × samples table (gene IDs as index) in one of FORMATS.

    TSV and Parquet: first column the gene ID (Parquet: the pandas index if `gene_index`);
    h5ad: samples × genes, dense or CSR, float32 as most tools write them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tsv":
        counts.rename_axis("gene_id").to_csv(path, sep="\t")
    elif fmt == "parquet":
        table = counts.rename_axis("gene_id")
        table.to_parquet(path) if gene_index else table.reset_index().to_parquet(path, index=False)
    elif fmt in ("h5ad", "h5ad_sparse"):
        import anndata
        import scipy.sparse

        x = counts.T.to_numpy(np.float32)
        with warnings.catch_warnings():  # repeated var names are the point of some fixtures
            warnings.simplefilter("ignore")
            data = anndata.AnnData(
                scipy.sparse.csr_matrix(x) if fmt == "h5ad_sparse" else x,
                obs=pd.DataFrame(index=counts.columns.astype(str)),
                var=pd.DataFrame(index=counts.index.astype(str)),
            )
            data.write_h5ad(path)
    else:
        raise ValueError(f"unknown format {fmt}")
    return path


def write_byo_fixture(
    directory: str | Path,
    fmt: str = "tsv",
    id_type: str = "ensembl_versioned",
    singlecell: bool = False,
    seed: int = 3,
) -> dict:
    """A counts matrix (fmt: tsv, parquet, h5ad, h5ad_sparse) with `id_type` gene IDs and its
    sample sheet: 2 series × 12 human samples, ~1e5 counts each, real genes.

    Planted: HTSeq summary rows (unmapped), 3 duplicate rows of real genes with few counts
    (an other version, the same ID, the gene's second Entrez ID, or the symbol in lower case;
    dropped), for Entrez IDs also the lncRNAs (Ensembl 100 has no Entrez ID for them; unmapped).
    The sheet lists samples in another order than the counts.

    Returns: counts, samples (paths), species, id_type, genes (ensembl_gene, symbol, biotype
    of the output, in file order), expected (ensembl_gene × sample counts, int64), sheet,
    sample_names (counts order), genes_in, unmapped, duplicates.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    genes = fixture_genes()
    names = [f"{s}_{k + 1:02d}" for s in SERIES for k in range(SAMPLES_PER_SERIES)]
    truth = pd.DataFrame(
        simulate_counts(len(genes), len(names), rng), index=genes["gene_id"], columns=names
    )
    multi = genes.dropna(subset=["entrez2"])
    if id_type == "ensembl_versioned":
        versions = rng.integers(1, 20, len(genes))
        ids = [f"{g}.{v}" for g, v in zip(genes["gene_id"], versions, strict=True)]
        dup_ids = [f"{g}.99" for g in multi["gene_id"]]
    elif id_type == "ensembl":
        ids, dup_ids = genes["gene_id"].tolist(), multi["gene_id"].tolist()
    elif id_type == "entrez":
        ids, dup_ids = genes["entrez"].tolist(), multi["entrez2"].tolist()
    elif id_type == "symbol":
        ids, dup_ids = genes["symbol"].tolist(), multi["symbol"].str.lower().tolist()
    else:
        raise ValueError(f"unknown id type {id_type}")
    extra_ids = [*dup_ids, *HTSEQ_ROWS]
    extra = rng.poisson(3, (len(extra_ids), len(names)))
    assert (truth.loc[multi["gene_id"]].sum(axis=1) > extra[: len(multi)].sum(axis=1)).all()
    counts = pd.concat(
        [
            pd.DataFrame(truth.to_numpy(), index=ids, columns=names),
            pd.DataFrame(extra, index=extra_ids, columns=names),
        ]
    )
    counts = counts.iloc[rng.permutation(len(counts))]  # input order need not be sorted
    counts_path = write_counts(directory / f"counts_{id_type}{SUFFIX[fmt]}", fmt, counts)

    lnc_unmapped = id_type == "entrez"
    kept = genes[~(lnc_unmapped & (genes["biotype"] == "lncRNA"))]
    n = np.arange(len(names))
    sheet = pd.DataFrame(
        {
            "sample": names,
            "series": [s for s in SERIES for _ in range(SAMPLES_PER_SERIES)],
            "tissue": np.array(["liver", "lung", "brain"])[n % 3],
            "sex": np.where(n % 2, "female", "male"),
            "age": (20 + n).astype(float),
        }
    )
    if singlecell:
        sheet["singlecellprobability"] = np.round(rng.uniform(0, 0.3, len(names)), 3)
    sheet_path = directory / "samples.tsv"
    sheet.iloc[rng.permutation(len(sheet))].to_csv(sheet_path, sep="\t", index=False)
    return {
        "counts": counts_path,
        "samples": sheet_path,
        "species": "human",
        "fmt": fmt,
        "id_type": id_type,
        "genes": kept.rename(columns={"gene_id": "ensembl_gene"})[
            ["ensembl_gene", "symbol", "biotype"]
        ].reset_index(drop=True),
        "expected": truth.loc[kept["gene_id"]],
        "raw": counts,
        "sheet": sheet,
        "sample_names": names,
        "genes_in": len(counts),
        "unmapped": len(HTSEQ_ROWS) + (len(genes) - len(kept)),
        "duplicates": len(dup_ids),
    }


# --- tests -------------------------------------------------------------------------------------


def read_back(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    with Archs4File(out) as f:
        assert f.level == "gene"
        return f.features(), f.samples(), f.read()


def check_round_trip(fx: dict, out: Path, report: dict) -> pd.DataFrame:
    features, samples, counts = read_back(out)
    genes = fx["genes"]
    assert features["ensembl_gene"].tolist() == genes["ensembl_gene"].tolist()
    assert features["symbol"].tolist() == genes["symbol"].tolist()
    assert features["biotype"].tolist() == genes["biotype"].tolist()
    assert samples["geo_accession"].tolist() == fx["sample_names"]
    np.testing.assert_array_equal(counts, fx["expected"].to_numpy())
    sheet = fx["sheet"].set_index("sample").loc[fx["sample_names"]]
    assert samples["series_id"].tolist() == sheet["series"].tolist()
    assert samples["tissue"].tolist() == sheet["tissue"].tolist()
    assert samples["sex"].tolist() == sheet["sex"].tolist()
    np.testing.assert_array_equal(samples["age"], sheet["age"])
    assert report["id_type"] == fx["id_type"]
    assert report["genes_in"] == fx["genes_in"]
    assert report["unmapped"] == fx["unmapped"]
    assert report["mapped"] == fx["genes_in"] - fx["unmapped"]
    assert report["duplicates_dropped"] == fx["duplicates"]
    assert report["rescued_by_alias"] == 0 and report["ambiguous"] == 0
    assert report["genes_out"] == len(genes)
    assert report["samples"] == len(fx["sample_names"])
    assert report["series"] == len(SERIES)
    json.dumps(report)
    return samples


@pytest.mark.parametrize("id_type", ID_TYPES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt, id_type) -> None:
    fx = write_byo_fixture(tmp_path / "in", fmt, id_type)
    out = tmp_path / "out" / "human_gene_byo.h5"
    report = byo.convert(fx["counts"], fx["samples"], "human", out)
    samples = check_round_trip(fx, out, report)
    assert np.isnan(samples["singlecellprobability"]).all()


def file_content(out: Path) -> dict:
    """Everything an ARCHS4 file holds, as read back."""
    with Archs4File(out) as f:
        return {"features": f.features(), "samples": f.samples(), "counts": f.read(),
                "info": f.info()}  # fmt: skip


def assert_same_content(a: Path, b: Path) -> None:
    first, second = file_content(a), file_content(b)
    pd.testing.assert_frame_equal(first["features"], second["features"])
    pd.testing.assert_frame_equal(first["samples"], second["samples"])
    np.testing.assert_array_equal(first["counts"], second["counts"])
    assert first["info"] == second["info"]


def spy_blocks(monkeypatch, cls) -> list[tuple[int, int]]:
    """Record the shape (genes × samples) of every block `cls.blocks` yields."""
    shapes: list[tuple[int, int]] = []
    original = cls.blocks

    def blocks(self, block_values):
        for rows, columns, block in original(self, block_values):
            shapes.append((rows.stop - rows.start, columns.stop - columns.start))
            assert block.shape == shapes[-1]
            yield rows, columns, block

    monkeypatch.setattr(cls, "blocks", blocks)
    return shapes


@pytest.mark.parametrize("fmt", ["parquet", "h5ad", "h5ad_sparse"])
def test_small_blocks_give_the_same_file(tmp_path, monkeypatch, fmt) -> None:
    fx = write_byo_fixture(tmp_path / "in", fmt)
    whole = tmp_path / "whole.h5"
    byo.convert(fx["counts"], fx["samples"], "human", whole, block_values=10**9)
    out = tmp_path / "out.h5"
    budget = 5 * fx["genes_in"]  # blocks of 5 samples
    check_round_trip(fx, out, byo.convert(fx["counts"], fx["samples"], "human", out, budget))
    assert_same_content(whole, out)


def write_tsv_variant(fx: dict, variant: str) -> Path:
    """The fixture's counts as a plain TSV, gzip TSV, or R's write.table output (no header
    field over the gene column, quoted names, whole numbers written as 3.0)."""
    raw = fx["raw"]
    if variant == "plain":
        return fx["counts"]
    if variant == "gzip":
        path = fx["counts"].with_suffix(".tsv.gz")  # told apart by content, not by name
        raw.rename_axis("gene_id").to_csv(path, sep="\t", compression="gzip")
        return path
    path = fx["counts"].with_name("counts_r.tsv")
    lines = ["\t".join(f'"{s}"' for s in raw.columns)]
    lines += [f'"{g}"\t' + "\t".join(f"{v:.1f}" for v in row) for g, row in raw.iterrows()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("variant", ["plain", "gzip", "r_style"])
def test_tsv_is_streamed_by_gene_rows_within_the_budget(tmp_path, monkeypatch, variant) -> None:
    """A text table is read by blocks of whole gene rows, at most block_values counts each,
    and gives the file the planted truth says (duplicates resolved, unmapped rows dropped),
    the same as when it is read in one block."""
    fx = write_byo_fixture(tmp_path / "in", "tsv", "symbol")
    counts = write_tsv_variant(fx, variant)
    shapes = spy_blocks(monkeypatch, byo.TsvMatrix)
    whole = tmp_path / "whole.h5"
    check_round_trip(fx, whole, byo.convert(counts, fx["samples"], "human", whole, 10**9))
    assert shapes == [(fx["genes_in"], len(fx["sample_names"]))] * 2  # both passes, one block
    shapes.clear()
    budget = 7 * len(fx["sample_names"]) + 5  # 7 gene rows a block
    out = tmp_path / "blocks.h5"
    check_round_trip(fx, out, byo.convert(counts, fx["samples"], "human", out, budget))
    n_blocks = -(-fx["genes_in"] // 7)
    assert len(shapes) == 2 * n_blocks
    assert all(g * s <= budget for g, s in shapes)
    assert sum(g for g, _ in shapes) == 2 * fx["genes_in"]
    assert_same_content(whole, out)
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_singlecellprobability_from_the_sheet(tmp_path) -> None:
    fx = write_byo_fixture(tmp_path, "tsv", singlecell=True)
    out = tmp_path / "out.h5"
    samples = check_round_trip(fx, out, byo.convert(fx["counts"], fx["samples"], "human", out))
    want = fx["sheet"].set_index("sample").loc[fx["sample_names"], "singlecellprobability"]
    np.testing.assert_array_equal(samples["singlecellprobability"], want.to_numpy())


def test_parquet_with_gene_index(tmp_path) -> None:
    fx = write_byo_fixture(tmp_path, "parquet", "ensembl")
    write_counts(fx["counts"], "parquet", fx["raw"], gene_index=True)
    out = tmp_path / "out.h5"
    check_round_trip(fx, out, byo.convert(fx["counts"], fx["samples"], "human", out))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("value", "problem"),
    [(1.5, "is not an integer (1.5)"), (-3, "is negative (-3)"), (np.nan, "is missing")],
)
def test_bad_counts_name_gene_and_sample(tmp_path, fmt, value, problem) -> None:
    fx = write_byo_fixture(tmp_path / "in", fmt, "ensembl")
    raw = fx["raw"].astype(float)
    gene, sample = raw.index[7], raw.columns[4]
    raw.iloc[7, 4] = value
    write_counts(fx["counts"], fmt, raw)
    out = tmp_path / "out" / "byo.h5"
    assert_fails(
        lambda: byo.convert(fx["counts"], fx["samples"], "human", out),
        out,
        fx["counts"],
        f"gene {gene}, sample {sample} {problem}",
    )


def test_bad_count_in_a_later_block_names_its_gene(tmp_path) -> None:
    fx = write_byo_fixture(tmp_path / "in", "tsv", "ensembl")
    raw = fx["raw"].astype(float)
    raw.iloc[30, 4] = -2
    write_counts(fx["counts"], "tsv", raw)
    out = tmp_path / "out" / "byo.h5"
    budget = 7 * raw.shape[1]  # row 30 is in the fifth block
    assert_fails(
        lambda: byo.convert(fx["counts"], fx["samples"], "human", out, budget),
        out,
        fx["counts"],
        f"gene {raw.index[30]}, sample {raw.columns[4]} is negative (-2)",
    )
    write_counts(fx["counts"], "tsv", fx["raw"])
    lines = fx["counts"].read_text().splitlines()
    lines[40] += "\t7"  # one field too many, in a later block
    fx["counts"].write_text("\n".join(lines) + "\n")
    assert_fails(
        lambda: byo.convert(fx["counts"], fx["samples"], "human", out, budget),
        out,
        fx["counts"],
        "cannot read as a TSV table",
    )


def test_text_in_counts(tmp_path) -> None:
    fx = write_byo_fixture(tmp_path / "in", "tsv", "ensembl")
    raw = fx["raw"].astype(object)
    raw.iloc[2, 1] = "12a"
    write_counts(fx["counts"], "tsv", raw)
    out = tmp_path / "out" / "byo.h5"
    assert_fails(
        lambda: byo.convert(fx["counts"], fx["samples"], "human", out),
        out,
        fx["counts"],
        f"gene {raw.index[2]}, sample {raw.columns[1]} is not a number ('12a')",
    )


def sheet_variant(fx: dict, path: Path, edit) -> Path:
    sheet = edit(fx["sheet"].copy())
    sheet.to_csv(path, sep="\t", index=False)
    return path


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda s: s.iloc[1:], ["no row for 1 sample(s)", "PRJ_A_01"]),
        (
            lambda s: pd.concat([s, s.iloc[[0]].assign(sample="EXTRA_1")]),
            ["1 sample(s) not in", "EXTRA_1"],
        ),
        (lambda s: pd.concat([s, s.iloc[[0]]]), ["duplicate sample names: PRJ_A_01"]),
        (lambda s: s.drop(columns="series"), ["no column series"]),
        (lambda s: s.rename(columns={"sample": "name"}), ["no column sample"]),
        (lambda s: s.assign(geo_accession="GSM1"), ["'geo_accession' is filled from"]),
        (lambda s: s.assign(singlecellprobability="high"), ["singlecellprobability of sample"]),
        (lambda s: s.assign(singlecellprobability=2.0), ["expected a number in 0..1"]),
        (lambda s: s.assign(series=[""] + ["x"] * (len(s) - 1)), ["empty series on line 2"]),
    ],
)
def test_sample_sheet_errors(tmp_path, edit, fragments) -> None:
    fx = write_byo_fixture(tmp_path / "in", "tsv")
    sheet = sheet_variant(fx, tmp_path / "in" / "bad_samples.tsv", edit)
    out = tmp_path / "out" / "byo.h5"
    assert_fails(lambda: byo.convert(fx["counts"], sheet, "human", out), out, sheet, *fragments)


@pytest.mark.parametrize("fmt", ["tsv", "h5ad"])
def test_duplicate_sample_names_in_counts(tmp_path, fmt) -> None:
    fx = write_byo_fixture(tmp_path / "in", fmt)
    raw = fx["raw"].copy()
    raw.columns = [*raw.columns[:-1], raw.columns[0]]
    write_counts(fx["counts"], fmt, raw)
    out = tmp_path / "out" / "byo.h5"
    assert_fails(
        lambda: byo.convert(fx["counts"], fx["samples"], "human", out),
        out,
        fx["counts"],
        "duplicate sample names",
        raw.columns[0],
    )


def test_wrong_species(tmp_path) -> None:
    fx = write_byo_fixture(tmp_path / "in", "tsv", "ensembl")
    out = tmp_path / "out" / "byo.h5"
    assert_fails(
        lambda: byo.convert(fx["counts"], fx["samples"], "mouse", out),
        out,
        fx["counts"],
        "is a mouse Ensembl 100 gene; wrong species?",
    )


def test_unreadable_inputs(tmp_path) -> None:
    fx = write_byo_fixture(tmp_path / "in", "tsv")
    out = tmp_path / "out" / "byo.h5"
    missing = tmp_path / "none.tsv"
    assert_fails(lambda: byo.convert(missing, fx["samples"], "human", out), out, missing)
    assert_fails(lambda: byo.convert(fx["counts"], missing, "human", out), out, missing)
    broken = tmp_path / "broken.h5ad"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert_fails(lambda: byo.convert(broken, fx["samples"], "human", out), out, broken, "h5ad")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\0" * 100)
    assert_fails(lambda: byo.convert(broken, fx["samples"], "human", out), out, broken, "Parquet")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    assert_fails(lambda: byo.convert(empty, fx["samples"], "human", out), out, empty, "empty")


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["ENSG00000141510.18", "ENSG00000012048.23", "__no_feature"], "ensembl_versioned"),
        (["ENSG00000141510", "ENSG00000012048", "ENSG00000012048.2"], "ensembl"),
        (["ENSMUSG00000059552", "ENSMUSG00000017167"], "ensembl"),
        (["7157", "672", "__ambiguous"], "entrez"),
        (["TP53", "BRCA1", "7157"], "symbol"),
        (["Trp53", "Actb"], "symbol"),
    ],
)
def test_id_type_of_the_list(ids, expected) -> None:
    assert byo.map_genes(ids, "human")[0] == expected


def test_symbols_map_across_case() -> None:
    id_type, ensembl, how = byo.map_genes(["TP53", "tp53", "Tp53", "NOT_A_GENE", "TP53"], "human")
    assert id_type == "symbol"
    assert ensembl.tolist() == ["ENSG00000141510"] * 3 + [None, "ENSG00000141510"]
    assert how.tolist() == ["direct", "case", "case", "unmapped", "direct"]


def test_previous_symbol_rescued_by_alias(tmp_path) -> None:
    """MLL is KMT2A's previous HGNC symbol, held by no other gene; CAP names six genes."""
    kmt2a, tp53, brca1 = "ENSG00000118058", "ENSG00000141510", "ENSG00000012048"
    names = ["S1", "S2", "S3"]
    rows = {"TP53": [5, 6, 7], "MLL": [10, 0, 3], "brca1": [1, 2, 3], "CAP": [4, 4, 4]}
    rows["__no_feature"] = [9, 9, 9]
    counts = pd.DataFrame.from_dict(rows, orient="index", columns=names)
    counts_path = write_counts(tmp_path / "counts.tsv", "tsv", counts)
    sheet = tmp_path / "samples.tsv"
    pd.DataFrame({"sample": names, "series": "PRJ_A"}).to_csv(sheet, sep="\t", index=False)
    out = tmp_path / "out.h5"
    report = byo.convert(counts_path, sheet, "human", out)
    features, _, values = read_back(out)
    assert features["ensembl_gene"].tolist() == [brca1, kmt2a, tp53]
    assert features.loc[1, "symbol"] == "KMT2A"
    np.testing.assert_array_equal(values[1], rows["MLL"])
    assert report["id_type"] == "symbol"
    assert (report["genes_in"], report["mapped"], report["unmapped"]) == (5, 3, 2)
    assert report["rescued_by_alias"] == 1
    assert report["ambiguous"] == 1
    assert report["unmapped_examples"] == ["CAP", "__no_feature"]


def test_all_empty_gene_ids(tmp_path) -> None:
    counts = pd.DataFrame({"S1": [1, 2]}, index=[" ", "  "])
    counts_path = write_counts(tmp_path / "counts.tsv", "tsv", counts)
    sheet = tmp_path / "samples.tsv"
    pd.DataFrame({"sample": ["S1"], "series": "P"}).to_csv(sheet, sep="\t", index=False)
    out = tmp_path / "out.h5"
    assert_fails(lambda: byo.convert(counts_path, sheet, "human", out), out, counts_path, "empty")


def test_cli(tmp_path) -> None:
    """`gexnet byo COUNTS SAMPLES` with the species from the config and a block budget."""
    fx = write_byo_fixture(tmp_path / "in", "h5ad_sparse", "entrez")
    out, report = tmp_path / "byo.h5", tmp_path / "byo.json"
    argv = ["byo", str(fx["counts"]), str(fx["samples"]), "--out", str(out),
            "--report", str(report), "--config", '{"byo": {"species": "human"}}',
            "--config", "block_values=1000"]  # fmt: skip
    assert cli.main(argv) == 0
    check_round_trip(fx, out, json.loads(report.read_text()))
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]
