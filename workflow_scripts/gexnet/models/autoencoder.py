"""The expression autoencoder, and its linear counterpart (PCA as a module), in one file.

A sample is its log expression over a fixed gene set (the corpus's dense matrix, log10 of
counts scaled to a total, plus one). Both models take and return log values; inside, each gene
is scaled by its own `center` and `scale` (buffers, saved with the weights, so that every user
of a model scales as its training did), and the loss is the mean squared error in that scaled
space.

`Autoencoder`: Linear → [norm] → activation → [dropout] for each encoder width, then a linear
latent layer; the decoder mirrors the encoder (its widths reversed) and ends in a Linear back to
the genes. Seed 002's network is hidden [20000, 8000, 4000, 2000], latent 1000, ReLU.

Identity: the first layer is wider than the input (20,000 > 19,383), so without a guard the
first layers could pass the input through; the latent bottleneck already stops an exact copy,
and training corrupts the inputs (the loss is always on the clean values) so that each gene is
predicted from the others: `corruption: gaussian` adds N(0, level²) in scaled units (the
default); `mask` sets a share `level` of the inputs to the gene's zero-expression value, which
teaches the model to treat zeros as missing and so mutes knockouts to zero (documented, not the
default); `none` trains a plain autoencoder.

`LinearAutoencoder`: x̂ = c + s · (m + ((x − c)/s − m) V Vᵀ), PCA's reconstruction with k
components V (genes × k) and mean m in the scaled space; the linear baseline of every
reconstruction and perturbation result, run through the same code as the autoencoder.

Both expose `encoder` (an nn.Sequential whose first module is the Linear from the scaled genes),
`from_first(pre)` (the reconstruction from that Linear's output), `hidden_from_first(pre)` (the
input of the last Linear, `head`), `scaled`/`unscaled`, so that a perturbation of a few genes can
update the first layer's output instead of recomputing it, and a mean change over samples can go
through the head once (it is linear).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
               "leaky_relu": nn.LeakyReLU}  # fmt: skip
NORMS = ("none", "batch", "layer")
CORRUPTIONS = ("gaussian", "mask", "none")


@dataclass(frozen=True)
class AutoencoderConfig:
    n_genes: int
    hidden: list[int] = field(default_factory=lambda: [20000, 8000, 4000, 2000])
    latent: int = 1000
    activation: str = "relu"
    norm: str = "none"  # after each hidden Linear, before the activation
    dropout: float = 0.0  # after each hidden activation
    corruption: str = "gaussian"
    corruption_level: float = 0.5

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r}: expected one of {list(ACTIVATIONS)}")
        if self.norm not in NORMS:
            raise ValueError(f"norm {self.norm!r}: expected one of {NORMS}")
        if self.corruption not in CORRUPTIONS:
            raise ValueError(f"corruption {self.corruption!r}: expected one of {CORRUPTIONS}")

    def to_dict(self) -> dict:
        return asdict(self)


class _Scaled(nn.Module):
    """Per-gene scaling buffers shared by both models."""

    def _init_scaling(self, n_genes: int, center=None, scale=None) -> None:
        self.register_buffer("center", torch.zeros(n_genes) if center is None else
                             torch.as_tensor(center, dtype=torch.float32).clone())  # fmt: skip
        self.register_buffer("scale", torch.ones(n_genes) if scale is None else
                             torch.as_tensor(scale, dtype=torch.float32).clone())  # fmt: skip

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.center) / self.scale

    def unscaled(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.scale + self.center

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction (log values) of log values, without corruption."""
        return self.from_first(self.encoder[0](self.scaled(x)))

    def from_first(self, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _block(n_in: int, n_out: int, c: AutoencoderConfig) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if c.norm == "batch":
        layers.append(nn.BatchNorm1d(n_out))
    elif c.norm == "layer":
        layers.append(nn.LayerNorm(n_out))
    layers.append(ACTIVATIONS[c.activation]())
    if c.dropout > 0:
        layers.append(nn.Dropout(c.dropout))
    return layers


class Autoencoder(_Scaled):
    def __init__(self, config: AutoencoderConfig, center=None, scale=None) -> None:
        super().__init__()
        self.config = c = config
        self._init_scaling(c.n_genes, center, scale)
        widths = [c.n_genes, *c.hidden]
        encoder: list[nn.Module] = []
        for n_in, n_out in pairwise(widths):
            encoder += _block(n_in, n_out, c)
        encoder.append(nn.Linear(widths[-1], c.latent))
        self.encoder = nn.Sequential(*encoder)
        back = [c.latent, *reversed(c.hidden)]
        decoder: list[nn.Module] = []
        for n_in, n_out in pairwise(back):
            decoder += _block(n_in, n_out, c)
        decoder.append(nn.Linear(back[-1], c.n_genes))
        self.decoder = nn.Sequential(*decoder)

    def hidden_from_first(self, pre: torch.Tensor) -> torch.Tensor:
        """The input of the last Linear (`head`) from the first Linear's output."""
        return self.decoder[:-1](self.encoder[1:](pre))

    @property
    def head(self) -> nn.Linear:
        return self.decoder[-1]

    def from_first(self, pre: torch.Tensor) -> torch.Tensor:
        return self.unscaled(self.head(self.hidden_from_first(pre)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.scaled(x))

    def corrupt(self, y: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """Scaled inputs corrupted by the config's kind and level, from the batch's `draws`
        (standard normal for gaussian, uniform for mask: the data source draws them from
        (seed, epoch, row), so that any process layout and a resumed run see the same)."""
        c = self.config
        if c.corruption == "gaussian":
            return y + c.corruption_level * draws
        if c.corruption == "mask":
            zero = (0.0 - self.center) / self.scale  # a zero log value, scaled
            return torch.where(draws < c.corruption_level, zero.expand_as(y), y)
        return y

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of squared errors over all values, in scaled units; number of values); inputs
        corrupted in training mode (by `batch["draws"]`, when the corruption needs them)."""
        target = self.scaled(batch["values"].float())
        corrupted = self.training and self.config.corruption != "none"
        inputs = self.corrupt(target, batch["draws"].float()) if corrupted else target
        out = self.decoder(self.encoder(inputs))
        return ((out.float() - target) ** 2).sum(), torch.tensor(target.numel(), device=out.device)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def work(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """A batch's samples, values and training FLOPs (6 per weight per sample)."""
        n = batch["values"].shape[0]
        weights = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))
        return {"samples": n, "values": n * self.config.n_genes, "flops": 6.0 * weights * n}


