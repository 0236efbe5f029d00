"""The isoform network of seed 001 (DeepSF) and its successor's output head (DeepRBP), one file.

Inputs per sample: the splicing factors' (SF) log expression `factors` (n_SF), the log expression
of each isoform's gene `genes` (one column per gene of the isoform set; `isoform_gene` says which
column is whose), and optionally `context`, the log expression of the frozen autoencoder
branch's genes. Output: the isoforms' log expression, log10(scaled count + 1) like every matrix
of the workflow.

    s  = (factors − center) / scale                       standardised SFs (buffers)
    a₁ = relu₁(bn₁(linear₁(s)))                           183 wide in the seed
    a₂ = relu₂(bn₂(linear₂(a₁)))                          82 wide
    x  = out(a₂) [+ branch_out(autoencoder features)] [+ w ⊙ g]
    y  = head(x; g)

Heads (`head` in the config):
- "deepsf": x includes the learned per-isoform weight w times the gene's log expression g, and
  y = ReLU(x) (seed 001);
- "deeprbp": y = log10(sigmoid(x) · (10^g − 1) + 1): sigmoid(x) is the isoform's share of its
  gene's scaled count (DeepRBP's log2(sigmoid(x) · TPM + 1), on this workflow's log10 scale).

The branch (seed 001's transfer learning): a trained `models.autoencoder.Autoencoder` without its
last Linear, frozen (no gradients, eval mode whatever the net's mode), whose features join the
last layer. It reads its own genes with the SFs among them held at their training means, so
that every SF effect passes through the trunk, which is what the attributions read.

Every non-linearity is its own module, used once, and BatchNorm is affine in eval mode: what
DeepLIFT's Rescale rule needs (`gexnet.analysis.deeplift` computes it exactly, all outputs at
once; captum and shap agree with it on this module).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

HEADS = ("deepsf", "deeprbp")
LN10 = math.log(10.0)


@dataclass(frozen=True)
class SplicingConfig:
    n_factors: int
    n_isoforms: int
    n_genes: int  # columns of the gene-expression input
    hidden: list[int] = field(default_factory=lambda: [183, 82])
    head: str = "deepsf"
    branch_width: int = 0  # the autoencoder features' width (0: no branch)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head {self.head!r}: expected one of {list(HEADS)}")
        if len(self.hidden) != 2:
            raise ValueError(f"hidden {self.hidden}: the network has two hidden layers")

    def to_dict(self) -> dict:
        return asdict(self)


class DeepRBPHead(nn.Module):
    """y = log10(sigmoid(x) · (10^g − 1) + 1), g held: an elementwise non-linearity of x (the
    DeepSF head is a plain nn.ReLU, which attribution libraries know by its class)."""

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.log1p(torch.sigmoid(x) * torch.expm1(g * LN10)) / LN10

    def derivative(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        s, gene = torch.sigmoid(x), torch.expm1(g * LN10)
        return s * (1 - s) * gene / ((s * gene + 1) * LN10)


class SplicingNet(nn.Module):
    def __init__(self, config: SplicingConfig, isoform_gene, center=None, scale=None,
                 branch: nn.Module | None = None, branch_fill=None,
                 branch_columns=None) -> None:  # fmt: skip
        """`isoform_gene`: per isoform, its gene's column in the `genes` input. `branch`: the
        trained autoencoder (frozen here) when config.branch_width > 0; `branch_columns` the
        columns of its genes that are SFs, replaced by `branch_fill` (their training means)."""
        super().__init__()
        self.config = c = config
        f, (h1, h2) = c.n_factors, c.hidden
        self.register_buffer("isoform_gene", torch.as_tensor(isoform_gene, dtype=torch.long))
        self.register_buffer("center", torch.zeros(f) if center is None else
                             torch.as_tensor(center, dtype=torch.float32).clone())  # fmt: skip
        self.register_buffer("scale", torch.ones(f) if scale is None else
                             torch.as_tensor(scale, dtype=torch.float32).clone())  # fmt: skip
        self.linear1, self.bn1, self.relu1 = nn.Linear(f, h1), nn.BatchNorm1d(h1), nn.ReLU()
        self.linear2, self.bn2, self.relu2 = nn.Linear(h1, h2), nn.BatchNorm1d(h2), nn.ReLU()
        self.out = nn.Linear(h2, c.n_isoforms)
        self.gene_weight = nn.Parameter(torch.ones(c.n_isoforms)) if c.head == "deepsf" else None
        self.head = nn.ReLU() if c.head == "deepsf" else DeepRBPHead()
        self.branch = None
        if c.branch_width:
            if branch is None:
                raise ValueError("config.branch_width > 0 needs the trained autoencoder")
            self.branch = branch.requires_grad_(False)
            self.branch_out = nn.Linear(c.branch_width, c.n_isoforms, bias=False)
            columns = torch.as_tensor(branch_columns if branch_columns is not None else [],
                                      dtype=torch.long)  # fmt: skip
            self.register_buffer("branch_columns", columns)
            self.register_buffer("branch_fill", torch.as_tensor(
                branch_fill if branch_fill is not None else [], dtype=torch.float32))  # fmt: skip

    def train(self, mode: bool = True) -> SplicingNet:
        super().train(mode)
        if self.branch is not None:
            self.branch.eval()  # frozen: its BatchNorm statistics stay those it was trained with
        return self

    def trunk(self, factors: torch.Tensor) -> torch.Tensor:
        """a₂ from the SFs' log expression."""
        s = (factors - self.center) / self.scale
        return self.relu2(self.bn2(self.linear2(self.relu1(self.bn1(self.linear1(s))))))

    def features(self, context: torch.Tensor) -> torch.Tensor:
        """The frozen autoencoder without its last Linear, SFs held at their means. Run with
        gradients on (then detached), not under no_grad: attribution libraries hook every ReLU
        of the module tree, the branch's too, and a hook needs a tensor that requires grad."""
        context = context.detach().clone().requires_grad_(True)
        with torch.no_grad():
            context[:, self.branch_columns] = self.branch_fill
        ae = self.branch
        return ae.hidden_from_first(ae.encoder[0](ae.scaled(context))).detach()

    def constant(self, gene_values: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """The part of x that does not depend on the SFs: the gene term and the branch."""
        x = torch.zeros(gene_values.shape[0], self.config.n_isoforms, device=gene_values.device,
                        dtype=gene_values.dtype)  # fmt: skip
        if self.gene_weight is not None:
            x = x + self.gene_weight * gene_values
        if self.branch is not None:
            x = x + self.branch_out(self.features(context))
        return x

    def forward(self, factors: torch.Tensor, genes: torch.Tensor,
                context: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        g = genes[:, self.isoform_gene]
        x = self.out(self.trunk(factors)) + self.constant(g, context)
        return self.head(x) if self.gene_weight is not None else self.head(x, g)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of squared errors over all isoform values, number of values)."""
        y = self(batch["factors"], batch["genes"], batch.get("context"))
        target = batch["isoforms"].float()
        return ((y.float() - target) ** 2).sum(), torch.tensor(target.numel(), device=y.device)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def work(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """A batch's samples and training FLOPs (6 per trained weight per sample; the frozen
        branch's forward pass, 2 per weight, on top)."""
        n = batch["factors"].shape[0]
        trained = sum(m.weight.numel() for m in (self.linear1, self.linear2, self.out))
        flops = 6.0 * trained * n
        if self.branch is not None:
            flops += 6.0 * self.branch_out.weight.numel() * n
            flops += 2.0 * n * sum(m.weight.numel() for m in self.branch.modules()
                                   if isinstance(m, nn.Linear))  # fmt: skip
        return {"samples": n, "flops": flops}


def load_trained(model_dir: str | Path) -> tuple[SplicingNet, dict]:
    """A trained net (eval mode, its frozen branch included) and its description (model.json),
    from the directory its training job wrote."""
    from safetensors.torch import load_file

    from gexnet.models.autoencoder import Autoencoder, AutoencoderConfig

    model_dir = Path(model_dir)
    description = json.loads((model_dir / "model.json").read_text())
    config = SplicingConfig(**description["model"])
    state = load_file(str(model_dir / description["weights"]))
    branch = None
    if description["branch"]:
        branch = Autoencoder(AutoencoderConfig(**description["branch"]["autoencoder"]))
    n = len(state.get("branch_columns", []))
    net = SplicingNet(config, state["isoform_gene"], branch=branch, branch_columns=[0] * n,
                      branch_fill=[0.0] * n)  # fmt: skip
    net.load_state_dict(state)
    return net.eval(), description
