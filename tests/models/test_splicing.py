"""The isoform network's own checks: its two heads against their formulas written out from the
parameters, an isoform never above its gene on the DeepRBP head, the frozen autoencoder branch
(no gradients, eval mode, SF inputs held at their fill), the loss, and the config's guards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gexnet.models.autoencoder import Autoencoder, AutoencoderConfig
from gexnet.models.splicing import DeepRBPHead, SplicingConfig, SplicingNet

SF, ISO, G, NG = 6, 10, 4, 12  # SFs, isoforms, genes of the isoforms, genes of the branch
BRANCH_SFS = [1, 4, 7]


def randomise_norms(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.3, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)


def build(head: str = "deepsf", branch: bool = False, seed: int = 0) -> SplicingNet:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ae = None
    if branch:
        ae = Autoencoder(AutoencoderConfig(n_genes=NG, hidden=[8], latent=3, norm="batch"),
                         center=rng.uniform(0, 2, NG), scale=rng.uniform(0.5, 1.5, NG))  # fmt: skip
        randomise_norms(ae)
    config = SplicingConfig(SF, ISO, G, hidden=[7, 5], head=head, branch_width=8 if branch else 0)
    fill = rng.uniform(1, 2, len(BRANCH_SFS)) if branch else None
    net = SplicingNet(config, rng.integers(0, G, ISO), center=rng.uniform(1, 2, SF),
                      scale=rng.uniform(0.5, 1.5, SF), branch=ae,
                      branch_columns=BRANCH_SFS if branch else None, branch_fill=fill)  # fmt: skip
    randomise_norms(net)
    net.out.weight.data *= 3.0
    if net.gene_weight is not None:
        net.gene_weight.data.uniform_(-1.0, 1.0)
    return net.eval()


def data(n: int = 8, seed: int = 1, branch: bool = True) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    batch = {
        "factors": torch.as_tensor(rng.uniform(0, 3, (n, SF)), dtype=torch.float32),
        "genes": torch.as_tensor(rng.uniform(0, 4, (n, G)), dtype=torch.float32),
        "isoforms": torch.as_tensor(rng.uniform(0, 3, (n, ISO)), dtype=torch.float32),
    }
    if branch:
        batch["context"] = torch.as_tensor(rng.uniform(0, 3, (n, NG)), dtype=torch.float32)
    return batch


def by_hand_logits(net: SplicingNet, factors: np.ndarray) -> np.ndarray:
    """out(trunk(f)) in numpy float64 from the parameters: standardise, then Linear, eval-mode
    BatchNorm, ReLU twice, then the last Linear."""

    def p(t):
        return t.detach().double().numpy()

    a = (factors - p(net.center)) / p(net.scale)
    for linear, bn in ((net.linear1, net.bn1), (net.linear2, net.bn2)):
        z = a @ p(linear.weight).T + p(linear.bias)
        z = (z - p(bn.running_mean)) / np.sqrt(p(bn.running_var) + bn.eps) * p(bn.weight)
        a = np.maximum(z + p(bn.bias), 0.0)
    return a @ p(net.out.weight).T + p(net.out.bias)


def branch_by_hand(net: SplicingNet, context: torch.Tensor) -> np.ndarray:
    """branch_out of the autoencoder's decoder input, the SF columns set to their fill."""
    ctx = context.clone()
    ctx[:, BRANCH_SFS] = net.branch_fill
    ae = net.branch
    with torch.no_grad():
        hidden = ae.decoder[:-1](ae.encoder((ctx - ae.center) / ae.scale))
        return net.branch_out(hidden).double().numpy()


@pytest.mark.parametrize("branch", [False, True], ids=["no_branch", "branch"])
@pytest.mark.parametrize("head", ["deepsf", "deeprbp"])
def test_output_shape(head, branch):
    net, b = build(head, branch), data(5, branch=branch)
    with torch.no_grad():
        assert net(b["factors"], b["genes"], b.get("context")).shape == (5, ISO)


@pytest.mark.parametrize("branch", [False, True], ids=["no_branch", "branch"])
def test_deepsf_head_is_relu_of_logits_plus_gene_term(branch):
    net, b = build("deepsf", branch), data(branch=branch)
    with torch.no_grad():
        y = net(b["factors"], b["genes"], b.get("context")).double().numpy()
    g = b["genes"].double().numpy()[:, net.isoform_gene.numpy()]
    x = by_hand_logits(net, b["factors"].double().numpy())
    x = x + net.gene_weight.detach().double().numpy() * g
    if branch:
        x = x + branch_by_hand(net, b["context"])
    np.testing.assert_allclose(y, np.maximum(x, 0.0), rtol=1e-5, atol=1e-5)
    assert (x > 0).any() and (x < 0).any()  # the ReLU acts


