"""CDS FASTA files: Ensembl's headers, plain or gzip by content, and one error per bad file
naming the file, the line and the problem."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from gexnet.errors import GexnetError
from gexnet.formats.fasta import iter_cds, read_cds, write_cds

ENSEMBL = """>ENST00000269305.9 cds chromosome:GRCh38:17:7661779:7687538:-1 gene:ENSG00000141510.18 \
gene_biotype:protein_coding transcript_biotype:protein_coding gene_symbol:TP53 description:tumor \
protein p53 [Source:HGNC Symbol;Acc:HGNC:11998]
ATGGAGGAGCCGCAGTCAGATCCTAGC
gtcgagccccctctgagtcaggaaacN
>ENST00000413465.6 cds chromosome:GRCh38:17:7661779:7687538:-1 gene:ENSG00000141510.18 \
gene_biotype:protein_coding transcript_biotype:protein_coding gene_symbol:TP53
ATGGAGGAG
>ENSMUST00000108658.8 cds chromosome:GRCm39:11:69471185:69482699:1 gene:ENSMUSG00000059552.14 \
gene_biotype:protein_coding transcript_biotype:protein_coding gene_symbol:Trp53
ATGACTGCCATG
"""


def test_reads_ensembl_headers_plain_and_gzip_alike(tmp_path):
    plain, packed = tmp_path / "cds.fa", tmp_path / "cds.download"  # the name says nothing
    plain.write_text(ENSEMBL)
    packed.write_bytes(gzip.compress(ENSEMBL.encode()))
    for path in (plain, packed):
        table = read_cds(path)
        assert table["transcript_id"].tolist() == [
            "ENST00000269305",
            "ENST00000413465",
            "ENSMUST00000108658",
        ]
        assert table["gene_id"].tolist() == ["ENSG00000141510"] * 2 + ["ENSMUSG00000059552"]
        assert table["sequence"][0] == "ATGGAGGAGCCGCAGTCAGATCCTAGCGTCGAGCCCCCTCTGAGTCAGGAAACN"
    assert read_cds(plain, genes=["ENSMUSG00000059552"])["sequence"].tolist() == ["ATGACTGCCATG"]


def test_writer_round_trips_atomically_and_reproducibly(tmp_path):
    table = pd.DataFrame(
        {
            "transcript_id": ["T1", "T2"],
            "gene_id": ["G1", "G2"],
            "symbol": ["A", "B"],
            "sequence": ["ACGT" * 40, "NNAC"],
        }
    )
    path = tmp_path / "out" / "cds.fa.gz"
    write_cds(table, path)
    first = path.read_bytes()
    assert first[:2] == b"\x1f\x8b"
    write_cds(table, path)
    assert path.read_bytes() == first, "no time or name in the gzip header"
    pd.testing.assert_frame_equal(read_cds(path), table.drop(columns="symbol"))
    assert [p.name for p in path.parent.iterdir()] == ["cds.fa.gz"], "no temporary left"
    lines = gzip.decompress(first).decode().splitlines()
    assert max(len(line) for line in lines if not line.startswith(">")) == 60


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "line 0: no FASTA records"),
        ("\n\n", "line 2: no FASTA records"),
        ("gene_id\tsymbol\nENSG1\tTP53\n", "line 1: not a FASTA file"),
        (
            ">ENST1 cds gene:ENSG1\nACGT\n>ENST2 cds chromosome:1\nACGT\n",
            "line 3: .*ENST2 has no gene:",
        ),
        (">ENST1 cds gene:ENSG1\nACGT\nACGU\n", "line 3: ENST1: 'U' is not one of A, C, G, T, N"),
        (">ENST1 cds gene:ENSG1\nMEEPQSDPSV\n", "line 2: ENST1: 'M'"),
        (">ENST1 cds gene:ENSG1\n>ENST2 cds gene:ENSG1\nACGT\n", "line 2: ENST1 has no sequence"),
        (">\nACGT\n", "line 1: a header without a transcript ID"),
        (">ENST1 cds gene:ENSG1\nACGT\n>ENST1 cds gene:ENSG1\nACGT\n", "ENST1 appears twice"),
    ],
)
def test_bad_files_name_file_line_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.fa"
    path.write_text(content)
    with pytest.raises(GexnetError, match=f"^{path}: .*{message}") as info:
        read_cds(path)
    assert "\n" not in str(info.value)


def test_truncated_gzip_and_binary_are_one_error(tmp_path):
    truncated = tmp_path / "cut.fa.gz"
    truncated.write_bytes(gzip.compress((ENSEMBL * 50).encode())[:-200])
    with pytest.raises(GexnetError, match=rf"^{truncated}: line \d+: cannot read"):
        read_cds(truncated)
    binary = tmp_path / "binary.fa"
    binary.write_bytes(b">ENST1 gene:G1\n\xff\xfe\x00\n")
    with pytest.raises(GexnetError, match=rf"^{binary}: line \d+: cannot read"):
        read_cds(binary)
    with pytest.raises(GexnetError, match="cannot read"):
        list(iter_cds(tmp_path / "missing.fa"))
