"""Exact DeepLIFT (Rescale rule) for the isoform network, every output at once.

For `models.splicing.SplicingNet` in eval mode, with the gene expression and the branch's input
held at the sample's own values, the output is a chain of affine maps and elementwise
non-linearities of the SFs:

    z₁ = W₁′ f + b₁′   a₁ = relu(z₁)   z₂ = W₂′ a₁ + b₂′   a₂ = relu(z₂)   x = W_o a₂ + c(g, ctx)
    y = head(x; g)

(W′: BatchNorm's affine map and the SF standardisation folded into the Linear.) Against a
reference input f₀ (same g and context), Rescale gives each non-linearity its secant multiplier
r = (a(z) − a(z₀)) / (z − z₀) (the derivative where z ≈ z₀), and the chain rule of multipliers
makes the multiplier matrix of one sample

    M = diag(r_y) W_o diag(r₂) W₂′ diag(r₁) W₁′            (isoforms × SFs)

and the attributions A = M ⊙ (f − f₀)ᵀ, computed as (diag(r_y) W_o) · (diag(r₂) W₂′ diag(r₁) W₁′
diag(f − f₀)): two batched products, the second of which writes A. Each factor of the chain is exact for its layer
(Δa = r Δz), so Σ_f A[i, f] = y_i − y₀_i exactly (completeness), for every output i, from one
pass per sample batch: no backward pass per output isoform, as captum's and shap's loops need.

Aggregation over samples (`Scores`): streamed batch by batch in float64 (count, mean, centred
sum of squares, sum of |A|), so memory is set by isoforms × SFs and not by the number of
samples; mean, DeepRBP's t-statistic mean / (sd / √n) and mean |A| per SF × isoform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gexnet.models.splicing import DeepRBPHead, SplicingNet

EPS = 1e-6  # relative change below which a secant is replaced by the derivative at the midpoint


def fold(linear: nn.Linear, norm: nn.BatchNorm1d, dtype=torch.float64):
    """(W, b) of linear followed by an eval-mode BatchNorm, as one affine map."""
    gain = norm.weight.detach().to(dtype) / torch.sqrt(norm.running_var.detach().to(dtype)
                                                       + norm.eps)  # fmt: skip
    w = linear.weight.detach().to(dtype) * gain[:, None]
    b = (linear.bias.detach().to(dtype) - norm.running_mean.detach().to(dtype)) * gain
    return w, b + norm.bias.detach().to(dtype)


def secant(a: torch.Tensor, a0: torch.Tensor, z: torch.Tensor, z0: torch.Tensor,
           slope: torch.Tensor, eps: float = EPS) -> torch.Tensor:  # fmt: skip
    """Rescale multiplier Δa / Δz, `slope` (the derivative at the midpoint) where
    |Δz| ≤ eps · (1 + |z|). A ReLU's secant is exact however small Δz is (eps 0: the slope only
    where Δz is 0); a smooth head's loses digits as Δz shrinks."""
    dz = z - z0
    small = dz.abs() <= eps * (1.0 + z.abs())
    return torch.where(small, slope, (a - a0) / torch.where(small, torch.ones_like(dz), dz))


