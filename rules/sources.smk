# Expression sources, each arriving as an ARCHS4-layout HDF5 file under resources/<source>/:
# ARCHS4 downloads, GEO series (NCBI-generated counts), and bring-your-own matrices.


rule download_archs4:
    output:
        f"{RESOURCES}/archs4/{{species}}_{{level}}_v{{version}}.h5",
    log:
        logs("download_archs4_{species}_{level}_v{version}"),
    wildcard_constraints:
        species="human|mouse",
        level="gene|transcript",
    conda:
        "../envs/gexnet.yaml"
    resources:
        **DOWNLOAD_RESOURCES,
        mem_mb=attempt_scaled(1000),
        runtime=attempt_scaled(720),
    params:
        urls=lambda wildcards, output: " ".join(
            f"--url {shlex.quote(u.format(file=Path(output[0]).name))}"
            for u in config["archs4"]["urls"]
        ),
        checksum=lambda wildcards, output: (
            f"--checksum {config['archs4']['checksums'][Path(output[0]).name]}"
            if Path(output[0]).name in config["archs4"]["checksums"]
            else ""
        ),
        local_key=lambda wildcards: f"archs4.local_files.{wildcards.species}_{wildcards.level}",
    shell:
        "python -m gexnet download {params.urls} {params.checksum} --validate archs4"
        " --local-key {params.local_key} --out {output}"
        " --config download.retries={resources.download_retries}"
        " --config download.backoff_seconds={resources.download_backoff}"
        " --config download.timeout_seconds={resources.download_timeout}"
        " > {log} 2>&1"


rule download_geo_series:
    output:
        counts=f"{RESOURCES}/geo/{{species}}/{{build}}/{{gse}}_raw_counts.tsv.gz",
        matrix=f"{RESOURCES}/geo/{{species}}/{{build}}/{{gse}}_series_matrix.txt.gz",
    log:
        logs("download_geo_{species}_{build}_{gse}"),
    wildcard_constraints:
        gse="GSE[0-9]+",
    conda:
        "../envs/gexnet.yaml"
    resources:
        **DOWNLOAD_RESOURCES,
    params:
        counts_url=lambda wildcards: geo_url("counts_url", gse=wildcards.gse, build=wildcards.build),
        matrix_url=lambda wildcards: geo_url("series_matrix_url", gse=wildcards.gse),
    shell:
        "(python -m gexnet download --url {params.counts_url} --out {output.counts}"
        " --config download.retries={resources.download_retries}"
        " --config download.backoff_seconds={resources.download_backoff}"
        " --config download.timeout_seconds={resources.download_timeout}"
        " && python -m gexnet download --url {params.matrix_url} --out {output.matrix}"
        " --config download.retries={resources.download_retries}"
        " --config download.backoff_seconds={resources.download_backoff}"
        " --config download.timeout_seconds={resources.download_timeout}"
        ") > {log} 2>&1"


rule download_geo_annotation:
    output:
        f"{RESOURCES}/geo/{{species}}/{{build}}/ncbi_gene_annotation.tsv.gz",
    log:
        logs("download_geo_annotation_{species}_{build}"),
    conda:
        "../envs/gexnet.yaml"
    resources:
        **DOWNLOAD_RESOURCES,
    params:
        url=lambda wildcards: geo_url(
            "annotation_url",
            organism=wildcards.species.capitalize(),
            build=wildcards.build,
        ),
    shell:
        "python -m gexnet download --url {params.url} --out {output}"
        " --config download.retries={resources.download_retries}"
        " --config download.backoff_seconds={resources.download_backoff}"
        " --config download.timeout_seconds={resources.download_timeout}"
        " > {log} 2>&1"


rule geo_compendium:
    input:
        series=lambda wildcards: sum(geo_series_files(wildcards.species).values(), []),
        annotation=lambda wildcards: f"{geo_downloads(wildcards.species)}/ncbi_gene_annotation.tsv.gz",
    output:
        compendium=f"{layout.source_dir(config, 'geo')}/{{species}}_gene_geo.h5",
        report=f"{layout.source_dir(config, 'geo')}/{{species}}_gene_geo.json",
    log:
        logs("geo_compendium_{species}"),
    conda:
        "../envs/gexnet.yaml"
    resources:
        **BLOCK_RESOURCES,
        mem_mb=attempt_scaled(4000),
    params:
        series=lambda wildcards: " ".join(
            shlex.quote(f"{gse}={counts}={matrix}")
            for gse, (counts, matrix) in geo_series_files(wildcards.species).items()
        ),
    shell:
        "python -m gexnet geo {input.annotation} {params.series} --species {wildcards.species}"
        " --out {output.compendium} --report {output.report}"
        " --config block_values={resources.block_values} > {log} 2>&1"


rule byo_compendium:
    input:
        counts=lambda wildcards: configured_file("byo.counts", config["byo"]["counts"]),
        samples=lambda wildcards: configured_file("byo.samples", config["byo"]["samples"]),
    output:
        compendium=f"{layout.source_dir(config, 'byo')}/{{species}}_gene_byo.h5",
        report=f"{layout.source_dir(config, 'byo')}/{{species}}_gene_byo.json",
    log:
        logs("byo_compendium_{species}"),
    conda:
        "../envs/gexnet.yaml"
    resources:
        **BLOCK_RESOURCES,
        mem_mb=attempt_scaled(4000),
    params:
        config=job_config("byo"),
    shell:
        "python -m gexnet byo {input.counts} {input.samples} --config {params.config}"
        " --out {output.compendium} --report {output.report}"
        " --config block_values={resources.block_values} > {log} 2>&1"
