"""The explorer page in a real browser (headless Chromium from file://): its tables equal
`gexnet explore`'s, which equal scipy's cosine; an unknown gene gets its message; the CSV
download holds the table's rows; the map draws the lists; a large page's exact vectors beside
it make its answers exact, and without them it says its answers are approximate.

GEXNET_SCREENSHOTS=<folder> keeps the screenshots (the README's is docs/explorer.png)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gexnet.analysis.explore import Explorer
from gexnet.formats.embeddings import embedding_table
from gexnet.report import explorer as page

from . import browser

N, D = 1500, 24


def planted(seed=0) -> Explorer:
    """Two species with 6 gene programs (members near their program's centre), named like
    real genes: an alias, an Ensembl ID with version, the same symbol in both species."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, D))
    program = rng.integers(0, 6, size=N)
    vectors = centres[program] + 0.6 * rng.normal(size=(N, D))
    symbols = [f"GENE{i}" for i in range(N)]
    symbols[:3] = ["APOE", "APP", "BRCA1"]
    half = N // 2
    genes = pd.DataFrame({
        "gene_id": [f"ENSG{i:011d}" if i < half else f"ENSMUSG{i:011d}" for i in range(N)],
        "symbol": [s if i < half else s.capitalize() for i, s in enumerate(symbols)],
        "biotype": "protein_coding", "species": ["human"] * half + ["mouse"] * (N - half),
        "aliases": "",
    })  # fmt: skip
    genes.loc[half, "symbol"] = "Apoe"  # the mouse APOE: a symbol both species have
    genes.loc[2, "aliases"] = "BRCC1|RNF53"
    ex = Explorer(genes, vectors.astype(np.float32), name="planted")
    ex.program = program
    return ex


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The same embedding as an inline page and as a page with vectors.js beside it."""
    root = tmp_path_factory.mktemp("pages")
    ex = planted()
    xy = page.gene_map(ex.vectors, seed=0)
    embedding_table(ex.genes, ex.vectors).to_parquet(root / "planted.parquet")
    args = ("planted", "planted", "planted.parquet")
    page.write_page(ex.genes, ex.vectors, xy, root / "inline", *args)
    page.write_page(ex.genes, ex.vectors, xy, root / "sidecar", *args, max_mb=0.3)
    return root, ex, xy


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    d = browser.start(downloads)
    d.downloads = downloads
    yield d
    d.quit()


def open_page(driver, path: Path):
    driver.get(path.as_uri())
    for _ in range(200):
        if driver.execute_script("return document.body.dataset.ready === '1' && gexnet.hasExact()"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path}: the page did not get ready with its exact vectors")


def table_rows(driver, table_id: str) -> list[list[str]]:
    return driver.execute_script(
        "return [...document.querySelectorAll(`#${arguments[0]} tbody tr`)]"
        ".map(tr => [...tr.cells].map(td => td.textContent));",
        table_id,
    )


def cli(root: Path, *args: str) -> pd.DataFrame:
    out = subprocess.run([sys.executable, "-m", "gexnet", "explore", *args, "--embedding",
                          str(root / "planted.parquet"), "--tsv", "--no-aliases"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return pd.read_csv(pd.io.common.StringIO(out), sep="\t", keep_default_na=False)


def type_into(driver, element_id: str, text: str) -> None:
    box = driver.find_element("id", element_id)
    box.clear()
    box.send_keys(text)


def click(driver, element_id: str) -> None:
    driver.find_element("id", element_id).click()


def tab(driver, name: str) -> None:
    driver.find_element("css selector", f'nav button[data-tab="{name}"]').click()


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("GEXNET_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


@pytest.mark.parametrize("kind", ["inline", "sidecar"])
def test_similar_genes_table_equals_the_cli_and_scipy(pages, driver, kind):
    from scipy.spatial.distance import cdist

    root, ex, _ = pages
    assert (root / kind / "index.html").stat().st_size < (0.3e6 if kind == "sidecar" else 20e6)
    sidecar = (root / kind / "vectors.js").stat().st_size
    assert sidecar > N * D * 4 if kind == "sidecar" else sidecar < 100  # the exact vectors' place
    open_page(driver, root / kind / "index.html")
    assert "exact" in driver.find_element("id", "precision").text
    type_into(driver, "similar-gene", "human:APOE")
    driver.execute_script("document.getElementById('similar-top').value = '50'")
    click(driver, "similar-go")
    rows = table_rows(driver, "similar-table")
    want = cli(root, "similar", "human:APOE", "--top", "50")
    assert [r[2] for r in rows] == want["gene_id"].tolist()
    assert np.allclose([float(r[4]) for r in rows], want["cosine"], atol=5e-5)
    # and the CLI equals scipy's brute force on the full-precision vectors
    cos = 1 - cdist(ex.vectors[:1].astype(np.float64), ex.vectors.astype(np.float64), "cosine")[0]
    cos[0] = -np.inf
    assert (
        want["gene_id"].tolist()
        == ex.genes["gene_id"].to_numpy()[np.argsort(-cos, kind="stable")[:50]].tolist()
    )
    # the species filter: mouse genes only, nearest the human gene
    driver.execute_script("document.getElementById('species').value = 'mouse'")
    click(driver, "similar-go")
    mouse = cli(root, "similar", "human:APOE", "--top", "20", "--species", "mouse")
    driver.execute_script("document.getElementById('similar-top').value = '20'")
    click(driver, "similar-go")
    assert [r[2] for r in table_rows(driver, "similar-table")] == mouse["gene_id"].tolist()
    driver.execute_script("document.getElementById('species').value = ''")


def test_every_query_of_the_page_equals_the_cli(pages, driver):
    """All genes' top-100 through the page's engine, the calculator and two-gene similarity."""
    root, ex, _ = pages
    open_page(driver, root / "sidecar" / "index.html")
    for g in range(0, N, 97):
        got = driver.execute_script("return gexnet.similar(arguments[0], 100).rows.map(r => r.gene_id)",
                                    ex._label(g).split(" (")[0])  # fmt: skip
        assert got == ex.similar(ex._label(g).split(" (")[0], 100)["gene_id"].tolist(), g
    tab(driver, "calc")
    type_into(driver, "calc-expr", "human:APP - human:APOE + BRCC1")
    click(driver, "calc-go")
    want = cli(root, "calc", "human:APP - human:APOE + human:BRCA1", "--top", "20")
    assert [r[2] for r in table_rows(driver, "calc-table")] == want["gene_id"].tolist()
    tab(driver, "similarity")
    type_into(driver, "sim-a", "ENSG00000000001.4")
    type_into(driver, "sim-b", "mouse:Apoe")
    click(driver, "sim-go")
    rows = table_rows(driver, "sim-table")
    want = cli(root, "similarity", "ENSG00000000001", "mouse:Apoe")
    assert [r[0] for r in rows] == want["symbol"].tolist()
    assert [int(r[3]) for r in rows] == want["genes_closer"].tolist()
    assert np.allclose([float(r[2]) for r in rows], want["cosine"], atol=5e-5)


def test_unknown_and_shared_names_get_their_message(pages, driver):
    root, ex, _ = pages
    open_page(driver, root / "inline" / "index.html")
    type_into(driver, "similar-gene", "BRCA2")
    click(driver, "similar-go")
    message = driver.find_element("id", "similar-message").text
    assert "No gene named “BRCA2”" in message and "BRCA1" in message
    assert table_rows(driver, "similar-table") == []
    type_into(driver, "similar-gene", "apoe")
    click(driver, "similar-go")
    message = driver.find_element("id", "similar-message")
    assert "names genes of human and mouse. Which one?" in message.text
    choices = message.find_elements("css selector", "button.choice")
    assert [c.text for c in choices] == ["human:APOE", "mouse:Apoe"]
    choices[1].click()  # asks, then answers for the one chosen
    assert [r[2] for r in table_rows(driver, "similar-table")] == ex.similar("mouse:Apoe", 20)[
        "gene_id"
    ].tolist()
    tab(driver, "similarity")  # the same question in the two-gene form
    type_into(driver, "sim-a", "apoe")
    type_into(driver, "sim-b", "APP")
    click(driver, "sim-go")
    choices = driver.find_element("id", "sim-message").find_elements(
        "css selector", "button.choice"
    )
    assert [c.text for c in choices] == ["human:APOE", "mouse:Apoe"]
    choices[1].click()  # fills gene A with the one chosen, and compares
    assert [r[0] for r in table_rows(driver, "sim-table")] == ["Apoe", "APP"]


def test_csv_download_holds_the_tables_rows(pages, driver):
    root, ex, _ = pages
    open_page(driver, root / "inline" / "index.html")
    type_into(driver, "similar-gene", "RNF53")  # an alias of BRCA1
    click(driver, "similar-go")
    for old in driver.downloads.glob("*.csv"):
        old.unlink()
    click(driver, "similar-csv")
    for _ in range(100):
        files = list(driver.downloads.glob("*.csv"))
        if files:
            break
        time.sleep(0.05)
    assert files, "no CSV downloaded"
    with open(files[0]) as f:
        rows = list(csv.DictReader(f))
    want = ex.similar("human:BRCA1", 20)
    assert [r["gene_id"] for r in rows] == want["gene_id"].tolist()
    assert np.allclose([float(r["cosine"]) for r in rows], want["cosine"], atol=1e-6)


def test_map_draws_the_lists_in_their_colours(pages, driver):
    root, ex, _ = pages
    open_page(driver, root / "inline" / "index.html")
    tab(driver, "map")
    members = [np.flatnonzero(ex.program == p)[:15] for p in (0, 1)]
    type_into(driver, "list-1", "\n".join(ex._label(i).split(" (")[0] for i in members[0]))
    type_into(
        driver,
        "list-2",
        ", ".join(ex._label(i).split(" (")[0] for i in members[1]) + ", NOSUCHGENE",
    )
    click(driver, "map-go")
    legend = driver.find_element("id", "map-legend").text
    assert "List 1: 15 genes drawn" in legend
    assert "List 2: 15 genes drawn; not found or ambiguous: NOSUCHGENE" in legend
    # the pixel at a listed gene's place is its list's colour
    colours = driver.execute_script("""
        const c = document.getElementById('map-canvas'), ctx = c.getContext('2d');
        const ratio = c.width / c.clientWidth, pts = arguments[0];
        const all = Array.from({length: gexnet.n}, (_, g) => [gexnet.xy[2*g], gexnet.xy[2*g+1]]);
        let x0=Infinity,x1=-Infinity,y0=Infinity,y1=-Infinity;
        for (const [x,y] of all) {x0=Math.min(x0,x);x1=Math.max(x1,x);y0=Math.min(y0,y);y1=Math.max(y1,y);}
        const w=c.clientWidth,h=c.clientHeight,pad=12;
        return pts.map(g => { const [x,y]=all[g];
          const px=(pad+(x-x0)*(w-2*pad)/(x1-x0))*ratio, py=(h-pad-(y-y0)*(h-2*pad)/(y1-y0))*ratio;
          return Array.from(ctx.getImageData(Math.round(px), Math.round(py), 1, 1).data.slice(0, 3)); });
    """, [int(members[0][-1]), int(members[1][-1])])  # fmt: skip
    assert colours == [[0x1F, 0x77, 0xB4], [0xD6, 0x27, 0x28]]
    # hovering a listed gene names it
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("id", "pca-canvas")
    size = canvas.size  # the PCA's points are the page's own: find one by moving over it
    named = None
    for fx in np.linspace(0.03, 0.97, 40):
        for fy in np.linspace(0.03, 0.97, 40):
            ActionChains(driver).move_to_element_with_offset(
                canvas, int((fx - 0.5) * size["width"]), int((fy - 0.5) * size["height"])
            ).perform()
            tip = driver.find_element("id", "tooltip")
            if tip.is_displayed():
                named = tip.text
                break
        if named:
            break
    assert named and "(list " in named
    screenshot(driver, "explorer_map.png")


def test_without_its_vectors_file_a_large_page_says_it_is_approximate(pages, driver, tmp_path):
    root, ex, _ = pages
    alone = tmp_path / "alone.html"
    alone.write_bytes((root / "sidecar" / "index.html").read_bytes())  # vectors.js not beside it
    driver.get(alone.as_uri())
    for _ in range(100):
        if "approximate" in driver.find_element("id", "precision").text:
            break
        time.sleep(0.05)
    assert "approximate" in driver.find_element("id", "precision").text
    got = driver.execute_script("return gexnet.similar('human:APOE', 10).rows.map(r => r.gene_id)")
    assert len(set(got) & set(ex.similar("human:APOE", 10)["gene_id"])) >= 7  # int8 codes alone
