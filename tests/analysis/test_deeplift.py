"""Exact all-outputs-at-once DeepLIFT (`analysis.deeplift.Rescale`) against independent oracles:
captum's DeepLift and shap's DeepExplainer, one output isoform at a time, on small float64 nets
whose BatchNorms are not the identity; completeness (Σ over SFs = output − reference output) for
both heads, with and without the frozen autoencoder branch, on inputs where some pre-activations
do not change; the DeepRBP head's multiplier against its secant written out; the functional-ReLU
pitfall shown on captum itself; and the streaming mean and t-statistic against numpy and scipy."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import shap
import torch
from captum.attr import DeepLift
from scipy.stats import ttest_1samp
from torch import nn
from torch.nn import functional as Fn

from gexnet.analysis.deeplift import Rescale, Scores
from gexnet.models.autoencoder import Autoencoder, AutoencoderConfig
from gexnet.models.splicing import SplicingConfig, SplicingNet

SF, ISO, G, NG = 9, 11, 4, 14  # SFs, isoforms, genes of the isoforms, genes of the branch
HIDDEN = [7, 6]
BRANCH_SFS = [0, 5, 9]  # the branch's gene columns that are SFs (held at branch_fill)
N = 6  # samples
TOL = 1e-5


def randomise_norms(module: nn.Module) -> None:
    """Eval-mode BatchNorms that are not the identity (running stats and affine parameters)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.3, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)


def build(head: str = "deepsf", branch: bool = False, seed: int = 0,
          dtype=torch.float64) -> SplicingNet:  # fmt: skip
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ae = None
    if branch:
        ae = Autoencoder(AutoencoderConfig(n_genes=NG, hidden=[8], latent=4, norm="batch"),
                         center=rng.uniform(0, 2, NG), scale=rng.uniform(0.5, 1.5, NG))  # fmt: skip
        randomise_norms(ae)
    config = SplicingConfig(SF, ISO, G, hidden=HIDDEN, head=head, branch_width=8 if branch else 0)
    fill = rng.uniform(1, 2, len(BRANCH_SFS)) if branch else None
    net = SplicingNet(config, rng.integers(0, G, ISO), center=rng.uniform(1, 2, SF),
                      scale=rng.uniform(0.5, 1.5, SF), branch=ae,
                      branch_columns=BRANCH_SFS if branch else None, branch_fill=fill)  # fmt: skip
    randomise_norms(net)
    net.out.weight.data *= 3.0  # outputs and attributions of order 1
    if net.gene_weight is not None:  # both signs: the head's ReLU is on for some isoforms only
        net.gene_weight.data.uniform_(-1.0, 1.0)
    return net.to(dtype).eval()


def inputs(net: SplicingNet, reference: torch.Tensor, seed: int = 1):
    """N samples (SFs, genes, context); sample 0 is the reference itself, sample 1 differs from
    it only orthogonally to the first layer's unit 0 (Δz₁[0] = 0, other units change), and SF 2
    of sample 2 equals the reference's."""
    rng = np.random.default_rng(seed)
    dt = net.center.dtype
    f = torch.as_tensor(rng.uniform(0, 3, (N, SF)), dtype=dt)
    f[0] = reference
    row = (net.linear1.weight[0] / net.scale).detach()  # z₁[0] = row · f + const (BN: affine)
    d = f[1] - reference
    f[1] = reference + d - (d @ row) / (row @ row) * row
    f[2, 2] = reference[2]
    genes = torch.as_tensor(rng.uniform(0, 3, (N, G)), dtype=dt)
    context = torch.as_tensor(rng.uniform(0, 3, (N, NG)), dtype=dt) if net.branch else None
    return f, genes, context


def references(dtype=torch.float64) -> dict[str, torch.Tensor]:
    """A median-like reference (the median of a population) and the knockout reference."""
    population = np.random.default_rng(7).uniform(0, 3, (101, SF))
    return {"median": torch.as_tensor(np.median(population, 0), dtype=dtype),
            "zero": torch.zeros(SF, dtype=dtype)}  # fmt: skip


