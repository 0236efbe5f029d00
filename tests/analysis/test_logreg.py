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


def one_label(data, j=0, dtype=torch.float64):
    """The geometry of label j's valid genes, its positives, and θ at w = 0, b = b₀."""
    X, Y, valid = data
    rows = np.flatnonzero(valid[:, j])
    y = Y[rows, j]
    geo = logreg._Geometry(X, rows, dtype)
    pos = logreg._Positives(y[None])
    th = torch.zeros(1, DIMS + 1, dtype=torch.float64)
    th[0, DIMS] = np.log(y.mean() / (1 - y.mean()))
    return geo, y, pos, th


def objective(geo, y, theta):
    """½‖u‖² + Σ logloss in float64, the formula written out."""
    margin = geo.Z.double().numpy() @ theta
    return (
        0.5 * float(theta[:DIMS] @ theta[:DIMS]) + np.logaddexp(0, margin).sum() - margin[y].sum()
    )


def test_base_hessian_is_the_hessian_with_curvature_flattened_off_its_top_genes(data):
    """P⁻¹v from the Woodbury factor equals a dense solve with P = C·Zᵀ diag(s̃) Z + diag(1…1, 0),
    s̃ = s on the `top` genes of largest s and their mean elsewhere; with uniform s (the start)
    P is the exact Hessian."""
    geo = one_label(data)[0]
    Z = geo.Z.numpy()
    rng = np.random.default_rng(1)
    s = rng.uniform(0.0, 0.25, (3, len(Z))) ** 3  # skewed, as curvature is
    s[2] = 0.1  # uniform
    C, top = 0.7, len(Z) // 32  # as many as the base takes (a 32nd of the genes at most)
    base = logreg._Base(geo.Z, geo.lam, torch.from_numpy(s), C, top)
    v = rng.standard_normal((3, DIMS + 1))
    ours = base.apply(torch.from_numpy(v)).numpy()
    for i in range(3):
        flat = s[i].copy()
        order = np.argsort(-s[i], kind="stable")
        flat[order[top:]] = s[i, order[top:]].mean()
        P = C * (Z.T * flat) @ Z + np.diag(np.r_[np.ones(DIMS), 0.0])
        np.testing.assert_allclose(ours[i], np.linalg.solve(P, v[i]), rtol=1e-9, atol=1e-12)
    H = C * (Z.T * s[2]) @ Z + np.diag(np.r_[np.ones(DIMS), 0.0])
    np.testing.assert_allclose(ours[2], np.linalg.solve(H, v[2]), rtol=1e-9, atol=1e-12)


def test_base_hessian_where_the_top_genes_hold_all_the_curvature(data):
    """A label valid on a few genes of a pooled chunk: s is 0 off them, so D's intercept entry
    C·s̄·n would be 0. It takes the top genes' C·Σs instead: P is the Hessian with its intercept
    entry doubled, and P⁻¹v stays exact in float32 (no overflow, no cancellation)."""
    geo = one_label(data, dtype=torch.float32)[0]
    Z = geo.Z.double().numpy()
    rng = np.random.default_rng(3)
    s = np.zeros(len(Z))
    s[rng.choice(len(Z), 30, replace=False)] = rng.uniform(0.05, 0.25, 30)
    C = 1.0
    base = logreg._Base(geo.Z, geo.lam, torch.from_numpy(s).float()[None], C, 40)
    v = rng.standard_normal(DIMS + 1)
    ours = base.apply(torch.from_numpy(v).float()[None])[0].double().numpy()
    P = C * (Z.T * s) @ Z + np.diag(np.r_[np.ones(DIMS), C * s.sum()])
    exact = np.linalg.solve(P, v)
    np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-4 * np.abs(exact).max())


