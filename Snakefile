# ScaleGMN pipeline: acquire -> ingest -> splits -> canonicalize -> augment -> cache -> train -> tables.
# Usage: `snakemake results/table1 --cores 2` (see README.md).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


# load rules
include: "rules/startup.smk"
include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/experiments.smk"
include: "rules/train.smk"
include: "rules/tables.smk"


# target rules
rule all:
    default_target: True
    input:
        get_final_output(),
