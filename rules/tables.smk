# Tables: `snakemake results/table1` assembles table1 from its train jobs. In the HTML report
# (`snakemake --report`) each table is an HTML table and each figure has its own caption
# (report/table.rst); report/workflow.rst is the landing page.


rule table:
    input:
        unpack(get_table_inputs),
    output:
        report(
            directory("results/{table}"),
            patterns=["{name}.html", "figures/{name}.png"],
            caption="../report/table.rst",
            category="{table}",
        ),
    log:
        "results/logs/table/{table}.log",
    benchmark:
        "results/benchmarks/table/{table}.tsv"
    wildcard_constraints:
        table=alternatives(EXPERIMENTS.tables),
    conda:
        "../envs/scalegmn-cpu.yaml"
    params:
        table=get_table_config,
        jobs=get_table_jobs,
    script:
        "../workflow_scripts/table.py"
