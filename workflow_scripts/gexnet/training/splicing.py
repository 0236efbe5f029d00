"""Training the isoform network (`models.splicing`) with the one trainer.

Data: an isoform data set (`gexnet.corpus.isoforms`): its training samples train, its test
samples are the trainer's validation rows (the loss per epoch is reported, nothing is chosen by
it). The SFs are standardised by their training means and standard deviations (buffers of the
net). A model with the branch reads the branch autoencoder's genes from the same corpus and
joins its frozen features to the last layer; the autoencoder must have been trained on that
corpus (checked by digest).

`permute_factors` (a control): the SF rows of the training samples are permuted across samples
by the seed before training, so the net can learn nothing from the SFs; its attributions on the
real test samples should score the planted edges at chance.

What a job writes: model.safetensors (the net's weights, the frozen branch's copy included),
model.json (architecture, settings, the branch's architecture and genes, the training
fingerprint), metrics.tsv and validation.tsv (the trainer's).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gexnet.errors import GexnetError
from gexnet.formats.corpus import Dense
from gexnet.formats.io import atomic_path
from gexnet.formats.isoforms import IsoformData
from gexnet.models.autoencoder import load_trained as load_autoencoder
from gexnet.models.splicing import SplicingConfig, SplicingNet
from gexnet.training import trainer

WORK = ("samples", "flops")
PERMUTE_STREAM = 0x5045


class IsoformBatches:
    """The trainer's data source: row i is the i-th training sample, then the test ones."""

    def __init__(self, data: IsoformData, context: Dense | None, permute: bool, seed: int) -> None:
        train, test = data.rows("train"), data.rows("test")
        self.data, self.context = data, context
        self.row_of = np.concatenate([train, test]).astype(np.int64)
        self.n_train, self.n_samples = len(train), len(self.row_of)
        # the control: training row i reads the SFs of training row factor_of[i]
        self.factor_of = self.row_of.copy()
        if permute:
            rng = np.random.default_rng([seed, PERMUTE_STREAM])
            self.factor_of[: self.n_train] = rng.permutation(train)

    def batch(self, rows: np.ndarray, epoch: int) -> dict[str, torch.Tensor]:
        samples = self.row_of[rows]
        values = self.data.read(samples)
        values["factors"] = self.data.factor_values.rows(self.factor_of[rows])
        if self.context is not None:
            values["context"] = self.context.rows(samples)
        return {k: torch.from_numpy(v) for k, v in values.items()}


def branch_parts(data: IsoformData, autoencoder_dir: str | Path):
    """(frozen autoencoder, its genes' reader, SF columns in its genes, their fill values)."""
    model, description = load_autoencoder(autoencoder_dir)
    genes = pd.read_parquet(Path(autoencoder_dir) / description["genes"])
    if Path(description["corpus"]).resolve() != data.corpus.directory.resolve():
        raise GexnetError(
            f"{autoencoder_dir}: trained on {description['corpus']}, not on the corpus of the "
            f"isoform data ({data.corpus.directory}): the branch must read the same samples"
        )
    if description["training"]["data"] != data.corpus.digest:
        raise GexnetError(f"{autoencoder_dir}: trained on another version of "
                          f"{data.corpus.directory}; retrain it")  # fmt: skip
    sf = genes["gene_id"].isin(data.factors["gene_id"]).to_numpy()
    fill = genes["mean"].to_numpy(np.float32)[sf]
    context = Dense.of(data.corpus, genes["column"].to_numpy())
    return model, context, np.flatnonzero(sf), fill, description


def build_net(data: IsoformData, network: dict, branch=None) -> SplicingNet:
    """An untrained net for the data set with `network` (the splicing_network section)."""
    center, scale = data.factor_scaling()
    width = branch[0].head.in_features if branch is not None else 0
    config = SplicingConfig(
        n_factors=len(data.factors), n_isoforms=len(data.isoforms), n_genes=len(data.genes),
        hidden=list(network["hidden"]), head=network["head"], branch_width=width,
    )  # fmt: skip
    model, _, columns, fill = branch[:4] if branch is not None else (None, None, None, None)
    return SplicingNet(config, data.isoforms["gene"].to_numpy(), center, scale, model, fill,
                       columns)  # fmt: skip


def train(data_dir: str | Path, name: str, network: dict, train_settings: dict, seed: int,
          outdir: str | Path, checkpoint_dir: str | Path, branch_dir: str | Path | None = None,
          threads: int | None = None) -> None:  # fmt: skip
    """Train splicing model `name` (`network`: its effective splicing_network section)."""
    data = IsoformData(data_dir)
    if network["branch"] and branch_dir is None:
        raise GexnetError(f"splicing_models.{name}: branch: true needs splicing.branch_autoencoder")
    branch = branch_parts(data, branch_dir) if network["branch"] else None
    torch.manual_seed(seed)
    net = build_net(data, network, branch)
    source = IsoformBatches(data, branch[1] if branch else None, network["permute_factors"], seed)
    fingerprint = {"data": data.corpus.digest, "isoforms": data.header["n_isoforms"],
                   "model": net.config.to_dict(), "network": network,
                   "branch": branch[4]["training"] if branch else None}  # fmt: skip
    job = trainer.Job(name=f"splicing/{name}", loss=lambda m, b: m.loss(b),
                      fingerprint=fingerprint, data_file=data.corpus.header_path,
                      data_name="corpus", work=net.work, work_columns=WORK,
                      throughput="samples")  # fmt: skip
    with trainer.processes(train_settings, threads) as procs:
        metrics = trainer.fit(net, source, job, train_settings, seed, checkpoint_dir, procs)
        if procs.rank == 0:
            _write(Path(outdir), name, net, network, metrics, data, branch)
        if procs.world > 1:
            trainer.dist.barrier()


def _write(outdir, name, net, network, metrics, data, branch) -> None:
    from safetensors.torch import save_file

    state = {k: (v.float() if v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in net.state_dict().items()}  # fmt: skip
    with atomic_path(outdir / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    metrics.flush(outdir)
    description = {
        "name": name, "model": net.config.to_dict(), "network": network,
        "training": metrics.fingerprint, "data": str(data.directory),
        "branch": None if branch is None else {
            "autoencoder": branch[4]["model"], "directory": branch[4].get("name"),
            "columns": [int(c) for c in branch[1].columns],
        },
        "n_parameters": net.n_params(), "weights": "model.safetensors",
    }  # fmt: skip
    with atomic_path(outdir / "model.json") as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n")
