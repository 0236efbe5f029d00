"""Batched logistic regression against scikit-learn as the independent oracle: coefficients,
cross-validated scores, AUROC and AUPRC, on generated data with planted signal; the ranking
metrics on tied and missing scores; edge cases (one-class labels, extreme C, ignored genes)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from gexnet.analysis import logreg

N_GENES, DIMS, SHARED_LABELS, OWN_LABELS = 2000, 32, 36, 6
SOURCES = 3


def planted(seed: int = 0):
    """X (genes × d), Y and valid (genes × labels), 10–300 positives per label.

    Labels 0–35 come from 3 sources (12 each), each source with its own valid genes shared by
    its labels; labels 36–41 have a valid set of their own (positives plus their negatives).
    Positives are the valid genes scoring highest on a random direction plus noise.
    """
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0.0, 0.5, DIMS))  # anisotropic, as embeddings are
    X = (rng.standard_normal((N_GENES, DIMS)) * scale).astype(np.float32)
    L = SHARED_LABELS + OWN_LABELS
    valid = np.zeros((N_GENES, L), dtype=bool)
    source_valid = rng.random((N_GENES, SOURCES)) < rng.uniform(0.6, 0.9, SOURCES)
    valid[:, :SHARED_LABELS] = np.repeat(source_valid, SHARED_LABELS // SOURCES, axis=1)
    valid[:, SHARED_LABELS:] = rng.random((N_GENES, OWN_LABELS)) < 0.5
    Y = np.zeros_like(valid)
    n_pos = np.exp(rng.uniform(np.log(10), np.log(300), L)).astype(int)
    for j in range(L):
        score = X @ rng.standard_normal(DIMS) / np.sqrt(DIMS)
        score = score / score.std() * rng.uniform(0.5, 2.0) + rng.standard_normal(N_GENES)
        score[~valid[:, j]] = -np.inf
        Y[np.argsort(-score)[: n_pos[j]], j] = True
    return X, Y, valid


@pytest.fixture(scope="module")
def data():
    return planted()


def gradient(X, y, w, b, C):
    """∇ of ½‖w‖² + C·Σ logloss in float64 (w then b)."""
    X = X.astype(np.float64)
    r = expit(X @ w + b) - y
    return np.concatenate([w + C * X.T @ r, [C * r.sum()]])


def relative_gradient(X, y, w, b, C):
    """‖∇F(w, b)‖ / ‖∇F(0, b₀)‖, b₀ the log-odds of the prevalence: the engine's stop rule."""
    b0 = np.log(y.mean() / (1 - y.mean()))
    g0 = gradient(X, y, np.zeros(X.shape[1]), b0, C)
    return np.linalg.norm(gradient(X, y, w, b, C)) / np.linalg.norm(g0)


def sklearn_fit(X, y, C, **kw):
    kw = {"tol": 1e-8, "max_iter": 10_000} | kw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(C=C, **kw).fit(X, y)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def sklearn_cv(X, Y, valid, folds, C, **kw):
    """Pooled out-of-fold decision values of a per-label, per-fold scikit-learn loop."""
    scores = np.full(Y.shape, np.nan)
    for j in range(Y.shape[1]):
        for f in np.unique(folds):
            train, test = valid[:, j] & (folds != f), valid[:, j] & (folds == f)
            w, b = sklearn_fit(X[train], Y[train, j], C, **kw)
            scores[test, j] = X[test] @ w + b
    return scores


# --- fitting against scikit-learn ---------------------------------------------------------


@pytest.fixture(scope="module")
def sklearn_coefficients(data):
    """(w, b) per label from LogisticRegression(C=1, tol=1e-8) on the label's valid genes."""
    X, Y, valid = data
    return [sklearn_fit(X[valid[:, j]], Y[valid[:, j], j], 1.0) for j in range(Y.shape[1])]


