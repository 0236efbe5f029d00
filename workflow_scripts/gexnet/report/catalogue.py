"""The figures the workflow draws: for each kind, the summary tables it reads, what it shows,
its section of the report and the published panel it reproduces, where there is one.

The rule files read this module, so it imports nothing heavy at the top; `render` draws a figure from its
tables with gexnet.report.figures in the house style and writes it as PDF and PNG; `index` is
the figures/index.tsv table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gexnet.errors import GexnetError

if TYPE_CHECKING:
    import pandas as pd

# The report's sections in the order the stages run (the report sorts sections by name).
SECTIONS = {
    "run": "00 Run",
    "annotation": "01 Annotations and labels",
    "qc": "02 Sample quality control",
    "corpus": "03 Normalization and the token corpus",
    "lm": "04 Gene language models",
    "classifiers": "05 Gene-property classifiers",
    "clustering": "06 Clustering benchmark",
    "lncrna": "07 lncRNA properties",
    "maps": "08 Gene maps",
    "human_mouse": "09 Human–mouse comparison",
    "autoencoder": "10 Expression autoencoder",
    "perturbation": "11 Virtual perturbation",
    "master_regulators": "12 Master regulators",
    "splicing": "13 Splicing factors",
    "explorer": "14 Explorer",
}

# The published systems, as the panels name them (their documents: DESIGN.md's seeds).
PAPER1 = "GeneRAIN (paper 1)"
PAPER2 = "GeneRAIN human–mouse (paper 2)"
DEEPSF = "DeepSF"
AUTOENCODER = "virtual gene manipulation autoencoder"


@dataclass(frozen=True)
class Kind:
    section: str  # a key of SECTIONS
    shows: str  # what the figure shows, one line; {subject} is the figure's subject
    tables: tuple[str, ...]  # the tables it reads: the drawing function's arguments
    several: tuple[str, ...] = ()  # those given as a list of tables (one per subject)
    optional: tuple[str, ...] = ()  # those a run may not have
    panel: str = ""  # the published panel it reproduces


KINDS = {
    "qc_metrics": Kind(
        "qc",
        "distributions of the {subject} samples' QC metrics with each rule's threshold",
        ("table",),
    ),
    "lm_loss": Kind(
        "lm",
        "training and validation loss by epoch of every gene language model",
        ("steps", "validation"),
        several=("steps", "validation"),
    ),
    "classifier_auroc": Kind(
        "classifiers",
        "classifier AUROC per label source, every embedding beside the "
        "baselines, paired Wilcoxon p against the reference model",
        ("auroc", "comparison"),
        panel=f"{PAPER1}: gene-property classifiers of the seven configurations",
    ),
    "clustering": Kind(
        "clustering",
        "KMeans on four gene groups per trial: ARI, NMI and Fowlkes–Mallows of "
        "every embedding against its shuffled vectors, per label source",
        ("trials",),
        panel=f"{PAPER1}: clustering benchmark against shuffled embeddings",
    ),
    "gene_map": Kind(
        "maps",
        "UMAP of the {subject} embedding coloured by biotype (and planted program)",
        ("genes", "programs"),
        optional=("programs",),
    ),
    "lncrna_transfer": Kind(
        "lncrna",
        "labels transferred to the lncRNAs of {subject}: best probabilities and "
        "the share of lncRNAs each label calls",
        ("top", "labels"),
        panel=f"{PAPER1}: property predictions for the lncRNAs",
    ),
    "species_pca": Kind(
        "human_mouse",
        "both species' vectors of {subject} on two principal components, "
        "before and after alignment",
        ("pca",),
        panel=f"{PAPER2}: PCA of both species' embeddings before and after alignment",
    ),
    "ortholog_ranks": Kind(
        "human_mouse",
        "rank of the true ortholog among all genes of the other species, per method ({subject})",
        ("pairs",),
        panel=f"{PAPER2}: ortholog-rank histograms per method",
    ),
    "dictionary_curve": Kind(
        "human_mouse",
        "held-out rank-1 / top-10 / top-100 rates against the dictionary size ({subject})",
        ("curve",),
        panel=f"{PAPER2}: top-1 and top-10 against the fraction of the dictionary",
    ),
    "rna_dna_groups": Kind(
        "human_mouse",
        "DNA similarity against RNA-level ortholog rank, the four RNA × DNA groups ({subject})",
        ("pairs", "groups"),
        panel=f"{PAPER2}: genes grouped by RNA and DNA similarity",
    ),
    "autoencoder_loss": Kind(
        "autoencoder",
        "training and validation loss by epoch of the {subject} autoencoder",
        ("steps", "validation"),
    ),
    "reconstruction_density": Kind(
        "autoencoder",
        "predicted against observed held-out values, {subject} and PCA",
        ("density",),
        panel=f"{AUTOENCODER}: reconstruction of held-out samples (R² 0.94)",
    ),
    "reconstruction_ranges": Kind(
        "autoencoder",
        "error and R² by observed-expression range, {subject} and PCA",
        ("ranges",),
    ),
    "knockout_effects": Kind(
        "perturbation",
        "every gene knocked out in {subject}: effect beside the linear baseline, genes affected",
        ("summary",),
        panel=f"{AUTOENCODER}: in-silico knockouts",
    ),
    "master_regulator_genes": Kind(
        "master_regulators",
        "genes most often among the start samples' top master "
        "regulators ({subject}), beside the linear baseline",
        ("genes",),
        panel=f"{AUTOENCODER}: per-sample master regulators",
    ),
    "master_regulator_pairs": Kind(
        "master_regulators",
        "cooperating pairs of master regulators ({subject}): joint effect "
        "against the sum of the singles, beside the linear baseline",
        ("pairs",),
        panel=f"{AUTOENCODER}: cooperative master-regulator pairs",
    ),
    "splicing_quality": Kind(
        "splicing",
        "per-isoform Spearman and Pearson r on test samples, every network beside the baselines",
        ("isoforms",),
    ),
    "splicing_heatmap": Kind(
        "splicing",
        "SF × gene DeepLIFT t-statistics of {subject}",
        ("genes",),
        panel=f"{DEEPSF}: DeepLIFT scores of splicing factors for genes",
    ),
    "splicing_validation": Kind(
        "splicing",
        "ROC-AUC of the DeepLIFT scores for the known SF → gene edges",
        ("validation",),
        several=("validation",),
    ),
}


def render(kind: str, files: dict[str, list[str]], options: dict, outputs: list[str]) -> None:
    """Draw a figure of `kind` from its tables (role -> paths) with `options` (the drawing
    function's other arguments) and write it to every output (PDF, PNG, SVG by suffix)."""
    from gexnet.formats.io import read_table
    from gexnet.report import figures, style

    if kind not in KINDS:
        raise GexnetError(f"no figure kind {kind!r} (known: {', '.join(KINDS)})")
    k = KINDS[kind]
    unknown = set(files) - set(k.tables)
    missing = set(k.tables) - set(files) - set(k.optional)
    if unknown or missing:
        raise GexnetError(
            f"figure {kind} reads the tables {', '.join(k.tables)}"
            + (f"; not {', '.join(sorted(unknown))}" if unknown else "")
            + (f"; {', '.join(sorted(missing))} not given" if missing else "")
        )
    for role, paths in files.items():
        if role not in k.several and len(paths) != 1:
            raise GexnetError(f"figure {kind}: one {role} table, not {len(paths)}")
    tables = {}
    for role, paths in files.items():
        read = [read_table(p) for p in paths]
        tables[role] = read if role in k.several else read[0]
    with style.house_style():
        fig = getattr(figures, kind)(**tables, **options)
        style.save(fig, *outputs)


def index(figures: list[dict]) -> pd.DataFrame:
    """figures/index.tsv: one row per figure (dicts of name, kind, subject, tables: role ->
    paths) with what it shows, its report section, the tables it reads and its panel."""
    import pandas as pd

    rows = []
    for f in figures:
        k = KINDS[f["kind"]]
        rows.append(
            {
                "figure": f["name"],
                "shows": k.shows.format(subject=f.get("subject", "")),
                "section": SECTIONS[k.section],
                "tables": " ".join(p for paths in f["tables"].values() for p in paths),
                "panel": k.panel,
                "kind": f["kind"],
            }
        )
    return pd.DataFrame(rows, columns=["figure", "shows", "section", "tables", "panel", "kind"])


def parse_tables(items: list[str]) -> dict[str, list[str]]:
    """ROLE=PATH arguments as role -> paths (a role given again adds a path)."""
    files: dict[str, list[str]] = {}
    for item in items:
        role, sep, path = item.partition("=")
        if not sep or not role or not path:
            raise GexnetError(f"{item!r}: give a table as ROLE=PATH")
        files.setdefault(role, []).append(path)
    return files


def parse_options(text: str | None) -> dict:
    if not text:
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as e:
        raise GexnetError(f"--options: not JSON ({e})") from None
    if not isinstance(options, dict):
        raise GexnetError("--options: give a JSON object")
    return options
