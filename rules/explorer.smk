# The gene-embedding explorer (config explorer): one page per embedding that opens from disk,
# and per separate-models comparison its aligned pair. Each page's map (and each experiment's,
# for its figure) is a job of its own, so
# that the maps run beside other jobs as their embeddings appear (umap-learn compiles for about
# ten seconds in every new process; a demo map then takes a few more).


wildcard_constraints:
    page="|".join(map(re.escape, EXPLORER_PAGES)) or "(?!)",
    map="|".join(map(re.escape, MAPS)) or "(?!)",


rule explorer_aligned:
    input:
        human=lambda wildcards: comparison_embeddings(wildcards.comparison)[0],
        mouse=lambda wildcards: comparison_embeddings(wildcards.comparison)[1],
        mappings=results("human_mouse/{comparison}/mappings.parquet"),
    output:
        results("explorer/aligned/{comparison}.parquet"),
    log:
        logs("explorer_aligned_{comparison}"),
    conda:
        "../envs/gexnet.yaml"
    params:
        method=EXPLORER["aligned_method"],
    shell:
        "python -m gexnet explore aligned {input.human} {input.mouse} --mappings {input.mappings}"
        " --method {params.method} --out {output} > {log} 2>&1"


rule explorer_map:
    input:
        lambda wildcards: MAPS[wildcards.map],
    output:
        results("explorer/maps/{map}.parquet"),
    log:
        logs("explorer_map_{map}"),
    benchmark:
        benchmarks("explorer_map_{map}")
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(8000),
        runtime=attempt_scaled(60),
    params:
        folder=lambda wildcards, output: os.path.dirname(output[0]),
        config=job_config("seed", "explorer"),
    shell:
        "python -m gexnet explore maps {input} --names {wildcards.map}"
        " --out {params.folder} --config {params.config} > {log} 2>&1"


rule explorer_page:
    input:
        embedding=lambda wildcards: EXPLORER_PAGES[wildcards.page],
        map=results("explorer/maps/{page}.parquet"),
    output:
        page=report(
            results("explorer/{page}/index.html"),
            caption="report/explorer.rst",
            category=SECTIONS["explorer"],
            labels={"page": "{page}"},
        ),
        vectors=results("explorer/{page}/vectors.js"),
    log:
        logs("explorer_page_{page}"),
    conda:
        "../envs/gexnet.yaml"
    params:
        config=job_config("seed", "explorer"),
    shell:
        "python -m gexnet explore page {input.embedding} --map {input.map} --name {wildcards.page}"
        " --out $(dirname {output.page}) --config {params.config} > {log} 2>&1"
