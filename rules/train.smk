# Gene language models: one target per experiment (config `experiments`), trained on its
# species' corpora (two for a mixed-species model, in its order); then its gene embeddings. Checkpoints live outside the declared outputs, so
# a failed, killed or preempted job resumes when it is run again.


wildcard_constraints:
    experiment="|".join(map(re.escape, config["experiments"])) or "(?!)",


rule train_gene_lm:
    input:
        corpora=lambda wildcards: [
            results(f"corpus/{species}") for species in experiment_species(wildcards.experiment)
        ],
    output:
        weights=results("models/{experiment}/model.safetensors"),
        description=results("models/{experiment}/model.json"),
        vocabulary=results("models/{experiment}/vocabulary.tsv"),
        metrics=results("models/{experiment}/metrics.tsv"),
        validation=report(
            results("models/{experiment}/validation.tsv"),
            caption="report/validation_loss.rst",
            category=SECTIONS["lm"],
            labels={"experiment": "{experiment}", "table": "validation loss by epoch"},
        ),
    log:
        logs("train_{experiment}"),
    benchmark:
        benchmarks("train_{experiment}")
    priority: lm_priority
    conda:
        "../envs/gexnet.yaml"
    threads: train_threads
    resources:
        **{key: train_resource(key) for key in TRAIN_RESOURCES},
    params:
        launcher=train_launcher,
        config=train_job_config,
        checkpoints=lambda wildcards: results(f"checkpoints/{wildcards.experiment}"),
    shell:
        "{params.launcher} -m gexnet train {input.corpora} --config {params.config}"
        " --experiment {wildcards.experiment} --threads {threads}"
        " --checkpoints {params.checkpoints} --out $(dirname {output.weights}) > {log} 2>&1"


rule gene_embeddings:
    input:
        weights=results("models/{experiment}/model.safetensors"),
        description=results("models/{experiment}/model.json"),
        vocabulary=results("models/{experiment}/vocabulary.tsv"),
    output:
        parquet=results("embeddings/{experiment}.parquet"),
        word2vec=results("embeddings/{experiment}.w2v.txt"),
    log:
        logs("embeddings_{experiment}"),
    conda:
        "../envs/gexnet.yaml"
    shell:
        "python -m gexnet embeddings $(dirname {input.weights})"
        " --parquet {output.parquet} --word2vec {output.word2vec} > {log} 2>&1"
