# Expression autoencoders (config `autoencoders`): trained on a species' dense log matrix like
# the gene LMs (one trainer, checkpoints outside the outputs), each beside its linear baseline
# (PCA with the same latent size); reconstruction quality on held-out samples; virtual
# perturbation and master regulators (rules below), every result beside the baseline.


wildcard_constraints:
    autoencoder="|".join(map(re.escape, AUTOENCODERS)) or "(?!)",
    request="|".join(map(re.escape, REQUESTS)) or "(?!)",
    study="|".join(map(re.escape, STUDIES)) or "(?!)",


rule train_autoencoder:
    input:
        corpus=autoencoder_corpus,
    output:
        weights=results("autoencoders/{autoencoder}/model.safetensors"),
        description=results("autoencoders/{autoencoder}/model.json"),
        genes=results("autoencoders/{autoencoder}/genes.parquet"),
        samples=results("autoencoders/{autoencoder}/samples.parquet"),
        metrics=results("autoencoders/{autoencoder}/metrics.tsv"),
        validation=results("autoencoders/{autoencoder}/validation.tsv"),
    log:
        logs("train_autoencoder_{autoencoder}"),
    benchmark:
        benchmarks("train_autoencoder_{autoencoder}")
    conda:
        "../envs/gexnet.yaml"
    threads: train_threads
    resources:
        **{key: train_resource(key) for key in TRAIN_RESOURCES},
    params:
        launcher=train_launcher,
        config=train_job_config,
        checkpoints=lambda wildcards: results(f"checkpoints/autoencoder_{wildcards.autoencoder}"),
    shell:
        "{params.launcher} -m gexnet autoencoder train {input.corpus} --config {params.config}"
        " --name {wildcards.autoencoder} --threads {threads}"
        " --checkpoints {params.checkpoints} --out $(dirname {output.weights}) > {log} 2>&1"


rule autoencoder_linear:
    input:
        **rules.train_autoencoder.output,
    output:
        weights=results("autoencoders/{autoencoder}/linear.safetensors"),
        description=results("autoencoders/{autoencoder}/linear.json"),
    log:
        logs("autoencoder_linear_{autoencoder}"),
    benchmark:
        benchmarks("autoencoder_linear_{autoencoder}")
    conda:
        "../envs/gexnet.yaml"
    resources:
        mem_mb=attempt_scaled(16000),
        runtime=attempt_scaled(120),
    params:
        config=lambda wildcards: job_config(
            "seed", autoencoder=AUTOENCODER_SETTINGS[wildcards.autoencoder]["autoencoder"]
        ),
    shell:
        "python -m gexnet autoencoder linear $(dirname {input.weights}) --config {params.config}"
        " > {log} 2>&1"


rule autoencoder_reconstruction:
    input:
        **rules.train_autoencoder.output,
        linear=rules.autoencoder_linear.output.weights,
    output:
        **{
            name: results(f"autoencoders/{{autoencoder}}/reconstruction/{name}.parquet")
            for name in ("metrics", "ranges", "genes", "density")
        },
    log:
        logs("autoencoder_reconstruction_{autoencoder}"),
    conda:
        "../envs/gexnet.yaml"
    params:
        config=lambda wildcards: job_config(
            autoencoder=AUTOENCODER_SETTINGS[wildcards.autoencoder]["autoencoder"]
        ),
    shell:
        "python -m gexnet autoencoder reconstruction $(dirname {input.weights})"
        " --config {params.config} --out $(dirname {output.metrics}) > {log} 2>&1"


rule autoencoder_summary:
    input:
        expand(
            results("autoencoders/{autoencoder}/reconstruction/metrics.parquet"),
            autoencoder=AUTOENCODERS,
        ),
    output:
        report(
            results("autoencoders/reconstruction.tsv"),
            caption="report/autoencoder_summary.rst",
            category=SECTIONS["autoencoder"],
            labels={"table": "reconstruction of held-out samples, beside PCA and gene means"},
        ),
    log:
        logs("autoencoder_summary"),
    conda:
        "../envs/gexnet.yaml"
    params:
        names=" ".join(AUTOENCODERS),
    shell:
        "python -m gexnet autoencoder summary {input} --names {params.names} --out {output}"
        " > {log} 2>&1"


# --- virtual experiments: each job runs the autoencoder and its linear baseline ----------------


