"""Questions to one gene embedding: similar genes, the calculator (a + b − c …), and the
similarity of two genes; and the names a user may type for a gene. `gexnet explore` answers
them here, in float64 on the embedding's float32 vectors; the explorer page
(`gexnet.report.explorer`) answers the same questions in the browser, to the same result.

Cosine is the measure throughout. A calculator term is its gene's unit vector (so no gene
outweighs another by its norm), and its answer excludes the genes in the expression. Ranks
break ties by the genes' order in the embedding.

Names (`Explorer.resolve`): an optional species prefix (`mouse:Apoe`); an Ensembl ID with or
without its version; else a symbol ignoring case, where a species' exact-case match wins over
its other matches; else an HGNC previous or alias symbol ignoring case. A name that matches
genes of several species, or several genes of one, is ambiguous and the error lists them; an
unknown name's error lists the closest symbols (edit distance).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError
from gexnet.formats.embeddings import embedding_table, read_embedding

ENSEMBL_ID = re.compile(r"^(ENS[A-Z]*G\d{11})(\.\d+)?(_PAR_Y)?$", re.IGNORECASE)
TOPS = (10, 20, 50, 100)
CLOSE_NAMES = 5  # the closest symbols an unknown name's message offers


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), the page's too."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def parse_expression(text: str) -> list[tuple[int, str]]:
    """'APOE - APP + BRCA1' → [(+1, 'APOE'), (-1, 'APP'), (+1, 'BRCA1')]. A sign stands alone
    or at the front of a term ('-APP'): inside a name it is part of it (HLA-A)."""
    terms, sign, pending = [], +1, False
    for token in text.split():
        if token in ("+", "-"):
            if pending:
                raise GexnetError(f"calculator: two signs in a row in {text!r}")
            sign, pending = (-1 if token == "-" else +1), True
            continue
        if token[0] in "+-":
            sign, token = (-1 if token[0] == "-" else +1), token[1:]
        terms.append((sign, token))
        sign, pending = +1, False
    if pending or not terms:
        raise GexnetError(
            f"calculator: expected genes joined by + and -, got {text!r} (e.g. 'APOE - APP + BRCA1')"
        )
    return terms


@dataclass
class Explorer:
    """One embedding's genes (gene_id, symbol, species, aliases: '|'-joined) and vectors."""

    genes: pd.DataFrame
    vectors: np.ndarray
    name: str = "embedding"

    def __post_init__(self) -> None:
        self.genes = self.genes.reset_index(drop=True)
        if "species" not in self.genes.columns:
            self.genes["species"] = ""
        if "aliases" not in self.genes.columns:
            self.genes["aliases"] = ""
        self.genes["aliases"] = self.genes["aliases"].fillna("").astype(str)
        x = self.vectors.astype(np.float64)
        norms = np.linalg.norm(x, axis=1)
        if not (norms > 0).all():
            zero = self.genes["symbol"][norms == 0].head(3).tolist()
            raise GexnetError(f"{self.name}: genes with a zero vector have no cosine: {zero}")
        self._unit = x / norms[:, None]
        self._species = self.genes["species"].astype(str).to_numpy()
        self._index()

    @classmethod
    def from_parquet(cls, path: str | Path, aliases=None) -> Explorer:
        """An embedding table's Explorer; `aliases(genes)` may add the aliases column
        (gexnet.sources.genome.with_aliases)."""
        genes, vectors = read_embedding(path)
        if aliases is not None:
            genes = aliases(genes)
        return cls(genes, vectors, name=str(path))

    @property
    def species(self) -> list[str]:
        return list(dict.fromkeys(self._species))

    def _index(self) -> None:
        folded: dict[str, list[int]] = {}
        for i, symbol in enumerate(self.genes["symbol"].astype(str)):
            if symbol:
                folded.setdefault(symbol.casefold(), []).append(i)
        alias: dict[str, list[int]] = {}
        for i, names in enumerate(self.genes["aliases"]):
            for name in filter(None, names.split("|")):
                alias.setdefault(name.casefold(), []).append(i)
        self._folded, self._alias = folded, alias
        ids: dict[str, list[int]] = {}  # a pseudo-species copy shares its gene's ID
        for i, gene_id in enumerate(self.genes["gene_id"].astype(str)):
            ids.setdefault(gene_id.upper(), []).append(i)
        self._ids = ids

    # --- names ------------------------------------------------------------------------------

    def candidates(self, text: str, species: str | None = None) -> list[int]:
        """The genes a name may mean (see the module's docstring), within `species` if given."""
        name = text.strip()
        prefix, sep, rest = name.partition(":")
        if sep and prefix in self.species and rest:
            species, name = prefix, rest
        allowed = (lambda i: True) if not species else (lambda i: self._species[i] == species)
        match = ENSEMBL_ID.match(name)
        if match:
            return [i for i in self._ids.get(match.group(1).upper(), []) if allowed(i)]
        found = [i for i in self._folded.get(name.casefold(), []) if allowed(i)]
        if found:
            kept = []
            for s in dict.fromkeys(self._species[found]):
                mine = [i for i in found if self._species[i] == s]
                exact = [i for i in mine if self.genes.at[i, "symbol"] == name]
                kept += exact or mine
            return kept
        return [i for i in dict.fromkeys(self._alias.get(name.casefold(), [])) if allowed(i)]

    def close_symbols(self, text: str, limit: int = CLOSE_NAMES) -> list[str]:
        """The symbols nearest `text` by edit distance (ignoring case), at most 2 edits away
        (1 for names of up to 3 letters)."""
        query = text.strip().casefold()
        reach = 1 if len(query) <= 3 else 2
        scored = []
        for symbol in self._folded:
            if abs(len(symbol) - len(query)) <= reach:
                d = edit_distance(query, symbol)
                if d <= reach:
                    scored.append((d, symbol))
        names = []
        for _, symbol in sorted(scored)[:limit]:
            names.append(str(self.genes.at[self._folded[symbol][0], "symbol"]))
        return names

    def _label(self, i: int) -> str:
        g = self.genes.iloc[i]
        where = f"{g['species']}:" if len(self.species) > 1 else ""
        return f"{where}{g['symbol'] or g['gene_id']} ({g['gene_id']})"

    def resolve(self, text: str, species: str | None = None) -> int:
        """The one gene a name means; a GexnetError naming the problem otherwise."""
        found = self.candidates(text, species)
        if len(found) == 1:
            return found[0]
        if not found:
            close = self.close_symbols(text)
            hint = f"; close symbols: {', '.join(close)}" if close else ""
            where = f" among its {species} genes" if species else ""
            raise GexnetError(f"{self.name}: no gene named {text.strip()!r}{where}{hint}")
        kinds = set(self._species[found])
        labels = ", ".join(self._label(i) for i in found)
        if len(kinds) > 1:
            raise GexnetError(
                f"{self.name}: {text.strip()!r} names genes of {' and '.join(sorted(kinds))}:"
                f" {labels}; say which, e.g. {self.genes.at[found[0], 'species']}:{text.strip()}"
            )
        raise GexnetError(
            f"{self.name}: {text.strip()!r} names several genes: {labels}; give the Ensembl ID"
        )

    # --- questions --------------------------------------------------------------------------

    def cosines(self, query: np.ndarray) -> np.ndarray:
        """Cosine of a query vector with every gene."""
        return self._unit @ (query / np.linalg.norm(query))

    def _ranked(
        self, scores: np.ndarray, top: int, exclude: list[int], species: str | None
    ) -> pd.DataFrame:
        keep = np.ones(len(scores), bool)
        keep[exclude] = False
        if species:
            keep &= self._species == species
        rows = np.flatnonzero(keep)
        order = rows[np.lexsort((rows, -scores[rows]))][:top]
        table = self.genes.loc[order, ["gene_id", "symbol", "species"]].reset_index(drop=True)
        table.insert(0, "rank", np.arange(1, len(order) + 1))
        table["cosine"] = scores[order]
        return table

    def similar(self, gene: str, top: int = 20, species: str | None = None) -> pd.DataFrame:
        """The `top` genes most similar to `gene` (itself left out): rank, gene_id, symbol,
        species, cosine."""
        i = self.resolve(gene)
        return self._ranked(self._unit @ self._unit[i], top, [i], species)

    def calc(self, expression: str, top: int = 20, species: str | None = None) -> pd.DataFrame:
        """The genes nearest a + b − c … of the genes' unit vectors, the terms left out."""
        terms = [(sign, self.resolve(name)) for sign, name in parse_expression(expression)]
        query = sum(sign * self._unit[i] for sign, i in terms)
        if not np.linalg.norm(query) > 1e-12:
            raise GexnetError(f"calculator: {expression!r} cancels to the zero vector")
        return self._ranked(self.cosines(query), top, [i for _, i in terms], species)

    def similarity(self, a: str, b: str, species: str | None = None) -> pd.DataFrame:
        """Cosine of two genes, and for each the genes (other than the two) more similar to it
        than the other is: their number and share."""
        i, j = self.resolve(a), self.resolve(b)
        if i == j:
            raise GexnetError(f"similarity: {a!r} and {b!r} are the same gene")
        cosine = float(self._unit[i] @ self._unit[j])
        others = np.ones(len(self._unit), bool)
        others[[i, j]] = False
        if species:
            others &= self._species == species
        rows = []
        for me, other in ((i, j), (j, i)):
            closer = int(np.count_nonzero((self._unit[others] @ self._unit[me]) > cosine))
            rows.append(
                {
                    "gene_id": self.genes.at[me, "gene_id"],
                    "symbol": self.genes.at[me, "symbol"],
                    "species": self.genes.at[me, "species"],
                    "other": self.genes.at[other, "symbol"] or self.genes.at[other, "gene_id"],
                    "cosine": cosine,
                    "genes_closer": closer,
                    "share_closer": closer / max(int(others.sum()), 1),
                }
            )
        return pd.DataFrame(rows)


