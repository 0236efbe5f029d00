"""Training a gene language model with the one trainer (`gexnet.training.trainer`): the corpus
as its data source (`gexnet.training.data`), the model's loss, and the final model's files.

What a training job writes in its output directory: model.safetensors (weights), model.json (the
model's config, the experiment, the training fingerprint, the corpus), vocabulary.tsv, and the
trainer's metrics.tsv and validation.tsv. metrics.tsv counts, per step and all processes
together: tokens (real tokens: input positions that are not <pad>), targets (positions with a
loss), flops (the training FLOPs of those, `GeneLM.work`), tokens_per_s (real tokens / seconds;
padding is not counted) and mfu.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gexnet.formats.corpus import Corpus
from gexnet.formats.io import atomic_path, write_table
from gexnet.models.gene_lm import GeneLM, ModelConfig
from gexnet.training import trainer
from gexnet.training.data import GeneLMData

WORK = ("tokens", "targets", "flops")  # GeneLM.work's counts, summed over a step


def train(
    corpus_dir: str | Path, experiment: dict, model_settings: dict, settings: dict, seed: int,
    outdir: str | Path, checkpoint_dir: str | Path, threads: int | None = None,
) -> None:  # fmt: skip
    """Train `experiment` ({objective, normalization, biotypes}) on a corpus and write the final
    model into `outdir` (checkpoints in `checkpoint_dir`, kept across runs)."""
    corpus = Corpus(corpus_dir)
    sequences = corpus.sequences(experiment["normalization"], experiment.get("biotypes"))
    objective = experiment["objective"]
    data = GeneLMData(sequences, objective, seed, settings["mask_fraction"])
    config = ModelConfig(objective, sequences.n_tokens, corpus.context, levels=corpus.n_levels,
                         **model_settings)  # fmt: skip
    torch.manual_seed(seed)  # the same initial weights in every process and every rerun
    model = GeneLM(config)
    fingerprint = {"data": corpus.digest, "experiment": experiment, "model": config.to_dict(),
                   "mask_fraction": settings["mask_fraction"]}  # fmt: skip
    job = trainer.Job(
        name=f"{objective}/{experiment['normalization']}",
        loss=lambda m, batch: m.loss(batch),
        fingerprint=fingerprint,
        data_file=corpus.header_path,
        data_name="corpus",
        work=model.work,
        work_columns=WORK,
        throughput="tokens",
    )
    with trainer.processes(settings, threads) as procs:
        metrics = trainer.fit(model, data, job, settings, seed, checkpoint_dir, procs)
        if procs.rank == 0:
            _write_model(Path(outdir), model, config, experiment, metrics, sequences, corpus)
        if procs.world > 1:
            trainer.dist.barrier()


def _write_model(outdir, model, config, experiment, metrics, sequences, corpus) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(outdir / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_table(sequences.vocabulary, outdir / "vocabulary.tsv")
    metrics.flush(outdir)
    description = {
        "model": config.to_dict(), "experiment": experiment, "training": metrics.fingerprint,
        "corpus": str(corpus.directory), "n_parameters": model.n_params(),
        "weights": "model.safetensors", "vocabulary": "vocabulary.tsv",
    }  # fmt: skip
    with atomic_path(outdir / "model.json") as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n")


def load_model(model_dir: str | Path) -> tuple[GeneLM, dict]:
    """A trained model (eval mode) and its description from a training output directory."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    description = json.loads((model_dir / "model.json").read_text())
    model = GeneLM(ModelConfig(**description["model"]))
    model.load_state_dict(load_file(str(model_dir / description["weights"])))
    return model.eval(), description
