"""Virtual gene manipulation on an expression autoencoder: knockouts, knockdowns, overexpression
and explicit levels of single genes and combinations, their effects, an empirical null, the
systematic single-gene knockout, and master regulators (per sample, and cooperating pairs).

A perturbation (`Perturbation`) is a gene or a combination of genes (the model's column
indices), a kind and an amount; its target value for a gene in a sample is
- `knockout`: the gene's `minimum` (its floor level, the lowest log value observed);
- `knockdown` (`fraction` f in (0, 1)): f times the sample's current expression, in linear space:
  log10(f·(10^x − 1) + 1) for log value x;
- `overexpress`: the `quantile` q in [0, 1] of its observed values (the 101-point grid,
  interpolated), or `times_max` m times its maximum in linear space, 1 ≤ m ≤ `max_multiple`
  (beyond that the model is asked about values it never saw: an error);
- `set`: given values (per sample or one for all), as the master regulators use.

Effects are always the signed change against the model's own reconstruction of the unperturbed
sample, never against the raw input: change = recon(perturbed input) − recon(input), so that what
the model cannot reconstruct anyway is not counted as an effect. The engine (`Perturber`) runs
many (perturbation, sample) rows in one forward pass per chunk of `batch_size` rows, and does
not recompute the first layer: its pre-activation for a perturbed row is the unperturbed
sample's plus W[:, genes] · ((target − current) / scale[genes]), one gather of a few columns of
W instead of a product with all genes; `from_first` does the rest. With `iterations` > 1 the
reconstruction is fed back as the next input (a dense forward from the second iteration on),
the perturbed genes held at their targets (`hold`), and the change is taken against the
unperturbed sample's reconstruction iterated the same number of times without perturbation.
Results stream by chunk into reducers, so that memory is bounded by the chunk and the output
(perturbations × genes for the mean change), never perturbations × samples × genes.

Summaries (`Perturber.summarize`): per perturbation, over its samples' mean change of every
gene except the perturbed ones, the number of genes changed by more than `threshold` log10
units, their mean change, the score (mean |mean change|), the top genes up and down, and an
empirical null: `null_genes` random genes matched on expression level (deciles of `genes.mean`;
a combination draws one matched gene per member) perturbed with the same kind and amount on
the same samples; z against the null scores, p = (1 + #null ≥ score) / (1 + n_null), and
Benjamini–Hochberg FDR over the request. `knockout_all` knocks out every gene (or a subset)
once and uses the systematic table as its own null: each gene's score against the scores of the
other genes of its expression bin (and each top gene's change against that gene's changes under
the bin's other knockouts), so no extra perturbations are run.

Master regulators (`Perturber.master_regulators`): for each start sample and candidate gene g,
set g to the goal samples' mean observed level of g and score the shift towards the goal
centroid (the mean of the goal samples' reconstructions): 1 − d(perturbed, goal) /
d(unperturbed, goal), Euclidean over every gene except the perturbed ones (a gene does not score
by moving itself). Pairs are formed among `pair_top` candidates per sample: its best singles
from the best `pair_pool`, each skipped when its change vector (its own entry left out) has
|cosine| above `redundancy` with a better candidate's, since genes of one module move a sample
the same way and a pair of them tests redundancy, not cooperation; every pair is perturbed jointly;
cooperation = joint − (single_i + single_j), beside the additive prediction (the unperturbed
reconstruction plus both singles' changes, scored the same way), which is the pair's baseline.

The linear baseline is the same code run with a `LinearAutoencoder`; `compare` sets the two
result tables side by side.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from gexnet.errors import GexnetError

KINDS = ("knockout", "knockdown", "overexpress", "set")
QUANTILE_GRID = np.linspace(0.0, 1.0, 101)
GENE_COLUMNS = ("gene_id", "symbol", "biotype", "mean", "minimum", "maximum", "quantiles")


# --- perturbation specs ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Perturbation:
    """Genes (model column indices), a kind and an amount (the one argument of the kind)."""

    genes: tuple[int, ...]
    kind: str
    fraction: float | None = None  # knockdown
    quantile: float | None = None  # overexpress
    times_max: float | None = None  # overexpress
    values: np.ndarray | None = field(default=None, repr=False)  # set: (genes,) or (samples, genes)

    def __post_init__(self) -> None:
        genes = tuple(int(g) for g in np.atleast_1d(self.genes))
        object.__setattr__(self, "genes", genes)
        if not genes:
            raise GexnetError("a perturbation needs at least one gene")
        if len(set(genes)) != len(genes):
            raise GexnetError(f"a perturbation names a gene twice: {genes}")
        if self.kind not in KINDS:
            raise GexnetError(f"perturbation kind {self.kind!r}: expected one of {KINDS}")
        if self.kind == "knockdown" and not (
            self.fraction is not None and 0.0 < self.fraction < 1.0
        ):
            raise GexnetError(f"knockdown needs a fraction in (0, 1), not {self.fraction}")
        if self.kind == "overexpress":
            if (self.quantile is None) == (self.times_max is None):
                raise GexnetError("overexpress needs exactly one of quantile and times_max")
            if self.quantile is not None and not 0.0 <= self.quantile <= 1.0:
                raise GexnetError(f"overexpress quantile {self.quantile}: expected 0 to 1")
        if self.kind == "set":
            if self.values is None:
                raise GexnetError("a 'set' perturbation needs values")
            object.__setattr__(self, "values", np.asarray(self.values, dtype=np.float32))

    @property
    def amount(self) -> float:
        """The kind's argument (NaN for knockout and set)."""
        for value in (self.fraction, self.quantile, self.times_max):
            if value is not None:
                return float(value)
        return float("nan")

    @property
    def amount_name(self) -> str:
        if self.fraction is not None:
            return "fraction"
        if self.quantile is not None:
            return "quantile"
        if self.times_max is not None:
            return "times_max"
        return ""

    def with_genes(self, genes: Sequence[int]) -> Perturbation:
        """The same kind and amount on other genes (the null's draws)."""
        return Perturbation(tuple(genes), self.kind, self.fraction, self.quantile,
                            self.times_max, self.values)  # fmt: skip


