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
            category="Normalization",
            labels={"species": "{species}", "table": "genes and samples in the corpus"},
        ),
    log:
        logs("corpus_{species}"),
    benchmark:
        benchmarks("corpus_{species}")
    conda:
        "../envs/gexnet.yaml"
    resources:
        block_values=config["block_values"],
        mem_mb=attempt_scaled(4000),
        runtime=attempt_scaled(240),
    params:
        settings=as_json({key: config[key] for key in ("genes", "normalize", "tokens", "dense")}),
        seed=config["seed"],
    shell:
        "python -m gexnet normalize corpus {input.compendium} --qc {input.qc}"
        " --settings {params.settings} --block-values {resources.block_values} --seed {params.seed}"
        " --out {output.corpus} --summary {output.summary} > {log} 2>&1"
