# gexnet: gene representations from bulk RNA-seq compendia, and virtual experiments on them.
# Targets: all (everything the config enables), paper (every figure, from the summary tables).
# Outputs: results/<run>/; inputs: resources/.

# The config is the --configfile files when given (the demo's values never leak into them),
# else the demo's config/config.yaml; --config overrides either. rules/common.smk fills in
# the schema's defaults.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/config.smk"
include: "rules/simulate.smk"
include: "rules/sources.smk"
include: "rules/annotation.smk"
include: "rules/qc.smk"
include: "rules/normalize.smk"
include: "rules/train.smk"
include: "rules/classify.smk"
include: "rules/clustering.smk"
include: "rules/human_mouse.smk"
include: "rules/autoencoder.smk"
include: "rules/splicing.smk"
include: "rules/explorer.smk"
include: "rules/figures.smk"


report: "rules/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_targets(),