class _PlainReLU(nn.Module):
    """torch.relu under a class captum does not hook."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


def captum_view(net: SplicingNet) -> SplicingNet:
    """The net for captum. captum hooks every nn.ReLU of the module tree, and its hook on the
    frozen branch's ReLUs raises (they run under no_grad: "cannot register a hook on a tensor
    that doesn't require gradient"); the branch is constant in the SFs, so its ReLUs are
    swapped for the same function under a class captum leaves alone (outputs checked equal)."""
    view = copy.deepcopy(net)
    if view.branch is not None:
        for module in list(view.branch.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, nn.ReLU):
                    setattr(module, name, _PlainReLU())
    return view


def captum_all(model: nn.Module, f, f0, args, outputs: int) -> torch.Tensor:
    """captum's DeepLift, one call per output: samples × outputs × SFs."""
    explainer = DeepLift(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "required_grads has been set", "Setting hooks"
        return torch.stack([explainer.attribute(f, baselines=f0, target=i,
                                                additional_forward_args=args).detach()
                            for i in range(outputs)], 1)  # fmt: skip


class OneSample(nn.Module):
    """The net as a function of the SFs alone, one sample's genes and context held: shap's
    PyTorch DeepExplainer takes tensor inputs and explains every output of the model."""

    def __init__(self, net: SplicingNet, genes: torch.Tensor, context: torch.Tensor | None):
        super().__init__()
        self.net = net
        self.register_buffer("genes", genes[None])
        self.register_buffer("context", None if context is None else context[None])

    def forward(self, factors: torch.Tensor) -> torch.Tensor:
        n = factors.shape[0]
        context = None if self.context is None else self.context.expand(n, -1)
        return self.net(factors, self.genes.expand(n, -1), context)


def shap_all(net: SplicingNet, f, genes, context, reference) -> np.ndarray:
    """shap's DeepExplainer, each sample against a background of one row (the reference):
    samples × outputs × SFs."""
    out = []
    for j in range(f.shape[0]):
        model = OneSample(net, genes[j], None if context is None else context[j])
        explainer = shap.DeepExplainer(model, reference[None])
        values = explainer.shap_values(f[j : j + 1], check_additivity=False)  # 1 × SFs × outputs
        out.append(np.asarray(values)[0].T)
    return np.stack(out)


def gradient_times_delta(net: SplicingNet, f, f0, genes, context) -> torch.Tensor:
    """∂y_i/∂f at the sample times Δf: what DeepLIFT would give if the net were linear."""
    x = f.clone().requires_grad_()
    jac = torch.autograd.functional.jacobian(lambda v: net(v, genes, context).sum(0), x)
    return jac.permute(1, 0, 2).detach() * (f - f0)[:, None, :]


@pytest.mark.parametrize("branch", [False, True], ids=["no_branch", "branch"])
@pytest.mark.parametrize("ref", ["median", "zero"])
def test_rescale_equals_captum_deeplift_for_every_output(branch, ref):
    net = build("deepsf", branch)
    reference = references()[ref]
    f, genes, context = inputs(net, reference)
    ours = Rescale(net, torch.float64).attribute(f, genes, context, reference)
    view = captum_view(net)
    torch.testing.assert_close(view(f, genes, context), net(f, genes, context), rtol=0, atol=0)
    args = (genes,) if context is None else (genes, context)
    theirs = captum_all(view, f, reference.expand_as(f), args, ISO)
    torch.testing.assert_close(ours.attributions, theirs, rtol=0, atol=TOL)
    torch.testing.assert_close(ours.output, net(f, genes, context), rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.reference_output, net(reference.expand_as(f), genes, context),
                               rtol=0, atol=1e-12)  # fmt: skip
    # the non-linearities are exercised: gradient × Δ (the linear answer) is far from both
    linear = gradient_times_delta(net, f, reference.expand_as(f), genes, context)
    assert (linear - theirs).abs().max() > 0.2 * theirs.abs().max()
    assert theirs.abs().max() > 0.1
    # sample 1: z₁[0] as the reference's, the other units not
    with torch.no_grad():
        dz1 = net.linear1((f[1] - reference) / net.scale) - net.linear1.bias
    assert dz1[0].abs() < 1e-12 and dz1[1:].abs().min() > 1e-3
    # Δ = 0 gives nothing: the reference sample, and SF 2 of sample 2
    assert ours.attributions[0].abs().max() == 0 and ours.attributions[2, :, 2].abs().max() == 0


def test_rescale_equals_captum_with_one_reference_row_per_sample():
    net = build("deepsf", branch=True, seed=3)
    reference = references()["median"]
    f, genes, context = inputs(net, reference)
    rows = reference + torch.as_tensor(np.random.default_rng(5).normal(0, 0.5, (N, SF)))
    ours = Rescale(net, torch.float64).attribute(f, genes, context, rows)
    theirs = captum_all(captum_view(net), f, rows, (genes, context), ISO)
    torch.testing.assert_close(ours.attributions, theirs, rtol=0, atol=TOL)


@pytest.mark.parametrize("branch", [False, True], ids=["no_branch", "branch"])
@pytest.mark.parametrize("ref", ["median", "zero"])
def test_rescale_equals_shap_deep_explainer_for_every_output(branch, ref):
    net = build("deepsf", branch, seed=2)
    reference = references()[ref]
    f, genes, context = inputs(net, reference)
    ours = Rescale(net, torch.float64).attribute(f, genes, context, reference)
    theirs = shap_all(net, f, genes, context, reference)
    np.testing.assert_allclose(ours.attributions.numpy(), theirs, rtol=0, atol=TOL)
    linear = gradient_times_delta(net, f, reference.expand_as(f), genes, context)
    assert np.abs(linear.numpy() - theirs).max() > 0.2 * np.abs(theirs).max()
    assert np.abs(theirs).max() > 0.1


class Logits(nn.Module):
    """The DeepRBP net up to its head: x (the head's input), the head the identity."""

    def __init__(self, net: SplicingNet):
        super().__init__()
        self.net = net

    def forward(self, factors, genes, context=None):
        g = genes[:, self.net.isoform_gene]
        return self.net.out(self.net.trunk(factors)) + self.net.constant(g, context)


@pytest.mark.parametrize("branch", [False, True], ids=["no_branch", "branch"])
@pytest.mark.parametrize("ref", ["median", "zero"])
def test_deeprbp_trunk_against_captum_and_head_multiplier_written_out(branch, ref):
    net = build("deeprbp", branch, seed=4)
    reference = references()[ref]
    f, genes, context = inputs(net, reference)
    f0 = reference.expand_as(f)
    ours = Rescale(net, torch.float64).attribute(f, genes, context, reference)
    logits = Logits(captum_view(net))
    args = (genes,) if context is None else (genes, context)
    trunk = captum_all(logits, f, f0, args, ISO)  # attributions of x, the head's input
    with torch.no_grad():
        x, x0 = logits(f, genes, context), logits(f0, genes, context)
        g = genes[:, net.isoform_gene]
        y = torch.log10(torch.sigmoid(x) * (10**g - 1) + 1)  # the head written out
        y0 = torch.log10(torch.sigmoid(x0) * (10**g - 1) + 1)
    torch.testing.assert_close(ours.output, y, rtol=0, atol=1e-12)
    torch.testing.assert_close(trunk.sum(-1), x - x0, rtol=0, atol=TOL)  # captum on the trunk
    moved = (x - x0).abs() > 1e-9  # the secant is well defined (not sample 0, the reference)
    assert moved[1:].all() and not moved[0].any()
    multiplier = torch.where(moved, (y - y0) / torch.where(moved, x - x0, 1.0), 0.0)
    torch.testing.assert_close(ours.attributions, multiplier[:, :, None] * trunk, rtol=0, atol=TOL)


@pytest.mark.parametrize("branch", [False, True], ids=["no_branch", "branch"])
@pytest.mark.parametrize("head", ["deepsf", "deeprbp"])
@pytest.mark.parametrize("ref", ["median", "zero"])
def test_completeness_for_every_output(head, branch, ref):
    for seed in range(3):
        net = build(head, branch, seed=10 + seed)
        reference = references()[ref]
        f, genes, context = inputs(net, reference, seed=seed)
        b = Rescale(net, torch.float64).attribute(f, genes, context, reference)
        torch.testing.assert_close(b.output, net(f, genes, context), rtol=0, atol=1e-12)
        torch.testing.assert_close(b.attributions.sum(-1), b.output - b.reference_output,
                                   rtol=0, atol=TOL)  # fmt: skip
        assert (b.output - b.reference_output)[1:].abs().max() > 0.01  # not vacuous


# float32: completeness to 2e-5 (about 100 roundings of values of order 1; 2e-7 measured), and
# the attributions within 2e-5 of float64's (up to 5e-6 measured: the DeepRBP head's secant
# (y − y₀)/(x − x₀) loses digits to the subtraction)
FLOAT32_TOL = 2e-5


@pytest.mark.parametrize("head", ["deepsf", "deeprbp"])
def test_completeness_in_float32(head):
    for seed in range(3):
        net = build(head, branch=True, seed=20 + seed, dtype=torch.float32)
        reference = references(torch.float32)["median"]
        f, genes, context = inputs(net, reference)
        b = Rescale(net, torch.float32).attribute(f, genes, context, reference)
        assert b.attributions.dtype == torch.float32
        torch.testing.assert_close(b.output, net(f, genes, context), rtol=0, atol=1e-5)
        error = (b.attributions.sum(-1) - (b.output - b.reference_output)).abs().max()
        assert error < FLOAT32_TOL
        exact = Rescale(net, torch.float64).attribute(f, genes, context, reference)
        assert (b.attributions.double() - exact.attributions).abs().max() < FLOAT32_TOL


class FunctionalNet(nn.Module):
    """The DeepSF net as the original code wrote it: the same layers, but the ReLUs called as
    torch.nn.functional.relu in forward, so that no ReLU module exists to hook."""

    def __init__(self, net: SplicingNet):
        super().__init__()
        self.net = net

    def forward(self, factors, genes):
        n = self.net
        s = (factors - n.center) / n.scale
        a = Fn.relu(n.bn2(n.linear2(Fn.relu(n.bn1(n.linear1(s))))))
        return Fn.relu(n.out(a) + n.gene_weight * genes[:, n.isoform_gene])


class NoReLUModules(nn.Module):
    """The same layers without the net's ReLU modules in the tree (captum hooks by module)."""

    def __init__(self, net: SplicingNet):
        super().__init__()
        self.linear1, self.bn1, self.linear2, self.bn2, self.out = (
            net.linear1, net.bn1, net.linear2, net.bn2, net.out)  # fmt: skip
        self.gene_weight = net.gene_weight
        for name in ("center", "scale", "isoform_gene"):
            self.register_buffer(name, getattr(net, name))


def test_functional_relu_breaks_captum_completeness_and_modules_do_not():
    net = build("deepsf", seed=30)
    functional = FunctionalNet(NoReLUModules(net)).eval()
    reference = references()["zero"]  # knockouts: large Δ, many ReLUs switch
    f, genes, _ = inputs(net, reference)
    f0 = reference.expand_as(f)
    with torch.no_grad():
        delta = net(f, genes) - net(f0, genes)
        torch.testing.assert_close(functional(f, genes) - functional(f0, genes), delta)
    pitfall = captum_all(functional, f, f0, (genes,), ISO)
    assert (pitfall.sum(-1) - delta).abs().max() > 1e-2  # gradient × Δ: not complete
    modules = captum_all(net, f, f0, (genes,), ISO)
    torch.testing.assert_close(modules.sum(-1), delta, rtol=0, atol=TOL)


def test_scores_mean_and_t_equal_numpy_and_scipy_over_streamed_batches():
    net = build("deeprbp", branch=True, seed=40)
    reference = references()["median"]
    rescale, scores, stacked = Rescale(net, torch.float64), Scores(ISO, SF), []
    for batch in range(4):
        f, genes, context = inputs(net, reference, seed=100 + batch)
        f = f[2:]  # not the reference sample; SF 2 of the first kept sample still equals it
        genes, context = genes[2:], context[2:]
        a = rescale.attribute(f, genes, context, reference).attributions
        scores.add(a)
        stacked.append(a.numpy())
    a = np.concatenate(stacked)
    assert scores.n == len(a) == 16
    np.testing.assert_allclose(scores.mean, a.mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scores.t, ttest_1samp(a, 0.0, axis=0).statistic, rtol=1e-8)


def test_scores_t_is_zero_where_attributions_never_vary():
    scores = Scores(2, 3)
    a = torch.zeros(5, 2, 3, dtype=torch.float64)
    a[:, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0, 6.0])
    scores.add(a[:2])
    scores.add(a[2:])
    expected = np.zeros((2, 3))
    expected[0, 0] = ttest_1samp(a[:, 0, 0].numpy(), 0.0).statistic
    np.testing.assert_allclose(scores.t, expected, rtol=1e-12)


def test_rescale_refuses_a_net_in_training_mode():
    net = build("deepsf").train()
    with pytest.raises(ValueError, match="eval mode"):
        Rescale(net)
