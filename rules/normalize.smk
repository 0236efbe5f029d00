# Normalization and the token corpus: scaling, Binning-By-Gene, z-scores, top genes per sample,
# the dense log matrix; streamed within block_values.


rule corpus:
    input:
        compendium=lambda wildcards: compendium(wildcards.species),
        qc=results("qc/{species}_samples.parquet"),
    output:
        corpus=directory(results("corpus/{species}")),
        summary=report(
            results("corpus/{species}_corpus.tsv"),
            caption="report/corpus_summary.rst",
            category=SECTIONS["corpus"],
            labels={"species": "{species}", "table": "genes and samples in the corpus"},
        ),
    log:
        logs("corpus_{species}"),
    benchmark:
        benchmarks("corpus_{species}")
    conda:
        "../envs/gexnet.yaml"
    resources:
        **BLOCK_RESOURCES,
        mem_mb=attempt_scaled(4000),
        runtime=attempt_scaled(240),
    params:
        config=job_config("seed", "genes", "normalize", "tokens", "dense"),
    shell:
        "python -m gexnet normalize corpus {input.compendium} --qc {input.qc}"
        " --out {output.corpus} --summary {output.summary}"
        " --config {params.config}"
        " --config block_values={resources.block_values} > {log} 2>&1"
