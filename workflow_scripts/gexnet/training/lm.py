"""Training a gene language model with the one trainer (`gexnet.training.trainer`): the corpus
as its data source (`gexnet.training.data`), the model's loss, and the final model's files.

What a training job writes in its output directory: model.safetensors (weights), model.json (the
model's config, the experiment, the training fingerprint, the corpora), vocabulary.tsv (with a
species column: whose gene each token is, "" for special tokens), and the
trainer's metrics.tsv and validation.tsv. metrics.tsv counts, per step and all processes
together: tokens (real tokens: input positions that are not <pad>), targets (positions with a
loss), flops (the training FLOPs of those, `GeneLM.work`), tokens_per_s (real tokens / seconds;
padding is not counted) and mfu.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gexnet.errors import GexnetError
from gexnet.formats.corpus import Corpus
from gexnet.formats.io import atomic_path, write_table
from gexnet.models.gene_lm import GeneLM, ModelConfig
from gexnet.training import trainer
from gexnet.training.data import GeneLMData, JointSequences, pseudo_halves, whole

WORK = ("tokens", "targets", "flops")  # GeneLM.work's counts, summed over a step


def species_of(experiment: dict) -> list[str]:
    """The species whose corpora an experiment reads, in its order (one or two)."""
    species = experiment.get("species", "human")
    return [species] if isinstance(species, str) else list(species)


def joint_sequences(corpus_dirs: list[str | Path] | str | Path, experiment: dict,
                    seed: int) -> JointSequences:  # fmt: skip
    """An experiment's token sequences: one corpus per species of it (one for the pseudo-species
    control, split in halves by `seed`), each filtered to its biotypes."""
    if isinstance(corpus_dirs, str | Path):
        corpus_dirs = [corpus_dirs]
    species = species_of(experiment)
    if len(corpus_dirs) != len(species):
        raise GexnetError(
            f"{len(corpus_dirs)} corpora for {len(species)} species ({', '.join(species)}): "
            "give one corpus per species, in that order"
        )
    sequences = [Corpus(d).sequences(experiment["normalization"], experiment.get("biotypes"))
                 for d in corpus_dirs]  # fmt: skip
    if experiment.get("pseudo_species"):
        return JointSequences(list(pseudo_halves(sequences[0], species[0], seed)))
    return JointSequences([whole(s, name) for s, name in zip(sequences, species, strict=True)])


def train(
    corpus_dirs: list[str | Path] | str | Path, experiment: dict, model_settings: dict,
    settings: dict, seed: int, outdir: str | Path, checkpoint_dir: str | Path, threads: int | None = None,
) -> None:  # fmt: skip
    """Train `experiment` ({objective, normalization, species, pseudo_species, biotypes}) on
    its corpora (one per species, in its order) and write the final model into `outdir`
    (checkpoints in `checkpoint_dir`, kept across runs)."""
    sequences = joint_sequences(corpus_dirs, experiment, seed)
    corpora = [p.sequences.corpus for p in sequences.parts]
    corpora = list({c.directory: c for c in corpora}.values())  # the pseudo halves share one
    objective = experiment["objective"]
    data = GeneLMData(sequences, objective, seed, settings["mask_fraction"])
    config = ModelConfig(objective, sequences.n_tokens, sequences.context,
                         levels=sequences.n_levels, **model_settings)  # fmt: skip
    torch.manual_seed(seed)  # the same initial weights in every process and every rerun
    model = GeneLM(config)
    fingerprint = {"data": sequences.digest(seed), "experiment": experiment,
                   "model": config.to_dict(), "mask_fraction": settings["mask_fraction"]}  # fmt: skip
    job = trainer.Job(
        name=f"{objective}/{experiment['normalization']}",
        loss=lambda m, batch: m.loss(batch),
        fingerprint=fingerprint,
        data_file=" or ".join(str(c.header_path) for c in corpora),
        data_name="corpus" if len(corpora) == 1 else "pair of corpora",
        work=model.work,
        work_columns=WORK,
        throughput="tokens",
    )
    with trainer.processes(settings, threads) as procs:
        metrics = trainer.fit(model, data, job, settings, seed, checkpoint_dir, procs)
        if procs.rank == 0:
            _write_model(Path(outdir), model, config, experiment, metrics, sequences, corpora)
        if procs.world > 1:
            trainer.dist.barrier()


def _write_model(outdir, model, config, experiment, metrics, sequences, corpora) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(outdir / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_table(sequences.vocabulary, outdir / "vocabulary.tsv")
    metrics.flush(outdir)
    description = {
        "model": config.to_dict(), "experiment": experiment, "training": metrics.fingerprint,
        "corpora": [str(c.directory) for c in corpora], "n_parameters": model.n_params(),
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
