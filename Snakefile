# gexnet: gene representations from bulk RNA-seq compendia, and virtual experiments on them.
# Targets: all (everything the config enables). Outputs: results/<run>/; inputs: resources/.


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/simulate.smk"
include: "rules/sources.smk"
include: "rules/annotation.smk"
include: "rules/qc.smk"
include: "rules/normalize.smk"
include: "rules/train.smk"
include: "rules/classify.smk"


report: "rules/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_targets(),
