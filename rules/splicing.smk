# Splicing factors → isoform expression (config splicing, splicing_network, splicing_models):
# the isoform data set from the transcript-level compendium and the gene corpus, the networks
# (one trainer; the branch joins a trained autoencoder, frozen), their test-sample quality
# beside two baselines, exact DeepLIFT scores of every SF for every isoform and gene, and their
# validation against known edges (the demo: its planted ones).


wildcard_constraints:
    splicing_model="|".join(map(re.escape, SPLICING_MODELS)) or "(?!)",


rule splicing_data:
    input:
        transcripts=lambda wildcards: compendium(SPLICING_SPECIES, "transcript"),
        corpus=results(f"corpus/{SPLICING_SPECIES}"),
        qc=results(f"qc/{SPLICING_SPECIES}_samples.parquet"),
    output:
        directory(results("splicing/data")),
    log:
        logs("splicing_data"),
    benchmark:
        benchmarks("splicing_data")
    conda:
        "../envs/gexnet.yaml"
    resources:
        **BLOCK_RESOURCES,
        mem_mb=attempt_scaled(8000),
        runtime=attempt_scaled(240),
    params:
        config=job_config("seed", "normalize", splicing=SPLICING_DATA_SETTINGS),
    shell:
        "python -m gexnet splicing data {input.transcripts} --corpus {input.corpus}"
        " --qc {input.qc} --out {output} --config {params.config}"
        " --config block_values={resources.block_values} > {log} 2>&1"


rule train_splicing:
    input:
        unpack(splicing_train_inputs),
    output:
        weights=results("splicing/{splicing_model}/model.safetensors"),
        description=results("splicing/{splicing_model}/model.json"),
        metrics=results("splicing/{splicing_model}/metrics.tsv"),
        validation=results("splicing/{splicing_model}/validation.tsv"),
    log:
        logs("train_splicing_{splicing_model}"),
    benchmark:
        benchmarks("train_splicing_{splicing_model}")
    conda:
        "../envs/gexnet.yaml"
    threads: train_threads
    resources:
        **{key: train_resource(key) for key in TRAIN_RESOURCES},
    params:
        launcher=train_launcher,
        config=train_job_config,
        branch=lambda wildcards, input: (
            f"--branch $(dirname {input.branch})" if "branch" in input.keys() else ""
        ),
        checkpoints=lambda wildcards: results(f"checkpoints/splicing_{wildcards.splicing_model}"),
    shell:
        "{params.launcher} -m gexnet splicing train {input.data} --config {params.config}"
        " --name {wildcards.splicing_model} {params.branch} --threads {threads}"
        " --checkpoints {params.checkpoints} --out $(dirname {output.weights}) > {log} 2>&1"


rule splicing_quality:
    input:
        data=rules.splicing_data.output[0],
        models=expand(
            results("splicing/{splicing_model}/model.safetensors"),
            splicing_model=SPLICING_MODELS,
        ),
    output:
        overall=results("splicing/quality/overall.parquet"),
        isoforms=results("splicing/quality/isoforms.parquet"),
    log:
        logs("splicing_quality"),
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(16000),
        runtime=attempt_scaled(120),
    params:
        config=job_config(splicing={"ridge_alpha": SPLICING["ridge_alpha"]}),
        models=lambda wildcards, input: " ".join(str(Path(m).parent) for m in input.models),
        names=" ".join(SPLICING_MODELS),
    shell:
        "python -m gexnet splicing quality {input.data} {params.models}"
        " --names {params.names} --config {params.config}"
        " --out $(dirname {output.overall}) > {log} 2>&1"


rule splicing_attribution:
    input:
        data=rules.splicing_data.output[0],
        weights=rules.train_splicing.output.weights,
    output:
        isoforms=results("splicing/{splicing_model}/attribution/isoforms.parquet"),
        genes=results("splicing/{splicing_model}/attribution/genes.parquet"),
        checks=results("splicing/{splicing_model}/attribution/checks.parquet"),
        top=report(
            results("splicing/{splicing_model}/attribution/top_targets.tsv"),
            caption="report/splicing_targets.rst",
            category=SECTIONS["splicing"],
            labels={"model": "{splicing_model}", "table": "top targets per SF"},
        ),
    log:
        logs("splicing_attribution_{splicing_model}"),
    benchmark:
        benchmarks("splicing_attribution_{splicing_model}")
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(16000),
        runtime=attempt_scaled(240),
    params:
        config=job_config("seed", splicing={"deeplift": SPLICING["deeplift"]}),
    shell:
        "python -m gexnet splicing attribute $(dirname {input.weights}) --data {input.data}"
        " --config {params.config} --out $(dirname {output.isoforms}) > {log} 2>&1"


rule splicing_validation:
    input:
        attribution=rules.splicing_attribution.output.isoforms,
        edges=lambda wildcards: splicing_edges(),
    output:
        results("splicing/{splicing_model}/validation_auroc.tsv"),
    log:
        logs("splicing_validation_{splicing_model}"),
    conda:
        "../envs/gexnet.yaml"
    params:
        config=job_config(splicing={"species": SPLICING_SPECIES}),
    shell:
        "python -m gexnet splicing validate $(dirname {input.attribution}) --edges {input.edges}"
        " --config {params.config} --out {output} > {log} 2>&1"


rule splicing_summary:
    input:
        quality=rules.splicing_quality.output.overall,
        validation=(
            expand(
                results("splicing/{splicing_model}/validation_auroc.tsv"),
                splicing_model=SPLICING_MODELS,
            )
            if splicing_edges()
            else []
        ),
    output:
        report(
            results("splicing/summary.tsv"),
            caption="report/splicing_summary.rst",
            category=SECTIONS["splicing"],
            labels={"table": "quality and validation of every model and baseline"},
        ),
    log:
        logs("splicing_summary"),
    conda:
        "../envs/gexnet.yaml"
    params:
        config=job_config(splicing={"validation_reference": SPLICING["validation_reference"]}),
        names=lambda wildcards, input: " ".join(SPLICING_MODELS) if input.validation else "",
    shell:
        "python -m gexnet splicing summary {input.quality} --validation {input.validation}"
        " --names {params.names} --config {params.config} --out {output} > {log} 2>&1"