@pytest.mark.parametrize(("tol", "label_chunk"), [(1e-7, 5), (1e-6, None)])
def test_coefficients_match_sklearn(data, sklearn_coefficients, tol, label_chunk):
    """Both solve the same strictly convex problem, so they must agree up to how far each
    stopped from the optimum. F is μ-strongly convex near it (μ: the smallest eigenvalue of the
    Hessian), hence ‖θ − θ*‖ ≤ ‖∇F(θ)‖/μ for each, and the two differ by at most the sum. lbfgs
    stops on its relative objective decrease before tol=1e-8, leaving 1e-4–5e-4 relative error
    here; the bound is computed per label, not assumed. tol=1e-7 runs the float64 path, and
    label_chunk=5 splits the shared groups and the pooled own-valid labels into several chunks.
    """
    X, Y, valid = data
    C = 1.0
    # The float32 gradient bound below cannot tell the precisions apart: check the choice.
    assert logreg._Solver(C, tol, 1).dtype == (torch.float64 if tol == 1e-7 else torch.float32)
    W, b = logreg.fit(X, Y, valid, C=C, tol=tol, label_chunk=label_chunk)
    assert W.shape == (DIMS, Y.shape[1]) and W.dtype == np.float32 and b.shape == (Y.shape[1],)
    for j, (w_sk, b_sk) in enumerate(sklearn_coefficients):
        v = valid[:, j]
        Xv, y = X[v].astype(np.float64), Y[v, j]
        ours = np.append(W[:, j], b[j]).astype(np.float64)
        theirs = np.append(w_sk, b_sk)
        X1 = np.hstack([Xv, np.ones((len(Xv), 1))])
        p = expit(X1 @ theirs)
        H = C * (X1.T * (p * (1 - p))) @ X1 + np.diag(np.append(np.ones(DIMS), 0.0))
        mu = np.linalg.eigvalsh(H)[0]
        g_ours = np.linalg.norm(gradient(Xv, y, ours[:-1], ours[-1], C))
        g_sk = np.linalg.norm(gradient(Xv, y, w_sk, b_sk, C))
        # W and b come back in float32, whose rounding alone leaves about 1e-6.
        assert relative_gradient(Xv, y, ours[:-1], ours[-1], C) <= max(1.5 * tol, 3e-6), j
        assert np.linalg.norm(ours - theirs) <= 1.5 * (g_ours + g_sk) / mu, j
        assert np.linalg.norm(ours - theirs) <= 1e-3 * np.linalg.norm(theirs), j