def test_lbfgs_two_loop_is_the_bfgs_update_of_the_base(data):
    """The two-loop recursion over the stored pairs equals the inverse-Hessian BFGS updates
    H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ applied to P⁻¹, oldest pair first; a pair whose
    curvature yᵀs is not positive is left out; the ring keeps the newest `size` pairs."""
    geo = one_label(data)[0]
    rng = np.random.default_rng(2)
    s = torch.from_numpy(rng.uniform(0.01, 0.25, (1, len(geo.Z))))
    base = logreg._Base(geo.Z, geo.lam, s, 1.0, 16)
    Pinv = np.stack([base.apply(torch.from_numpy(e)[None])[0].numpy() for e in np.eye(DIMS + 1)])
    pairs = logreg._Pairs(3, 1, DIMS + 1)
    kept = []
    A = rng.standard_normal((DIMS + 1, DIMS + 1))
    H = A @ A.T + np.eye(DIMS + 1)  # a positive definite "Hessian" for the pairs
    for i in range(5):
        step = rng.standard_normal(DIMS + 1)
        change = H @ step if i != 2 else -step  # pair 2: negative curvature, left out
        pairs.add(
            torch.from_numpy(step)[None], torch.from_numpy(change)[None], torch.tensor([True])
        )
        if i != 2:
            kept.append((step, change))
    # the ring holds the pairs of the last 3 iterations: 2 (left out), 3 and 4
    M = Pinv
    for step, change in kept[-2:]:
        rho = 1.0 / (change @ step)
        E = np.eye(DIMS + 1) - rho * np.outer(step, change)
        M = E @ M @ E.T + rho * np.outer(step, step)
    v = rng.standard_normal(DIMS + 1)
    ours = pairs.apply(torch.from_numpy(v)[None], base)[0].numpy()
    np.testing.assert_allclose(ours, M @ v, rtol=1e-8, atol=1e-10)


def line(data, scale, j=SHARED_LABELS + 1):
    """Label j at its start, and δ = scale × Newton's step there (exact: s is uniform)."""
    geo, y, pos, th = one_label(data, j)
    solver = logreg._Solver(1.0, 1e-3, 50)
    m = th @ geo.Z.T
    q = solver._residual(m.clone(), pos)
    s = torch.sigmoid(m) * torch.sigmoid(-m)
    g = solver._gradient(geo.Z, q, th)
    delta = scale * logreg._Base(geo.Z, geo.lam, s, 1.0, 0).apply(-g)
    slope = (g * delta).sum(dim=1)
    dm = delta @ geo.Z.T
    return geo, y, th, solver, m, delta, slope, dm, pos


def line_minimum(geo, y, th, delta) -> float:
    """argmin over t of F(θ + t·δ), by scipy's bounded scalar minimiser."""
    from scipy.optimize import minimize_scalar

    return minimize_scalar(
        lambda a: objective(geo, y, (th + a * delta)[0].numpy()),
        bounds=(0.0, 50.0), method="bounded", options={"xatol": 1e-10},
    ).x  # fmt: skip


def phi_derivatives(geo, y, th, delta, t):
    """φ'(t), φ''(t) of φ(t) = F(θ + t·δ) by autograd on the objective written out."""
    t = torch.tensor(float(t), dtype=torch.float64, requires_grad=True)
    theta = th[0] + t * delta[0]
    margin = geo.Z.double() @ theta
    yt = torch.from_numpy(y).double()
    f = 0.5 * (theta[:DIMS] ** 2).sum() + (torch.nn.functional.softplus(margin) - yt * margin).sum()
    (d1,) = torch.autograd.grad(f, t, create_graph=True)
    (d2,) = torch.autograd.grad(d1, t)
    return float(d1.detach()), float(d2)


@pytest.mark.parametrize("scale", [0.2, 1.0, 25.0])
def test_line_search_lands_near_the_line_minimum(data, scale):
    """Against scipy's bounded minimiser of φ on steps that stop short, overshoot (Newton's
    first step from the uniform start) and overshoot far: F falls and |φ'(t)| ≤ |φ'(0)|/10."""
    geo, y, th, solver, m, delta, slope, dm, pos = line(data, scale)
    t = float(solver._line_search(th, delta, m, dm, pos, slope)[0])
    best = line_minimum(geo, y, th, delta)
    assert objective(geo, y, (th + t * delta)[0].numpy()) < objective(geo, y, th[0].numpy())
    assert abs(phi_derivatives(geo, y, th, delta, t)[0]) <= 0.1 * abs(float(slope[0]))
    assert abs(t - best) <= 0.1 * best, (t, best)


