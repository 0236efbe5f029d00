"""GEO series (NCBI-generated counts, series matrix, NCBI annotation) to the ARCHS4 layout.

Fixtures are written in NCBI's real formats with real human gene identities (Ensembl 100 IDs,
their Entrez IDs and symbols) and simulated counts.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gexnet import cli
from gexnet.errors import GexnetError
from gexnet.formats.archs4 import Archs4File
from gexnet.sources import byo, genome, geo

SERIES = ("GSE190001", "GSE190002")
SAMPLES_PER_SERIES = 12
TISSUES = ("liver", "lung", "brain", "kidney")
ANNOTATION_HEADER = (
    "GeneID Symbol Description TaxID Status RNA_nucleotide_accession.version RNA_nucleotide_gi "
    "Protein_accession.version Protein_gi ChrAcc ChrStart ChrStop Orientation Length "
    "EnsemblGeneID GeneType GOFunctionID GOProcessID GOComponentID GOFunction GOProcess "
    "GOComponent"
).split()
UNMAPPED_ENTREZ = ("900000001", "900000002", "900000003", "900000004")
LNCRNA_ENTREZ = 800_000_001  # made-up Entrez IDs for lncRNAs (see fixture_genes)
N_MISSING_IN_SECOND = 10  # genes absent from the second series' counts: 0 there


# --- fixture writers (reused by end-to-end tests) ---------------------------------------------


def fixture_genes(n_coding: int = 300, n_lncrna: int = 50, n_multi: int = 3, seed: int = 11):
    """Real human genes: coding genes with one unambiguous Entrez ID, lncRNAs, and `n_multi`
    coding genes that list two Entrez IDs (entrez2: a planted duplicate).

    Ensembl 100 lists no Entrez ID for lncRNAs, so they get made-up ones (LNCRNA_ENTREZ + k) that
    map only through NCBI's EnsemblGeneID, never through Ensembl 100.
    Columns: gene_id, symbol, biotype, entrez, entrez2 (None unless a two-Entrez gene).
    """
    table = genome.genes("human")
    parts = table["entrez"].fillna("").str.split(";").map(lambda ids: [i.strip() for i in ids if i])
    all_ids = pd.Series([i for ids in parts for i in ids])
    shared = set(all_ids[all_ids.duplicated()])
    unique = parts.map(lambda ids: bool(ids) and not shared.intersection(ids))
    coding = table["biotype"] == "protein_coding"
    rng = np.random.default_rng(seed)

    def pick(mask: pd.Series, n: int) -> pd.DataFrame:
        rows = table[mask]
        return rows.iloc[np.sort(rng.choice(len(rows), n, replace=False))]

    single = pick(unique & (parts.map(len) == 1) & coding, n_coding)
    multi = pick(unique & (parts.map(len) == 2) & coding, n_multi)
    lnc = pick((table["biotype"] == "lncRNA") & (parts.map(len) == 0), n_lncrna)
    with_entrez = pd.concat([single, multi])
    ids = parts.loc[with_entrez.index]
    out = pd.concat(
        [
            pd.DataFrame(
                {
                    "gene_id": with_entrez["gene_id"].to_numpy(),
                    "symbol": with_entrez["symbol"].to_numpy(),
                    "biotype": with_entrez["biotype"].to_numpy(),
                    "entrez": [i[0] for i in ids],
                    "entrez2": [i[1] if len(i) > 1 else None for i in ids],
                }
            ),
            pd.DataFrame(
                {
                    "gene_id": lnc["gene_id"].to_numpy(),
                    "symbol": lnc["symbol"].to_numpy(),
                    "biotype": lnc["biotype"].to_numpy(),
                    "entrez": [str(LNCRNA_ENTREZ + k) for k in range(len(lnc))],
                    "entrez2": None,
                }
            ),
        ]
    )
    return out.sort_values("gene_id").reset_index(drop=True)


def simulate_counts(n_genes: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts around ~1e5 reads per sample; every gene expressed."""
    abundance = rng.lognormal(0.0, 1.0, n_genes)
    abundance /= abundance.sum()
    library = rng.uniform(8e4, 1.5e5, n_samples)
    return rng.poisson(np.outer(abundance, library)).astype(np.int64)


