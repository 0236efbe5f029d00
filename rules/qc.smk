# Sample QC: per-sample metrics and the counts removed by each rule (their distributions are
# a figure, rules/figures.smk).


rule sample_qc:
    input:
        lambda wildcards: compendium(wildcards.species),
    output:
        samples=results("qc/{species}_samples.parquet"),
        summary=report(
            results("qc/{species}_summary.tsv"),
            caption="report/qc_summary.rst",
            category=SECTIONS["qc"],
            labels={"species": "{species}", "table": "samples removed by each rule"},
        ),
    log:
        logs("sample_qc_{species}"),
    benchmark:
        benchmarks("sample_qc_{species}")
    conda:
        "../envs/gexnet.yaml"
    resources:
        **BLOCK_RESOURCES,
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(60),
    params:
        config=job_config("qc"),
    shell:
        "python -m gexnet qc {input} --samples {output.samples} --summary {output.summary}"
        " --config {params.config}"
        " --config block_values={resources.block_values} > {log} 2>&1"
