"""The explorer page: one HTML file per embedding that answers similar-genes, calculator and
two-gene questions and draws gene lists on a map, opened from disk with no server and no
network. Its script and style are the project's own (`gexnet/data/explorer/`), inlined; it loads
nothing from anywhere.

What the page holds (one JSON block; arrays as base64 of little-endian binaries):
- the genes: gene_id, symbol, species, aliases (HGNC previous and alias symbols, '|'-joined);
- int8 codes of every gene's unit vector, with a scale per gene and the code's distance from
  the unit vector (`radius`, rounded up): the page's scan bounds each gene's cosine by it;
- the exact float32 vectors, inline when the page stays within `max_mb` with them, else in
  `vectors.js` beside the page (a script, which browsers load from disk where they refuse
  other files): the page re-scores with them only the genes whose bound reaches the answer,
  so its answers are full precision's (`gexnet.analysis.explore` computes the same);
- the map: a UMAP of all genes' unit vectors (umap-learn on their exact cosine neighbours,
  seeded), written as a table by `write_map`.

At 40,000 genes × 200 dimensions the page is about 13 MB and vectors.js 43 MB
(benchmarks/explorer.py measures size, load and query times in headless Chromium).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError
from gexnet.formats.io import atomic_path, write_table

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "data" / "explorer"
SIDECAR = "vectors.js"


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(
        np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    ).decode()


def quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int8 codes of the unit vectors, a float32 scale per gene, and each code's Euclidean
    distance from its unit vector, rounded up to float32: |u·q − scale·code·q| ≤ radius for
    every unit q (Cauchy–Schwarz)."""
    x = vectors.astype(np.float64)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    scale = (np.abs(unit).max(axis=1) / 127.0).astype(np.float32)
    codes = np.clip(np.rint(unit / scale[:, None].astype(np.float64)), -127, 127).astype(np.int8)
    error = np.linalg.norm(unit - codes * scale[:, None].astype(np.float64), axis=1)
    radius = np.nextafter(error.astype(np.float32), np.float32(np.inf))
    return codes, scale, radius


def neighbours(unit: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Each gene's exact k nearest genes by cosine, itself first: (indices, cosine distances),
    both genes × k. Exact, and far cheaper here than compiling UMAP's approximate search."""
    n = len(unit)
    index = np.empty((n, k), np.int64)
    distance = np.empty((n, k), np.float32)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        scores = unit[rows] @ unit.T
        scores[np.arange(len(rows)), rows] = -np.inf  # itself goes first, below
        top = np.argpartition(-scores, k - 2, axis=1)[:, : k - 1]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        index[rows, 0], index[rows, 1:] = rows, top
        distance[rows, 0] = 0.0
        distance[rows, 1:] = np.clip(1.0 - np.take_along_axis(scores, top, 1), 0.0, 2.0)
    return index, distance


def gene_map(
    vectors: np.ndarray, seed: int, n_neighbors: int = 15, min_dist: float = 0.1
) -> np.ndarray:
    """2-D UMAP of the genes' unit vectors by cosine (genes × 2, float32), on their exact
    nearest neighbours."""
    import warnings

    import umap

    x = vectors.astype(np.float32)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)
    if n < 4:
        raise GexnetError(f"a map needs at least 4 genes, the embedding has {n}")
    k = min(n_neighbors, n - 1)
    index, distance = neighbours(x, k)
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": seeded means serial
        warnings.simplefilter("ignore", UserWarning)
        reducer = umap.UMAP(n_neighbors=k, min_dist=min_dist, metric="cosine",
                            random_state=seed, precomputed_knn=(index, distance, None))  # fmt: skip
        return reducer.fit_transform(x).astype(np.float32)


def write_map(embedding: Path, out: Path, seed: int, settings: dict) -> None:
    """An embedding's map as a table: gene_id, symbol, species, biotype (those it has), x, y."""
    from gexnet.formats.embeddings import read_embedding

    genes, vectors = read_embedding(embedding)
    xy = gene_map(vectors, seed, **settings)
    columns = [c for c in ("gene_id", "symbol", "species", "biotype") if c in genes.columns]
    write_table(genes[columns].assign(x=xy[:, 0], y=xy[:, 1]), out)
    log.info("%s: a map of %d genes", out, len(genes))


def read_map(path: Path, genes: pd.DataFrame) -> np.ndarray:
    """The x, y of a map table, checked against the embedding's genes (same genes, same order)."""
    table = pd.read_parquet(path)
    if not {"gene_id", "x", "y"} <= set(table.columns):
        raise GexnetError(f"{path}: expected gene_id, x and y columns (gexnet explore maps)")
    if (
        len(table) != len(genes)
        or (table["gene_id"].to_numpy() != genes["gene_id"].to_numpy()).any()
    ):
        raise GexnetError(
            f"{path}: the map's genes are not the embedding's ({len(table)} and {len(genes)} rows): remake it"
        )
    return table[["x", "y"]].to_numpy(np.float32)