rule autoencoder_knockouts:
    input:
        unpack(virtual_inputs),
    output:
        **{
            name: results(f"perturbation/{{autoencoder}}/knockouts/{name}.parquet")
            for name in ("summary", "top_genes", "comparison")
        },
        effects=results("perturbation/{autoencoder}/knockouts/effects.json"),
    log:
        logs("autoencoder_knockouts_{autoencoder}"),
    benchmark:
        benchmarks("autoencoder_knockouts_{autoencoder}")
    conda:
        "../envs/gexnet.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(16000),
        runtime=attempt_scaled(240),
    params:
        config=job_config("seed", perturbation=PERTURBATION_SETTINGS),
    shell:
        "python -m gexnet perturb knockouts $(dirname {input.weights}) {input.compendium}"
        " --config {params.config} --threads {threads} --out $(dirname {output.summary})"
        " > {log} 2>&1"


rule autoencoder_perturbation:
    input:
        unpack(virtual_inputs),
    output:
        **{
            name: results(f"perturbation/{{autoencoder}}/requests/{{request}}/{name}.parquet")
            for name in ("summary", "top_genes", "comparison")
        },
    log:
        logs("autoencoder_perturbation_{autoencoder}_{request}"),
    conda:
        "../envs/gexnet.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(16000),
        runtime=attempt_scaled(120),
    params:
        config=lambda wildcards: job_config(
            "seed",
            perturbation={
                **PERTURBATION_SETTINGS,
                "requests": {wildcards.request: REQUESTS[wildcards.request]},
            },
        ),
    shell:
        "python -m gexnet perturb request $(dirname {input.weights}) {input.compendium}"
        " --name {wildcards.request} --config {params.config} --threads {threads}"
        " --out $(dirname {output.summary}) > {log} 2>&1"


rule master_regulators:
    input:
        unpack(virtual_inputs),
    output:
        **{
            name: results(f"master_regulators/{{autoencoder}}/{{study}}/{name}.parquet")
            for name in ("per_sample", "pairs", "genes", "best_pairs", "comparison")
        },
    log:
        logs("master_regulators_{autoencoder}_{study}"),
    benchmark:
        benchmarks("master_regulators_{autoencoder}_{study}")
    conda:
        "../envs/gexnet.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(16000),
        runtime=attempt_scaled(240),
    params:
        config=lambda wildcards: job_config(
            "seed",
            perturbation=PERTURBATION_SETTINGS,
            master_regulators={
                **MASTER_SETTINGS,
                "studies": {wildcards.study: STUDIES[wildcards.study]},
            },
        ),
    shell:
        "python -m gexnet perturb master-regulators $(dirname {input.weights}) {input.compendium}"
        " --name {wildcards.study} --config {params.config} --threads {threads}"
        " --out $(dirname {output.per_sample}) > {log} 2>&1"


rule autoencoder_knockouts_report:
    input:
        rules.autoencoder_knockouts.output.summary,
    output:
        table=report(
            results("perturbation/{autoencoder}/knockouts.tsv"),
            caption="report/knockouts_table.rst",
            category=SECTIONS["perturbation"],
            labels={"autoencoder": "{autoencoder}", "table": "strongest knockouts"},
        ),
    log:
        logs("autoencoder_knockouts_report_{autoencoder}"),
    conda:
        "../envs/gexnet.yaml"
    shell:
        "python -m gexnet perturb report knockouts {input}" " --out {output.table} > {log} 2>&1"


rule autoencoder_perturbation_report:
    input:
        rules.autoencoder_perturbation.output.summary,
    output:
        report(
            results("perturbation/{autoencoder}/requests/{request}.tsv"),
            caption="report/perturbation_request.rst",
            category=SECTIONS["perturbation"],
            labels={"autoencoder": "{autoencoder}", "table": "request {request}"},
        ),
    log:
        logs("autoencoder_perturbation_report_{autoencoder}_{request}"),
    conda:
        "../envs/gexnet.yaml"
    shell:
        "python -m gexnet perturb report request {input} --out {output} > {log} 2>&1"


rule master_regulators_report:
    input:
        rules.master_regulators.output.genes,
    output:
        table=report(
            results("master_regulators/{autoencoder}/{study}.tsv"),
            caption="report/master_regulators_table.rst",
            category=SECTIONS["master_regulators"],
            labels={"autoencoder": "{autoencoder}", "study": "{study}", "table": "top genes"},
        ),
    log:
        logs("master_regulators_report_{autoencoder}_{study}"),
    conda:
        "../envs/gexnet.yaml"
    shell:
        "python -m gexnet perturb report study {input}" " --out {output.table} > {log} 2>&1"
