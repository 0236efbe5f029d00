# Gene annotations and gene-property labels, built from packaged data (offline defaults) or
# configured downloads; outputs under resources/annotation/.
rule annotation_genes:
    output:
        f"{ANNOTATION}/genes_{{species}}.parquet",
    log:
        logs("annotation_genes_{species}"),
    wildcard_constraints:
        species="human|mouse",
    conda:
        "../envs/gexnet.yaml"
    shell:
        "python -m gexnet annotate genes --species {wildcards.species} --out {output} > {log} 2>&1"


rule annotation_orthologs:
    output:
        f"{ANNOTATION}/orthologs.parquet",
    log:
        logs("annotation_orthologs"),
    conda:
        "../envs/gexnet.yaml"
    shell:
        "python -m gexnet annotate orthologs --out {output} > {log} 2>&1"


rule download_label_source:
    output:
        f"{ANNOTATION}/downloads/{{key}}/{{name}}",
    log:
        logs("download_{key}_{name}"),
    wildcard_constraints:
        key="[0-9a-f]{12}",
    conda:
        "../envs/gexnet.yaml"
    resources:
        **DOWNLOAD_RESOURCES,
    params:
        url=lambda wildcards, output: shlex.quote(LABEL_URLS[output[0]]),
    shell:
        "python -m gexnet download --url {params.url} --out {output}"
        " --config download.retries={resources.download_retries}"
        " --config download.backoff_seconds={resources.download_backoff}"
        " --config download.timeout_seconds={resources.download_timeout}"
        " > {log} 2>&1"


rule annotation_labels:
    input:
        unpack(label_inputs),
    output:
        labels=f"{LABELS_DIR}/labels.parquet",
        stats=report(
            f"{LABELS_DIR}/label_stats.tsv",
            caption="report/label_stats.rst",
            category=SECTIONS["annotation"],
            labels={"table": "gene-property labels by source"},
        ),
    log:
        logs("annotation_labels"),
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(4000),
    params:
        sources=lambda wildcards, input: " ".join(
            (
                f"--{name.replace('_', '-')} {shlex.quote(path)}"
                if not name.startswith("gmt_")
                else f"--gmt {shlex.quote(f'Enrichr_{name[4:]}={path}')}"
            )
            for name, path in input.items()
        ),
    shell:
        "python -m gexnet annotate labels {params.sources} --out {output.labels}"
        " --stats {output.stats} > {log} 2>&1"
