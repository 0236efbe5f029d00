# The bundled demo compendium: ARCHS4-layout files with real gene identities and planted truth.
from gexnet.simulate import output_files

DEMO_FILES = {name: str(path) for name, path in output_files(f"{RESOURCES}/demo", SPECIES).items()}


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
        settings=as_json({key: config[key] for key in ("seed", "species", "simulate", "qc")}),
        outdir=lambda wildcards, output: Path(output[0]).parent,
    shell:
        "python -m gexnet simulate --settings {params.settings} --outdir {params.outdir} > {log} 2>&1"
