"""The PCA baseline against scikit-learn's PCA, and the reconstruction tables against direct
computations (scikit-learn's r2_score, numpy) on a matrix file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import r2_score

from gexnet.analysis import reconstruction as rc
from gexnet.formats.corpus import Dense
from gexnet.formats.matrixfile import MatrixFile
from gexnet.models.autoencoder import LinearAutoencoder


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """400 samples × 30 values (log-like: low rank + noise, a floor at zero), 25 columns kept."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 30)) + rng.normal(0, 0.3, (400, 30)) + 2
    x = np.maximum(x, 0).astype(np.float32)
    path = tmp_path_factory.mktemp("dense") / "dense.bin"
    with MatrixFile(path, x.shape, np.float32, "w") as f:
        f.write(0, 0, x)
    columns = np.arange(5, 30)
    return Dense(path, x.shape, np.float32, columns), x[:, columns]


def test_pca_matches_scikit_learn(matrix):
    dense, x = matrix
    rows = np.arange(0, 300)
    center, scale = x[rows].mean(0), x[rows].std(0)
    model = rc.fit_pca(dense, rows, center, scale, 4, 0, 0, block=37)
    y = (x[rows] - center) / scale
    ref = PCA(4, svd_solver="full").fit(y)
    ours = model.decoder[0].weight.detach().numpy()  # genes × k
    np.testing.assert_allclose(np.abs(ours.T @ ref.components_.T), np.eye(4), atol=1e-4)
    with torch.no_grad():
        got = model(torch.from_numpy(x[300:])).numpy()
    expected = ref.inverse_transform(ref.transform((x[300:] - center) / scale)) * scale + center
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert (ours[np.abs(ours).argmax(0), np.arange(4)] > 0).all()  # the signs are fixed


def test_pca_on_a_sample_of_rows_and_fewer_rows_than_components(matrix):
    dense, _ = matrix
    a = rc.fit_pca(dense, np.arange(300), np.zeros(25), np.ones(25), 3, 100, 1)
    b = rc.fit_pca(dense, np.arange(300), np.zeros(25), np.ones(25), 3, 100, 1)
    torch.testing.assert_close(a.decoder[0].weight, b.decoder[0].weight)  # seeded
    small = rc.fit_pca(dense, np.arange(3), np.zeros(25), np.ones(25), 10, 0, 1)
    assert small.encoder[0].out_features == 3


def test_linear_model_survives_saving(matrix, tmp_path):
    dense, x = matrix
    model = rc.fit_pca(dense, np.arange(300), x.mean(0), x.std(0), 4, 0, 0)
    rc.save_linear(model, tmp_path, {"samples": 300})
    again = rc.load_linear(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(again(torch.from_numpy(x)), model(torch.from_numpy(x)))


def test_tables_equal_direct_computations(matrix):
    dense, x = matrix
    held = np.arange(300, 400)
    train = x[:300]
    genes = pd.DataFrame({"gene_id": [f"G{i}" for i in range(25)], "symbol": "s",
                          "mean": train.mean(0), "std": train.std(0),
                          "maximum": train.max(0)})  # fmt: skip
    pca = rc.fit_pca(dense, np.arange(300), train.mean(0), train.std(0), 3, 0, 0)
    shrunk = LinearAutoencoder(np.zeros(25), np.ones(25), np.zeros(25), np.zeros((25, 1)))
    tables = rc.evaluate(dense, held, genes, {"pca": pca, "zero": shrunk}, [0.0, 1.0, 2.5],
                         block=33)  # fmt: skip
    y = x[held].astype(np.float64)
    with torch.no_grad():
        pred = pca(torch.from_numpy(x[held])).numpy().astype(np.float64)
    m = tables["metrics"].set_index("model")
    assert m.loc["pca", "r2_all"] == pytest.approx(r2_score(y.ravel(), pred.ravel()), abs=1e-6)
    per_gene = r2_score(y, pred, multioutput="raw_values")
    np.testing.assert_allclose(tables["genes"]["r2_pca"], per_gene, atol=1e-6)
    assert m.loc["pca", "gene_r2_median"] == pytest.approx(np.median(per_gene), abs=1e-6)
    means = np.broadcast_to(train.mean(0), y.shape)
    assert m.loc["gene_mean", "r2_all"] == pytest.approx(
        r2_score(y.ravel(), means.ravel()), abs=1e-6
    )
    assert m.loc["zero", "mse"] == pytest.approx((y**2).mean(), rel=1e-6)
    r = tables["ranges"].set_index(["model", "range"])
    low = (y >= 1.0) & (y < 2.5)
    e = pred[low] - y[low]
    assert r.loc[("pca", "[1, 2.5)"), "values"] == low.sum()
    assert r.loc[("pca", "[1, 2.5)"), "mae"] == pytest.approx(np.abs(e).mean(), rel=1e-6)
    assert r.loc[("pca", "[1, 2.5)"), "mean_error"] == pytest.approx(e.mean(), rel=1e-5, abs=1e-9)
    assert r.loc[("pca", "[1, 2.5)"), "r2"] == pytest.approx(r2_score(y[low], pred[low]), abs=1e-6)
    top = r.loc[("pca", "[2.5, inf)"), "values"]
    assert top == (y >= 2.5).sum() and r.xs("pca")["values"].sum() == y.size
    d = tables["density"]
    assert d[d["model"] == "pca"]["count"].sum() == y.size
