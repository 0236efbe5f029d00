# Gene-property classifiers on every embedding (trained experiments and baselines), sharded
# over labels; their comparison; the transfer of every label to the lncRNAs.


wildcard_constraints:
    baseline="|".join(config["classifiers"]["baselines"]) or "(?!)",
    # single-species experiments and baselines: a joint model's embedding is not classified
    embedding="|".join(map(re.escape, EMBEDDINGS)) or "(?!)",
    shard=r"\d+",
    transfer_experiment="|".join(map(re.escape, TRANSFER_EXPERIMENTS)) or "(?!)",


rule embedding_baseline:
    input:
        # (functions: with no experiment configured there is no reference, nor this job)
        reference=lambda wildcards: results(f"embeddings/{REFERENCE_EXPERIMENT}.parquet"),
        corpus=lambda wildcards: results(f"corpus/{embedding_species(REFERENCE_EXPERIMENT)}"),
    output:
        results("embeddings/baseline_{baseline}.parquet"),
    log:
        logs("embedding_baseline_{baseline}"),
    conda:
        "../envs/gexnet.yaml"
    resources:
        **BLOCK_RESOURCES,
        mem_mb=attempt_scaled(4000),
    params:
        config=job_config("seed"),
    shell:
        "python -m gexnet classify baseline {wildcards.baseline} --reference {input.reference}"
        " --corpus {input.corpus} --out {output} --config {params.config}"
        " --config block_values={resources.block_values} > {log} 2>&1"


rule classifier_shard:
    input:
        unpack(classifier_inputs),
    output:
        temp(results("classifiers/{embedding}/shards/{shard}.parquet")),
    log:
        logs("classifiers_{embedding}_{shard}"),
    conda:
        "../envs/gexnet.yaml"
    threads: config["classifiers"]["threads"]
    resources:
        mem_mb=attempt_scaled(8000),
        runtime=attempt_scaled(120),
    params:
        labels=lambda wildcards, input: classifier_label_args(wildcards.embedding, input),
        config=job_config("seed", "classifiers"),
    shell:
        "python -m gexnet classify metrics {input.embedding} {params.labels}"
        " --config {params.config} --shard {wildcards.shard} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule classifier_metrics:
    input:
        expand(
            results("classifiers/{{embedding}}/shards/{shard}.parquet"),
            shard=range(config["classifiers"]["shards"]),
        ),
    output:
        results("classifiers/{embedding}/metrics.parquet"),
    log:
        logs("classifiers_{embedding}"),
    conda:
        "../envs/gexnet.yaml"
    shell:
        "python -m gexnet classify gather {input} --out {output} > {log} 2>&1"


rule classifier_label_counts:
    input:
        unpack(lambda wildcards: classifier_inputs(wildcards, COUNTED[wildcards.species])),
    output:
        report(
            results("classifiers/label_counts_{species}.tsv"),
            caption="report/label_counts.rst",
            category=SECTIONS["classifiers"],
            labels={"species": "{species}", "table": "labels kept and dropped, by source"},
        ),
    log:
        logs("classifiers_label_counts_{species}"),
    wildcard_constraints:
        species="human|mouse",
    conda:
        "../envs/gexnet.yaml"
    params:
        labels=lambda wildcards, input: classifier_label_args(COUNTED[wildcards.species], input),
        config=job_config("classifiers"),
    shell:
        "python -m gexnet classify counts {input.embedding} {params.labels}"
        " --config {params.config} --out {output} > {log} 2>&1"


rule classifier_comparison:
    input:
        expand(results("classifiers/{embedding}/metrics.parquet"), embedding=COMPARED),
    output:
        table=report(
            results("classifiers/comparison.tsv"),
            caption="report/classifier_comparison.rst",
            category=SECTIONS["classifiers"],
            labels={"table": "AUROC by embedding"},
        ),
        auroc=results("classifiers/auroc.parquet"),
    log:
        logs("classifier_comparison"),
    conda:
        "../envs/gexnet.yaml"
    params:
        metrics=lambda wildcards, input: " ".join(
            f"{name}={path}" for name, path in zip(COMPARED, input)
        ),
        reference=REFERENCE_EXPERIMENT,
    shell:
        "python -m gexnet classify compare {params.metrics}"
        " --reference {params.reference} --table {output.table} --auroc {output.auroc}"
        " > {log} 2>&1"


# Only experiments whose embedding holds lncRNAs outside the training biotypes (not the
# coding-only ones) have a transfer.
rule lncrna_transfer:
    input:
        unpack(lambda wildcards: classifier_inputs(wildcards, wildcards.transfer_experiment)),
    output:
        predictions=results("lncrna/{transfer_experiment}/predictions.parquet"),
        top=report(
            results("lncrna/{transfer_experiment}/top_properties.tsv"),
            caption="report/lncrna_top.rst",
            category=SECTIONS["lncrna"],
            labels={"experiment": "{transfer_experiment}", "table": "each lncRNA's top labels"},
        ),
        labels=results("lncrna/{transfer_experiment}/labels.tsv"),
    log:
        logs("lncrna_{transfer_experiment}"),
    conda:
        "../envs/gexnet.yaml"
    threads: config["classifiers"]["threads"]
    resources:
        mem_mb=attempt_scaled(16000),
    params:
        labels=lambda wildcards, input: classifier_label_args(wildcards.transfer_experiment, input),
        config=job_config("classifiers"),
    shell:
        "python -m gexnet classify transfer {input.embedding} {params.labels}"
        " --config {params.config} --threads {threads}"
        " --predictions {output.predictions} --top {output.top}"
        " --labels-summary {output.labels} > {log} 2>&1"
