"""The demo compendium: ARCHS4-layout HDF5 files with real gene identities and planted truth.

Expression is simulated from a latent program model, so every analysis has a known answer:

- Each tissue sets the activity of every program; a series (study) has one tissue, its own batch
  offsets and its own sequencing depth. A program's activity in a sample is the expression of its
  regulator gene, and the program's member genes follow it with their own loadings.
- Splicing factors vary on their own; the ratio of a target gene's second isoform to its others
  follows its splicing factor's expression (transcript-level file; gene counts = transcript sums).
- Case samples of a case/control series shift named regulators, and through them their programs.
- Beside the programs, gene modules of graded difficulty, each kind a label source of its own
  (MODULE_KINDS), on genes outside the programs: weak modules (small loadings), tissue modules
  (active in a few tissues only, so that their co-expression is diluted over the compendium) and
  overlapping modules (pairs sharing part of their genes). Their truth is truth/modules.parquet.
- Mouse genes are the one-to-one orthologs of the human genes (plus mouse lncRNAs): most keep
  their human gene's program, a planted set (diverged genes) moves to another program.
- Coding genes get one or two CDS (the second an in-frame exon skip of the first), written as
  Ensembl-style CDS FASTA files. A mouse CDS is its human ortholog's with substitutions and
  codon indels at a planted per-pair rate, so each 1:1 coding pair has a planted DNA identity.
- Planted samples fail exactly one QC rule each: low total counts, a high single-cell
  probability, or too few detected genes.

Counts are gamma-Poisson (negative binomial) around library size × softmax(log-abundances).
Samples are generated in fixed blocks, each from its own seeded stream, so the output depends on
the seed and the settings only. The truth tables are written beside the data as Parquet.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from gexnet import __version__
from gexnet.errors import GexnetError
from gexnet.formats.archs4 import Archs4Writer
from gexnet.formats.demo import demo_files
from gexnet.formats.fasta import write_cds
from gexnet.formats.io import atomic_path, write_table
from gexnet.sources import genome

log = logging.getLogger(__name__)

GENERATION_BLOCK = 256  # samples per random stream and per HDF5 chunk column
ORGANISM = {"human": "Homo sapiens", "mouse": "Mus musculus"}
ACCESSION_BASE = {"human": (100_000, 3_000_000), "mouse": (200_000, 6_000_000)}  # (GSE, GSM)
QC_FAILURES = ("low_counts", "single_cell", "few_genes")
TISSUES = (
    "liver",
    "lung",
    "brain",
    "heart",
    "kidney",
    "skeletal muscle",
    "blood",
    "skin",
    "colon",
    "stomach",
    "pancreas",
    "spleen",
    "adipose tissue",
    "breast",
    "prostate",
    "testis",
)
INSTRUMENTS = ("Illumina HiSeq 2500", "Illumina NextSeq 500", "Illumina NovaSeq 6000")
# Well-studied splicing factors (HGNC symbols); the first ones present are used.
# Coding sequences: 300-1500 nt; planted human-mouse identities (real 1:1 pairs mostly lie in
# 0.7-0.95); a tenth of the mutations are one-codon indels. Each gene's CDS are drawn from its
# own stream (CDS_STREAM, species, gene number), apart from the expression streams, so adding
# them changed no count, and a gene's CDS do not depend on which other genes are simulated.
CDS_CODONS = (100, 501)
PLANTED_IDENTITY = (0.55, 0.98)
INDEL_SHARE = 0.1
CDS_STREAM = 7
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
# The module kinds: label source -> the structure it probes (truth/modules.parquet, README).
MODULE_KINDS = {
    "planted_weak": "weak loadings: members follow their module's activity with small loadings",
    "planted_tissue": "tissue-restricted: active in a few tissues only, silent elsewhere",
    "planted_overlap": "overlapping: modules in pairs that share part of their genes",
}
MODULE_STREAM = 11  # modules are planned and driven from their own streams: no count of the
# programs' design moved when they were added, beyond the shared normalisation of each sample
SPLICING_FACTORS = (
    "SRSF1 SRSF2 SRSF3 PTBP1 RBFOX2 MBNL1 CELF1 QKI ESRP1 HNRNPA1 TRA2B SRSF5 SRSF6 SRSF7 "
    "HNRNPC HNRNPK U2AF2 SF1 NOVA1 ELAVL1 KHDRBS1 RBM4 TIA1 SRSF9 SRSF10"
).split()


@dataclass
class SpeciesDesign:
    """Everything planted for one species, before any count is drawn."""

    species: str
    genes: pd.DataFrame  # gene_id, symbol, biotype, program (-1 = none), loading, role, base, phi
    transcripts: pd.DataFrame  # transcript_id, gene_id, gene_row, isoform, logit
    splicing: pd.DataFrame  # sf_row, target_row, transcript_id, effect
    samples: pd.DataFrame  # geo_accession, series_id, tissue, group, planted_failure, ...
    batch_seed: list[int]  # each series' batch offsets are drawn from their own stream
    batch_sd: float
    tissue_activity: np.ndarray  # tissues × programs
    module_activity: np.ndarray  # tissues × modules: mean activity (0: the module is silent)
    module_noise: np.ndarray  # tissues × modules: sample-to-sample sd of the activity
    module_kinds: list[str]  # each module's kind (MODULE_KINDS)
    regulator_rows: np.ndarray  # program -> gene row of its regulator
    case_shifts: pd.DataFrame  # series_id, program, shift


def simulate(settings: dict, qc: dict, seed: int, species: list[str], outdir: str | Path) -> None:
    """Write the demo compendium for `species`, its truth tables and the settings it was
    generated from (settings.json, last: its presence means the rest is complete) under
    `outdir`."""
    rng = np.random.default_rng([seed, 0])
    designs = _plan(settings, qc, species, rng, np.random.default_rng([seed, MODULE_STREAM]))
    files = demo_files(outdir, species)
    for index, sp in enumerate(species):
        _write_species(designs[sp], settings, qc, seed, index, files)
    for sp, table in _plan_cds(designs, seed).items():
        write_cds(table, files[f"{sp}_cds"])
    for name, table in _truth_tables(designs).items():
        write_table(table, files[name])
    used = {"seed": seed, "species": list(species), "simulate": settings, "qc": qc}
    with atomic_path(files["settings"]) as tmp:
        tmp.write_text(json.dumps(used, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------
# Planning: gene identities, programs, orthologs, splicing, series and samples


def _plan(settings: dict, qc: dict, species: list[str], rng: np.random.Generator,
          module_rng: np.random.Generator) -> dict:  # fmt: skip
    n_programs = settings["programs"]
    tissue_activity = rng.normal(0.0, 1.0, size=(settings["tissues"], n_programs))
    human = _human_genes(settings, rng)
    module_activity, module_noise, module_kinds = _plan_modules(human, settings, module_rng)
    designs = {}
    for sp in species:
        genes = human if sp == "human" else _mouse_genes(human, settings, rng)
        _check_sizes(sp, genes, settings, qc)
        transcripts = _transcripts(sp, genes, settings, rng)
        splicing = _splicing(genes, transcripts, settings, rng)
        samples, case_shifts = _samples(sp, genes, settings, qc, rng)
        designs[sp] = SpeciesDesign(
            species=sp,
            genes=genes,
            transcripts=transcripts,
            splicing=splicing,
            samples=samples,
            batch_seed=[int(rng.integers(2**32)), 1 + species.index(sp)],
            batch_sd=settings["batch_sd"],
            tissue_activity=tissue_activity,
            module_activity=module_activity,
            module_noise=module_noise,
            module_kinds=module_kinds,
            regulator_rows=np.array(
                [
                    np.flatnonzero((genes["role"] == "regulator") & (genes["program"] == k))[0]
                    for k in range(n_programs)
                ]
            ),
            case_shifts=case_shifts,
        )
    return designs


def _human_genes(settings: dict, rng: np.random.Generator) -> pd.DataFrame:
    table = genome.genes("human")
    n_isoforms = genome.transcripts("human")["gene_id"].value_counts()
    multi_isoform = n_isoforms.index[n_isoforms > 1]
    coding = table[table["biotype"] == "protein_coding"]
    sfs = coding[coding["symbol"].isin(SPLICING_FACTORS)]
    sfs = sfs.set_index("symbol").loc[[s for s in SPLICING_FACTORS if s in set(sfs["symbol"])]]
    sfs = sfs.reset_index().head(settings["splicing_factors"])
    if len(sfs) < settings["splicing_factors"]:
        raise GexnetError(f"simulate.splicing_factors: at most {len(sfs)} are available")
    others = coding[~coding["gene_id"].isin(sfs["gene_id"])]
    # Prefer multi-isoform genes so that splicing targets and isoform ratios have room.
    weight = np.where(others["gene_id"].isin(multi_isoform), 2.0, 1.0)
    n_coding = settings["protein_coding_genes"] - len(sfs)
    _check_available("protein_coding_genes", n_coding + len(sfs), len(coding))
    picked = rng.choice(len(others), n_coding, replace=False, p=weight / weight.sum())
    lnc = table[table["biotype"] == "lncRNA"]
    _check_available("lncrna_genes", settings["lncrna_genes"], len(lnc))
    lnc_picked = rng.choice(len(lnc), settings["lncrna_genes"], replace=False)
    genes = pd.concat([sfs, others.iloc[picked], lnc.iloc[lnc_picked]])
    genes = genes[["gene_id", "symbol", "biotype"]].sort_values("gene_id").reset_index(drop=True)
    genes["role"] = np.where(genes["gene_id"].isin(sfs["gene_id"]), "splicing_factor", "none")
    in_mouse = genome.genes("mouse")["gene_id"]
    pairs = genome.one_to_one_orthologs()
    with_ortholog = pairs.loc[pairs["mouse_gene_id"].isin(in_mouse), "human_gene_id"]
    may_regulate = (genes["role"] == "none") & (genes["biotype"] == "protein_coding")
    may_regulate &= genes["gene_id"].isin(with_ortholog)
    _assign_programs(genes, settings, rng, may_regulate=may_regulate.to_numpy())
    lnc_mask = (genes["biotype"] == "lncRNA").to_numpy()
    # lncRNAs are expressed lower than coding genes, as in real compendia.
    genes["base"] = rng.normal(0.0, 2.0, len(genes)) - 3.0 * lnc_mask
    genes["phi"] = settings["dispersion"] * rng.lognormal(0.0, 0.5, len(genes))
    return genes


def _assign_programs(
    genes: pd.DataFrame, settings: dict, rng: np.random.Generator, may_regulate: np.ndarray | None
) -> None:
    """Give a share of genes a program and a loading.

    Where `may_regulate` is given (genes that may regulate: coding, with a mouse ortholog so that
    both species share the regulator), one member of each program becomes its regulator.
    """
    n_programs = settings["programs"]
    eligible = (genes["role"] == "none").to_numpy()
    member = eligible & (rng.random(len(genes)) < settings["program_gene_fraction"])
    program = np.where(member, rng.integers(0, n_programs, len(genes)), -1)
    loading = np.where(member, rng.uniform(0.6, 1.2, len(genes)), 0.0)
    role = genes["role"].to_numpy().copy()
    role[member] = "member"
    for k in range(n_programs if may_regulate is not None else 0):
        candidates = np.flatnonzero(may_regulate & (program == k))
        if len(candidates) == 0:
            candidates = np.flatnonzero(may_regulate & (role == "none"))
        if len(candidates) == 0:
            raise GexnetError("simulate: too few protein-coding genes for one regulator a program")
        row = rng.choice(candidates)
        program[row], loading[row], role[row] = k, 1.0, "regulator"
    genes["program"], genes["loading"], genes["role"] = program, loading, role


def _plan_modules(genes: pd.DataFrame, settings: dict, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """Give genes outside the programs their modules (columns module_a, loading_a and, for
    genes shared by two overlapping modules, module_b, loading_b; -1 and 0 for none); return
    each module's mean activity and its sample noise per tissue (tissues × modules), and the
    modules' kinds."""
    m = settings["modules"]
    per_kind, size, tissues = m["per_kind"], m["genes"], settings["tissues"]
    shared = round(m["overlap_shared"] * size)
    pairs = per_kind // 2
    needed = per_kind * size * 2 + pairs * (2 * size - shared)
    free = np.flatnonzero(((genes["program"] == -1) & (genes["role"] == "none")).to_numpy())
    _check_available("modules (genes outside the programs)", needed, len(free))
    order = rng.permutation(free)[:needed]
    n = len(genes)
    module_a, module_b = np.full(n, -1), np.full(n, -1)
    loading_a, loading_b = np.zeros(n), np.zeros(n)
    activity, noise = [], []
    at = 0
    low, high = m["weak_loadings"]
    for _ in range(per_kind):  # weak: small loadings, the programs' kind of activity
        rows = order[at : at + size]
        at += size
        module_a[rows], loading_a[rows] = len(activity), rng.uniform(low, high, size)
        activity.append(rng.normal(0.0, 1.0, tissues))
        noise.append(np.full(tissues, 0.7))
    for _ in range(per_kind):  # tissue: silent but in `active_tissues` tissues, strong there
        rows = order[at : at + size]
        at += size
        module_a[rows], loading_a[rows] = len(activity), rng.uniform(*m["tissue_loadings"], size)
        on = np.zeros(tissues)
        on[rng.choice(tissues, min(m["active_tissues"], tissues), replace=False)] = 1.0
        activity.append(on * m["tissue_shift"])
        noise.append(on * m["tissue_sd"])
    for _ in range(pairs):  # overlap: two modules, `shared` genes in both
        rows = order[at : at + 2 * size - shared]
        at += 2 * size - shared
        first, second = len(activity), len(activity) + 1
        module_a[rows[:size]] = first
        loading_a[rows[:size]] = rng.uniform(*m["overlap_loadings"], size)
        only_second = rows[size:]
        both = rows[size - shared : size]
        module_a[only_second], loading_a[only_second] = (
            second,
            rng.uniform(*m["overlap_loadings"], len(only_second)),
        )
        module_b[both], loading_b[both] = second, rng.uniform(*m["overlap_loadings"], len(both))
        for _ in range(2):
            activity.append(rng.normal(0.0, 1.0, tissues))
            noise.append(np.full(tissues, 0.7))
    genes["module_a"], genes["loading_a"] = module_a, loading_a
    genes["module_b"], genes["loading_b"] = module_b, loading_b
    kinds = [*["planted_weak"] * per_kind, *["planted_tissue"] * per_kind,
             *["planted_overlap"] * (2 * pairs)]  # fmt: skip
    if not activity:
        return np.zeros((tissues, 0)), np.zeros((tissues, 0)), kinds
    return np.array(activity).T, np.array(noise).T, kinds