def knockout(genes: int | Sequence[int]) -> Perturbation:
    return Perturbation(tuple(np.atleast_1d(genes)), "knockout")


def knockdown(genes: int | Sequence[int], fraction: float) -> Perturbation:
    return Perturbation(tuple(np.atleast_1d(genes)), "knockdown", fraction=fraction)


def overexpress(
    genes: int | Sequence[int], *, quantile: float | None = None, times_max: float | None = None
) -> Perturbation:
    return Perturbation(tuple(np.atleast_1d(genes)), "overexpress", quantile=quantile,
                        times_max=times_max)  # fmt: skip


def set_to(genes: int | Sequence[int], values) -> Perturbation:
    """Explicit target values: one per gene, or samples × genes."""
    return Perturbation(tuple(np.atleast_1d(genes)), "set", values=values)


def singles(genes: Sequence[int], kind: str = "knockout", **amount) -> list[Perturbation]:
    """One perturbation per gene of the list."""
    return [Perturbation((int(g),), kind, **amount) for g in genes]


def pairs(genes: Sequence[int], kind: str = "knockout", **amount) -> list[Perturbation]:
    """Every pair of the list, in itertools.combinations order."""
    return [Perturbation((int(a), int(b)), kind, **amount)
            for a, b in itertools.combinations(genes, 2)]  # fmt: skip


# --- genes -----------------------------------------------------------------------------------


def check_genes(genes: pd.DataFrame) -> None:
    missing = [c for c in GENE_COLUMNS if c not in genes.columns]
    if missing:
        raise GexnetError(f"the gene table lacks column(s) {missing}")


def _strip_version(name: str) -> str:
    return re.sub(r"\.\d+$", "", name) if name.upper().startswith("ENS") else name


def resolve_genes(
    names: str | Sequence[str], genes: pd.DataFrame, known: pd.DataFrame | None = None
) -> np.ndarray:
    """Model column indices of gene names: symbols (any case) or Ensembl IDs (with or without a
    version). Unknown names raise one error naming each, with up to 3 close symbols; a name of
    `known` (gene_id, symbol, biotype: e.g. the corpus vocabulary) outside the model's genes is
    said to be so, with its biotype."""
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise GexnetError("no genes given: name at least one gene (symbol or Ensembl ID)")
    by_id = {str(g).upper(): i for i, g in enumerate(genes["gene_id"])}
    by_symbol: dict[str, int] = {}
    for i, s in enumerate(genes["symbol"]):
        by_symbol.setdefault(str(s).upper(), i)  # a duplicated symbol: its first gene
    model_biotypes = ", ".join(sorted(set(map(str, genes["biotype"]))))
    found, unknown, outside = [], [], []
    for name in names:
        key = _strip_version(str(name).strip()).upper()
        index = by_id.get(key, by_symbol.get(key))
        if index is not None:
            found.append(index)
            continue
        other = None
        if known is not None:
            hit = (known["gene_id"].astype(str).str.upper() == key) | (
                known["symbol"].astype(str).str.upper() == key
            )
            if hit.any():
                other = known[hit].iloc[0]
        if other is not None:
            outside.append(
                f"{other['symbol']} is in the corpus but outside the model's gene set (biotype "
                f"{other['biotype']}; the autoencoder models {model_biotypes} genes)"
            )
        else:
            close = difflib.get_close_matches(key, list(by_symbol), n=3)
            symbols = [str(genes["symbol"].iloc[by_symbol[c]]) for c in close]
            hint = f" (close: {', '.join(symbols)})" if symbols else ""
            unknown.append(f"{name}{hint}")
    if unknown or outside:
        parts = (["unknown gene(s): " + "; ".join(unknown)] if unknown else []) + outside
        raise GexnetError("; ".join(parts))
    return np.array(found, dtype=np.int64)


def level_bins(genes: pd.DataFrame, bins: int = 10) -> np.ndarray:
    """Expression-level bin of each gene: quantile bins of `genes.mean` (ties share a bin)."""
    ranks = pd.Series(np.asarray(genes["mean"], dtype=np.float64)).rank(method="first")
    return np.asarray(pd.qcut(ranks, bins, labels=False, duplicates="drop"), dtype=np.int64)


def bh_fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (monotone in p, at most 1); NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    if q.size:
        order = np.argsort(q, kind="stable")
        scaled = q[order] * q.size / np.arange(1, q.size + 1)
        adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
        res = np.empty_like(q)
        res[order] = np.minimum(adjusted, 1.0)
        out[ok] = res
    return out


def _empirical(score: float, null: np.ndarray) -> tuple[float, float, float, float]:
    """(null mean, null sd, z, p) of a score against null scores."""
    null = null[~np.isnan(null)]
    if null.size < 2:
        return (float("nan"),) * 4
    mean, sd = float(null.mean()), float(null.std(ddof=1))
    z = (score - mean) / sd if sd > 0 else float("nan")
    p = (1 + int((null >= score).sum())) / (1 + null.size)
    return mean, sd, z, p


def _nonempty(x, what: str) -> None:
    if len(x) == 0:
        raise GexnetError(f"the {what} samples are empty: select at least one sample")


# --- results ---------------------------------------------------------------------------------


@dataclass
class Summary:
    """`table`: one row per perturbation; `top_genes`: its top affected genes, with z against
    the null's changes of the same gene; `means`: perturbations × genes mean change (float32),
    when asked for."""

    table: pd.DataFrame
    top_genes: pd.DataFrame
    means: np.ndarray | None = None


@dataclass
class MasterRegulators:
    """`per_sample`: each start sample's top genes (rank, score, null); `pairs`: every pair of
    each sample's top singles (joint, additive, cooperation, best flags); `genes`: per gene over
    samples (times in the top, mean rank, mean score); `best_pairs`: per pair, times best;
    `scores`: start samples × candidates (the candidates in `candidates`)."""

    per_sample: pd.DataFrame
    pairs: pd.DataFrame
    genes: pd.DataFrame
    best_pairs: pd.DataFrame
    scores: np.ndarray
    candidates: np.ndarray


