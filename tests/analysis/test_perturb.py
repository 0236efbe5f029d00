"""Virtual perturbation against independent oracles: one plain `model(x)` forward pass per
perturbation and sample (the batched, first-layer-updating engine must agree), PCA's closed form
for the linear baseline, the target formulas written out, scipy's Benjamini–Hochberg, and
planted programs (regulator + members) recovered by knockouts and master regulators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import false_discovery_control

from gexnet.analysis import perturb as P
from gexnet.errors import GexnetError
from gexnet.models.autoencoder import Autoencoder, AutoencoderConfig, LinearAutoencoder


def gene_table(x: np.ndarray, symbols=None, biotype="protein_coding") -> pd.DataFrame:
    n = x.shape[1]
    return pd.DataFrame({
        "gene_id": [f"ENSG{i:011d}" for i in range(n)],
        "symbol": symbols if symbols is not None else [f"G{i}" for i in range(n)],
        "biotype": biotype, "mean": x.mean(0), "minimum": x.min(0), "maximum": x.max(0),
        "quantiles": list(np.quantile(x, P.QUANTILE_GRID, axis=0).T.astype(np.float32)),
    })  # fmt: skip


def fit_pca(x: np.ndarray, k: int) -> LinearAutoencoder:
    center, scale = x.mean(0), x.std(0) + 1e-6
    y = (x - center) / scale
    mean = y.mean(0)
    _, _, vt = np.linalg.svd(y - mean, full_matrices=False)
    return LinearAutoencoder(center, scale, mean, vt[:k].T)


def random_data(n=60, genes=30, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(1.5, 0.6, (n, genes)), 0, None).astype(np.float32)


def autoencoder(norm: str, x: np.ndarray, seed=0) -> Autoencoder:
    torch.manual_seed(seed)
    config = AutoencoderConfig(n_genes=x.shape[1], hidden=[16, 8], latent=4, norm=norm)
    model = Autoencoder(config, center=x.mean(0), scale=x.std(0) + 0.1)
    for m in model.modules():  # eval-mode norms that are not the identity
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.1, 0.3)  # small variances: effects of ~0.1-1
        if isinstance(m, torch.nn.LayerNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def plain_change(model, engine: P.Perturber, p: P.Perturbation, x: np.ndarray, iterations: int,
                 hold: bool = True) -> np.ndarray:  # fmt: skip
    """The direct way: perturbed input, one model(x) per sample, minus the base reconstruction
    (both iterated the same number of times)."""
    target = engine.targets(p, x)
    out = np.empty_like(x)
    with torch.no_grad():
        for s in range(len(x)):
            base = torch.as_tensor(x[s : s + 1])
            perturbed = base.clone()
            perturbed[0, list(p.genes)] = torch.as_tensor(target[s])
            rb, rp = model(base), model(perturbed)
            for _ in range(iterations - 1):
                rb = model(rb)
                if hold:
                    rp[0, list(p.genes)] = torch.as_tensor(target[s])
                rp = model(rp)
            out[s] = (rp - rb)[0].numpy()
    return out


def requests(x: np.ndarray) -> list[P.Perturbation]:
    return [
        P.knockout(3), P.knockout([1, 7]), P.knockdown(5, 0.3), P.knockdown([2, 9, 11], 0.5),
        P.overexpress(4, quantile=0.9), P.overexpress([0, 6], times_max=1.5),
        P.set_to([8], np.linspace(0, 3, len(x))[:, None]), *P.singles([12, 13], "knockout"),
    ]  # fmt: skip


MODELS = ["batch", "layer", "linear"]


def make_model(kind: str, x: np.ndarray):
    return fit_pca(x, 5) if kind == "linear" else autoencoder(kind, x)


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("iterations", [1, 3])
def test_batched_engine_equals_one_forward_pass_per_perturbation_and_sample(kind, iterations):
    x = random_data()
    model = make_model(kind, x)
    samples = x[:5]
    engine = P.Perturber(model, gene_table(x), batch_size=7, iterations=iterations)  # 45 rows
    specs = requests(samples)
    changes = engine.changes(specs, samples)
    for i, p in enumerate(specs):
        expected = plain_change(model, engine, p, samples, iterations)
        np.testing.assert_allclose(changes[i], expected, atol=1e-5, rtol=1e-4)
    means = engine.mean_changes(specs, samples)
    np.testing.assert_allclose(means, changes.mean(1), atol=1e-6)
    other = P.Perturber(model, gene_table(x), batch_size=4, iterations=iterations)
    np.testing.assert_allclose(other.mean_changes(specs, samples), means, atol=1e-5)


def test_iterations_without_hold_let_the_genes_move():
    x = random_data()
    model = make_model("layer", x)
    engine = P.Perturber(model, gene_table(x), batch_size=5, iterations=2, hold=False)
    p = P.knockout([2, 4])
    got = engine.changes([p], x[:3])[0]
    np.testing.assert_allclose(got, plain_change(model, engine, p, x[:3], 2, hold=False),
                               atol=1e-5)  # fmt: skip


def test_engine_is_deterministic_and_streams_means_without_the_full_tensor():
    x = random_data()
    engine = P.Perturber(make_model("batch", x), gene_table(x), batch_size=3)
    specs = P.singles(range(x.shape[1]))
    blocks = list(engine.iter_mean_changes(specs, x[:4]))
    assert max(len(i) for i, _ in blocks) <= 1  # 3 rows a chunk, 4 samples each: one at a time
    np.testing.assert_array_equal(np.concatenate([i for i, _ in blocks]), np.arange(len(specs)))
    np.testing.assert_array_equal(engine.mean_changes(specs, x[:4]),
                                  engine.mean_changes(specs, x[:4]))  # fmt: skip


def test_linear_autoencoder_effects_equal_the_closed_form():
    x = random_data(genes=25)
    model = fit_pca(x, 4)
    engine = P.Perturber(model, gene_table(x), batch_size=5)
    v = model.decoder[0].weight.detach().numpy().astype(np.float64)  # genes × k
    scale = model.scale.numpy().astype(np.float64)
    samples = x[:3]
    for p in (P.knockout(3), P.knockdown([1, 20], 0.2), P.overexpress(7, quantile=1.0)):
        g = list(p.genes)
        delta = engine.targets(p, samples) - samples[:, g]
        expected = ((delta / scale[g]) @ v[g]) @ v.T * scale
        np.testing.assert_allclose(engine.changes([p], samples)[0], expected, atol=1e-5)


# --- targets -----------------------------------------------------------------------------------


def test_target_values_follow_their_formulas():
    x = random_data()
    genes = gene_table(x)
    engine = P.Perturber(make_model("linear", x), genes, max_multiple=3.0)
    s = x[:4]
    np.testing.assert_array_equal(engine.targets(P.knockout([2, 5]), s)[:, 1], x[:, 5].min())
    f = 0.25
    expected = np.log10(f * (10.0 ** s[:, 6].astype(np.float64) - 1) + 1)
    np.testing.assert_allclose(engine.targets(P.knockdown(6, f), s)[:, 0], expected, rtol=1e-6)
    grid = np.quantile(x[:, 7], np.linspace(0, 1, 101))
    expected = grid[37] + 0.5 * (grid[38] - grid[37])  # q = 0.375: halfway between 0.37, 0.38
    np.testing.assert_allclose(engine.targets(P.overexpress(7, quantile=0.375), s), expected,
                               rtol=1e-5)  # fmt: skip
    top = float(x[:, 8].max())
    expected = np.log10(2.5 * (10**top - 1) + 1)
    np.testing.assert_allclose(engine.targets(P.overexpress(8, times_max=2.5), s), expected,
                               rtol=1e-6)  # fmt: skip
    values = np.arange(8, dtype=np.float32).reshape(4, 2)
    np.testing.assert_array_equal(engine.targets(P.set_to([1, 2], values), s), values)
    np.testing.assert_array_equal(engine.targets(P.set_to([1, 2], [0.5, 1.5]), s)[3], [0.5, 1.5])


def test_overexpression_beyond_max_multiple_names_gene_value_and_range():
    x = random_data()
    engine = P.Perturber(make_model("linear", x), gene_table(x))  # max_multiple 2.0
    with pytest.raises(GexnetError, match=r"G8 to 3\.0× .*never saw values above .*max_multiple"):
        engine.mean_changes([P.overexpress(8, times_max=3.0)], x[:2])
    with pytest.raises(GexnetError, match="never saw"):
        engine.targets(P.overexpress(8, times_max=0.5), x[:2])
    with pytest.raises(GexnetError, match=r"quantile 1\.5"):
        P.overexpress(8, quantile=1.5)
    with pytest.raises(GexnetError, match=r"fraction in \(0, 1\)"):
        P.knockdown(8, 1.0)


def test_combination_helpers():
    assert [p.genes for p in P.pairs([4, 1, 7])] == [(4, 1), (4, 7), (1, 7)]
    assert [p.genes for p in P.singles([4, 1], "knockdown", fraction=0.5)] == [(4,), (1,)]
    with pytest.raises(GexnetError, match="twice"):
        P.knockout([3, 3])


# --- gene names ---------------------------------------------------------------------------------


def names_table() -> pd.DataFrame:
    x = random_data(genes=4)
    t = gene_table(x, symbols=["TP53", "MYC", "BRCA1", "EGFR"])
    t["gene_id"] = ["ENSG00000141510", "ENSG00000136997", "ENSG00000012048", "ENSG00000146648"]
    return t


def test_resolve_genes_by_symbol_any_case_and_ensembl_with_version():
    t = names_table()
    got = P.resolve_genes(["tp53", "ENSG00000136997.17", "ensg00000146648", "Brca1"], t)
    np.testing.assert_array_equal(got, [0, 1, 3, 2])


def test_unknown_genes_are_named_together_with_close_symbols():
    with pytest.raises(GexnetError) as err:
        P.resolve_genes(["TP35", "MYC", "EGFRR", "ZZZ9"], names_table())
    message = str(err.value)
    assert "TP35 (close: TP53)" in message and "EGFRR (close: EGFR)" in message
    assert "ZZZ9" in message and "MYC" not in message


def test_a_corpus_gene_outside_the_model_is_said_to_be_so():
    known = pd.DataFrame({"gene_id": ["ENSG00000251562"], "symbol": ["MALAT1"],
                          "biotype": ["lncRNA"]})  # fmt: skip
    with pytest.raises(GexnetError, match=r"MALAT1 is in the corpus but outside the model's gene "
                       r"set \(biotype lncRNA; the autoencoder models protein_coding genes\)"):  # fmt: skip
        P.resolve_genes(["malat1"], names_table(), known=known)
    with pytest.raises(GexnetError, match="no genes given"):
        P.resolve_genes([], names_table())


def test_empty_sample_selections_are_named():
    x = random_data()
    engine = P.Perturber(make_model("linear", x), gene_table(x))
    empty = x[:0]
    with pytest.raises(GexnetError, match="the selected samples are empty"):
        engine.mean_changes([P.knockout(1)], empty)
    with pytest.raises(GexnetError, match="the start samples are empty"):
        engine.master_regulators(empty, x[:3])
    with pytest.raises(GexnetError, match="the goal samples are empty"):
        engine.master_regulators(x[:3], empty)


# --- planted truth -----------------------------------------------------------------------------

PROGRAMS, SIZE, NOISE = 4, 8, 150
SHIFTED = (0, 1)  # the case samples' programs


def planted(seed=1, shift=1.2):
    """Programs of SIZE genes: a regulator (the first) with activity a, members 0.3 + 0.8 a +
    noise; NOISE independent genes. Case samples have programs SHIFTED raised by `shift`."""
    rng = np.random.default_rng(seed)
    n_genes = PROGRAMS * SIZE + NOISE
    level = rng.uniform(0.5, 2.5, NOISE)
    offset = rng.uniform(-0.8, 0.8, (PROGRAMS, SIZE))  # levels spread over the level bins

    def draw(m, shifted=()):
        x = np.empty((m, n_genes))
        for p in range(PROGRAMS):
            a = rng.normal(1.5, 0.4, m) + (shift if p in shifted else 0.0)
            x[:, p * SIZE] = a + offset[p, 0]
            x[:, p * SIZE + 1 : (p + 1) * SIZE] = (
                0.3 + offset[p, 1:] + 0.8 * a[:, None] + rng.normal(0, 0.15, (m, SIZE - 1))
            )
        x[:, PROGRAMS * SIZE :] = level + rng.normal(0, 0.35, (m, NOISE))
        return np.clip(x, 0, None).astype(np.float32)

    train = np.concatenate([draw(600), draw(60, SHIFTED)])
    return train, draw(40), draw(20, SHIFTED)


def program(gene: int) -> int:
    return gene // SIZE if gene < PROGRAMS * SIZE else -1


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    r = pd.Series(score).rank().to_numpy()
    n1, n0 = positive.sum(), (~positive).sum()
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.fixture(scope="module")
def planted_engine():
    train, control, case = planted()
    return P.Perturber(fit_pca(train, PROGRAMS), gene_table(train)), control, case


def standardized(means: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Each knockout's mean changes as z against the other knockouts of its level bin (leave
    one out; a gene's change under its own knockout left out), written out directly."""
    n = len(means)
    m = means.astype(np.float64).copy()
    np.fill_diagonal(m, np.nan)
    z = np.empty_like(m)
    for i in range(n):
        others = m[(bins == bins[i]) & (np.arange(n) != i)]
        z[i] = (m[i] - np.nanmean(others, 0)) / np.nanstd(others, 0, ddof=1)
    return z


