# Figures from the stages' summary tables (gexnet.report.catalogue): one job per figure, as PDF
# and PNG (the report shows the PNG), so that any figure is its own target and redrawing one
# touches no other; figures/index.tsv says what each shows and which tables it reads. The
# `paper` target is every figure and the index: after a run, `snakemake paper --forcerun
# figure` redraws them all from the tables alone.


# (the config's figures, once every rule file has defined what they read)
FIGURES = paper_figures()
PLANTED_TABLES = planted_tables()


wildcard_constraints:
    figure="|".join(map(re.escape, FIGURES)) or "(?!)",


rule figure:
    input:
        unpack(figure_tables),
    output:
        pdf=results("figures/{figure}.pdf"),
        png=report(
            results("figures/{figure}.png"),
            caption="report/figure.rst",
            category=lambda wildcards: SECTIONS[KINDS[FIGURES[wildcards.figure]["kind"]].section],
            labels=lambda wildcards: {
                "figure": wildcards.figure,
                "shows": KINDS[FIGURES[wildcards.figure]["kind"]].shows.format(
                    subject=FIGURES[wildcards.figure]["subject"]
                ),
            },
        ),
    log:
        logs("figure_{figure}"),
    conda:
        "../envs/gexnet.yaml"
    params:
        kind=lambda wildcards: FIGURES[wildcards.figure]["kind"],
        tables=lambda wildcards: " ".join(
            f"{role}={shlex.quote(path)}"
            for role, paths in FIGURES[wildcards.figure]["tables"].items()
            for path in paths
        ),
        options=lambda wildcards: as_json(FIGURES[wildcards.figure]["options"]),
        caption=figure_caption,
        panel=lambda wildcards: KINDS[FIGURES[wildcards.figure]["kind"]].panel,
    shell:
        "python -m gexnet figure draw {params.kind} {params.tables} --options {params.options}"
        " --out {output.pdf} --out {output.png} > {log} 2>&1"


rule figure_index:
    output:
        report(
            results("figures/index.tsv"),
            caption="report/figure_index.rst",
            category=SECTIONS["run"],
            labels={"table": "every figure: what it shows, its tables, its panel"},
        ),
    log:
        logs("figure_index"),
    conda:
        "../envs/gexnet.yaml"
    params:
        spec=as_json(
            {
                "figures": [
                    {k: f[k] for k in ("name", "kind", "subject", "tables")}
                    for f in FIGURES.values()
                ]
            }
        ),
    shell:
        "python -m gexnet figure index --spec {params.spec} --out {output} > {log} 2>&1"


rule planted_truth:
    input:
        tables=[path for _, path in PLANTED_TABLES],
        truth=f"{SOURCE_DIR}/truth/qc.parquet",
    output:
        report(
            results("planted_truth.tsv"),
            caption="report/planted_truth.rst",
            category=SECTIONS["run"],
            labels={"table": "results against the demo's planted truth"},
        ),
    log:
        logs("planted_truth"),
    conda:
        "../envs/gexnet.yaml"
    params:
        tables=" ".join(f"{role}={path}" for role, path in PLANTED_TABLES),
    shell:
        "python -m gexnet planted {params.tables} --truth $(dirname {input.truth})"
        " --out {output} > {log} 2>&1"


rule paper:
    input:
        expand(results("figures/{figure}.pdf"), figure=FIGURES),
        results("figures/index.tsv"),
