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
        options=lambda wildcards: download_options(
            f"archs4.local_files.{wildcards.species}_{wildcards.level}"
        ),
    shell:
        "python -m gexnet download {params.urls} {params.checksum} --validate archs4"
        " {params.options} --out {output} > {log} 2>&1"


rule download_geo_series:
    output:
        counts=f"{RESOURCES}/geo/{{species}}/{{gse}}_raw_counts.tsv.gz",
        matrix=f"{RESOURCES}/geo/{{species}}/{{gse}}_series_matrix.txt.gz",
    log:
        logs("download_geo_{species}_{gse}"),
    wildcard_constraints:
        gse="GSE[0-9]+",
    conda:
        "../envs/gexnet.yaml"
    params:
        counts_url=lambda wildcards: geo_url(
            "counts_url", gse=wildcards.gse, build=config["geo"]["builds"][wildcards.species]
        ),
        matrix_url=lambda wildcards: geo_url("series_matrix_url", gse=wildcards.gse),
        options=download_options(),
    shell:
        "(python -m gexnet download --url {params.counts_url} --out {output.counts} {params.options}"
        " && python -m gexnet download --url {params.matrix_url} --out {output.matrix}"
        " {params.options}) > {log} 2>&1"


rule download_geo_annotation:
    output:
        f"{RESOURCES}/geo/{{species}}/ncbi_gene_annotation.tsv.gz",
    log:
        logs("download_geo_annotation_{species}"),
    conda:
        "../envs/gexnet.yaml"
    params:
        url=lambda wildcards: geo_url(
            "annotation_url",
            organism=wildcards.species.capitalize(),
            build=config["geo"]["builds"][wildcards.species],
        ),
        options=download_options(),
    shell:
        "python -m gexnet download --url {params.url} --out {output} {params.options} > {log} 2>&1"


rule geo_compendium:
    input:
        series=lambda wildcards: sum(geo_series_files(wildcards.species).values(), []),
        annotation=rules.download_geo_annotation.output,
    output:
        compendium=f"{layout.source_dir(config, 'geo')}/{{species}}_gene_geo.h5",
        report=f"{layout.source_dir(config, 'geo')}/{{species}}_gene_geo.json",
    log:
        logs("geo_compendium_{species}"),
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(4000),
    params:
        series=lambda wildcards: " ".join(
            f"--series {gse}={counts}={matrix}"
            for gse, (counts, matrix) in geo_series_files(wildcards.species).items()
        ),
        block_values=config["block_values"],
    shell:
        "python -m gexnet geo {params.series} --annotation {input.annotation}"
        " --species {wildcards.species} --block-values {params.block_values}"
        " --out {output.compendium} --report {output.report} > {log} 2>&1"


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
        mem_mb=attempt_scaled(4000),
    params:
        block_values=config["block_values"],
    shell:
        "python -m gexnet byo --counts {input.counts} --samples {input.samples}"
        " --species {wildcards.species} --block-values {params.block_values}"
        " --out {output.compendium} --report {output.report} > {log} 2>&1"