def _active_tissues(design: SpeciesDesign, k: int) -> str:
    if design.module_kinds[k] != "planted_tissue":
        return ""
    on = np.flatnonzero(design.module_noise[:, k] > 0)
    return ", ".join(TISSUES[t % len(TISSUES)] for t in on)


def _module_name(kind: str, k: int, kinds: list[str]) -> str:
    """weak_01, tissue_03, overlap_02, … (numbered within the kind)."""
    return f"{kind.removeprefix('planted_')}_{kinds[: k + 1].count(kind):02d}"


def _mouse_genes(human: pd.DataFrame, settings: dict, rng: np.random.Generator) -> pd.DataFrame:
    mouse_table = genome.genes("mouse").set_index("gene_id")
    pairs = genome.one_to_one_orthologs()
    pairs = pairs[pairs["human_gene_id"].isin(human["gene_id"])]
    pairs = pairs[pairs["mouse_gene_id"].isin(mouse_table.index)]
    orth = human.set_index("gene_id").loc[pairs["human_gene_id"]].reset_index()
    orth = orth.rename(columns={"gene_id": "human_gene_id", "symbol": "human_symbol"})
    orth["gene_id"] = pairs["mouse_gene_id"].to_numpy()
    orth["human_biotype"] = orth["biotype"]
    orth["symbol"] = mouse_table.loc[orth["gene_id"], "symbol"].to_numpy()
    orth["biotype"] = mouse_table.loc[orth["gene_id"], "biotype"].to_numpy()
    orth = orth[orth["biotype"].isin(["protein_coding", "lncRNA"])].reset_index(drop=True)
    orth["human_program"] = orth["program"]
    # Diverged genes: ordinary program members whose mouse copy joins another program.
    members = np.flatnonzero(orth["role"].to_numpy() == "member")
    n_diverged = round(settings["diverged_fraction"] * len(members))
    diverged = rng.choice(members, n_diverged, replace=False)
    shift = rng.integers(1, settings["programs"], n_diverged)
    program = orth["program"].to_numpy().copy()
    program[diverged] = (program[diverged] + shift) % settings["programs"]
    orth["program"] = program
    orth["diverged"] = False
    orth.loc[diverged, "diverged"] = True
    orth["base"] = orth["base"] + rng.normal(0.0, 0.3, len(orth))

    lnc = mouse_table[
        (mouse_table["biotype"] == "lncRNA") & ~mouse_table.index.isin(orth["gene_id"])
    ]
    _check_available("mouse_lncrna_genes", settings["mouse_lncrna_genes"], len(lnc))
    extra = lnc.iloc[rng.choice(len(lnc), settings["mouse_lncrna_genes"], replace=False)]
    extra = extra.reset_index()[["gene_id", "symbol", "biotype"]]
    extra["role"] = "none"
    _assign_programs(extra, settings, rng, may_regulate=None)
    extra["base"] = rng.normal(-3.0, 2.0, len(extra))
    extra["phi"] = settings["dispersion"] * rng.lognormal(0.0, 0.5, len(extra))
    extra["diverged"] = False
    extra["module_a"], extra["module_b"] = -1, -1
    extra["loading_a"], extra["loading_b"] = 0.0, 0.0
    genes = pd.concat([orth, extra], ignore_index=True).sort_values("gene_id")
    return genes.reset_index(drop=True)