def _gz_lines(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write("".join(line + "\n" for line in lines))


def write_ncbi_counts(path: Path, counts: pd.DataFrame) -> None:
    """NCBI's raw counts format: gzip TSV, `GeneID` then one column per GSM, rows by GeneID."""
    order = sorted(counts.index, key=int)
    lines = ["\t".join(["GeneID", *counts.columns])]
    lines += ["\t".join([g, *map(str, counts.loc[g])]) for g in order]
    _gz_lines(path, lines)


def write_series_matrix(path: Path, gse: str, samples: pd.DataFrame, title: str) -> None:
    """A GEO series matrix (gzip): quoted header values, several characteristics lines and an
    empty data table. `samples` has geo_accession, title, source_name_ch1, organism_ch1,
    characteristics (a list of lines per sample, '' where a sample lacks one),
    library_strategy, instrument_model."""

    def row(key: str, values) -> str:
        return "\t".join([key, *(f'"{v}"' for v in values)])

    lines = [
        row("!Series_title", [title]),
        row("!Series_geo_accession", [gse]),
        row("!Series_status", ["Public on Jan 01 2022"]),
        row("!Series_summary", ["Simulated series for gexnet tests."]),
        row("!Series_sample_id", [" ".join(samples["geo_accession"])]),
        "",
        row("!Sample_title", samples["title"]),
        row("!Sample_geo_accession", samples["geo_accession"]),
        row("!Sample_status", ["Public on Jan 01 2022"] * len(samples)),
        row("!Sample_type", ["SRA"] * len(samples)),
        row("!Sample_channel_count", ["1"] * len(samples)),
        row("!Sample_source_name_ch1", samples["source_name_ch1"]),
        row("!Sample_organism_ch1", samples["organism_ch1"]),
    ]
    n_lines = max(len(c) for c in samples["characteristics"])
    for k in range(n_lines):
        lines.append(
            row(
                "!Sample_characteristics_ch1",
                [c[k] if k < len(c) else "" for c in samples["characteristics"]],
            )
        )
    lines += [
        row("!Sample_molecule_ch1", ["total RNA"] * len(samples)),
        row("!Sample_library_strategy", samples["library_strategy"]),
        row("!Sample_instrument_model", samples["instrument_model"]),
        row("!Sample_data_row_count", ["0"] * len(samples)),
        "!series_matrix_table_begin",
        row('"ID_REF"', samples["geo_accession"]),
        "!series_matrix_table_end",
    ]
    _gz_lines(path, lines)


def write_ncbi_annotation(path: Path, rows: pd.DataFrame) -> None:
    """NCBI's annotation format (gzip TSV, all of its columns). `rows`: GeneID, Symbol,
    EnsemblGeneID ('' if none), GeneType."""
    full = pd.DataFrame({c: "" for c in ANNOTATION_HEADER}, index=range(len(rows)))
    for column in rows:
        full[column] = rows[column].to_numpy()
    full["Description"] = [f'gene "{s}" (simulated description)' for s in rows["Symbol"]]
    full["TaxID"] = "9606"
    full["Status"] = "REVIEWED"
    full["ChrAcc"] = "NC_000001.11"
    full["ChrStart"] = "1000"
    full["ChrStop"] = "2000"
    full["Orientation"] = "+"
    full["Length"] = "1001"
    _gz_lines(path, ["\t".join(ANNOTATION_HEADER)] + ["\t".join(r) for r in full.to_numpy(str)])


def write_geo_fixture(directory: str | Path, seed: int = 5) -> dict:
    """Two GEO series of 12 human samples each in NCBI's formats, and what conversion must give.

    Planted: 4 Entrez IDs with no Ensembl ID (unmapped), 3 genes whose second Entrez ID shares
    the first's Ensembl ID with far fewer counts (duplicates, dropped), every fifth gene without
    EnsemblGeneID in the annotation (mapped through Ensembl 100),, 10 genes absent from the second
    series' counts (0 there), one matrix sample without counts (skipped).

    Returns: series (list of {gse, counts, matrix}), annotation, species, genes (ensembl_gene,
    symbol, biotype, entrez: the output genes in file order), counts (ensembl_gene × GSM, int64),
    samples (expected meta/samples text fields, in file order), unmapped, duplicates,
    samples_per_series.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    genes = fixture_genes()
    n = len(genes)
    truth = simulate_counts(n, len(SERIES) * SAMPLES_PER_SERIES, rng)
    gsms = [f"GSM57{s:02d}{k:03d}" for s in range(len(SERIES)) for k in range(SAMPLES_PER_SERIES)]
    expected = pd.DataFrame(truth, index=genes["gene_id"].to_numpy(), columns=gsms)
    single = genes.loc[genes["entrez2"].isna(), "gene_id"]
    missing_in_second = single.iloc[-N_MISSING_IN_SECOND:].to_numpy()
    expected.loc[missing_in_second, gsms[SAMPLES_PER_SERIES:]] = 0

    multi = genes.dropna(subset=["entrez2"])
    # every fifth coding gene without EnsemblGeneID: mapped through Ensembl 100's Entrez IDs
    via_ensembl = (np.arange(n) % 5 == 0) & (genes["biotype"] == "protein_coding").to_numpy()
    annotation_rows = pd.DataFrame(
        {
            "GeneID": [*genes["entrez"], *multi["entrez2"], *UNMAPPED_ENTREZ],
            "Symbol": [
                *genes["symbol"],
                *(s + "-DT" for s in multi["symbol"]),
                *(f"LOC{e}" for e in UNMAPPED_ENTREZ),
            ],
            "EnsemblGeneID": [
                *np.where(via_ensembl, "", genes["gene_id"]),
                *multi["gene_id"],
                *[""] * len(UNMAPPED_ENTREZ),
            ],
            "GeneType": [
                *np.where(genes["biotype"] == "protein_coding", "protein-coding", "ncRNA"),
                *["protein-coding"] * len(multi),
                *["pseudo"] * len(UNMAPPED_ENTREZ),
            ],
        }
    )
    write_ncbi_annotation(directory / "Human.GRCh38.p13.annot.tsv.gz", annotation_rows)

    series, samples = [], []
    for s, gse in enumerate(SERIES):
        columns = gsms[s * SAMPLES_PER_SERIES : (s + 1) * SAMPLES_PER_SERIES]
        counts = expected[columns].set_axis(genes["entrez"].to_numpy())
        if s == 1:
            counts = counts.drop(genes.set_index("gene_id").loc[missing_in_second, "entrez"])
        extra = pd.DataFrame(
            rng.poisson(3, (len(multi) + len(UNMAPPED_ENTREZ), len(columns))),
            index=[*multi["entrez2"], *UNMAPPED_ENTREZ],
            columns=columns,
        )
        # the planted duplicates must lose to the gene's own Entrez ID
        assert (counts.loc[multi["entrez"]].sum(axis=1).to_numpy() > 10 * 3 * len(columns)).all()
        counts = pd.concat([counts, extra])
        counts_path = directory / f"{gse}_raw_counts_GRCh38.p13_NCBI.tsv.gz"
        write_ncbi_counts(counts_path, counts)

        tissue = [TISSUES[(k + s) % len(TISSUES)] for k in range(len(columns))]
        meta = pd.DataFrame(
            {
                "geo_accession": columns,
                "title": [f"{t} rep{k + 1}" for k, t in enumerate(tissue)],
                "source_name_ch1": tissue,
                "organism_ch1": "Homo sapiens",
                "library_strategy": "RNA-Seq",
                "instrument_model": "Illumina NovaSeq 6000",
            }
        )
        meta["characteristics"] = [
            [
                f"tissue: {t}",
                f"sex: {'female' if k % 2 else 'male'}",
                f"age: {30 + k}" if k % 3 else "",
            ]
            for k, t in enumerate(tissue)
        ]
        meta["characteristics_ch1"] = [
            ",".join(c for c in cs if c) for cs in meta["characteristics"]
        ]
        meta["series_id"] = gse
        matrix = meta
        if s == 0:  # a ChIP-seq sample of the same series: in the matrix, not in the counts
            other = meta.iloc[[0]].assign(geo_accession="GSM5799999", library_strategy="ChIP-Seq")
            matrix = pd.concat([meta, other], ignore_index=True)
        matrix_path = directory / f"{gse}_series_matrix.txt.gz"
        write_series_matrix(matrix_path, gse, matrix, title=f"Simulated series {gse}")
        series.append({"gse": gse, "counts": counts_path, "matrix": matrix_path})
        samples.append(meta.drop(columns="characteristics"))

    out_genes = genes.rename(columns={"gene_id": "ensembl_gene"})[
        ["ensembl_gene", "symbol", "biotype", "entrez"]
    ]
    return {
        "series": series,
        "annotation": directory / "Human.GRCh38.p13.annot.tsv.gz",
        "species": "human",
        "genes": out_genes,
        "counts": expected,
        "samples": pd.concat(samples, ignore_index=True),
        "unmapped": len(UNMAPPED_ENTREZ),
        "duplicates": len(multi),
        "samples_per_series": dict.fromkeys(SERIES, SAMPLES_PER_SERIES),
        "mapped_via_ensembl": int(via_ensembl.sum()),
    }


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture(tmp_path_factory) -> dict:
    return write_geo_fixture(tmp_path_factory.mktemp("geo"))


@pytest.fixture(scope="module")
def converted(fixture, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("geo_out") / "human_gene_geo.h5"
    report = geo.convert(fixture["series"], fixture["annotation"], "human", out)
    return out, report


def assert_fails(call, out: Path, *fragments: str) -> str:
    """The call raises a one-line GexnetError holding every fragment, and leaves nothing."""
    with pytest.raises(GexnetError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert str(fragment) in message, message
    assert not out.exists()
    if out.parent.exists():
        assert not [p.name for p in out.parent.iterdir() if ".tmp" in p.name]
    return message


def rewrite_gz(path: Path, dest: Path, edit) -> Path:
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    _gz_lines(dest, edit(lines))
    return dest


# --- tests -------------------------------------------------------------------------------------


def test_round_trip(fixture, converted) -> None:
    out, _ = converted
    with Archs4File(out) as f:
        assert f.level == "gene"
        features = f.features()
        samples = f.samples()
        counts = f.read()
    genes = fixture["genes"]
    assert features["ensembl_gene"].tolist() == genes["ensembl_gene"].tolist()
    assert features["symbol"].tolist() == genes["symbol"].tolist()
    assert features["biotype"].tolist() == genes["biotype"].tolist()
    expected = fixture["counts"]
    assert samples["geo_accession"].tolist() == expected.columns.tolist()
    np.testing.assert_array_equal(counts, expected.loc[features["ensembl_gene"]].to_numpy())
    want = fixture["samples"]
    for field in want:
        assert samples[field].tolist() == want[field].tolist(), field
    assert np.isnan(samples["singlecellprobability"]).all()
    assert set(samples["series_id"]) == set(fixture["samples_per_series"])


def test_report(fixture, converted, caplog) -> None:
    _, report = converted
    genes = fixture["genes"]
    assert report["unmapped"] == fixture["unmapped"]
    assert report["duplicates"] == fixture["duplicates"]
    assert report["genes_out"] == len(genes)
    assert report["genes_in"] == len(genes) + fixture["duplicates"] + fixture["unmapped"]
    assert report["mapped"] == report["genes_in"] - report["unmapped"]
    assert report["mapped_via_ensembl"] == fixture["mapped_via_ensembl"]
    assert report["samples_per_series"] == fixture["samples_per_series"]
    assert report["matrix_samples_without_counts"] == {"GSE190001": 1, "GSE190002": 0}
    assert report["samples"] == sum(fixture["samples_per_series"].values())
    json.dumps(report)  # plain JSON types only


def test_qc_thresholds_pass(converted) -> None:
    """Big enough for a downstream QC with min_total_counts 1000 and min_detected_genes 100."""
    with Archs4File(converted[0]) as f:
        counts = f.read().astype(np.int64)
    assert (counts.sum(axis=0) >= 1000).all()
    assert ((counts > 0).sum(axis=0) > 100).all()


def test_series_matrix_multiline_characteristics(fixture) -> None:
    gse, meta = geo.parse_series_matrix(fixture["series"][0]["matrix"])
    assert gse == "GSE190001"
    assert meta.columns[0] == "geo_accession"
    assert len(meta) == SAMPLES_PER_SERIES + 1
    first = meta.iloc[0]
    assert first["characteristics_ch1"] == "tissue: liver,sex: male"  # age line empty for it
    assert meta.iloc[1]["characteristics_ch1"] == "tissue: lung,sex: female,age: 31"
    assert first["library_strategy"] == "RNA-Seq"
    assert first["instrument_model"] == "Illumina NovaSeq 6000"
    assert first["organism_ch1"] == "Homo sapiens"
    assert meta.iloc[-1]["library_strategy"] == "ChIP-Seq"


def test_series_matrix_plain_text_written_by_hand(tmp_path) -> None:
    path = tmp_path / "GSE1_series_matrix.txt"
    path.write_text(
        '!Series_title\t"A tiny series"\n'
        '!Series_geo_accession\t"GSE1"\n'
        '!Sample_title\t"a"\t"b"\n'
        '!Sample_geo_accession\t"GSM1"\t"GSM2"\n'
        '!Sample_source_name_ch1\t"liver"\t"lung"\n'
        '!Sample_characteristics_ch1\t"tissue: liver"\t"tissue: lung"\n'
        '!Sample_characteristics_ch1\t"treatment: none"\t""\n'
        '!Sample_characteristics_ch1\t"time: 2h"\t"time: 4h"\n'
        "!series_matrix_table_begin\n"
        "!series_matrix_table_end\n"
    )
    gse, meta = geo.parse_series_matrix(path)
    assert gse == "GSE1"
    assert meta["geo_accession"].tolist() == ["GSM1", "GSM2"]
    assert meta["characteristics_ch1"].tolist() == [
        "tissue: liver,treatment: none,time: 2h",
        "tissue: lung,time: 4h",
    ]
    assert meta["title"].tolist() == ["a", "b"]


def test_series_matrix_errors(tmp_path) -> None:
    path = tmp_path / "bad_series_matrix.txt"
    path.write_text(
        '!Series_geo_accession\t"GSE1"\n!Sample_geo_accession\t"GSM1"\t"GSM2"\n!Sample_title\t"a"\n'
    )
    message = assert_fails(lambda: geo.parse_series_matrix(path), tmp_path / "none", path)
    assert "line 3" in message and "1 values for 2 samples" in message
    path.write_text('!Sample_geo_accession\t"GSM1"\n')
    assert_fails(lambda: geo.parse_series_matrix(path), tmp_path / "none", "!Series_geo_accession")


BIG = 10**9  # every file in one block


def test_check_ncbi_counts(fixture) -> None:
    counts, totals = geo.check_ncbi_counts(fixture["series"][0]["counts"], BIG)
    assert counts.samples == fixture["counts"].columns[:SAMPLES_PER_SERIES].tolist()
    assert totals.index.dtype == object and isinstance(totals.index[0], str)
    assert len(totals) == len(fixture["genes"]) + fixture["duplicates"] + fixture["unmapped"]
    assert counts.genes == totals.index.tolist()
    # each Entrez ID's total over the series' samples, from the planted counts
    genes = fixture["genes"].set_index("entrez")
    mapped = totals.index.intersection(genes.index)
    want = fixture["counts"].iloc[:, :SAMPLES_PER_SERIES].sum(axis=1)
    np.testing.assert_array_equal(
        totals[mapped].to_numpy(), want[genes.loc[mapped, "ensembl_gene"]].to_numpy()
    )


def test_series_are_streamed_by_gene_rows_within_the_budget(fixture, converted, tmp_path):
    """Each series' counts are read by blocks of gene rows, at most block_values counts each
    (one series at a time), and give the same file as read whole."""
    shapes = []
    original = byo.TsvMatrix.blocks

    def blocks(self, block_values):
        for rows, columns, block in original(self, block_values):
            shapes.append(block.shape)
            yield rows, columns, block

    budget = 7 * SAMPLES_PER_SERIES  # 7 gene rows a block
    out = tmp_path / "blocks.h5"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(byo.TsvMatrix, "blocks", blocks)
        report = geo.convert(fixture["series"], fixture["annotation"], "human", out, budget)
    assert report == {**converted[1], "out": str(out)}
    assert all(rows * samples <= budget for rows, samples in shapes)
    n_rows = len(fixture["genes"]) + fixture["duplicates"] + fixture["unmapped"]
    n_rows = 2 * n_rows - N_MISSING_IN_SECOND  # both series
    assert len(shapes) >= 2 * n_rows / 7 and sum(r for r, _ in shapes) == 2 * n_rows
    with Archs4File(out) as f, Archs4File(converted[0]) as whole:
        np.testing.assert_array_equal(f.read(), whole.read())
        pd.testing.assert_frame_equal(f.features(), whole.features())
        pd.testing.assert_frame_equal(f.samples(), whole.samples())
        assert f.info() == whole.info()
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.5", "is not an integer (1.5)"),
        ("-3", "is negative (-3)"),
        ("", "is missing"),
        ("NA", "is missing"),
        ("n/a?", "is not a number ('n/a?')"),
    ],
)
def test_bad_counts_are_named(fixture, tmp_path, value, problem) -> None:
    source = fixture["series"][0]["counts"]

    def edit(lines: list[str]) -> list[str]:
        fields = lines[5].split("\t")
        fields[3] = value
        lines[5] = "\t".join(fields)
        return lines

    bad = rewrite_gz(source, tmp_path / "GSE190001_raw_counts.tsv.gz", edit)
    with gzip.open(bad, "rt") as handle:
        lines = handle.read().splitlines()
    gene, sample = lines[5].split("\t")[0], lines[0].split("\t")[3]
    assert_fails(
        lambda: geo.check_ncbi_counts(bad, BIG), tmp_path / "x", bad, gene, sample, problem
    )
    series = [{**fixture["series"][0], "counts": bad}, fixture["series"][1]]
    out = tmp_path / "out" / "geo.h5"
    assert_fails(
        lambda: geo.convert(series, fixture["annotation"], "human", out), out, bad, problem
    )


def test_not_ncbi_counts(tmp_path) -> None:
    path = tmp_path / "counts.tsv"
    path.write_text("gene\tGSM1\n1\t5\n")
    assert_fails(lambda: geo.check_ncbi_counts(path, BIG), tmp_path / "x", path, "'GeneID'")


def test_duplicate_gsm_columns(fixture, tmp_path) -> None:
    def edit(lines):
        return [line + "\t" + line.split("\t")[1] for line in lines]

    bad = rewrite_gz(fixture["series"][0]["counts"], tmp_path / "c.tsv.gz", edit)
    assert_fails(lambda: geo.check_ncbi_counts(bad, BIG), tmp_path / "x", bad, "duplicate sample")


def test_duplicate_gene_rows(fixture, tmp_path) -> None:
    def edit(lines):
        return [*lines, lines[3]]  # a gene of the first block again, in the last one

    bad = rewrite_gz(fixture["series"][0]["counts"], tmp_path / "c.tsv.gz", edit)
    with gzip.open(bad, "rt") as handle:
        gene = handle.read().splitlines()[3].split("\t")[0]
    assert_fails(
        lambda: geo.check_ncbi_counts(bad, 5 * SAMPLES_PER_SERIES),
        tmp_path / "x",
        bad,
        f"duplicate GeneID rows: {gene}",
    )


def test_counted_sample_missing_from_matrix(fixture, tmp_path) -> None:
    first = fixture["series"][0]
    gone = fixture["counts"].columns[2]

    def edit(lines):
        out = []
        for line in lines:
            fields = line.split("\t")
            if line.startswith("!Sample_"):
                fields = [fields[0], *fields[1:3], *fields[4:]]  # third sample's column gone
            out.append("\t".join(fields))
        return out

    matrix = rewrite_gz(first["matrix"], tmp_path / "GSE190001_series_matrix.txt.gz", edit)
    series = [{**first, "matrix": matrix}, fixture["series"][1]]
    out = tmp_path / "out" / "geo.h5"
    assert_fails(
        lambda: geo.convert(series, fixture["annotation"], "human", out),
        out,
        matrix,
        gone,
        "no metadata for 1 sample",
    )


def test_sample_in_two_series(fixture, tmp_path) -> None:
    first, second = fixture["series"]
    again = {"gse": "GSE190003", "counts": first["counts"], "matrix": first["matrix"]}
    out = tmp_path / "out" / "geo.h5"
    # the matrix names GSE190001: caught first
    assert_fails(
        lambda: geo.convert([first, again], fixture["annotation"], "human", out),
        out,
        "series matrix of GSE190001, expected GSE190003",
    )
    matrix = rewrite_gz(
        first["matrix"],
        tmp_path / "m.txt.gz",
        lambda lines: [x.replace('"GSE190001"', '"GSE190003"') for x in lines],
    )
    again["matrix"] = matrix
    assert_fails(
        lambda: geo.convert([first, second, again], fixture["annotation"], "human", out),
        out,
        first["counts"],
        "is also in GSE190001",
        fixture["counts"].columns[0],
    )


def test_series_of_another_species(fixture, tmp_path) -> None:
    first = fixture["series"][0]
    matrix = rewrite_gz(
        first["matrix"],
        tmp_path / "m.txt.gz",
        lambda lines: [x.replace("Homo sapiens", "Mus musculus") for x in lines],
    )
    out = tmp_path / "out" / "geo.h5"
    assert_fails(
        lambda: geo.convert([{**first, "matrix": matrix}], fixture["annotation"], "human", out),
        out,
        matrix,
        "'Mus musculus', not Homo sapiens",
    )
    assert_fails(
        lambda: geo.convert([first], fixture["annotation"], "mouse", out),
        out,
        fixture["annotation"],
        "taxon 9606, not mouse",
    )


def test_bad_series_entries(fixture, tmp_path) -> None:
    out = tmp_path / "out" / "geo.h5"
    first = fixture["series"][0]
    assert_fails(lambda: geo.convert([], fixture["annotation"], "human", out), out, "no series")
    assert_fails(
        lambda: geo.convert([{**first, "gse": "123"}], fixture["annotation"], "human", out),
        out,
        "'123' is not a GEO series accession",
    )
    assert_fails(
        lambda: geo.convert([first, first], fixture["annotation"], "human", out),
        out,
        "duplicate series: GSE190001",
    )
    assert_fails(
        lambda: geo.convert([first], fixture["annotation"], "rat", out), out, "unknown species"
    )
    missing = tmp_path / "nope.tsv.gz"
    assert_fails(
        lambda: geo.convert([{**first, "counts": missing}], fixture["annotation"], "human", out),
        out,
        missing,
        "no such file",
    )


def test_annotation_without_ensembl_column(fixture, tmp_path) -> None:
    bad = rewrite_gz(
        fixture["annotation"],
        tmp_path / "annot.tsv.gz",
        lambda lines: [lines[0].replace("EnsemblGeneID", "Ensembl"), *lines[1:]],
    )
    out = tmp_path / "out" / "geo.h5"
    assert_fails(
        lambda: geo.convert(fixture["series"], bad, "human", out), out, bad, "EnsemblGeneID"
    )


def test_ncbi_identity_for_genes_ensembl_100_lacks(fixture, tmp_path) -> None:
    """An EnsemblGeneID that Ensembl 100 does not have keeps NCBI's symbol and GeneType."""
    unmapped = UNMAPPED_ENTREZ[0]

    def edit(lines):
        out = [lines[0]]
        for line in lines[1:]:
            fields = line.split("\t")
            if fields[0] == unmapped:
                fields[ANNOTATION_HEADER.index("EnsemblGeneID")] = "ENSG00000999999"
            out.append("\t".join(fields))
        return out

    annot = rewrite_gz(fixture["annotation"], tmp_path / "annot.tsv.gz", edit)
    out = tmp_path / "out" / "geo.h5"
    report = geo.convert(fixture["series"], annot, "human", out)
    assert report["unmapped"] == fixture["unmapped"] - 1
    assert report["genes_annotated_by_ncbi"] == 1
    with Archs4File(out) as f:
        features = f.features().set_index("ensembl_gene")
    assert features.loc["ENSG00000999999", "symbol"] == f"LOC{unmapped}"
    assert features.loc["ENSG00000999999", "biotype"] == "pseudogene"


def test_cli(fixture, tmp_path, capsys) -> None:
    """`gexnet geo ANNOTATION GSE=COUNTS=MATRIX...` as the rule calls it."""
    out, report = tmp_path / "geo.h5", tmp_path / "report" / "geo.json"
    argv = ["geo", str(fixture["annotation"]),
            *(f"{s['gse']}={s['counts']}={s['matrix']}" for s in fixture["series"]),
            "--species", "human", "--out", str(out), "--report", str(report),
            "--config", "block_values=1000"]  # fmt: skip
    assert cli.main(argv) == 0
    written = json.loads(report.read_text())
    assert written["samples_per_series"] == fixture["samples_per_series"]
    assert written["duplicates"] == fixture["duplicates"]
    with Archs4File(out) as f:
        assert f.n_samples == sum(fixture["samples_per_series"].values())
    with pytest.raises(SystemExit):
        cli.main(["geo", "a", "GSE1=only_counts", "--species=human", "--out=o"])
    assert "expected GSE=COUNTS=MATRIX" in capsys.readouterr().err


def test_shared_mapper_resolves_multi_entrez_genes() -> None:
    """Ensembl lists some genes' Entrez IDs '; '-joined: each maps on its own."""
    genes = fixture_genes(n_coding=5, n_lncrna=2, n_multi=3)
    ids = [*genes["entrez"], *genes["entrez2"].dropna(), *UNMAPPED_ENTREZ]
    result = genome.symbol_mapper("human").map(ids, "entrez", lowest_entrez=True)
    mapping = result.table.set_index("input")["gene_id"]
    for _, gene in genes.iterrows():
        if gene["biotype"] == "lncRNA":  # made-up Entrez IDs: Ensembl 100 has none for these
            assert pd.isna(mapping[gene["entrez"]])
            continue
        assert mapping[gene["entrez"]] == gene["gene_id"]
        if gene["entrez2"] is not None:
            assert mapping[gene["entrez2"]] == gene["gene_id"]
    assert mapping.reindex(list(UNMAPPED_ENTREZ)).isna().all()


def test_entrez_on_several_genes_goes_to_the_lowest_ensembl_id() -> None:
    """Ensembl 100 lists 729540 and 84220 on both RGPD5 and RGPD6: without NCBI's EnsemblGeneID
    both go to RGPD5 (the lower ID), one kept as a duplicate, whatever the input order."""
    rgpd5, rgpd6 = "ENSG00000015568", "ENSG00000183054"
    mapper = genome.symbol_mapper("human")
    assert mapper.map(["729540"], "entrez").counts["ambiguous"] == 1
    ncbi = pd.DataFrame(
        {"Symbol": ["RGPD6", "RGPD5"], "EnsemblGeneID": "", "GeneType": "protein-coding"},
        index=["729540", "84220"],
    )
    ensembl, via_ncbi, via_ensembl = geo._map_entrez(pd.Index(["84220", "729540"]), ncbi, "human")
    assert ensembl.tolist() == [rgpd5, rgpd5]
    assert (via_ncbi, via_ensembl) == (0, 2)
    ncbi["EnsemblGeneID"] = [f"{rgpd6}.5", ""]  # NCBI's own ID comes first, version stripped
    ensembl, via_ncbi, via_ensembl = geo._map_entrez(pd.Index(["84220", "729540"]), ncbi, "human")
    assert ensembl.tolist() == [rgpd5, rgpd6]
    assert (via_ncbi, via_ensembl) == (1, 1)
