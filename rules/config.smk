# The configuration the run used, defaults filled in, kept with its results: the run can be
# repeated from it (`--configfile results/<run>/config.yaml`).


rule run_config:
    output:
        report(
            results("config.yaml"),
            caption="report/run_config.rst",
            category=SECTIONS["run"],
            labels={"file": "configuration"},
        ),
    log:
        logs("run_config"),
    conda:
        "../envs/gexnet.yaml"
    params:
        # Key order kept (the first experiment is the default reference); a function, so that
        # braces in values are not taken for wildcards.
        config=lambda wildcards: shlex.quote(json.dumps(config)),
    shell:
        "python -m gexnet check-config {params.config} --out {output} > {log} 2>&1"