def _examples(genes: pd.DataFrame, species: list[str]) -> dict:
    """The questions the page opens with: the first genes with a symbol."""
    named = genes[genes["symbol"].astype(str) != ""].head(3)
    if len(named) < 3:
        return {}
    prefix = named["species"].astype(str) + ":" if len(species) > 1 else ""
    a, b, c = (prefix + named["symbol"].astype(str)).tolist()
    return {"gene": a, "expression": f"{b} - {a} + {c}", "a": a, "b": b}


def page_genes(genes: pd.DataFrame) -> pd.DataFrame:
    """gene_id, symbol, species and aliases, filled where the table lacks them."""
    genes = genes.reset_index(drop=True).copy()
    for column in ("symbol", "species", "aliases"):
        genes[column] = genes[column].fillna("").astype(str) if column in genes else ""
    return genes


def page_html(genes: pd.DataFrame, vectors: np.ndarray, xy: np.ndarray, name: str, title: str,
              source: str, exact: str, exact_b64: str) -> str:  # fmt: skip
    """The page's HTML; `exact` is 'inline' (then `exact_b64`, the float32 vectors in base64,
    goes in the page) or the sidecar's file name."""
    from gexnet import __version__

    genes = page_genes(genes)
    codes, scale, radius = quantise(vectors)
    species = list(dict.fromkeys(genes["species"]))
    data = {
        "name": name,
        "title": title,
        "n": len(genes),
        "dims": int(vectors.shape[1]),
        "species": species,
        "gene_species": [species.index(s) for s in genes["species"].astype(str)],
        "gene_id": genes["gene_id"].astype(str).tolist(),
        "symbol": genes["symbol"].fillna("").astype(str).tolist(),
        "aliases": genes["aliases"].astype(str).tolist(),
        "codes": _b64(codes),
        "scale": _b64(scale),
        "radius": _b64(radius),
        "map": _b64(xy.astype(np.float32)),
        "exact": exact,
        "examples": _examples(genes, species),
    }
    # "</" inside a script block would end it; JSON may escape the slash
    block = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    inline = ""
    if exact == "inline":
        inline = f'<script id="gexnet-exact" type="text/plain">{exact_b64}</script>'
    html = (ASSETS / "page.html").read_text()
    for key, value in (
        ("__STYLE__", (ASSETS / "explorer.css").read_text()),
        ("__SCRIPT__", (ASSETS / "explorer.js").read_text()),
        ("__VERSION__", __version__),
        ("__SOURCE__", source.replace("<", "&lt;")),
        ("__EXACT__", inline),
        ("__DATA__", block),  # last: the data may contain the other markers' text
    ):
        html = html.replace(key, value)
    return html


def write_page(genes: pd.DataFrame, vectors: np.ndarray, xy: np.ndarray, outdir: str | Path,
               name: str, title: str, source: str, max_mb: float = 20.0) -> dict:  # fmt: skip
    """index.html, vectors.js (the exact vectors where inlining them would take the page past
    `max_mb`, else a comment) in `outdir`, each written atomically. Returns the sizes in
    bytes."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if len(xy) != len(genes):
        raise GexnetError(f"a map of {len(xy)} genes for an embedding of {len(genes)}")
    exact_b64 = _b64(vectors.astype(np.float32))  # once, for the page or the file beside it
    html = page_html(genes, vectors, xy, name, title, source, "inline", exact_b64)
    sizes = {}
    if len(html.encode()) > max_mb * 1e6:
        html = page_html(genes, vectors, xy, name, title, source, SIDECAR, exact_b64)
        sidecar = f'window.gexnetExact = "{exact_b64}";\n'
        with atomic_path(outdir / SIDECAR) as tmp:
            tmp.write_text(sidecar)
        sizes[SIDECAR] = len(sidecar)
    else:  # written all the same, so that a page's files are always the same three
        with atomic_path(outdir / SIDECAR) as tmp:
            tmp.write_text("// This page holds its exact vectors inline: nothing here.\n")
    if len(html.encode()) > max_mb * 1e6:
        log.warning("%s: the page is %.1f MB even without its exact vectors (max_mb %.1f)",
                    outdir, len(html.encode()) / 1e6, max_mb)  # fmt: skip
    with atomic_path(outdir / "index.html") as tmp:
        tmp.write_text(html)
    sizes["index.html"] = len(html.encode())
    log.info("%s: %d genes; %s", outdir, len(genes),
             ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))  # fmt: skip
    return sizes