def _relu_slope(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


@dataclass
class Batch:
    """One sample batch's attributions (samples × isoforms × SFs), outputs and reference
    outputs (samples × isoforms)."""

    attributions: torch.Tensor
    output: torch.Tensor
    reference_output: torch.Tensor


class Rescale:
    """The network's folded weights (in `dtype`), ready to attribute sample batches."""

    def __init__(self, net: SplicingNet, dtype: torch.dtype = torch.float32) -> None:
        if net.training:
            raise ValueError("DeepLIFT reads BatchNorm as an affine map: put the net in eval mode")
        self.net, self.dtype = net, dtype
        w1, b1 = fold(net.linear1, net.bn1, dtype)
        scale = net.scale.detach().to(dtype)
        # standardisation folded in: z₁ = W₁ (f − c)/s + b₁ = (W₁/s) f + (b₁ − W₁ c/s)
        self.w1 = w1 / scale
        self.b1 = b1 - self.w1 @ net.center.detach().to(dtype)
        self.w2, self.b2 = fold(net.linear2, net.bn2, dtype)
        self.wo = net.out.weight.detach().to(dtype)
        self.bo = net.out.bias.detach().to(dtype)

    def _layers(self, f: torch.Tensor, c: torch.Tensor, g: torch.Tensor):
        z1 = f @ self.w1.T + self.b1
        a1 = torch.relu(z1)
        z2 = a1 @ self.w2.T + self.b2
        a2 = torch.relu(z2)
        x = a2 @ self.wo.T + self.bo + c
        head = self.net.head
        y = head(x, g) if isinstance(head, DeepRBPHead) else torch.relu(x)
        return z1, a1, z2, a2, x, y

    def _head_slope(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        head = self.net.head
        return head.derivative(x, g) if isinstance(head, DeepRBPHead) else _relu_slope(x)

    @torch.no_grad()
    def attribute(self, factors: torch.Tensor, genes: torch.Tensor, context: torch.Tensor | None,
                  reference: torch.Tensor) -> Batch:  # fmt: skip
        """Attributions of every isoform output to every SF, for a batch of samples, against
        `reference` (the SFs' log values: one vector for all samples, or one row per sample),
        with each sample's gene expression and context held."""
        net, dt = self.net, self.dtype
        f = factors.to(dt)
        f0 = torch.broadcast_to(reference.to(dt), f.shape)
        g = genes[:, net.isoform_gene].to(dt)
        c = net.constant(genes[:, net.isoform_gene], context).to(dt)
        z1, a1, z2, a2, x, y = self._layers(f, c, g)
        z10, a10, z20, a20, x0, y0 = self._layers(f0, c, g)
        r1 = secant(a1, a10, z1, z10, _relu_slope((z1 + z10) / 2), eps=0.0)
        r2 = secant(a2, a20, z2, z20, _relu_slope((z2 + z20) / 2), eps=0.0)
        head_eps = EPS if isinstance(self.net.head, DeepRBPHead) else 0.0
        ry = secant(y, y0, x, x0, self._head_slope((x + x0) / 2, g), eps=head_eps)
        # diag(r₂) W₂′ diag(r₁) W₁′ diag(Δf) per sample (h₂ × SFs), then diag(r_y) W_o times
        # that: the attributions come out of the second product, no pass over them after it
        right = torch.matmul(self.w2 * r1[:, None, :], self.w1 * (f - f0)[:, None, :])
        attributions = torch.matmul(ry[:, :, None] * self.wo, right * r2[:, :, None])
        return Batch(attributions, y, y0)


class Scores:
    """Streaming per SF × isoform statistics of attributions over samples: mean, t-statistic
    and mean |attribution|, merged batch by batch (Chan et al.'s pairwise update of the centred
    sum of squares, so that a near-constant attribution keeps its tiny variance)."""

    def __init__(self, n_isoforms: int, n_factors: int) -> None:
        self.n = 0
        self.mean = np.zeros((n_isoforms, n_factors))
        self.m2 = np.zeros((n_isoforms, n_factors))
        self.magnitudes = np.zeros((n_isoforms, n_factors))

    def add(self, attributions: torch.Tensor) -> None:
        # a batch's own statistics in its dtype (a few samples: float32 keeps them to 1e-7),
        # merged into the running ones in float64
        a = attributions
        n_b = a.shape[0]
        if n_b == 0:
            return
        mean_b = a.mean(0)
        m2_b = (a - mean_b).square_().sum(0).cpu().numpy().astype(np.float64)
        mean_b = mean_b.cpu().numpy().astype(np.float64)
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * n_b / total)
        self.magnitudes += a.abs().sum(0).cpu().numpy().astype(np.float64)
        self.n = total

    @property
    def mean_abs(self) -> np.ndarray:
        """Mean |attribution|: the score for a reference inside the data (a median), where
        samples on either side of it give attributions of opposite signs."""
        return self.magnitudes / max(self.n, 1)

    @property
    def t(self) -> np.ndarray:
        """mean / (sd / √n), sd with n − 1; 0 where an attribution never varies."""
        n = self.n
        if n < 2:
            return np.zeros_like(self.mean)
        sd = np.sqrt(self.m2 / (n - 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = self.mean / (sd / np.sqrt(n))
        return np.where(sd > 0, t, 0.0)


def batch_size(n_isoforms: int, n_factors: int, budget: int = 2**22) -> int:
    """Samples per batch so that a batch's attributions hold about `budget` values (a few
    samples per batch are fastest: the products stay in cache)."""
    return max(1, budget // max(n_isoforms * n_factors, 1))