class LinearAutoencoder(_Scaled):
    """PCA's reconstruction as a module: `components` genes × k (orthonormal columns) and `mean`
    (genes) in the scaled space."""

    def __init__(self, center, scale, mean, components) -> None:
        super().__init__()
        components = torch.as_tensor(components, dtype=torch.float32)
        mean = torch.as_tensor(mean, dtype=torch.float32)
        n_genes, k = components.shape
        self._init_scaling(n_genes, center, scale)
        enc, dec = nn.Linear(n_genes, k), nn.Linear(k, n_genes)
        with torch.no_grad():
            enc.weight.copy_(components.T)
            enc.bias.copy_(-(mean @ components))
            dec.weight.copy_(components)
            dec.bias.copy_(mean)
        self.encoder, self.decoder = nn.Sequential(enc), nn.Sequential(dec)

    def hidden_from_first(self, pre: torch.Tensor) -> torch.Tensor:
        return pre

    @property
    def head(self) -> nn.Linear:
        return self.decoder[0]

    def from_first(self, pre: torch.Tensor) -> torch.Tensor:
        return self.unscaled(self.head(pre))


def load_trained(model_dir: str | Path) -> tuple[Autoencoder, dict]:
    """A trained autoencoder (eval mode) and its description (model.json), from the directory
    its training job wrote."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    description = json.loads((model_dir / "model.json").read_text())
    model = Autoencoder(AutoencoderConfig(**description["model"]))
    model.load_state_dict(load_file(str(model_dir / description["weights"])))
    return model.eval(), description