def _check_available(key: str, asked: int, available: int) -> None:
    if asked > available:
        raise GexnetError(
            f"simulate.{key}: {asked:,} asked, but the Ensembl 100 annotation has {available:,}"
        )


def _check_sizes(species: str, genes: pd.DataFrame, settings: dict, qc: dict) -> None:
    # Passing samples need more detected genes than the QC threshold; few_genes ones fewer.
    if len(genes) < 1.5 * qc["min_detected_genes"] + 10:
        raise GexnetError(
            f"simulate: {species} has {len(genes)} genes, too few for qc.min_detected_genes="
            f"{qc['min_detected_genes']} (need at least 1.5× as many genes); add genes with "
            "simulate.protein_coding_genes / simulate.lncrna_genes or lower the threshold"
        )
    if settings["library_size_median"] < 2 * qc["min_total_counts"]:
        raise GexnetError(
            "simulate.library_size_median must be at least twice qc.min_total_counts, "
            "so that only the planted low_counts samples fail that rule"
        )


def _transcripts(species, genes, settings, rng) -> pd.DataFrame:
    table = genome.transcripts(species)
    table = table[table["gene_id"].isin(genes["gene_id"])]
    table = table.groupby("gene_id", sort=True).head(settings["max_transcripts_per_gene"])
    row = pd.Series(np.arange(len(genes)), index=genes["gene_id"])
    table = table.assign(gene_row=row.loc[table["gene_id"]].to_numpy())
    table = table.sort_values(["gene_row", "transcript_id"]).reset_index(drop=True)
    table["isoform"] = table.groupby("gene_row").cumcount()
    table["logit"] = rng.normal(0.0, 1.0, len(table))
    return table


