# The bundled demo compendium: ARCHS4-layout files with real gene identities and planted truth.
from gexnet.formats.demo import demo_files

# Its folder is named by the settings it is generated from (gexnet.layout), so runs with other
# settings never overwrite each other's compendium.
DEMO_DIR = str(layout.source_dir(config, "demo"))
DEMO_FILES = {name: str(path) for name, path in demo_files(DEMO_DIR, SPECIES).items()}


rule simulate_compendium:
    output:
        **DEMO_FILES,
    log:
        logs("simulate_compendium"),
    benchmark:
        benchmarks("simulate_compendium")
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=attempt_scaled(30),
    params:
        config=as_json(layout.source_settings(config, "demo")),
        outdir=lambda wildcards, output: Path(output.settings).parent,
    shell:
        "python -m gexnet simulate --config {params.config} --outdir {params.outdir} > {log} 2>&1"