def test_chunking_pooling_and_threads_do_not_change_the_fit(data):
    X, Y, valid = data
    W1, b1 = logreg.fit(X, Y, valid, tol=1e-7, label_chunk=3, threads=2)
    W2, b2 = logreg.fit(X, Y, valid, tol=1e-7, threads=1)  # groups of 12 are pooled here
    W3 = logreg.fit(X, Y[:, [40]], valid[:, [40]], tol=1e-7)[0]  # alone
    np.testing.assert_allclose(W1, W2, rtol=0, atol=1e-5 * np.abs(W2).max())
    np.testing.assert_allclose(b1, b2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(W3[:, 0], W2[:, 40], rtol=0, atol=1e-5 * np.abs(W3).max())


def test_cross_validation_matches_sklearn(data):
    """Same folds, pooled out-of-fold decision values, then AUROC and AUPRC per label."""
    X, Y, valid = data
    cols = np.r_[0:SHARED_LABELS:2, SHARED_LABELS : Y.shape[1]]  # half the shared, all own
    Y, valid = Y[:, cols], valid[:, cols]
    folds = logreg.fold_of(N_GENES, 5, seed=3)
    C = 1.0
    ours = logreg.cross_validate(X, Y, valid, folds, C=C, tol=1e-6)
    theirs = sklearn_cv(X, Y, valid, folds, C)
    assert ours.dtype == np.float32
    assert np.isnan(ours[~valid]).all() and np.isfinite(ours[valid]).all()
    # Decision values themselves agree to sklearn's own accuracy (1e-4–5e-4 relative).
    spread = np.nanstd(theirs, axis=0)
    assert (np.nanmax(np.abs(ours - theirs), axis=0) <= 0.01 * spread).all()
    auc, ap = logreg.auroc(ours, Y, valid), logreg.auprc(ours, Y, valid)
    for j in range(Y.shape[1]):
        v = valid[:, j]
        assert abs(auc[j] - roc_auc_score(Y[v, j], theirs[v, j])) <= 0.01, j
        assert abs(ap[j] - average_precision_score(Y[v, j], theirs[v, j])) <= 0.01, j
    assert np.median(auc) > 0.75  # the planted signal is found


@pytest.mark.parametrize("hvp_dtype", [torch.float32, torch.bfloat16])
def test_hessian_product_precision_changes_speed_not_result(data, monkeypatch, hvp_dtype):
    """bfloat16 Hessian products only steer CG; float32 gradients decide where it stops."""
    X, Y, valid = data
    monkeypatch.setattr(logreg, "HVP_DTYPE", hvp_dtype)
    W, b = logreg.fit(X, Y, valid, tol=1e-5)
    for j in range(0, Y.shape[1], 3):
        v = valid[:, j]
        assert relative_gradient(X[v], Y[v, j], W[:, j], b[j], 1.0) <= 1.05e-5, j


@pytest.mark.parametrize("C", [1e-3, 100.0])
def test_extreme_C(data, C):
    X, Y, valid = data
    cols = [0, 13, 37]
    W, b = logreg.fit(X, Y[:, cols], valid[:, cols], C=C, tol=1e-7)
    for i, j in enumerate(cols):
        v = valid[:, j]
        w_sk, b_sk = sklearn_fit(X[v], Y[v, j], C)
        theirs = np.append(w_sk, b_sk)
        ours = np.append(W[:, i], b[i])
        assert np.linalg.norm(ours - theirs) <= 2e-3 * np.linalg.norm(theirs), (C, j)
        assert relative_gradient(X[v], Y[v, j], W[:, i], b[i], C) <= 1e-6
    if C == 1e-3:  # strongly shrunk: the intercept still fits the prevalence
        assert np.abs(W).max() < 0.5


@pytest.mark.parametrize("tol", [1e-2, 1e-3, 1e-5])
def test_stopping_rule_is_about_the_optimum(data, tol):
    X, Y, valid = data
    W, b = logreg.fit(X, Y, valid, tol=tol)
    rel = [
        relative_gradient(X[valid[:, j]], Y[valid[:, j], j], W[:, j], b[j], 1.0)
        for j in range(Y.shape[1])
    ]
    assert max(rel) <= tol * 1.05  # float32 W, b rounding may add a little


def test_max_iter_warns(data):
    X, Y, valid = data
    with pytest.warns(RuntimeWarning, match="max_iter=1"):
        logreg.fit(X, Y[:, :4], valid[:, :4], max_iter=1, tol=1e-6)


def test_overshooting_steps_are_taken_back(data):
    """The line-search safeguard: a full step judged by its end gradient (∇F(θ + δ)·δ > 0:
    past the line minimum) is backtracked to a point where F fell, with q, s, g redone."""
    X, Y, valid = data
    rows = np.flatnonzero(valid[:, 0])
    y = Y[rows, 0]
    geo = logreg._Geometry(X, rows, torch.float32, torch.float32)
    solver = logreg._Solver(1.0, 1e-3, 50)
    Z = geo.Z
    sign = torch.from_numpy(1.0 - 2.0 * y).float()[None]
    th = torch.zeros(1, DIMS + 1, dtype=torch.float64)
    th[0, DIMS] = np.log(y.mean() / (1 - y.mean()))
    m = sign * (th.float() @ Z.T)
    q = solver._residual(m, sign)[0]
    g = solver._gradient(Z, q, th)
    delta = -50 * g / g.norm()  # far past the minimum along the steepest descent
    step = delta @ Z.T
    slope = (g * delta).sum(dim=1).double()
    th1, m1 = th + delta.double(), m + sign * step
    q1, s1 = solver._residual(m1, sign)
    g1 = solver._gradient(Z, q1, th1)
    assert (g1 * delta).sum() > 0

    def objective(theta):  # ½‖u‖² + Σ logloss, in float64
        margin = (Z.double() @ theta[0]).numpy()
        return (
            0.5 * float((theta[0, :DIMS] ** 2).sum()) + np.logaddexp(0, (1 - 2 * y) * margin).sum()
        )

    solver._judge(Z, th1, m1, sign, q1, s1, g1, delta, step, slope)
    assert objective(th1) < objective(th)
    np.testing.assert_allclose(m1, sign * (th1.float() @ Z.T), atol=1e-4)
    np.testing.assert_allclose(g1, solver._gradient(Z, solver._residual(m1, sign)[0], th1))


# --- edge cases ---------------------------------------------------------------------------


def test_one_class_labels_are_nan(data):
    X, Y, valid = data
    Y2, valid2 = Y[:, :4].copy(), valid[:, :4].copy()
    Y2[:, 1] = False  # no positive
    Y2[:, 2] = valid2[:, 2]  # every valid gene positive
    valid2[:, 3] = False  # no valid gene at all
    W, b = logreg.fit(X, Y2, valid2, tol=1e-7)
    assert np.isnan(W[:, 1:]).all() and np.isnan(b[1:]).all()
    assert np.isfinite(W[:, 0]).all() and np.isfinite(b[0])
    alone = logreg.fit(X, Y[:, :1], valid[:, :1], tol=1e-7)[0][:, 0]
    np.testing.assert_allclose(W[:, 0], alone, rtol=0, atol=1e-5 * np.abs(alone).max())

    folds = logreg.fold_of(N_GENES, 5, seed=0)
    one = np.flatnonzero(valid2[:, 0] & (folds == 2))[:3]
    Y2[:, 0] = False
    Y2[one, 0] = True  # positives in fold 2 only: its training genes have none
    scores = logreg.cross_validate(X, Y2, valid2, folds)
    assert np.isnan(scores[:, 1:]).all()
    assert np.isnan(scores[valid2[:, 0] & (folds == 2), 0]).all()
    assert np.isfinite(scores[valid2[:, 0] & (folds != 2), 0]).all()
    assert np.isnan(logreg.auroc(scores, Y2, valid2)).all()
    assert np.isnan(logreg.auprc(scores, Y2, valid2)).all()


def test_invalid_genes_are_ignored(data):
    X, Y, valid = data
    valid = valid.copy()
    valid[:20] = False  # genes no label uses
    j = SHARED_LABELS + 2  # a label with its own valid set, pooled with others
    W, b = logreg.fit(X, Y, valid, tol=1e-7)
    rng = np.random.default_rng(5)
    X2, Y2 = X.copy(), Y.copy()
    Y2[~valid] = rng.random((~valid).sum()) < 0.5  # labels of invalid genes: anything
    X2[:20] = np.nan  # features of genes no label uses: anything
    only_others = ~valid[:, j] & valid.any(axis=1)
    X2[only_others] *= 3.0  # other labels' genes change: label j must not notice
    W2, b2 = logreg.fit(X2, Y2, valid, tol=1e-7)
    np.testing.assert_allclose(W2[:, j], W[:, j], rtol=0, atol=1e-5 * np.abs(W[:, j]).max())
    np.testing.assert_allclose(b2[j], b[j], rtol=1e-5)
    assert not np.allclose(W2[:, 0], W[:, 0], atol=1e-3)  # other labels do notice
    # Cross-validated scores of label j are unchanged too; invalid genes get NaN.
    folds = logreg.fold_of(N_GENES, 4, seed=0)
    s1 = logreg.cross_validate(X, Y, valid, folds, tol=1e-7)[:, j]
    s2 = logreg.cross_validate(X2, Y2, valid, folds, tol=1e-7)[:, j]
    np.testing.assert_array_equal(np.isnan(s1), ~valid[:, j])
    np.testing.assert_allclose(s2[valid[:, j]], s1[valid[:, j]], rtol=0, atol=1e-4)


def test_non_finite_features_of_used_genes_are_refused(data):
    X, Y, valid = data
    X2 = X.copy()
    X2[np.flatnonzero(valid[:, 0])[0], 3] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        logreg.fit(X2, Y, valid)


def test_fold_of():
    folds = logreg.fold_of(1003, 5, seed=7)
    assert folds.dtype == np.int8 and folds.shape == (1003,)
    assert sorted(np.bincount(folds)) == [200, 200, 201, 201, 201]
    np.testing.assert_array_equal(folds, logreg.fold_of(1003, 5, seed=7))
    assert (folds != logreg.fold_of(1003, 5, seed=8)).any()
    assert logreg.fold_of(300, 200, seed=0).dtype == np.int16
    with pytest.raises(ValueError):
        logreg.fold_of(10, 1, seed=0)


def test_progress_reports_every_fit(data):
    X, Y, valid = data
    seen = []
    logreg.cross_validate(
        X, Y[:, :8], valid[:, :8], logreg.fold_of(N_GENES, 3, 0), progress=lambda *a: seen.append(a)
    )
    assert seen[-1] == (24, 24) and all(a[1] == 24 for a in seen)
    assert [a[0] for a in seen] == sorted(a[0] for a in seen)


# --- ranking metrics ----------------------------------------------------------------------


def test_auroc_auprc_match_sklearn_with_ties_and_missing():
    rng = np.random.default_rng(11)
    n, L = 300, 60
    scores = rng.integers(0, 6, (n, L)).astype(np.float32)  # heavy ties
    scores[:, :20] = rng.standard_normal((n, 20))  # no ties
    scores[:, 20:25] = 1.0  # all tied
    Y = rng.random((n, L)) < rng.uniform(0.02, 0.5, L)
    valid = rng.random((n, L)) < 0.8
    valid[:, :10] = True
    scores[~valid & (rng.random((n, L)) < 0.5)] = np.nan  # unscored invalid genes: ignored
    auc, ap = logreg.auroc(scores, Y, valid), logreg.auprc(scores, Y, valid)
    for j in range(L):
        v = valid[:, j]
        assert auc[j] == pytest.approx(roc_auc_score(Y[v, j], scores[v, j]), abs=1e-12), j
        assert ap[j] == pytest.approx(average_precision_score(Y[v, j], scores[v, j]), abs=1e-12), j
    np.testing.assert_allclose(auc[20:25], 0.5)

    Y[:, 0] = False  # no positive
    Y[:, 1] = valid[:, 1]  # no negative
    valid[:, 2] = False  # nothing valid
    scores[np.flatnonzero(valid[:, 3])[0], 3] = np.nan  # a valid gene without a score
    auc, ap = logreg.auroc(scores, Y, valid), logreg.auprc(scores, Y, valid)
    assert np.isnan(auc[:4]).all() and np.isnan(ap[:4]).all()
    assert np.isfinite(auc[4:]).all() and np.isfinite(ap[4:]).all()
    # valid=None: every gene counts
    full = logreg.auroc(scores[:, 4:10], Y[:, 4:10])
    np.testing.assert_allclose(full, [roc_auc_score(Y[:, j], scores[:, j]) for j in range(4, 10)])


def test_metrics_leave_their_inputs_alone():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((50, 1))
    y = rng.random((50, 1)) < 0.3
    valid = rng.random((50, 1)) < 0.5
    before = y.copy(), valid.copy(), scores.copy()
    first = logreg.auroc(scores, y, valid), logreg.auprc(scores, y, valid)
    assert (y == before[0]).all() and (valid == before[1]).all() and (scores == before[2]).all()
    again = logreg.auroc(scores, y, ~valid), logreg.auroc(scores, y, valid)
    np.testing.assert_array_equal(again[1], first[0])
    assert np.isfinite(again[0]).all()
