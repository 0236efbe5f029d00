# The human–mouse comparison (config human_mouse): DNA similarity of the 1:1 pairs from coding
# sequences, sharded; per comparison, the alignments, ortholog ranks and RNA × DNA groups (its
# figures: rules/figures.smk); one summary table of every comparison's rates.


wildcard_constraints:
    comparison="|".join(map(re.escape, COMPARISONS)) or "(?!)",


rule download_cds:
    output:
        f"{RESOURCES}/cds/{{key}}/{{name}}",
    log:
        logs("download_cds_{key}_{name}"),
    wildcard_constraints:
        key="[0-9a-f]{12}",
    conda:
        "../envs/gexnet.yaml"
    resources:
        **DOWNLOAD_RESOURCES,
    params:
        url=lambda wildcards, output: shlex.quote(CDS_URLS[output[0]][1]),
        checksum=lambda wildcards, output: (
            f"--checksum {HUMAN_MOUSE['dna']['checksums'][CDS_URLS[output[0]][0]]}"
            if CDS_URLS[output[0]][0] in HUMAN_MOUSE["dna"]["checksums"]
            else ""
        ),
    shell:
        "python -m gexnet download --url {params.url} {params.checksum} --validate cds"
        " --out {output}"
        " --config download.retries={resources.download_retries}"
        " --config download.backoff_seconds={resources.download_backoff}"
        " --config download.timeout_seconds={resources.download_timeout}"
        " > {log} 2>&1"


rule dna_similarity_shard:
    input:
        orthologs=f"{ANNOTATION}/orthologs.parquet",
        human=lambda wildcards: cds_file("human"),
        mouse=lambda wildcards: cds_file("mouse"),
    output:
        temp(results("human_mouse/dna_shards/{shard}.parquet")),
    log:
        logs("dna_similarity_{shard}"),
    benchmark:
        benchmarks("dna_similarity_{shard}")
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=attempt_scaled(240),
    params:
        config=job_config(human_mouse={"dna": HUMAN_MOUSE["dna"]}),
    shell:
        "python -m gexnet human-mouse dna {input.orthologs} {input.human} {input.mouse}"
        " --shard {wildcards.shard} --config {params.config} --out {output} > {log} 2>&1"


rule dna_similarity:
    input:
        orthologs=f"{ANNOTATION}/orthologs.parquet",
        shards=expand(results("human_mouse/dna_shards/{shard}.parquet"), shard=DNA_SHARDS),
    output:
        results("human_mouse/dna_similarity.parquet"),
    log:
        logs("dna_similarity"),
    conda:
        "../envs/gexnet.yaml"
    shell:
        "python -m gexnet human-mouse gather-dna {input.shards} --orthologs {input.orthologs}"
        " --out {output} > {log} 2>&1"


rule human_mouse_align:
    input:
        unpack(comparison_inputs),
    output:
        **{
            table: results(f"human_mouse/{{comparison}}/{table}.parquet")
            for table in COMPARISON_TABLES
        },
    log:
        logs("human_mouse_{comparison}"),
    benchmark:
        benchmarks("human_mouse_{comparison}")
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(8000),
        runtime=attempt_scaled(120),
    params:
        dna=lambda wildcards, input: f"--dna {input.dna}" if "dna" in input.keys() else "",
        config=job_config("seed", human_mouse=ALIGNMENT_SETTINGS),
    shell:
        "python -m gexnet human-mouse align {input.embeddings} --orthologs {input.orthologs}"
        " {params.dna} --name {wildcards.comparison} --config {params.config}"
        " --out $(dirname {output.pairs}) > {log} 2>&1"


rule human_mouse_summary:
    input:
        expand(results("human_mouse/{comparison}/methods.parquet"), comparison=COMPARISONS),
    output:
        report(
            results("human_mouse/summary.tsv"),
            caption="report/human_mouse_summary.rst",
            category=SECTIONS["human_mouse"],
            labels={"table": "ortholog ranks by comparison and method"},
        ),
    log:
        logs("human_mouse_summary"),
    conda:
        "../envs/gexnet.yaml"
    shell:
        "python -m gexnet human-mouse summary {input} --out {output} > {log} 2>&1"
