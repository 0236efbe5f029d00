"""The autoencoder's layout, scaling and corruption, and PCA's reconstruction as a module
against its closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gexnet.models.autoencoder import Autoencoder, AutoencoderConfig, LinearAutoencoder


def widths(seq: nn.Sequential) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in seq if isinstance(m, nn.Linear)]


def test_the_decoder_mirrors_the_encoder():
    m = Autoencoder(AutoencoderConfig(30, [40, 20, 10], 5))
    assert widths(m.encoder) == [(30, 40), (40, 20), (20, 10), (10, 5)]
    assert widths(m.decoder) == [(5, 10), (10, 20), (20, 40), (40, 30)]


def test_seed_002_network_has_its_published_size():
    c = AutoencoderConfig(19383, [20000, 8000, 4000, 2000], 1000)
    with torch.device("meta"):  # no memory for 1.2B weights
        m = Autoencoder(c)
    assert abs(m.n_params() - 1.18e9) / 1.18e9 < 0.01


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_forward_is_from_first_of_the_first_layer_and_scales_inside(norm):
    torch.manual_seed(0)
    center, scale = torch.rand(12), torch.rand(12) + 0.5
    m = Autoencoder(AutoencoderConfig(12, [16], 4, norm=norm, dropout=0.2), center, scale).eval()
    x = torch.rand(6, 12) * 3
    expected = m.decoder(m.encoder((x - center) / scale)) * scale + center
    torch.testing.assert_close(m(x), expected)
    torch.testing.assert_close(m.from_first(m.encoder[0](m.scaled(x))), expected)
    torch.testing.assert_close(m.unscaled(m.scaled(x)), x)


def test_loss_is_the_squared_error_in_scaled_units_on_clean_targets():
    torch.manual_seed(1)
    m = Autoencoder(AutoencoderConfig(8, [10], 3, corruption="gaussian", corruption_level=0.7),
                    torch.rand(8), torch.rand(8) + 0.5)  # fmt: skip
    x, draws = torch.rand(5, 8), torch.randn(5, 8)
    m.eval()
    total, count = m.loss({"values": x, "draws": draws})
    y = m.scaled(x)
    assert count.item() == 40
    torch.testing.assert_close(total, ((m.decoder(m.encoder(y)) - y) ** 2).sum())
    m.train()
    noisy, _ = m.loss({"values": x, "draws": draws})
    torch.testing.assert_close(noisy, ((m.decoder(m.encoder(y + 0.7 * draws)) - y) ** 2).sum())


def test_mask_corruption_sets_inputs_to_zero_expression():
    m = Autoencoder(AutoencoderConfig(4, [6], 2, corruption="mask", corruption_level=0.5),
                    torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.full((4,), 2.0))  # fmt: skip
    y = torch.ones(1, 4)
    out = m.corrupt(y, torch.tensor([[0.1, 0.9, 0.4, 0.6]]))
    torch.testing.assert_close(out, torch.tensor([[-0.5, 1.0, -1.5, 1.0]]))


def test_linear_autoencoder_is_pca_reconstruction():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20)) + 5
    center, scale = x.mean(0), x.std(0)
    y = (x - center) / scale
    mean = y.mean(0)
    v = np.linalg.svd(y - mean, full_matrices=False)[2][:6].T
    m = LinearAutoencoder(center, scale, mean, v)
    expected = (mean + (y - mean) @ v @ v.T) * scale + center
    with torch.no_grad():
        got = m(torch.tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