def aligned_embedding(
    human: Path, mouse: Path, mappings: Path, method: str = "supervised"
) -> pd.DataFrame:
    """One two-species table from a separate-models comparison: both species' vectors as the
    alignment saw them (gexnet.analysis.align.normalize), the human ones mapped by the method's
    W onto the mouse space."""
    from gexnet.analysis import align

    table = pd.read_parquet(mappings)
    table = table[table["method"] == method].sort_values("row")
    if table.empty:
        raise GexnetError(
            f"{mappings}: no {method} mapping (it has {sorted(set(pd.read_parquet(mappings)['method']))})"
        )
    w = table.filter(regex=r"^dim_\d+$").to_numpy(np.float64)
    sides = []
    for path, species, mapped in ((human, "human", True), (mouse, "mouse", False)):
        genes, vectors = read_embedding(path)
        if "species" in genes.columns and (genes["species"] != species).any():
            keep = (genes["species"] == species).to_numpy()
            genes, vectors = genes[keep].reset_index(drop=True), vectors[keep]
        x = align.normalize(vectors.astype(np.float64))
        if mapped:
            if w.shape[0] != x.shape[1]:
                raise GexnetError(
                    f"{mappings}: a {w.shape[0]}-row mapping for {x.shape[1]}-dimensional {path}"
                )
            x = x @ w
        sides.append(embedding_table(genes.assign(species=species), x.astype(np.float32)))
    return pd.concat(sides, ignore_index=True)