def _splicing(genes, transcripts, settings, rng) -> pd.DataFrame:
    sf_rows = np.flatnonzero(genes["role"].to_numpy() == "splicing_factor")
    n_isoforms = transcripts.groupby("gene_row").size()
    candidates = n_isoforms.index[n_isoforms > 1].to_numpy()
    candidates = candidates[genes["role"].to_numpy()[candidates] != "splicing_factor"]
    # Targets are well expressed, so that their isoform ratios can be measured.
    base = genes["base"].to_numpy()
    candidates = candidates[base[candidates] > np.median(base)]
    n_targets = len(sf_rows) * settings["targets_per_splicing_factor"]
    if n_targets > len(candidates):
        raise GexnetError(
            f"simulate: only {len(candidates)} multi-isoform genes for {n_targets} "
            "splicing targets; lower simulate.targets_per_splicing_factor"
        )
    targets = rng.choice(candidates, n_targets, replace=False)
    second = transcripts[transcripts["isoform"] == 1].set_index("gene_row")["transcript_id"]
    effect = rng.uniform(1.0, 2.0, n_targets) * rng.choice([-1.0, 1.0], n_targets)
    return pd.DataFrame(
        {
            "sf_row": np.repeat(sf_rows, settings["targets_per_splicing_factor"]),
            "target_row": targets,
            "transcript_id": second.loc[targets].to_numpy(),
            "effect": effect,
        }
    )