def test_step_length_from_one_trial(data):
    """One trial at t = 1: t = 1 where |φ'(1)| ≤ |φ'(0)|/10; a step that stopped short is
    extended by Newton's step on φ' from 1; one that went past the minimum is cut to the root
    of the quadratic through φ'(0), φ'(1), φ''(1) (φ' and φ'' by autograd here, the root by
    numpy). Labels not live get 0."""
    live = torch.tensor([True])
    geo, y, th, solver, m, delta, slope, dm, pos = line(data, 0.2)  # stops short
    d1, d2 = phi_derivatives(geo, y, th, delta, 1.0)
    assert d1 < 0.1 * float(slope[0])
    t, at_one = solver._step_length(th, delta, m, dm, pos, pos.sum(dm), slope, live)
    assert float(t[0]) == pytest.approx(min(1 - d1 / d2, logreg.MAX_STEP), rel=1e-6)
    assert float(at_one[0]) == pytest.approx(d1, rel=1e-6)
    assert (
        solver._step_length(th, delta, m, dm, pos, pos.sum(dm), slope, torch.tensor([False]))[0][0]
        == 0
    )

    geo, y, th, solver, m, delta, slope, dm, pos = line(data, 1.0)
    best = line_minimum(geo, y, th, delta)
    geo, y, th, solver, m, delta, slope, dm, pos = line(data, best)  # t = 1 is the minimum
    assert float(solver._step_length(th, delta, m, dm, pos, pos.sum(dm), slope, live)[0][0]) == 1.0

    for scale in (1.0, 3.0):  # past the minimum: Newton's first step from the start, and more
        geo, y, th, solver, m, delta, slope, dm, pos = line(data, scale)
        d1, d2 = phi_derivatives(geo, y, th, delta, 1.0)
        c = float(slope[0]) - d1 + d2
        roots = np.roots([c, d2, d1])  # in x = t − 1
        x = min((r.real for r in roots if abs(r.imag) < 1e-12 and -1 < r.real < 0), key=abs)
        t = float(solver._step_length(th, delta, m, dm, pos, pos.sum(dm), slope, live)[0][0])
        assert d1 > 0 and t == pytest.approx(1 + x, rel=1e-6), scale
        assert abs(t - line_minimum(geo, y, th, delta)) <= 0.5 * t  # about at the minimum
        assert objective(geo, y, (th + t * delta)[0].numpy()) < objective(geo, y, th[0].numpy())


def test_steps_past_the_minimum_are_taken_back(data):
    """The safeguard after a step: where the new gradient shows the step went past the line
    minimum and F did not fall, the step is searched along its line instead, and margins,
    residuals and gradient are redone for the new point."""
    geo, y, pos, th = one_label(data)
    solver = logreg._Solver(1.0, 1e-3, 50)
    Z = geo.Z
    m = th @ Z.T
    q = solver._residual(m.clone(), pos)
    g = solver._gradient(Z, q, th)
    delta = -50 * g / g.norm()  # far past the minimum along the steepest descent
    slope = (g * delta).sum(dim=1)
    dm = delta @ Z.T
    t = torch.ones(1, dtype=torch.float64)
    th1, m1 = th + delta, m + dm
    q1 = solver._residual(m1.clone(), pos)
    g1 = solver._gradient(Z, q1, th1)
    assert (g1 * delta).sum() > 0 and objective(geo, y, th1[0].numpy()) > objective(
        geo, y, th[0].numpy()
    )
    over = torch.tensor([True])
    assert solver._judge(Z, th1, m1, dm, pos, q1, g1, delta, t, slope, over) == 1
    assert 0 < t[0] < 1
    np.testing.assert_allclose(th1, th + t[0] * delta)
    assert objective(geo, y, th1[0].numpy()) < objective(geo, y, th[0].numpy())
    np.testing.assert_allclose(m1, th1 @ Z.T, atol=1e-9)
    np.testing.assert_allclose(q1, solver._residual(m1.clone(), pos))
    np.testing.assert_allclose(g1, solver._gradient(Z, q1, th1))