def test_regulator_knockout_changes_its_programme_and_a_random_gene_does_not(planted_engine):
    """Raw |mean change| ranks the regulator's members first (AUROC >= 0.9). A random gene's
    raw changes also fall on the model's components, where the program members load (PCA's
    AUROC is ~0.89 for an unrelated gene, tiny changes though), so its control is the change
    judged against the null, as the summaries' per-gene z does: near 0.5."""
    engine, control, _ = planted_engine
    n = engine.n_genes
    membership = np.array([program(g) for g in range(n)])
    full = engine.knockout_all(control, top=5)
    means = engine.mean_changes(P.singles(range(n)), control)
    z = standardized(means, P.level_bins(engine.genes))
    for r in [p * SIZE for p in range(PROGRAMS)]:
        keep = np.arange(n) != r
        assert auroc(np.abs(means[r][keep]), (membership == program(r))[keep]) >= 0.9
        assert auroc(np.abs(z[r][keep]), (membership == program(r))[keep]) >= 0.9
    values = []
    for g in np.random.default_rng(0).choice(np.arange(PROGRAMS * SIZE, n), 40, replace=False):
        keep = np.arange(n) != g
        values += [auroc(np.abs(z[g][keep]), (membership == p)[keep]) for p in range(PROGRAMS)]
    assert abs(np.mean(values) - 0.5) < 0.1
    # knockout_all's per-gene z of its top genes is that standardized change
    top = full.top_genes
    rows = P.resolve_genes(top["perturbation"], engine.genes)
    cols = P.resolve_genes(top["symbol"], engine.genes)
    np.testing.assert_allclose(top["z"], z[rows, cols], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(top["change"], means[rows, cols], atol=1e-6)


def test_master_regulators_of_cases_are_members_of_the_shifted_programmes(planted_engine):
    engine, control, case = planted_engine
    result = engine.master_regulators(case, control, top=5, pair_top=16, null_genes=20)
    chosen = P.resolve_genes(result.per_sample["symbol"], engine.genes)
    assert np.mean([program(g) in SHIFTED for g in chosen]) >= 0.9
    first = result.per_sample[result.per_sample["rank"] == 1]
    assert (first["z"] > 2).mean() >= 0.8  # well above level-matched random genes
    top_genes = P.resolve_genes(result.genes["symbol"].head(5), engine.genes)
    assert all(program(g) in SHIFTED for g in top_genes)
    # the best cooperating pair joins the two programs (a sample's top 16 holds both; its top
    # few are often one program's genes)
    best = result.pairs[result.pairs["best_by_cooperation"]]
    a = P.resolve_genes(best["gene_a"], engine.genes)
    b = P.resolve_genes(best["gene_b"], engine.genes)
    joins = [{program(i), program(j)} == set(SHIFTED) for i, j in zip(a, b, strict=True)]
    assert np.mean(joins) >= 0.7
    winner = result.best_pairs["pair"].iloc[0].split("+")
    assert {program(g) for g in P.resolve_genes(winner, engine.genes)} == set(SHIFTED)
    assert len(best) == len(case) and len(result.pairs) == len(case) * 120
    # for a linear model the additive prediction is exact
    np.testing.assert_allclose(result.pairs["joint"], result.pairs["additive"], atol=1e-5)


def test_master_regulator_scores_equal_the_distance_formula(planted_engine):
    engine, control, case = planted_engine
    result = engine.master_regulators(case[:2], control, candidates=[0, 9, 40], top=3,
                                      pair_top=3, null_genes=5)  # fmt: skip
    model = engine.model
    with torch.no_grad():
        goal = model(torch.as_tensor(control)).mean(0).numpy()
        level = control.mean(0)
        for s in range(2):
            base = model(torch.as_tensor(case[s : s + 1]))[0].numpy()
            singles = {}
            for c, g in enumerate([0, 9, 40]):
                x = case[s : s + 1].copy()
                x[0, g] = level[g]
                recon = model(torch.as_tensor(x))[0].numpy()
                keep = np.arange(len(goal)) != g
                want = 1 - np.linalg.norm((recon - goal)[keep]) / np.linalg.norm(
                    (base - goal)[keep]
                )
                singles[g] = (want, recon - base)
                assert result.scores[s, c] == pytest.approx(want, abs=1e-5)
            rows = result.pairs[result.pairs["sample"] == str(s)]
            for _, row in rows.iterrows():
                i, j = P.resolve_genes([row["gene_a"], row["gene_b"]], engine.genes)
                x = case[s : s + 1].copy()
                x[0, [i, j]] = level[[i, j]]
                recon = model(torch.as_tensor(x))[0].numpy()
                keep = ~np.isin(np.arange(len(goal)), [i, j])
                d0 = np.linalg.norm((base - goal)[keep])
                joint = 1 - np.linalg.norm((recon - goal)[keep]) / d0
                added = base + singles[i][1] + singles[j][1]
                additive = 1 - np.linalg.norm((added - goal)[keep]) / d0
                assert row["joint"] == pytest.approx(joint, abs=1e-5)
                assert row["additive"] == pytest.approx(additive, abs=1e-5)
                assert row["cooperation"] == pytest.approx(
                    joint - singles[i][0] - singles[j][0], abs=1e-5
                )


# --- summaries and the null --------------------------------------------------------------------


def test_summary_statistics_follow_the_mean_changes(planted_engine):
    engine, control, _ = planted_engine
    specs = [P.knockout(0), P.knockout([8, 16]), P.knockdown(40, 0.2)]
    summary = engine.summarize(specs, control[:10], threshold=0.02, top=4, null_genes=10,
                               keep_means=True)  # fmt: skip
    t = summary.table
    assert list(t["perturbation"]) == ["G0", "G8+G16", "G40"]
    for i, p in enumerate(specs):
        m = summary.means[i].astype(np.float64)
        keep = ~np.isin(np.arange(len(m)), p.genes)
        assert t["score"][i] == pytest.approx(np.abs(m[keep]).mean(), rel=1e-5)
        assert t["n_affected"][i] == (np.abs(m[keep]) > 0.02).sum()
        up = [f"G{j}" for j in np.argsort(-np.where(keep, m, -np.inf))[:4] if m[j] > 0]
        assert t["top_up"][i] == ",".join(up)
    assert (t["n_samples"] == 10).all()
    assert summary.top_genes.groupby("perturbation").size().to_dict() == {
        "G0": 4, "G8+G16": 4, "G40": 4
    }  # fmt: skip


def test_null_z_of_random_genes_is_centred_and_fdr_is_benjamini_hochberg(planted_engine):
    engine, control, _ = planted_engine
    rng = np.random.default_rng(3)
    specs = P.singles(rng.choice(engine.n_genes, 40, replace=False), "knockdown", fraction=0.3)
    t = engine.summarize(specs, control[:8], null_genes=40, seed=7).table
    assert abs(t["z"].mean()) < 0.4
    assert ((t["p"] > 0) & (t["p"] <= 1)).all()
    np.testing.assert_allclose(t["fdr"], false_discovery_control(t["p"]), rtol=1e-12)
    order = np.argsort(t["p"].to_numpy(), kind="stable")
    assert np.all(np.diff(t["fdr"].to_numpy()[order]) >= 0)
    again = engine.summarize(specs, control[:8], null_genes=40, seed=7).table
    pd.testing.assert_frame_equal(t, again)  # seeded draws, never global state


def test_regulator_knockout_beats_its_level_matched_null(planted_engine):
    engine, control, _ = planted_engine
    """Above the level-matched null, and above unrelated genes (the null holds other program
    genes too: they are 18% of the genes, each as strong as a regulator in PCA)."""
    noise = list(range(PROGRAMS * SIZE, PROGRAMS * SIZE + 20))
    t = engine.summarize(P.singles([0, 8, 16, 24, *noise]), control[:8], null_genes=60).table
    regulators, others = t["z"][:4], t["z"][4:]
    assert regulators.mean() > 1.0 and regulators.min() > others.median()


def test_knockout_all_matches_summarize_and_uses_its_bins_as_null(planted_engine):
    engine, control, _ = planted_engine
    full = engine.knockout_all(control[:5], top=3)
    assert len(full.table) == engine.n_genes
    subset = [0, 8, 40, 50]
    direct = engine.summarize(P.singles(subset), control[:5], top=3, null_genes=0).table
    rows = full.table.set_index("perturbation").loc[direct["perturbation"]]
    np.testing.assert_allclose(rows["score"], direct["score"], rtol=1e-6)
    np.testing.assert_array_equal(rows["n_affected"], direct["n_affected"])
    assert list(rows["top_up"]) == list(direct["top_up"])
    bins = P.level_bins(engine.genes)
    scores = full.table["score"].to_numpy()
    for g in subset:
        others = scores[(bins == bins[g]) & (np.arange(len(bins)) != g)]
        z = (scores[g] - others.mean()) / others.std(ddof=1)
        assert full.table["z"][g] == pytest.approx(z, rel=1e-6)
    assert full.top_genes["z"].notna().all()


def test_the_linear_baseline_sits_beside_the_autoencoder():
    x = random_data()
    genes = gene_table(x)
    specs = [P.knockout(1), P.knockout([2, 3])]
    tables, means = [], []
    for model in (autoencoder("layer", x), fit_pca(x, 4)):
        s = P.Perturber(model, genes).summarize(specs, x[:4], null_genes=5, keep_means=True)
        tables.append(s.table)
        means.append(s.means)
    both = P.compare(*tables, autoencoder_means=means[0], linear_means=means[1])
    assert list(both["perturbation"]) == ["G1", "G2+G3"]
    assert {"score_autoencoder", "score_linear", "top_overlap", "differs",
            "rank_correlation"} <= set(both.columns)  # fmt: skip
    same = P.compare(tables[1], tables[1], autoencoder_means=means[1], linear_means=means[1])
    assert (same["top_overlap"] == 1).all() and not same["differs"].any()
    np.testing.assert_allclose(same["rank_correlation"], 1.0)


def test_pair_null_draws_one_level_matched_gene_per_member():
    x = random_data(genes=50)
    engine = P.Perturber(make_model("linear", x), gene_table(x))
    bins = P.level_bins(engine.genes)
    p = P.knockout([3, 30])
    draws = engine._null_draws(p, bins, 25, np.random.default_rng([0, 0]))
    for d in draws:
        assert len(d.genes) == 2 and not set(d.genes) & {3, 30}
        assert bins[d.genes[0]] == bins[3] and bins[d.genes[1]] == bins[30]


def test_iterated_master_regulators_run_through_the_same_engine():
    x = random_data()
    # PCA: distances of O(1) (a random small autoencoder reconstructs nearly constant values,
    # and its distances of ~1e-4 carry float32 rounding of ~1e-3 relative); the second pass
    # with the gene held is not PCA's projection again
    engine = P.Perturber(fit_pca(x, 5), gene_table(x), iterations=2, batch_size=11)
    result = engine.master_regulators(x[:3], x[10:20], top=4, pair_top=4, null_genes=3)
    assert len(result.per_sample) == 12 and len(result.pairs) == 3 * 6
    assert np.isfinite(result.scores).all()
    # the score of sample 0's best gene, by hand: both sides iterated twice, the gene held
    model, level = engine.model, x[10:20].mean(0)
    g = int(P.resolve_genes(result.per_sample["symbol"].iloc[:1], engine.genes)[0])
    with torch.no_grad():
        twice = lambda v: model(model(torch.as_tensor(v)))  # noqa: E731
        goal = twice(x[10:20]).mean(0).numpy()
        base = twice(x[:1])[0].numpy()
        xp = x[:1].copy()
        xp[0, g] = level[g]
        first = model(torch.as_tensor(xp))
        first[0, g] = float(level[g])
        recon = model(first)[0].numpy()
    keep = np.arange(len(goal)) != g
    want = 1 - np.linalg.norm((recon - goal)[keep]) / np.linalg.norm((base - goal)[keep])
    assert result.per_sample["score"].iloc[0] == pytest.approx(want, abs=1e-5)


def test_pair_candidates_skip_genes_redundant_with_a_better_one():
    """Rows 0, 1 and 3 move a sample the same way (row 1 also moves its own gene a lot, which
    does not count); row 2 another way: the candidates are the best of each way, then the best
    of the rest in rank order."""
    from gexnet.analysis.perturb import _diverse

    a, b = np.zeros(6), np.zeros(6)
    a[4], b[5] = 1.0, 1.0
    rows = np.stack([a, a * 0.9, b, a * 0.5, b * 0.1 + a])
    rows[1, 1] = 50.0  # gene 1's own entry
    changes = torch.tensor(rows, dtype=torch.float32)
    genes = np.array([0, 1, 2, 3, 3])
    assert _diverse(changes, genes, 2, 0.5).tolist() == [0, 2]
    assert _diverse(changes, genes, 3, 0.5).tolist() == [0, 1, 2]  # filled up in rank order
    assert _diverse(changes, genes, 2, 1.0).tolist() == [0, 1]  # nothing is redundant
