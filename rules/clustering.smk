# The clustering benchmark (config clustering): the embeddings the classifiers compare, on the
# same trials of gene groups per label source, each beside its shuffled vectors.


rule clustering:
    input:
        unpack(lambda wildcards: classifier_inputs(wildcards, REFERENCE_EXPERIMENT)),
        embeddings=expand(results("embeddings/{embedding}.parquet"), embedding=COMPARED),
    output:
        trials=results("clustering/trials.parquet"),
        summary=report(
            results("clustering/summary.tsv"),
            caption="report/clustering_summary.rst",
            category=SECTIONS["clustering"],
            labels={"table": "median scores against the shuffled null, tests"},
        ),
    log:
        logs("clustering"),
    benchmark:
        benchmarks("clustering")
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(8000),
        runtime=attempt_scaled(240),
    params:
        embeddings=lambda wildcards, input: " ".join(
            f"{name}={path}" for name, path in zip(COMPARED, input.embeddings)
        ),
        labels=lambda wildcards, input: classifier_label_args(REFERENCE_EXPERIMENT, input),
        config=job_config("seed", "clustering"),
    shell:
        "python -m gexnet clustering {params.embeddings} {params.labels}"
        " --config {params.config} --trials {output.trials} --summary {output.summary}"
        " > {log} 2>&1"
