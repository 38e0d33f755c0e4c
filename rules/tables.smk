# Tables: `snakemake results/table1` assembles table1 from its train jobs.


rule table:
    input:
        unpack(get_table_inputs),
    output:
        report(
            directory("results/{table}"),
            patterns=["{name}.csv", "figures/{name}.png"],
            caption="../report/table.rst",
            category="{table}",
        ),
    log:
        "results/logs/table/{table}.log",
    benchmark:
        "results/benchmarks/table/{table}.tsv"
    params:
        table=get_table_config,
        jobs=get_table_jobs,
    wildcard_constraints:
        table=alternatives(EXPERIMENTS.tables),
    conda:
        "../envs/scalegmn-cpu.yaml"
    script:
        "../workflow_scripts/table.py"
