"""The gene language models against an independent implementation (the transformers library's
GPT-2 with the same sizes and the same weights), their losses, and the work they count: tokens
and targets counted by hand, FLOPs from the parameter shapes and PyTorch's FLOP counter."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gexnet.formats.corpus import CLS, MASK, PAD
from gexnet.models.gene_lm import IGNORE, GeneLM, ModelConfig

SIZES = {"n_tokens": 97, "context": 32, "hidden": 48, "layers": 3, "heads": 4, "ffn": 80}


def gpt2_with_weights_of(model: GeneLM):
    transformers = pytest.importorskip("transformers", reason="transformers is in the test extras")
    c = model.config
    hf = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(
            vocab_size=c.n_tokens, n_positions=c.context, n_embd=c.hidden, n_layer=c.layers,
            n_head=c.heads, n_inner=c.ffn, activation_function="gelu", layer_norm_epsilon=1e-5,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        )
    ).eval()  # fmt: skip
    ours = model.state_dict()
    with torch.no_grad():
        hf.transformer.wte.weight.copy_(ours["wte.weight"])
        hf.transformer.wpe.weight.copy_(ours["wpe.weight"])
        hf.transformer.ln_f.weight.copy_(ours["ln_f.weight"])
        hf.transformer.ln_f.bias.copy_(ours["ln_f.bias"])
        for i, block in enumerate(hf.transformer.h):
            p = f"blocks.{i}."
            pairs = {  # GPT-2's Conv1D stores weights as in × out: ours transposed
                block.ln_1: ("ln_1", False), block.ln_2: ("ln_2", False),
                block.attn.c_attn: ("attn.qkv", True), block.attn.c_proj: ("attn.proj", True),
                block.mlp.c_fc: ("fc", True), block.mlp.c_proj: ("fc_proj", True),
            }  # fmt: skip
            for module, (name, transpose) in pairs.items():
                weight = ours[p + name + ".weight"]
                module.weight.copy_(weight.T if transpose else weight)
                module.bias.copy_(ours[p + name + ".bias"])
    return hf


def test_gpt_logits_match_transformers_gpt2():
    torch.manual_seed(0)
    model = GeneLM(ModelConfig("gpt", **SIZES)).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters and biases
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    hf = gpt2_with_weights_of(model)
    tokens = torch.randint(3, SIZES["n_tokens"], (4, SIZES["context"]))
    tokens[1, 20:] = PAD  # padding after the genes
    with torch.no_grad():
        ours = model(tokens)
        theirs = hf(tokens).logits
    assert ours.shape == theirs.shape == (4, SIZES["context"], SIZES["n_tokens"])
    assert (ours - theirs).abs().max().item() < 1e-4
    # the head is tied: one tensor
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()
    assert "lm_head.weight" not in model.state_dict()


def test_gpt_is_causal_and_bert_ignores_padding():
    torch.manual_seed(1)
    tokens = torch.randint(3, SIZES["n_tokens"], (2, SIZES["context"]))
    changed = tokens.clone()
    changed[:, 10:] = torch.randint(3, SIZES["n_tokens"], (2, SIZES["context"] - 10))
    gpt = GeneLM(ModelConfig("gpt", **SIZES)).eval()
    with torch.no_grad():
        assert torch.equal(gpt(tokens)[:, :10], gpt(changed)[:, :10])
        assert not torch.allclose(gpt(tokens)[:, 10:], gpt(changed)[:, 10:])
    bert = GeneLM(ModelConfig("bert_genes", **SIZES)).eval()
    padded = tokens.clone()
    padded[:, 12:] = PAD
    with torch.no_grad():
        before = bert(padded)
        bert.wte.weight[PAD] += 1.0  # what a pad carries cannot reach the genes...
        after = bert(padded)
    genes = slice(PAD + 1, None)  # (the <pad> logit itself moves with the tied head)
    assert torch.allclose(before[:, :12, genes], after[:, :12, genes], atol=1e-6)
    assert not torch.allclose(
        before[:, 12:, genes], after[:, 12:, genes], atol=1e-6
    )  # ...but is there
    # and the genes see each other both ways
    changed = padded.clone()
    changed[:, 11] = (changed[:, 11] + 1 - 3) % (SIZES["n_tokens"] - 3) + 3
    with torch.no_grad():
        assert not torch.allclose(bert(changed)[:, 0], after[:, 0], atol=1e-6)


def test_bert_expr_uses_gene_identity_not_rank():
    torch.manual_seed(2)
    model = GeneLM(ModelConfig("bert_expr", **SIZES)).eval()
    tokens = torch.randint(3, SIZES["n_tokens"], (1, 16))
    levels = torch.randint(1, 101, (1, 16))
    perm = torch.randperm(16)
    with torch.no_grad():
        out = model(tokens, levels)
        shuffled = model(tokens[:, perm], levels[:, perm])
    assert out.shape == (1, 16, 101)
    # no rank position: permuting the (gene, level) pairs permutes the outputs
    assert torch.allclose(out[:, perm], shuffled, atol=1e-5)


@pytest.mark.parametrize("objective", ["gpt", "bert_genes", "bert_expr"])
def test_loss_is_a_sum_over_targets(objective):
    torch.manual_seed(3)
    model = GeneLM(ModelConfig(objective, **SIZES)).eval()
    tokens = torch.randint(3, SIZES["n_tokens"], (3, SIZES["context"]))
    levels = torch.randint(1, 101, (3, SIZES["context"]))
    targets = torch.full_like(tokens, IGNORE)
    targets[:, ::3] = (levels if objective == "bert_expr" else tokens)[:, ::3]
    inputs = tokens.clone()
    if objective == "bert_genes":
        inputs[:, ::3] = MASK
    batch = {"tokens": inputs, "levels": levels, "targets": targets}
    with torch.no_grad():
        total, count = model.loss(batch)
        halves = [model.loss({k: v[i : i + 1] for k, v in batch.items()}) for i in range(3)]
        logits = model(inputs, levels)
    assert count.item() == (targets != IGNORE).sum().item()
    assert torch.allclose(total, sum(h[0] for h in halves), rtol=1e-5)
    picked = targets != IGNORE
    expected = torch.nn.functional.cross_entropy(logits[picked], targets[picked], reduction="sum")
    assert torch.allclose(total, expected, rtol=1e-5)


def test_config_errors():
    with pytest.raises(ValueError, match="objective"):
        ModelConfig("t5", n_tokens=10, context=8)
    with pytest.raises(ValueError, match="multiple of heads"):
        ModelConfig("gpt", n_tokens=10, context=8, hidden=10, heads=4)


def test_paper_size_parameter_count():
    # hidden 200, 6 layers, 4 heads, FFN 800, context 2,048; ~20k genes (coding) + specials
    model = GeneLM(ModelConfig("gpt", n_tokens=20_003, context=2048))
    blocks = 6 * (4 * 200 * 200 + 2 * 200 * 800) + 6 * (3 * 200 + 200 + 800 + 200 + 4 * 200)
    assert model.n_params(embeddings=False) == blocks + 2 * 200  # and the final LayerNorm
    # token and position embeddings; the LM head shares the token embedding
    assert model.n_params() == blocks + 2 * 200 + (20_003 + 2048) * 200 == 7_306_200


def padded_batch(objective: str, genes_per_sample: list[int], every: int = 4):
    """A batch of samples with the given numbers of genes (then <pad>), as `gexnet.training.data`
    makes it: GPT predicts every gene; BERT targets every `every`-th gene, <mask>ed."""
    torch.manual_seed(4)
    n, t = len(genes_per_sample), SIZES["context"]
    genes = torch.randint(3, SIZES["n_tokens"], (n, t))
    levels = torch.randint(1, 101, (n, t))
    for i, k in enumerate(genes_per_sample):
        genes[i, k:], levels[i, k:] = PAD, 0
    real = genes != PAD
    if objective == "gpt":
        inputs = torch.cat([torch.full((n, 1), CLS), genes[:, :-1]], dim=1)
        return {"tokens": inputs, "targets": torch.where(real, genes, IGNORE)}
    chosen = real & (torch.arange(t) % every == 0)
    if objective == "bert_genes":
        return {"tokens": torch.where(chosen, MASK, genes),
                "targets": torch.where(chosen, genes, IGNORE)}  # fmt: skip
    return {"tokens": genes, "levels": torch.where(chosen, 101, levels),
            "targets": torch.where(chosen, levels, IGNORE)}  # fmt: skip


def by_hand(objective: str):
    """(parameters of the body outside matrices, of its matrices, of the head's matrix, the
    head's bias) from the sizes."""
    h, f, layers = SIZES["hidden"], SIZES["ffn"], SIZES["layers"]
    matrices = layers * (4 * h * h + 2 * h * f)  # qkv, proj, fc, fc_proj
    vectors = layers * (3 * h + h + f + h + 4 * h) + 2 * h  # biases, two LayerNorms, ln_f
    classes = 101 if objective == "bert_expr" else SIZES["n_tokens"]  # tied: the embedding
    return vectors, matrices, classes * h, classes if objective == "bert_expr" else 0


@pytest.mark.parametrize("objective", ["gpt", "bert_genes", "bert_expr"])
def test_work_counts_real_tokens_targets_and_flops(objective):
    t, lengths = SIZES["context"], [32, 20, 5]
    model = GeneLM(ModelConfig(objective, **SIZES))
    work = model.work(padded_batch(objective, lengths))
    # GPT's input is <cls> then the genes: one real token more than genes, up to the context
    real = sum(min(k + 1, t) if objective == "gpt" else k for k in lengths)
    targets = sum(k if objective == "gpt" else -(-k // 4) for k in lengths)
    vectors, matrices, head, head_bias = by_hand(objective)
    pairs = len(lengths) * (t * (t + 1) // 2 if objective == "gpt" else t * t)
    attention = 12 * SIZES["layers"] * SIZES["hidden"] * pairs
    flops = 6 * (vectors + matrices) * real + 6 * (head + head_bias) * targets + attention
    assert work == {"tokens": real, "targets": targets, "flops": flops}


@pytest.mark.parametrize("objective", ["gpt", "bert_genes", "bert_expr"])
def test_work_flops_are_what_pytorch_counts(objective):
    # Unpadded, every position is real: PyTorch's counter sees the matrix products of loss and
    # backward (the head at targets only); biases, norms and attention it leaves out are added
    t, n = SIZES["context"], 2
    model = GeneLM(ModelConfig(objective, **SIZES))
    batch = padded_batch(objective, [t] * n)
    with FlopCounterMode(display=False) as counter:
        total, _ = model.loss(batch)
        total.backward()
    counted = counter.get_flop_counts()["Global"]
    products = sum(v for op, v in counted.items() if str(op) in ("aten.mm", "aten.addmm"))
    work = model.work(batch)
    vectors, _, _, head_bias = by_hand(objective)
    pairs = n * (t * (t + 1) // 2 if objective == "gpt" else t * t)
    rest = 6 * vectors * n * t + 6 * head_bias * work["targets"]
    rest += 12 * SIZES["layers"] * SIZES["hidden"] * pairs
    assert work["tokens"] == n * t
    assert work["targets"] == (n * t if objective == "gpt" else n * t // 4)
    assert work["flops"] == products + rest
