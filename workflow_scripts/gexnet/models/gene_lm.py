"""The gene language models, in one module: a GPT and two BERTs over ranked gene lists.

A sample is its expressed genes, highest binned value first (the corpus, `gexnet.corpus.tokens`);
genes are tokens and the rank is the position. Three objectives share one pre-LayerNorm
transformer (GPT-2's block, exact GELU, PyTorch's fused scaled-dot-product attention):

- `gpt`: next gene. The input is <cls> then the list shifted by one, so the top gene is
  predicted too; causal attention; the LM head is the token embedding (tied).
- `bert_genes`: masked genes. 15% of a sample's genes are chosen (80% <mask>, 10% a random
  gene, 10% kept) and predicted through the tied head; attention is bidirectional.
- `bert_expr`: masked expression. The input at a position is the gene's token embedding (the
  gene identity acts as the position embedding, there is no rank position) plus the embedding
  of its within-sample level 1..100; 15% of the levels are masked and predicted as one of
  101 classes (0..100).

Zero expression: sequences hold expressed genes only (a gene with a zero count is absent, as
in the published corpus), so no position carries a zero; <pad> fills the rest of the context,
is never attended to (BERT: key mask; GPT: pads only follow real genes) and never a target.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from gexnet.formats.corpus import FIRST_GENE_TOKEN, PAD

OBJECTIVES = ("gpt", "bert_genes", "bert_expr")
IGNORE = -100  # target of a position without a loss (F.cross_entropy's ignore_index)


@dataclass(frozen=True)
class ModelConfig:
    objective: str
    n_tokens: int  # vocabulary size, special tokens included
    context: int
    hidden: int = 200
    layers: int = 6
    heads: int = 4
    ffn: int = 800
    levels: int = 100  # within-sample expression levels (bert_expr: levels + 1 classes)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r}: expected one of {OBJECTIVES}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not a multiple of heads {self.heads}")

    def to_dict(self) -> dict:
        return asdict(self)


class SelfAttention(nn.Module):
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.heads, self.dropout = c.heads, c.dropout
        self.qkv = nn.Linear(c.hidden, 3 * c.hidden)
        self.proj = nn.Linear(c.hidden, c.hidden)

    def forward(self, x: torch.Tensor, causal: bool, key_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = (
            z.view(b, t, self.heads, h // self.heads).transpose(1, 2)
            for z in self.qkv(x).split(h, dim=2)
        )
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask, is_causal=causal,
            dropout_p=self.dropout if self.training else 0.0,
        )  # fmt: skip
        return self.proj(y.transpose(1, 2).reshape(b, t, h))


class Block(nn.Module):
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(c.hidden), nn.LayerNorm(c.hidden)
        self.attn = SelfAttention(c)
        self.fc, self.fc_proj = nn.Linear(c.hidden, c.ffn), nn.Linear(c.ffn, c.hidden)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, causal: bool, key_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln_1(x), causal, key_mask))
        return x + self.drop(self.fc_proj(F.gelu(self.fc(self.ln_2(x)))))


class GeneLM(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = self.config = config
        self.wte = nn.Embedding(c.n_tokens, c.hidden)
        if c.objective == "bert_expr":
            self.wle = nn.Embedding(c.levels + 2, c.hidden)  # levels 0..levels and the mask
            self.head = nn.Linear(c.hidden, c.levels + 1)
        else:
            self.wpe = nn.Embedding(c.context, c.hidden)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.hidden)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith(("attn.proj.weight", "fc_proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, tokens: torch.Tensor, levels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch × positions × classes) for input tokens (and levels for bert_expr)."""
        return self.head_logits(self.hidden_states(tokens, levels))

    def hidden_states(self, tokens: torch.Tensor, levels: torch.Tensor | None) -> torch.Tensor:
        c = self.config
        if c.objective == "bert_expr":
            x = self.wte(tokens) + self.wle(levels)
        else:
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            x = self.wte(tokens) + self.wpe(positions)
        x = self.drop(x)
        causal = c.objective == "gpt"
        key_mask = None
        if not causal:
            keep = tokens != PAD
            keep[:, 0] = True  # a sample with no gene still attends somewhere (no NaN)
            key_mask = keep[:, None, None, :]
        for block in self.blocks:
            x = block(x, causal, key_mask)
        return self.ln_f(x)

    def head_logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.objective == "bert_expr":
            return self.head(x)
        return x @ self.wte.weight.T  # tied LM head

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of the token losses, number of targets) of a batch from `gexnet.training.data`.

        Sums, not means: a step's loss is the sum over its micro-batches and ranks divided by
        the step's target count, so accumulation and data parallelism leave it unchanged. The
        head runs at target positions only (BERT: 15% of them; the vocabulary-wide head is
        most of a small model's cost).
        """
        targets = batch["targets"]
        picked = targets != IGNORE
        x = self.hidden_states(batch["tokens"], batch.get("levels"))[picked]
        total = F.cross_entropy(self.head_logits(x).float(), targets[picked], reduction="sum")
        return total, picked.sum()

    def n_params(self, embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if not embeddings:
            n -= self.wte.weight.numel() + (
                self.wle.weight.numel() if hasattr(self, "wle") else self.wpe.weight.numel()
            )
        return n

    def head_params(self) -> int:
        """Parameters of the output head: the tied token embedding, or bert_expr's classifier."""
        if self.config.objective == "bert_expr":
            return sum(p.numel() for p in self.head.parameters())
        return self.wte.weight.numel()

    def work(self, batch: dict[str, torch.Tensor]) -> dict[str, int]:
        """What `loss` does on `batch`: real tokens (non-<pad> inputs), targets and training
        FLOPs (forward + backward).

        FLOPs = 6 × body parameters × real tokens + 6 × head parameters × targets + attention,
        where the body is every non-embedding parameter outside the head (Kaplan's 6N, biases
        and norms included) and attention is 12 · layers · hidden per query–key pair that the
        kernel computes: all context² pairs of a sample for BERT (the key mask hides padding,
        it does not skip it), the context · (context + 1) / 2 pairs on and below the diagonal
        for the causal GPT. Dense layers also run at padded positions; that is waste, not
        model work, so it is not counted and shows as a lower MFU.
        """
        c = self.config
        tokens = batch["tokens"]
        n, t = tokens.shape
        real = int((tokens != PAD).sum())
        targets = int((batch["targets"] != IGNORE).sum())
        head = self.head_params()
        body = self.n_params(embeddings=False) - (head if c.objective == "bert_expr" else 0)
        pairs = n * (t * (t + 1) // 2 if c.objective == "gpt" else t * t)
        flops = 6 * body * real + 6 * head * targets + 12 * c.layers * c.hidden * pairs
        return {"tokens": real, "targets": targets, "flops": flops}

    def gene_embeddings(self) -> torch.Tensor:
        """The token-embedding rows of the genes (special tokens left out)."""
        return self.wte.weight[FIRST_GENE_TOKEN:].detach()