def _samples(species, genes, settings, qc, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = settings["samples"][species]
    n_series = settings["series"][species]
    if n < 4 * n_series:
        raise GexnetError(
            f"simulate.samples.{species}: {n} samples for {n_series} series; "
            "need at least 4 a series"
        )
    sizes = 4 + rng.multinomial(n - 4 * n_series, rng.dirichlet(np.full(n_series, 2.0)))
    series_index = np.repeat(np.arange(n_series), sizes)
    gse, gsm = ACCESSION_BASE[species]
    series_tissue = rng.integers(0, settings["tissues"], n_series)
    tissue_names = [TISSUES[t % len(TISSUES)] for t in range(settings["tissues"])]
    samples = pd.DataFrame(
        {
            "geo_accession": [f"GSM{gsm + i}" for i in range(n)],
            "series_index": series_index,
            "series_id": [f"GSE{gse + s}" for s in series_index],
            "tissue_index": series_tissue[series_index],
            "tissue": [tissue_names[t] for t in series_tissue[series_index]],
            "group": "",
            "depth_factor": rng.lognormal(0.0, 0.3, n_series)[series_index],
        }
    )
    case_shifts = _case_control(samples, sizes, genes, settings, rng)
    _plant_qc_failures(samples, species, settings, qc, rng)
    samples["instrument_model"] = rng.choice(INSTRUMENTS, n)
    samples["counted_fraction"] = rng.uniform(0.8, 0.95, n)  # of aligned reads
    return samples, case_shifts


def _case_control(samples, sizes, genes, settings, rng) -> pd.DataFrame:
    """The largest series become case/control studies: half their samples are cases, in which
    two programs' regulators are shifted up or down by `case_shift`."""
    shifts = []
    regulators = genes[genes["role"] == "regulator"].sort_values("program")
    series_index = samples["series_index"].to_numpy()
    case_series = np.argsort(-sizes, kind="stable")[: settings["case_control_series"]]
    for s in np.sort(case_series):
        rows = np.flatnonzero(series_index == s)
        series_id = samples["series_id"].iloc[rows[0]]
        is_case = np.zeros(len(rows), bool)
        is_case[rng.choice(len(rows), len(rows) // 2, replace=False)] = True
        samples.loc[rows, "group"] = np.where(is_case, "case", "control")
        for k in rng.choice(settings["programs"], min(2, settings["programs"]), replace=False):
            reg = regulators[regulators["program"] == k].iloc[0]
            shift = float(rng.choice([-1.0, 1.0])) * settings["case_shift"]
            shifts.append((series_id, int(k), reg["gene_id"], reg["symbol"], shift))
    return pd.DataFrame(shifts, columns=["series_id", "program", "gene_id", "symbol", "shift"])


def _plant_qc_failures(samples, species, settings, qc, rng) -> None:
    """Library sizes, single-cell probabilities and expressed-gene limits such that the planted
    samples (outside case/control series) fail exactly one QC rule and the others pass all."""
    n = len(samples)
    samples["planted_failure"] = "none"
    free = np.flatnonzero(samples["group"] == "")
    counts = settings["qc_failures"]
    total = sum(counts[f] for f in QC_FAILURES)
    if total > len(free) // 2:
        raise GexnetError(
            f"simulate.qc_failures: {total} planted failures is more than half of "
            f"the {len(free)} {species} samples outside case/control series"
        )
    chosen = rng.choice(free, total, replace=False)
    samples.loc[chosen, "planted_failure"] = np.repeat(
        QC_FAILURES, [counts[f] for f in QC_FAILURES]
    )
    failure = samples["planted_failure"].to_numpy()
    median = settings["library_size_median"]
    library = median * samples["depth_factor"].to_numpy()
    library *= rng.lognormal(0.0, settings["library_size_sdlog"], n)
    # Passing depth stays well above the threshold; low_counts samples sit well below it.
    library = np.clip(library, 1.5 * qc["min_total_counts"] + 1000, None)
    low = failure == "low_counts"
    library[low] = rng.uniform(0.3, 0.8, low.sum()) * qc["min_total_counts"]
    samples["library_size"] = library
    threshold = qc["max_singlecell_probability"]
    scp = rng.beta(1.0, 40.0, n) * 0.9 * threshold
    sc = failure == "single_cell"
    scp[sc] = rng.uniform(threshold, 1.0, sc.sum())
    samples["singlecellprobability"] = scp
    few = failure == "few_genes"
    # few_genes samples express only their top genes (low-complexity libraries).
    keep = np.zeros(n, int)
    keep[few] = np.maximum(1, qc["min_detected_genes"] * rng.uniform(0.5, 0.9, few.sum()))
    samples["expressed_genes"] = keep


# ---------------------------------------------------------------------------------------------
# Drawing counts and writing the ARCHS4-layout files


def _write_species(design: SpeciesDesign, settings, qc, seed, index, files) -> None:
    sp = design.species
    genes, samples, tx = design.genes, design.samples, design.transcripts
    n_genes, n_samples, n_tx = len(genes), len(samples), len(tx)
    log.info(
        "%s: %d genes, %d transcripts, %d samples in %d series",
        sp,
        n_genes,
        n_tx,
        n_samples,
        samples["series_id"].nunique(),
    )
    totals = np.zeros(n_samples, np.int64)
    detected = np.zeros(n_samples, np.int64)
    with (
        Archs4Writer(files[f"{sp}_gene"], "gene", n_genes, n_samples) as gene_file,
        Archs4Writer(files[f"{sp}_transcript"], "transcript", n_tx, n_samples) as tx_file,
    ):
        starts = range(0, n_samples, GENERATION_BLOCK)
        for block, start in enumerate(tqdm(starts, desc=f"simulate {sp}", unit="block")):
            stop = min(start + GENERATION_BLOCK, n_samples)
            rng = np.random.default_rng([seed, 1 + index, block])
            module_rng = np.random.default_rng([seed, 1 + index, block, MODULE_STREAM])
            tx_counts = _draw_block(design, samples.iloc[start:stop], rng, module_rng)
            gene_counts = np.zeros((n_genes, stop - start), np.int64)
            np.add.at(gene_counts, tx["gene_row"].to_numpy(), tx_counts)
            gene_file.write_samples(start, gene_counts)
            tx_file.write_samples(start, tx_counts)
            totals[start:stop] = gene_counts.sum(axis=0)
            detected[start:stop] = (gene_counts > 0).sum(axis=0)
        _check_planted_qc(sp, samples, totals, detected, qc)
        meta = _sample_meta(sp, samples, aligned=totals / samples["counted_fraction"].to_numpy())
        info = {
            "version": "demo",
            "creation-date": "simulated",
            "generator": f"gexnet {__version__} simulate, seed {seed}",
        }
        gene_file.finish(
            genes[["gene_id", "symbol", "biotype"]].rename(columns={"gene_id": "ensembl_gene"}),
            meta,
            info,
        )
        tx_file.finish(
            pd.DataFrame(
                {
                    "ensembl_id": tx["transcript_id"],
                    "ensembl_gene": tx["gene_id"],
                    "gene_symbol": genes["symbol"].to_numpy()[tx["gene_row"].to_numpy()],
                }
            ),
            meta,
            info,
        )


def _draw_block(design: SpeciesDesign, block: pd.DataFrame, rng: np.random.Generator,
                module_rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Transcript counts (transcripts × samples) for one block of samples."""
    genes, tx = design.genes, design.transcripts
    n = len(block)
    n_programs = design.tissue_activity.shape[1]
    # Regulator activity per program: tissue profile + sample noise + case shifts.
    activity = design.tissue_activity[block["tissue_index"].to_numpy()]
    activity = activity + rng.normal(0.0, 0.7, size=(n, n_programs))
    for shift in design.case_shifts.itertuples():
        is_case = ((block["series_id"] == shift.series_id) & (block["group"] == "case")).to_numpy()
        activity[is_case, shift.program] += shift.shift
    program = genes["program"].to_numpy()
    in_program = program >= 0
    eta = np.repeat(genes["base"].to_numpy()[:, None], n, axis=1)
    eta += _series_batch(design, block["series_index"].to_numpy(), len(genes))
    eta[in_program] += (
        genes["loading"].to_numpy()[in_program, None] * activity[:, program[in_program]].T
    )
    # Modules: their own activity (tissue mean + sample noise; silent where both are 0).
    tissue = block["tissue_index"].to_numpy()
    modules = design.module_activity[tissue] + design.module_noise[tissue] * module_rng.normal(
        size=(n, design.module_activity.shape[1])
    )
    for column, weight in (("module_a", "loading_a"), ("module_b", "loading_b")):
        k = genes[column].to_numpy()
        rows = np.flatnonzero(k >= 0)
        eta[rows] += genes[weight].to_numpy()[rows, None] * modules[:, k[rows]].T
    # Splicing factors vary on their own; that variation drives their targets' isoforms.
    sf_rows = np.flatnonzero(genes["role"].to_numpy() == "splicing_factor")
    sf_activity = rng.normal(0.0, 0.8, size=(len(sf_rows), n))
    eta[sf_rows] += sf_activity
    few = block["expressed_genes"].to_numpy()
    for col in np.flatnonzero(few > 0):
        keep = np.argsort(-eta[:, col], kind="stable")[: few[col]]
        silenced = np.ones(len(genes), bool)
        silenced[keep] = False
        eta[silenced, col] = -np.inf
    eta -= eta.max(axis=0)
    p = np.exp(eta)
    mean = p / p.sum(axis=0) * block["library_size"].to_numpy()
    phi = genes["phi"].to_numpy()[:, None]
    counts = rng.poisson(rng.gamma(1.0 / phi, mean * phi))
    return _split_isoforms(counts, tx, design.splicing, sf_rows, sf_activity, rng)


def _series_batch(design: SpeciesDesign, series_index: np.ndarray, n_genes: int) -> np.ndarray:
    """Per-series batch offsets (genes × samples), drawn per series so memory stays per block."""
    offsets = {
        s: np.random.default_rng([*design.batch_seed, int(s)]).normal(0.0, design.batch_sd, n_genes)
        for s in np.unique(series_index)
    }
    return np.stack([offsets[s] for s in series_index], axis=1)


def _split_isoforms(counts, tx, splicing, sf_rows, sf_activity, rng) -> np.ndarray:
    """Split gene counts (genes × samples) into transcripts by per-sample isoform proportions."""
    n = counts.shape[1]
    logits = tx["logit"].to_numpy()[:, None] + rng.normal(0.0, 0.3, size=(len(tx), n))
    sf_index = pd.Series(np.arange(len(sf_rows)), index=sf_rows)
    tx_row = pd.Series(np.arange(len(tx)), index=tx["transcript_id"])
    for rule in splicing.itertuples():
        logits[tx_row[rule.transcript_id]] += rule.effect * sf_activity[sf_index[rule.sf_row]]
    gene_row, isoform = tx["gene_row"].to_numpy(), tx["isoform"].to_numpy()
    weights = np.zeros((counts.shape[0], isoform.max() + 1, n))  # genes × isoforms × samples
    weights[gene_row, isoform] = np.exp(logits)
    # Sequential binomials: isoform j takes its share of what the earlier isoforms left.
    remaining = counts.astype(np.int64)
    left = weights.sum(axis=1)
    split = np.zeros(weights.shape, np.int64)
    for j in range(weights.shape[1]):
        share = np.divide(weights[:, j], left, out=np.zeros_like(left), where=left > 0)
        split[:, j] = rng.binomial(remaining, np.clip(share, 0.0, 1.0))
        remaining -= split[:, j]
        left -= weights[:, j]
    return split[gene_row, isoform]


def _check_planted_qc(species, samples, totals, detected, qc) -> None:
    """Every sample must fail exactly its planted QC rule; stop if the settings broke that."""
    failure = samples["planted_failure"].to_numpy()
    fails = {
        "low_counts": totals < qc["min_total_counts"],
        "single_cell": samples["singlecellprobability"].to_numpy()
        >= qc["max_singlecell_probability"],
        "few_genes": detected <= qc["min_detected_genes"],
    }
    for rule, failed in fails.items():
        wrong = np.flatnonzero(failed != (failure == rule))
        if len(wrong):
            raise GexnetError(
                f"simulate: {len(wrong)} {species} samples do not match their planted QC status "
                f"for {rule} (first: {samples['geo_accession'].iloc[wrong[0]]}, total counts "
                f"{totals[wrong[0]]}, detected genes {detected[wrong[0]]}); raise the library "
                "size or the number of genes"
            )


def _sample_meta(species: str, samples: pd.DataFrame, aligned: np.ndarray) -> pd.DataFrame:
    """meta/samples fields as GEO and ARCHS4 fill them."""
    group = samples["group"].to_numpy()
    tissue = samples["tissue"].to_numpy()
    rep = samples.groupby("series_id").cumcount().to_numpy() + 1
    label = np.where(group == "", "sample", group)
    return pd.DataFrame(
        {
            "geo_accession": samples["geo_accession"],
            "series_id": samples["series_id"],
            "title": [f"{t} {g} {r}" for t, g, r in zip(tissue, label, rep, strict=True)],
            "source_name_ch1": tissue,
            "characteristics_ch1": [
                f"tissue: {t}" + (f",group: {g}" if g else "")
                for t, g in zip(tissue, group, strict=True)
            ],
            "organism_ch1": ORGANISM[species],
            "library_strategy": "RNA-Seq",
            "instrument_model": samples["instrument_model"],
            "singlecellprobability": samples["singlecellprobability"].astype(np.float64),
            "alignedreads": np.round(aligned),
        }
    )


# ---------------------------------------------------------------------------------------------
# Coding sequences


def _plan_cds(designs: dict[str, SpeciesDesign], seed: int) -> dict[str, pd.DataFrame]:
    """CDS tables (transcript_id, gene_id, symbol, sequence) of each species' coding genes, for
    their first one or two transcripts; records each coding 1:1 pair's planted identity in the
    mouse genes (planted_dna_identity, NaN for other genes)."""
    tables = {}
    for sp, design in designs.items():
        genes = design.genes
        tx = design.transcripts[design.transcripts["isoform"] < 2]
        tx = tx.groupby("gene_id")["transcript_id"].apply(list)
        identity = np.full(len(genes), np.nan)
        rows = []
        for row, gene in enumerate(genes.itertuples()):
            if gene.biotype != "protein_coding":
                continue
            rng = _gene_rng(seed, sp, gene.gene_id)
            if sp == "mouse" and getattr(gene, "human_biotype", None) == "protein_coding":
                identity[row] = rng.uniform(*PLANTED_IDENTITY)
                human = _random_cds(_gene_rng(seed, "human", gene.human_gene_id))
                primary = _mutate(human, 1.0 - identity[row], rng)
            else:
                primary = _random_cds(rng)
            for transcript, seq in zip(
                tx[gene.gene_id], (primary, _exon_skip(primary, rng)), strict=False
            ):
                rows.append((transcript, gene.gene_id, gene.symbol, BASES[seq].tobytes().decode()))
        if sp == "mouse":
            genes["planted_dna_identity"] = identity
        tables[sp] = pd.DataFrame(rows, columns=["transcript_id", "gene_id", "symbol", "sequence"])
    return tables


def _gene_rng(seed: int, species: str, gene_id: str) -> np.random.Generator:
    number = int(re.sub(r"\D", "", gene_id))
    return np.random.default_rng([seed, CDS_STREAM, list(ORGANISM).index(species), number])


def _random_cds(rng: np.random.Generator) -> np.ndarray:
    """Base codes (0-3 for A, C, G, T) of a random CDS, a whole number of codons long."""
    return rng.integers(0, 4, 3 * rng.integers(*CDS_CODONS)).astype(np.uint8)


def _mutate(seq: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """`seq` with a mutation at each base with probability `rate`: a substitution, or (a tenth
    of them, half each) a one-codon deletion or insertion at that base."""
    n = len(seq)
    event, kind = rng.random(n) < rate, rng.random(n)
    out = seq.copy()
    substituted = event & (kind >= INDEL_SHARE)
    out[substituted] = (out[substituted] + rng.integers(1, 4, substituted.sum())) % 4
    keep = np.ones(n, bool)
    deleted = np.flatnonzero(event & (kind < INDEL_SHARE / 2))
    keep[np.minimum((deleted[:, None] + np.arange(3)).ravel(), n - 1)] = False
    inserted = np.repeat(
        np.flatnonzero(event & (kind >= INDEL_SHARE / 2) & (kind < INDEL_SHARE)), 3
    )
    out = np.insert(out, inserted, rng.integers(0, 4, len(inserted)).astype(np.uint8))
    return out[np.insert(keep, inserted, True)]


def _exon_skip(seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An alternative CDS: `seq` without an in-frame inner segment of 10 or more codons."""
    codons = len(seq) // 3
    skipped = int(rng.integers(10, codons // 4 + 1))
    start = int(rng.integers(1, codons - skipped))
    return np.concatenate([seq[: 3 * start], seq[3 * (start + skipped) :]])


# ---------------------------------------------------------------------------------------------
# Truth tables


def _program_name(k: int) -> str | None:
    return f"program_{k + 1:02d}" if k >= 0 else None


def _truth_tables(designs: dict[str, SpeciesDesign]) -> dict[str, pd.DataFrame]:
    programs, regulators, splicing, case_control, shifts, qc, modules = [], [], [], [], [], [], []
    for sp, d in designs.items():
        g = d.genes
        programs.append(
            pd.DataFrame(
                {
                    "species": sp,
                    "gene_id": g["gene_id"],
                    "symbol": g["symbol"],
                    "biotype": g["biotype"],
                    "program": [_program_name(k) for k in g["program"]],
                    "loading": g["loading"],
                    "role": g["role"],
                }
            )
        )
        kinds = d.module_kinds
        for column, weight in (("module_a", "loading_a"), ("module_b", "loading_b")):
            part = g[g[column] >= 0]
            modules.append(
                pd.DataFrame(
                    {
                        "species": sp,
                        "source": [kinds[k] for k in part[column]],
                        "module": [_module_name(kinds[k], k, kinds) for k in part[column]],
                        "gene_id": part["gene_id"],
                        "symbol": part["symbol"],
                        "biotype": part["biotype"],
                        "loading": part[weight],
                        # where a tissue module is active (the others: everywhere)
                        "active_in": [_active_tissues(d, k) for k in part[column]],
                    }
                )
            )
        reg = g.iloc[d.regulator_rows]
        regulators.append(
            pd.DataFrame(
                {
                    "species": sp,
                    "program": [_program_name(k) for k in reg["program"]],
                    "gene_id": reg["gene_id"],
                    "symbol": reg["symbol"],
                }
            )
        )
        tx_gene = d.transcripts.set_index("transcript_id")["gene_id"]
        splicing.append(
            pd.DataFrame(
                {
                    "species": sp,
                    "splicing_factor_id": g["gene_id"].to_numpy()[d.splicing["sf_row"]],
                    "splicing_factor": g["symbol"].to_numpy()[d.splicing["sf_row"]],
                    "target_gene_id": g["gene_id"].to_numpy()[d.splicing["target_row"]],
                    "target_symbol": g["symbol"].to_numpy()[d.splicing["target_row"]],
                    "transcript_id": d.splicing["transcript_id"],
                    "effect": d.splicing["effect"],
                }
            )
        )
        assert (
            tx_gene.loc[splicing[-1]["transcript_id"]].to_numpy()
            == splicing[-1]["target_gene_id"].to_numpy()
        ).all()
        s = d.samples
        cc = s[s["group"] != ""]
        case_control.append(cc[["series_id", "geo_accession", "group"]].assign(species=sp))
        shifts.append(
            d.case_shifts.assign(
                species=sp, program=[_program_name(k) for k in d.case_shifts["program"]]
            )
        )
        qc.append(s[["geo_accession", "series_id", "planted_failure"]].assign(species=sp))
    tables = {
        "programs": pd.concat(programs),
        "regulators": pd.concat(regulators),
        "splicing": pd.concat(splicing),
        "case_control": pd.concat(case_control),
        "case_control_regulators": pd.concat(shifts),
        "qc": pd.concat(qc),
        "orthologs": _ortholog_truth(designs),
        "modules": pd.concat(modules).sort_values(["species", "source", "module", "gene_id"]),
    }
    for name, table in tables.items():
        front = ["species"] if "species" in table else []
        tables[name] = table[front + [c for c in table if c not in front]].reset_index(drop=True)
    return tables


def _ortholog_truth(designs: dict[str, SpeciesDesign]) -> pd.DataFrame:
    columns = [
        "human_gene_id",
        "human_symbol",
        "mouse_gene_id",
        "mouse_symbol",
        "human_program",
        "mouse_program",
        "diverged",
        "planted_dna_identity",
    ]
    if "mouse" not in designs:
        return pd.DataFrame(columns=columns)
    m = designs["mouse"].genes.dropna(subset=["human_gene_id"])
    return pd.DataFrame(
        {
            "human_gene_id": m["human_gene_id"],
            "human_symbol": m["human_symbol"],
            "mouse_gene_id": m["gene_id"],
            "mouse_symbol": m["symbol"],
            "human_program": [_program_name(int(k)) for k in m["human_program"]],
            "mouse_program": [_program_name(int(k)) for k in m["program"]],
            "diverged": m["diverged"].astype(bool),
            "planted_dna_identity": m["planted_dna_identity"],
        }
    )