def test_loss_change_of_positives_keeps_its_digits():
    """F compared at margins far on the right side: a positive's loss softplus(−m) is tiny
    there, and its change must not drown in the margins' own size (float32)."""
    old = torch.tensor([[30.0, 30.0, -30.0]])
    new = torch.tensor([[31.0, 29.0, -31.0]])
    pos = logreg._Positives(np.array([[True, True, False]]))
    ours = float(logreg._loss_change(old, new, pos)[0])
    exact = sum(
        np.logaddexp(0, -b) - np.logaddexp(0, -a) for a, b in ((30.0, 31.0), (30.0, 29.0))
    ) + (np.logaddexp(0, -31.0) - np.logaddexp(0, -30.0))
    assert ours == pytest.approx(exact, rel=1e-5)


def test_cost_counts_the_products_of_each_fold(data):
    """cost gets, per fold, the labels fitted, their iterations and their passes: one product
    for the first gradient, then two per iteration (gradient and step), a few more where a
    step is taken back."""
    X, Y, valid = data
    folds = logreg.fold_of(N_GENES, 3, seed=0)
    cost = {}
    logreg.cross_validate(X, Y, valid, folds, cost=cost)
    assert sorted(cost) == [0, 1, 2]
    for c in cost.values():
        assert c.fits == Y.shape[1]
        assert c.iterations >= 2 * c.fits
        assert 2 * c.iterations + c.fits <= c.passes <= 2.2 * c.iterations + c.fits
        assert c.products == c.passes / c.fits
    whole = {}
    logreg.fit(X, Y, valid, cost=whole)
    assert list(whole) == [None] and whole[None].fits == Y.shape[1]


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


def test_labels_valid_on_few_genes_converge():
    """Labels each valid on 54 genes of their own, pooled in one chunk with two valid on most
    of 1,800 genes (as the demo's planted modules are, on its small-norm embeddings): the base
    Hessian's top set holds every gene with curvature. Every fit reaches tol in float32 (where the base's intercept
    entry once vanished, and fits stalled at max_iter)."""
    rng = np.random.default_rng(4)
    n, dims, L = 1800, 64, 12
    X = (0.05 * rng.standard_normal((n, dims))).astype(np.float32)
    valid = np.zeros((n, L), dtype=bool)
    Y = np.zeros((n, L), dtype=bool)
    for j in range(L):  # two labels on most genes make the chunk's union (and top set) large
        genes = rng.choice(n, 54 if j >= 2 else 1700, replace=False)
        valid[genes, j] = True
        Y[genes[np.argsort(X[genes] @ rng.standard_normal(dims))[-14:]], j] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # max_iter reached: a failure
        W, b = logreg.fit(X, Y, valid, tol=1e-3)
    for j in range(L):
        v = valid[:, j]
        assert relative_gradient(X[v], Y[v, j], W[:, j], b[j], 1.0) <= 1.05e-3, j


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


def test_benchmark_runs_and_agrees_with_sklearn_held_to_avx2():
    """benchmarks/classifiers.py --quick --isa avx2 restarts itself with every library held to
    AVX2, prints the products of each fold and the product floor, and exits 0 only where the
    engine's AUROC is within 1e-3 of scikit-learn's at tol=1e-8 on every timed label."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "benchmarks" / "classifiers.py"
    env = {k: v for k, v in os.environ.items() if k != "GEXNET_BENCHMARK_ISA"}
    proc = subprocess.run([sys.executable, str(script), "--quick", "--isa", "avx2"],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "held to AVX2" in out and "OPENBLAS_CORETYPE" in out and "torch kernels: AVX2" in out
    folds = [
        line.split() for line in out.splitlines() if line[:1].isdigit() and len(line.split()) == 5
    ]
    assert [int(f[0]) for f in folds] == [0, 1, 2, 3, 4]
    assert all(float(f[3]) >= 3 for f in folds)  # products: at least the first gradient and a step
    assert "× the floor" in out and "speed-up" in out