@pytest.mark.parametrize("branch", [False, True], ids=["no_branch", "branch"])
def test_deeprbp_head_is_the_isoform_share_of_its_gene_and_never_above_it(branch):
    net, b = build("deeprbp", branch), data(64, branch=branch)
    b["genes"][0] = 0.0  # a silent gene: its isoforms are silent
    with torch.no_grad():
        y = net(b["factors"], b["genes"], b.get("context")).double().numpy()
    g = b["genes"].double().numpy()[:, net.isoform_gene.numpy()]
    x = by_hand_logits(net, b["factors"].double().numpy())
    if branch:
        x = x + branch_by_hand(net, b["context"])
    share = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(y, np.log10(share * (10.0**g - 1.0) + 1.0), rtol=1e-5, atol=1e-6)
    assert (y <= g + 1e-6).all() and (y >= 0).all()
    np.testing.assert_array_equal(y[0], 0.0)
    assert (g - y).max() > 0.1 and (g - y).min() < 0.1  # shares near 1 and far from it


def test_deeprbp_head_derivative_equals_autograd():
    x = torch.linspace(-6, 6, 41, dtype=torch.float64).repeat(3, 1).requires_grad_()
    g = torch.tensor([0.0, 1.3, 4.0], dtype=torch.float64)[:, None].expand(3, 41)
    head = DeepRBPHead()
    (grad,) = torch.autograd.grad(head(x, g).sum(), x)
    torch.testing.assert_close(head.derivative(x.detach(), g), grad, rtol=1e-12, atol=1e-15)


def test_branch_is_frozen_and_stays_in_eval_mode():
    net = build("deepsf", branch=True).train()
    assert net.training and net.bn1.training
    assert not net.branch.training and not any(m.training for m in net.branch.modules())
    stats = {k: v.clone() for k, v in net.branch.state_dict().items()}
    total, _ = net.loss(data())
    total.backward()
    assert all(p.grad is None and not p.requires_grad for p in net.branch.parameters())
    assert net.linear1.weight.grad is not None and net.branch_out.weight.grad is not None
    for k, v in net.branch.state_dict().items():  # running stats untouched by a train step
        torch.testing.assert_close(v, stats[k], rtol=0, atol=0)
    trained = sum(p.numel() for p in net.parameters()) - sum(
        p.numel() for p in net.branch.parameters()
    )
    assert net.n_params() == trained


def test_sf_columns_of_the_context_are_held_at_the_fill():
    net, b = build("deeprbp", branch=True), data()
    with torch.no_grad():
        y = net(b["factors"], b["genes"], b["context"])
        changed = b["context"].clone()
        changed[:, BRANCH_SFS] += torch.rand(len(changed), len(BRANCH_SFS)) * 5
        torch.testing.assert_close(net(b["factors"], b["genes"], changed), y, rtol=0, atol=0)
        other = b["context"].clone()
        other[:, 0] += 2.0  # not an SF: the branch reads it
        assert (net(b["factors"], b["genes"], other) - y).abs().max() > 1e-3
    before = b["context"].clone()
    net(b["factors"], b["genes"], b["context"])
    torch.testing.assert_close(b["context"], before, rtol=0, atol=0)  # the caller's copy kept


def test_loss_is_the_sum_of_squared_errors():
    net, b = build("deeprbp", branch=True), data()
    total, count = net.loss(b)
    with torch.no_grad():
        y = net(b["factors"], b["genes"], b["context"])
    torch.testing.assert_close(total.detach(), ((y - b["isoforms"]) ** 2).sum())
    assert count.item() == b["isoforms"].numel()


@pytest.mark.parametrize(
    "kwargs",
    [{"head": "softmax"}, {"hidden": [10]}, {"hidden": [10, 8, 4]}],
    ids=["unknown head", "one hidden layer", "three hidden layers"],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        SplicingConfig(SF, ISO, G, **kwargs)


def test_a_branch_width_without_the_autoencoder_raises():
    with pytest.raises(ValueError, match="autoencoder"):
        SplicingNet(SplicingConfig(SF, ISO, G, hidden=[4, 3], branch_width=8), np.zeros(ISO, int))