# --- the engine ------------------------------------------------------------------------------


class Perturber:
    """The batched perturbation engine for one model (put in eval mode) and its gene table.

    `batch_size` rows (perturbation, sample) per forward pass; `iterations` passes, the
    reconstruction fed back with the perturbed genes held at their targets when `hold`;
    `max_multiple` bounds overexpression by times_max."""

    def __init__(self, model: torch.nn.Module, genes: pd.DataFrame, *, batch_size: int = 512,
                 iterations: int = 1, hold: bool = True, max_multiple: float = 2.0,
                 device: str | torch.device | None = None) -> None:  # fmt: skip
        check_genes(genes)
        self.model = model.eval()
        self.n_genes = int(model.center.shape[0])
        if len(genes) != self.n_genes:
            raise GexnetError(f"the gene table has {len(genes)} rows, the model {self.n_genes}")
        if batch_size < 1 or iterations < 1:
            raise GexnetError("batch_size and iterations must be at least 1")
        self.genes = genes.reset_index(drop=True)
        self.batch_size, self.iterations, self.hold = batch_size, iterations, hold
        self.max_multiple = max_multiple
        self.device = torch.device(device) if device is not None else model.center.device
        self.symbols = self.genes["symbol"].astype(str).to_numpy()
        self.minimum = np.asarray(self.genes["minimum"], dtype=np.float32)
        self.maximum = np.asarray(self.genes["maximum"], dtype=np.float32)
        self.quantiles = np.stack(self.genes["quantiles"].to_numpy()).astype(np.float32)
        if self.quantiles.shape != (self.n_genes, QUANTILE_GRID.size):
            raise GexnetError(f"quantiles must hold {QUANTILE_GRID.size} values per gene, "
                              f"not {self.quantiles.shape[1:]}")  # fmt: skip

    # names and targets

    def name(self, p: Perturbation) -> str:
        return "+".join(self.symbols[g] for g in p.genes)

    def targets(self, p: Perturbation, x: np.ndarray) -> np.ndarray:
        """Target log values (samples × genes of p) on samples `x` (samples × all genes)."""
        n, g = x.shape[0], list(p.genes)
        if max(g) >= self.n_genes or min(g) < 0:
            raise GexnetError(f"gene index out of range 0..{self.n_genes - 1}: {p.genes}")
        if p.kind == "knockout":
            return np.broadcast_to(self.minimum[g], (n, len(g))).copy()
        if p.kind == "knockdown":
            current = x[:, g].astype(np.float64)
            return np.log10(p.fraction * (10.0**current - 1) + 1).astype(np.float32)
        if p.kind == "overexpress" and p.quantile is not None:
            levels = [np.interp(p.quantile, QUANTILE_GRID, self.quantiles[j]) for j in g]
            return np.broadcast_to(np.float32(levels), (n, len(g))).copy()
        if p.kind == "overexpress":
            m = p.times_max
            if not 1.0 <= m <= self.max_multiple:
                j = g[0]
                raise GexnetError(
                    f"overexpressing {self.name(p)} to {m}× its maximum: the model never saw "
                    f"values above {self.maximum[j]:.3f} (observed range {self.minimum[j]:.3f}"
                    f"–{self.maximum[j]:.3f} log10 units); times_max must be 1 to "
                    f"{self.max_multiple} (max_multiple)"
                )
            top = self.maximum[g].astype(np.float64)
            levels = np.log10(m * (10.0**top - 1) + 1).astype(np.float32)
            return np.broadcast_to(levels, (n, len(g))).copy()
        values = p.values
        if values.ndim == 1 and values.shape == (len(g),):
            return np.broadcast_to(values, (n, len(g))).copy()
        if values.shape != (n, len(g)):
            raise GexnetError(f"'set' values for {self.name(p)} must be ({len(g)},) or "
                              f"({n}, {len(g)}), not {values.shape}")  # fmt: skip
        return values.copy()

    # the streaming core

    def _tensor(self, x, what: str = "selected") -> torch.Tensor:
        x = torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x)
        if x.ndim != 2 or x.shape[1] != self.n_genes:
            raise GexnetError(f"the {what} samples must be samples × {self.n_genes} genes, "
                              f"not {tuple(x.shape)}")  # fmt: skip
        _nonempty(x, what)
        return x.to(self.device, torch.float32)

    @torch.inference_mode()
    def _base(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First-layer pre-activation and reconstruction (iterated) of unperturbed samples."""
        first, pres, recons = self.model.encoder[0], [], []
        for start in range(0, x.shape[0], self.batch_size):
            chunk = x[start : start + self.batch_size]
            pre = first(self.model.scaled(chunk))
            recon = self.model.from_first(pre)
            for _ in range(self.iterations - 1):
                recon = self.model(recon)
            pres.append(pre)
            recons.append(recon)
        return torch.cat(pres), torch.cat(recons)

    def reconstruct(self, x) -> np.ndarray:
        """The model's (iterated) reconstruction of unperturbed samples."""
        return self._base(self._tensor(x))[1].cpu().numpy()

    def _rows(self, perturbations: Sequence[Perturbation], x_np: np.ndarray,
              rows: tuple[np.ndarray, np.ndarray] | None):  # fmt: skip
        """Row arrays: perturbation index, sample index, genes (padded), targets, valid."""
        n = x_np.shape[0]
        if rows is None:
            p_idx = np.repeat(np.arange(len(perturbations)), n)
            s_idx = np.tile(np.arange(n), len(perturbations))
        else:
            p_idx, s_idx = (np.asarray(r, dtype=np.int64) for r in rows)
        k = max(len(p.genes) for p in perturbations)
        genes = np.empty((p_idx.size, k), dtype=np.int64)
        targets = np.empty((p_idx.size, k), dtype=np.float32)
        valid = np.zeros((p_idx.size, k), dtype=bool)
        # rows are perturbation-major: each perturbation's rows are one run
        bounds = np.flatnonzero(np.diff(p_idx)) + 1
        for run in np.split(np.arange(p_idx.size), bounds):
            if run.size == 0:
                continue
            p = perturbations[p_idx[run[0]]]
            t = self.targets(p, x_np[s_idx[run]])
            m = len(p.genes)
            # pads repeat the first gene and its target: a zero delta, and the same held value
            genes[run] = p.genes[0]
            targets[run] = t[:, :1]
            genes[run, :m], targets[run, :m], valid[run, :m] = p.genes, t, True
        return p_idx, s_idx, genes, targets, valid

    @torch.inference_mode()
    def stream(self, perturbations: Sequence[Perturbation], x,
               rows: tuple[np.ndarray, np.ndarray] | None = None, hidden: bool = False
               ) -> Iterator[tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]]:  # fmt: skip
        """(perturbation index, sample index, perturbed reconstruction, the unperturbed
        reconstruction of each row's sample) per chunk of rows: every perturbation on every
        sample of `x`, or the given (perturbation, sample) rows, perturbation-major. The change
        is the difference of the two (the second may be a broadcast view: do not write to it).
        `hidden` (one iteration only): the inputs of the model's last Linear instead."""
        if len(perturbations) == 0:
            raise GexnetError("no perturbations requested")
        xt = self._tensor(x)
        x_np = xt.cpu().numpy()
        p_idx, s_idx, genes, targets, valid = self._rows(perturbations, x_np, rows)
        base_pre, base_recon = self._base(xt)
        if hidden:
            if self.iterations != 1:
                raise GexnetError("hidden outputs are for one iteration only")
            base_recon = self.model.hidden_from_first(base_pre)
        weight = self.model.encoder[0].weight  # hidden × genes
        scale = self.model.scale
        for start in range(0, p_idx.size, self.batch_size):
            sl = slice(start, start + self.batch_size)
            s = torch.as_tensor(s_idx[sl], device=self.device)
            g = torch.as_tensor(genes[sl], device=self.device)
            t = torch.as_tensor(targets[sl], device=self.device)
            ok = torch.as_tensor(valid[sl], device=self.device)
            r, k = g.shape
            delta = torch.where(ok, (t - xt[s[:, None], g]) / scale[g], 0.0)
            columns = weight.index_select(1, g.reshape(-1)).T.reshape(r, k, -1)
            pre = base_pre[s] + torch.bmm(delta[:, None, :], columns)[:, 0]
            if hidden:
                recon = self.model.hidden_from_first(pre)
                base = (
                    base_recon[s[0]].expand_as(recon) if _one_sample(s_idx[sl]) else base_recon[s]
                )
                yield p_idx[sl], s_idx[sl], recon, base
                continue
            recon = self.model.from_first(pre)
            for _ in range(self.iterations - 1):
                if self.hold:
                    recon = recon.scatter(1, g, t)
                recon = self.model(recon)
            # one sample in the chunk: its base row broadcast, not gathered once per row
            base = base_recon[s[0]].expand_as(recon) if _one_sample(s_idx[sl]) else base_recon[s]
            yield p_idx[sl], s_idx[sl], recon, base

    @torch.inference_mode()
    def iter_mean_changes(self, perturbations: Sequence[Perturbation], x
                          ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:  # fmt: skip
        """(perturbation indices, their mean change over the samples: block × genes), streamed
        as each perturbation's rows are complete. With one iteration the model's last Linear
        is linear in its input, so a perturbation's mean change is that Linear applied once to
        its samples' mean hidden difference (times the scale: bias and centre cancel), not to
        every sample's: the largest product of the network runs once per perturbation, on CPUs
        through numpy's BLAS (OpenBLAS multiplies float32 faster than MKL on AMD CPUs)."""
        n = len(x)
        fast = self.iterations == 1
        finish = self._head_of_difference if fast else (lambda d: d)
        pending, pending_sum = -1, None
        for p_idx, _, out, base in self.stream(perturbations, x, hidden=fast):
            change = out - base if fast else out.sub_(base)
            if n == 1:  # each row is a whole perturbation: nothing to sum
                yield p_idx, finish(change)
                continue
            unique, inverse = np.unique(p_idx, return_inverse=True)
            sums = torch.zeros((unique.size, change.shape[1]), device=change.device)
            sums.index_add_(0, torch.as_tensor(inverse, device=change.device), change)
            if unique[0] == pending:
                sums[0] += pending_sum
            elif pending >= 0:
                yield np.array([pending]), finish(pending_sum[None] / n)
            if unique.size > 1:
                yield unique[:-1], finish(sums[:-1] / n)
            pending, pending_sum = int(unique[-1]), sums[-1].clone()
        if pending >= 0:
            yield np.array([pending]), finish(pending_sum[None] / n)

    def _head_of_difference(self, difference: torch.Tensor) -> torch.Tensor:
        """The change of the reconstruction (log units) for a difference of the last Linear's
        inputs: W · difference, times the scale."""
        head = self.model.head
        if difference.device.type == "cpu":
            out = torch.from_numpy(difference.numpy() @ head.weight.detach().numpy().T)
        else:
            out = difference @ head.weight.T
        return out.mul_(self.model.scale)

    def mean_changes(self, perturbations: Sequence[Perturbation], x) -> np.ndarray:
        """Mean change per gene over the samples `x`: perturbations × genes, float32."""
        out = np.empty((len(perturbations), self.n_genes), dtype=np.float32)
        for idx, block in self.iter_mean_changes(perturbations, x):
            out[idx] = block.cpu().numpy()
        return out

    def changes(self, perturbations: Sequence[Perturbation], x) -> np.ndarray:
        """Every change: perturbations × samples × genes (for small requests)."""
        out = np.empty((len(perturbations), len(x), self.n_genes), dtype=np.float32)
        for p_idx, s_idx, recon, base in self.stream(perturbations, x):
            out[p_idx, s_idx] = (recon - base).cpu().numpy()
        return out

    # summaries

    def _row_stats(self, block: torch.Tensor, own: list[tuple[int, ...]], threshold: float,
                   top: int) -> list[dict]:  # fmt: skip
        """Per-perturbation statistics of mean changes (block × genes), own genes excluded."""
        mask = torch.zeros(block.shape, dtype=torch.bool, device=block.device)
        for i, g in enumerate(own):
            mask[i, list(g)] = True
        size = torch.abs(block).masked_fill(mask, 0.0)
        score = size.sum(1) / (~mask).sum(1)
        hit = (size > threshold) & ~mask
        n_hit = hit.sum(1)
        hit_mean = torch.where(hit, block, 0.0).sum(1) / n_hit.clamp(min=1)
        k = min(top, self.n_genes)
        up_v, up_i = block.masked_fill(mask, -torch.inf).topk(k, dim=1)
        dn_v, dn_i = (-block).masked_fill(mask, -torch.inf).topk(k, dim=1)
        big_v, big_i = size.masked_fill(mask, -1.0).topk(k, dim=1)
        out = []
        for i in range(block.shape[0]):
            up = up_i[i][up_v[i] > 0].tolist()
            dn = dn_i[i][dn_v[i] > 0].tolist()
            big = [j for j, v in zip(big_i[i].tolist(), big_v[i].tolist(), strict=True)
                   if v >= 0]  # fmt: skip
            out.append({
                "n_affected": int(n_hit[i]),
                "mean_change_affected": float(hit_mean[i]) if n_hit[i] else float("nan"),
                "score": float(score[i]),
                "top_up": ",".join(self.symbols[up]),
                "top_down": ",".join(self.symbols[dn]),
                "_top": big,
                "_top_change": block[i, big].tolist(),
            })  # fmt: skip
        return out

    def _null_draws(self, p: Perturbation, bins: np.ndarray, n_null: int,
                    rng: np.random.Generator) -> list[Perturbation]:  # fmt: skip
        """`n_null` perturbations like p on level-matched random genes (one per member)."""
        members = []
        for g in p.genes:
            pool = np.flatnonzero((bins == bins[g]) & ~np.isin(np.arange(bins.size), p.genes))
            if pool.size == 0:
                pool = np.setdiff1d(np.arange(bins.size), p.genes)
            members.append(rng.choice(pool, n_null, replace=pool.size < n_null))
        draws = np.stack(members, axis=1)
        out = []
        for row in draws:
            while len(set(row.tolist())) < row.size:  # a combination needs distinct genes
                j = rng.integers(row.size)
                row[j] = rng.choice(np.setdiff1d(np.arange(bins.size), p.genes))
            out.append(p.with_genes(row.tolist()))
        return out

    def summarize(self, perturbations: Sequence[Perturbation], x, *, threshold: float = 0.05,
                  top: int = 10, null_genes: int = 100, bins: int = 10, seed: int = 0,
                  keep_means: bool = False, block: int = 256) -> Summary:  # fmt: skip
        """The per-perturbation table (see the module docstring) on samples `x`, with the null
        of `null_genes` level-matched random genes per perturbation (random draws from
        default_rng([seed, index of the perturbation in the request])). A `set` perturbation's
        values belong to its genes, so it gets no null (NaN columns). `block` perturbations
        (and their nulls) are computed at a time."""
        perturbations = list(perturbations)
        xt = self._tensor(x)
        level = level_bins(self.genes, bins)
        rows, top_rows = [], []
        means = np.empty((len(perturbations), self.n_genes), np.float32) if keep_means else None
        for first in range(0, len(perturbations), block):
            part = perturbations[first : first + block]
            stats: list[dict] = [{}] * len(part)
            for idx, m in self.iter_mean_changes(part, xt):
                for i, st in zip(idx, self._row_stats(m, [part[i].genes for i in idx],
                                                      threshold, top), strict=True):  # fmt: skip
                    stats[i] = st
                if means is not None:
                    means[first + idx] = m.cpu().numpy()
            null = self._null_of(part, first, xt, level, null_genes, seed, threshold)
            for i, p in enumerate(part):
                st = stats[i]
                n_scores, g_mean, g_sd = null[i]
                null_mean, null_sd, z, pv = _empirical(st["score"], n_scores)
                rows.append({"perturbation": self.name(p), "kind": p.kind,
                             "amount": p.amount, "amount_name": p.amount_name,
                             "genes": ",".join(self.genes["gene_id"].iloc[list(p.genes)]),
                             "n_samples": len(xt),
                             **{k: v for k, v in st.items() if not k.startswith("_")},
                             "null_mean": null_mean, "null_sd": null_sd, "z": z,
                             "p": pv})  # fmt: skip
                for rank, (j, c) in enumerate(zip(st["_top"], st["_top_change"], strict=True)):
                    zj = (c - g_mean[j]) / g_sd[j] if g_sd is not None and g_sd[j] > 0 else np.nan
                    top_rows.append(self._top_row(p, rank, j, c, zj))
        table = pd.DataFrame(rows)
        table["fdr"] = bh_fdr(table["p"].to_numpy())
        return Summary(table, pd.DataFrame(top_rows, columns=_TOP_COLUMNS), means)

    def _top_row(self, p: Perturbation, rank: int, gene: int, change: float, z: float) -> dict:
        """A row of the top affected genes table (_TOP_COLUMNS)."""
        return {"perturbation": self.name(p), "rank": rank + 1,
                "gene_id": self.genes["gene_id"].iloc[gene], "symbol": self.symbols[gene],
                "change": change, "z": float(z)}  # fmt: skip

    def _null_of(self, part, first, xt, level, n_null, seed, threshold):
        """Per perturbation of `part`: (null scores, per-gene null mean, per-gene null sd)."""
        empty = (np.array([]), None, None)
        wanted = [i for i, p in enumerate(part) if p.kind != "set" and n_null >= 2]
        if not wanted:
            return [empty] * len(part)
        specs, owner = [], []
        for i in wanted:
            rng = np.random.default_rng([seed, first + i])
            specs += self._null_draws(part[i], level, n_null, rng)
            owner += [i] * n_null
        owner_t = torch.as_tensor(owner, device=self.device)
        total = torch.zeros((len(part), self.n_genes), dtype=torch.float64, device=self.device)
        square, count = torch.zeros_like(total), torch.zeros_like(total)
        scores = np.empty(len(specs))
        for idx, m in self.iter_mean_changes(specs, xt):
            mask = torch.zeros(m.shape, dtype=torch.bool, device=m.device)
            for r, j in enumerate(idx):
                mask[r, list(specs[j].genes)] = True
            size = torch.abs(m).masked_fill(mask, 0.0)
            scores[idx] = (size.sum(1) / (~mask).sum(1)).cpu().numpy()
            keep = (~mask).double()
            o = owner_t[torch.as_tensor(idx, device=self.device)]
            total.index_add_(0, o, m.double() * keep)
            square.index_add_(0, o, m.double() ** 2 * keep)
            count.index_add_(0, o, keep)
        mean = total / count.clamp(min=1)
        sd = ((square - count * mean**2).clamp(min=0) / (count - 1).clamp(min=1)).sqrt()
        out, owner_np = [empty] * len(part), np.asarray(owner)
        mean_np, sd_np = mean.cpu().numpy(), sd.cpu().numpy()
        for i in wanted:
            out[i] = (scores[owner_np == i], mean_np[i], sd_np[i])
        return out

    def knockout_all(self, x, genes: Sequence[int] | None = None, *, threshold: float = 0.05,
                     top: int = 10, bins: int = 10, on_means=None) -> Summary:  # fmt: skip
        """Knock out every model gene (or `genes`) on samples `x`, one at a time. The null is the
        systematic table itself: a gene's score against the scores of the other knocked-out
        genes of its expression bin (null_mean, null_sd, z, p = (1 + #others ≥ score) /
        (1 + n_others), BH fdr), and a top gene's change against that gene's mean changes under
        the bin's other knockouts (leave-one-out, the knockouts of that gene itself left out).
        Nothing perturbations × genes is kept: `on_means(genes, block)`, when given, receives
        each block of mean changes (knocked-out genes' indices, block × genes float32) as it is
        done, e.g. to write the gene × gene effect matrix."""
        xt = self._tensor(x)
        chosen = np.arange(self.n_genes) if genes is None else np.asarray(genes, dtype=np.int64)
        specs = singles(chosen, "knockout")
        level = level_bins(self.genes, bins)
        n_bins = int(level.max()) + 1
        own_bin = torch.as_tensor(level[chosen], device=self.device)
        total = torch.zeros((n_bins, self.n_genes), dtype=torch.float64, device=self.device)
        square, count = torch.zeros_like(total), torch.zeros_like(total)
        stats: list[dict] = [{}] * len(specs)
        for idx, m in self.iter_mean_changes(specs, xt):
            for i, st in zip(idx, self._row_stats(m, [specs[i].genes for i in idx], threshold,
                                                  top), strict=True):  # fmt: skip
                stats[i] = st
            if on_means is not None:
                on_means(chosen[idx], m.cpu().numpy())
            keep = torch.ones(m.shape, dtype=torch.float64, device=m.device)
            keep[torch.arange(len(idx)), torch.as_tensor(chosen[idx], device=m.device)] = 0
            b = own_bin[torch.as_tensor(idx, device=self.device)]
            total.index_add_(0, b, m.double() * keep)
            square.index_add_(0, b, m.double() ** 2 * keep)
            count.index_add_(0, b, keep)
        total, square, count = (t.cpu().numpy() for t in (total, square, count))
        scores = np.array([st["score"] for st in stats])
        rows, top_rows = [], []
        for i, p in enumerate(specs):
            st, b = stats[i], level[chosen[i]]
            others = scores[(level[chosen] == b) & (np.arange(len(specs)) != i)]
            null_mean, null_sd, z, pv = _empirical(st["score"], others)
            rows.append({"perturbation": self.name(p), "kind": "knockout", "amount": np.nan,
                         "amount_name": "", "genes": self.genes["gene_id"].iloc[chosen[i]],
                         "n_samples": len(xt),
                         **{k: v for k, v in st.items() if not k.startswith("_")},
                         "null_mean": null_mean, "null_sd": null_sd, "z": z,
                         "p": pv})  # fmt: skip
            for rank, (j, c) in enumerate(zip(st["_top"], st["_top_change"], strict=True)):
                n = count[b, j] - 1  # leave this knockout out
                zj = np.nan
                if n >= 2:
                    mean = (total[b, j] - c) / n
                    var = (square[b, j] - c * c - n * mean**2) / (n - 1)
                    zj = (c - mean) / np.sqrt(var) if var > 0 else np.nan
                top_rows.append(self._top_row(p, rank, j, c, zj))
        table = pd.DataFrame(rows)
        table["fdr"] = bh_fdr(table["p"].to_numpy())
        return Summary(table, pd.DataFrame(top_rows, columns=_TOP_COLUMNS))

    # master regulators

    def _shift(self, recon: torch.Tensor, base: torch.Tensor, goal: torch.Tensor,
               genes: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """1 − d(recon, goal)/d(base, goal), both distances without the perturbed `genes`
        (rows × k; pads repeat a gene, which zeroes the same entry twice)."""
        far = (recon - goal).scatter(1, genes, 0.0).norm(dim=1)
        near = (base - goal).scatter(1, genes, 0.0).norm(dim=1)
        return 1.0 - far / near

    @torch.inference_mode()
    def master_regulators(self, start, goal, *, candidates: Sequence[int] | None = None,
                          top: int = 10, pair_top: int = 10, null_genes: int = 100,
                          bins: int = 10, seed: int = 0, pair_pool: int = 200,
                          redundancy: float = 0.5,
                          sample_names: Sequence[str] | None = None) -> MasterRegulators:  # fmt: skip
        """Rank candidate genes (all by default) per start sample by the shift towards the goal
        centroid when set to the goal samples' mean observed level; each top gene's null is a
        pool of `null_genes` random genes per expression bin (drawn once from
        default_rng([seed, 1])), scored on the same sample; then every pair of `pair_top`
        genes per sample: its best singles, each skipped when its change vector is redundant with
        a better one's (|cosine| > `redundancy`), taken from its best `pair_pool` (see the
        module docstring)."""
        st, gt = self._tensor(start, "start"), self._tensor(goal, "goal")
        names = (np.asarray(sample_names, dtype=object) if sample_names is not None
                 else np.arange(len(st)).astype(str).astype(object))  # fmt: skip
        if len(names) != len(st):
            raise GexnetError(f"{len(names)} sample names for {len(st)} start samples")
        cand = np.arange(self.n_genes) if candidates is None else np.asarray(candidates, np.int64)
        if cand.size == 0:
            raise GexnetError("no candidate genes given")
        level = level_bins(self.genes, bins)
        rng = np.random.default_rng([seed, 1])
        pool = {b: rng.choice(np.flatnonzero(level == b), min(null_genes + 1,
                int((level == b).sum())), replace=False) for b in np.unique(level[cand])}  # fmt: skip
        union = np.unique(np.concatenate([cand, *pool.values()]))
        column = {g: i for i, g in enumerate(union)}
        centroid = self._base(gt)[1].mean(0)
        goal_level = gt.mean(0).cpu().numpy()
        base = self._base(st)[1]
        specs = [set_to((g,), goal_level[[g]]) for g in union]
        scores = np.empty((len(st), union.size), dtype=np.float64)
        for p_idx, s_idx, recon, _ in self.stream(specs, st):
            g = torch.as_tensor(union[p_idx], device=self.device)[:, None]
            sh = self._shift(recon, base[torch.as_tensor(s_idx, device=self.device)], centroid, g)
            scores[s_idx, p_idx] = sh.double().cpu().numpy()
        cand_cols = np.array([column[g] for g in cand])
        cand_scores = scores[:, cand_cols]
        order = np.argsort(-cand_scores, axis=1, kind="stable")
        ranks = np.empty_like(order)
        ranks[np.arange(len(st))[:, None], order] = np.arange(1, cand.size + 1)
        per_sample = []
        for s in range(len(st)):
            for rank, c in enumerate(order[s, :top]):
                g = cand[c]
                null_cols = [column[h] for h in pool[level[g]] if h != g][:null_genes]
                null_mean, null_sd, z, pv = _empirical(cand_scores[s, c], scores[s, null_cols])
                per_sample.append({"sample": names[s], "rank": rank + 1,
                                   "gene_id": self.genes["gene_id"].iloc[g],
                                   "symbol": self.symbols[g], "score": cand_scores[s, c],
                                   "null_mean": null_mean, "null_sd": null_sd, "z": z,
                                   "p": pv})  # fmt: skip
        pair_table = self._pairs(st, base, centroid, goal_level, cand, cand_scores, order,
                                 pair_top, names, pair_pool, redundancy)  # fmt: skip
        in_top = (ranks <= top).sum(0)
        genes = pd.DataFrame({"gene_id": self.genes["gene_id"].iloc[cand].to_numpy(),
                              "symbol": self.symbols[cand], "n_top": in_top,
                              "fraction_top": in_top / len(st), "mean_rank": ranks.mean(0),
                              "mean_score": cand_scores.mean(0)})  # fmt: skip
        genes = genes.sort_values(["n_top", "mean_rank"], ascending=[False, True],
                                  kind="stable").reset_index(drop=True)  # fmt: skip
        best = pair_table[pair_table["best_by_cooperation"]].groupby("pair").size()
        best_joint = pair_table[pair_table["best_by_joint"]].groupby("pair").size()
        best_pairs = pd.DataFrame({"n_best_cooperation": best, "n_best_joint": best_joint})
        best_pairs = best_pairs.fillna(0).astype(int).rename_axis("pair").reset_index()
        best_pairs = best_pairs.sort_values(["n_best_cooperation", "n_best_joint", "pair"],
                                            ascending=[False, False, True]).reset_index(drop=True)  # fmt: skip
        return MasterRegulators(pd.DataFrame(per_sample), pair_table, genes, best_pairs,
                                cand_scores.astype(np.float32), cand)  # fmt: skip

    def _pairs(self, st, base, centroid, goal_level, cand, cand_scores, order, pair_top, names,
               pair_pool=200, redundancy=0.5):  # fmt: skip
        """Every pair of each sample's `pair_top` pair candidates, perturbed jointly."""
        k = min(pair_top, cand.size)
        pool = min(max(pair_pool, k), cand.size)
        combos = list(itertools.combinations(range(k), 2))
        columns = ["sample", "pair", "gene_a", "gene_b", "single_a", "single_b", "joint",
                   "additive", "cooperation", "joint_minus_additive", "best_by_cooperation",
                   "best_by_joint"]  # fmt: skip
        if not combos:
            return pd.DataFrame(columns=columns)
        rows = []
        per_block = max(1, 4 * self.batch_size // pool)  # samples whose single changes are kept
        for first in range(0, len(st), per_block):
            samples = np.arange(first, min(first + per_block, len(st)))
            ranked = cand[order[samples, :pool]]  # block × pool gene indices, best first
            # the singles' change vectors on their own sample
            single_specs = [set_to((g,), goal_level[[g]]) for g in ranked.reshape(-1)]
            single_rows = (np.arange(len(single_specs)), np.repeat(samples, pool))
            pooled = torch.empty((len(single_specs), self.n_genes), device=self.device)
            for p_idx, _, recon, b in self.stream(single_specs, st, single_rows):
                pooled[torch.as_tensor(p_idx, device=self.device)] = recon - b
            pooled = pooled.reshape(len(samples), pool, -1)
            chosen = np.stack([_diverse(pooled[b], ranked[b], k, redundancy)
                               for b in range(len(samples))])  # fmt: skip
            # positions in each sample's ranking, so that the singles' scores are looked up
            tops = np.take_along_axis(ranked, chosen, axis=1)
            single_change = torch.stack([pooled[b, torch.as_tensor(chosen[b])]
                                         for b in range(len(samples))])  # fmt: skip
            position = chosen
            joint_specs, joint_samples, which = [], [], []
            for b, s in enumerate(samples):
                for i, j in combos:
                    ga, gb = tops[b, i], tops[b, j]
                    joint_specs.append(set_to((ga, gb), goal_level[[ga, gb]]))
                    joint_samples.append(s)
                    which.append((b, i, j))
            joint_rows = (np.arange(len(joint_specs)), np.asarray(joint_samples))
            which_np = np.asarray(which)
            for p_idx, s_idx, recon, _ in self.stream(joint_specs, st, joint_rows):
                b, i, j = (torch.as_tensor(which_np[p_idx, c], device=self.device)
                           for c in range(3))  # fmt: skip
                s = torch.as_tensor(s_idx, device=self.device)
                g = torch.as_tensor(np.stack([tops[which_np[p_idx, 0], which_np[p_idx, 1]],
                                              tops[which_np[p_idx, 0], which_np[p_idx, 2]]], 1),
                                    device=self.device)  # fmt: skip
                additive = base[s] + single_change[b, i] + single_change[b, j]
                joint = self._shift(recon, base[s], centroid, g).double().cpu().numpy()
                add = self._shift(additive, base[s], centroid, g).double().cpu().numpy()
                for r, q in enumerate(p_idx):
                    bb, ii, jj = which_np[q]
                    sa = cand_scores[samples[bb], order[samples[bb], position[bb, ii]]]
                    sb = cand_scores[samples[bb], order[samples[bb], position[bb, jj]]]
                    ga, gb = tops[bb, ii], tops[bb, jj]
                    rows.append({"sample": names[samples[bb]],
                                 "pair": "+".join(self.symbols[sorted((ga, gb))]),
                                 "gene_a": self.symbols[ga], "gene_b": self.symbols[gb],
                                 "single_a": sa, "single_b": sb, "joint": joint[r],
                                 "additive": add[r], "cooperation": joint[r] - (sa + sb),
                                 "joint_minus_additive": joint[r] - add[r]})  # fmt: skip
        table = pd.DataFrame(rows)
        by_sample = table.groupby("sample", sort=False)
        table["best_by_cooperation"] = table.index.isin(by_sample["cooperation"].idxmax())
        table["best_by_joint"] = table.index.isin(by_sample["joint"].idxmax())
        return table[columns]


def _one_sample(s_idx: np.ndarray) -> bool:
    return bool((s_idx == s_idx[0]).all())


def _diverse(changes: torch.Tensor, genes: np.ndarray, k: int, redundancy: float) -> np.ndarray:
    """Positions of `k` rows of `changes` (the change vectors of single perturbations of
    `genes`, ranked best first): greedily the best rows whose |cosine| with every row already
    kept is at most `redundancy`, each vector without its own gene's entry (a gene moved
    dominates its own change); when fewer qualify, the best of the rest fill up (in rank
    order). Genes of one module move a sample the same way, so pairs among them test
    redundancy, not cooperation."""
    own = torch.as_tensor(np.asarray(genes), device=changes.device)[:, None]
    changes = changes.scatter(1, own, 0.0)
    unit = changes / changes.norm(dim=1, keepdim=True).clamp(min=1e-30)
    kept: list[int] = []
    for i in range(unit.shape[0]):
        if len(kept) == k:
            break
        if not kept or (unit[kept] @ unit[i]).abs().max().item() <= redundancy:
            kept.append(i)
    rest = [i for i in range(unit.shape[0]) if i not in kept]
    return np.array(sorted(kept + rest[: k - len(kept)]), dtype=np.int64)


_TOP_COLUMNS = ["perturbation", "rank", "gene_id", "symbol", "change", "z"]


# --- the linear baseline beside a result -----------------------------------------------------


def _ranks(v: np.ndarray) -> np.ndarray:
    return pd.Series(v).rank().to_numpy()


def compare(autoencoder: pd.DataFrame, linear: pd.DataFrame, *, on: str | list[str] =
            "perturbation", autoencoder_means: np.ndarray | None = None,
            linear_means: np.ndarray | None = None) -> pd.DataFrame:  # fmt: skip
    """An autoencoder result table beside the linear baseline's (same request): merged on `on`
    with suffixes _autoencoder and _linear; `top_overlap` is the Jaccard index of the two top
    gene sets (top_up and top_down together), and with both mean-change matrices (rows in the
    tables' order) `rank_correlation` is the Spearman correlation of a perturbation's mean
    changes; `differs` flags rows where the top genes overlap less than half."""
    ae, lin = autoencoder.copy(), linear.copy()
    if autoencoder_means is not None and linear_means is not None:
        a = np.asarray(autoencoder_means, dtype=np.float64)
        b = np.asarray(linear_means, dtype=np.float64)
        if a.shape != b.shape or a.shape[0] != len(ae):
            raise GexnetError(f"mean-change matrices {a.shape} and {b.shape} do not match "
                              f"{len(ae)} rows")  # fmt: skip
        rho = [np.corrcoef(_ranks(u), _ranks(v))[0, 1] for u, v in zip(a, b, strict=True)]
        ae["rank_correlation"] = rho
    merged = ae.merge(lin, on=on, how="outer", suffixes=("_autoencoder", "_linear"))
    sets = [c for c in ("top_up", "top_down") if f"{c}_autoencoder" in merged]
    if sets:

        def genes_of(row, side):
            names = set()
            for c in sets:
                value = row[f"{c}_{side}"]
                if isinstance(value, str) and value:
                    names |= set(value.split(","))
            return names

        overlap = []
        for _, row in merged.iterrows():
            a, b = genes_of(row, "autoencoder"), genes_of(row, "linear")
            overlap.append(len(a & b) / len(a | b) if a | b else np.nan)
        merged["top_overlap"] = overlap
        merged["differs"] = merged["top_overlap"].fillna(0) < 0.5
    return merged
