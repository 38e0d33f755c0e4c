# Functions only: experiment targets, train inputs/params/resources, table inputs.
# The EXPERIMENTS section of config.yaml was validated with the rest of the file in rules/startup.smk.
import json
import os

from scalegmn.train.experiments import table_params

EXPERIMENTS = CONFIG.experiments

TRAIN_DIR = "results/train/{task}/{view}/{model}/seed{seed}"

# Model and training code: declared as inputs of the train rule, so editing it makes training
# jobs out of date (Snakemake does not track modules imported by scripts). Checksums of these
# small files are recorded, so a mere `touch` or checkout without changes reruns nothing.
TRAIN_CODE_FOLDERS = ("weightspace", "nn", "models", "train")


def get_final_output():
    return [f"results/{name}" for name in EXPERIMENTS.tables]


def get_train_code():
    return package_code("data", ["cache.py"]) + [
        f for folder in TRAIN_CODE_FOLDERS for f in package_code(folder)
    ]


def get_train_inputs(wildcards):
    stores = get_view_stores(wildcards.view)
    return {
        "train": stores["train"],
        "val": stores["val"],
        "test": stores["test"],
        "code": get_train_code(),
    }


def get_train_settings(wildcards):
    return ReadableJson(
        EXPERIMENTS.job_settings(
            wildcards.task, wildcards.view, wildcards.model, int(wildcards.seed)
        )
    )


def get_resume_path(wildcards):
    # Not a declared output: Snakemake would delete it before a retry.
    return os.path.join(TRAIN_DIR.format(**wildcards), ".resume", "last.pt")


def get_train_runtime(wildcards, attempt):
    return 60 * attempt


def get_train_mem_mb(wildcards, attempt):
    return 4000 * attempt


def train_outputs(table):
    """metrics.json / history.csv / best.pt of every job of one table, keyed (view, model, seed)."""
    t = EXPERIMENTS.tables[table]
    return {
        (view, model, seed): TRAIN_DIR.format(task=task, view=view, model=model, seed=seed)
        for task, view, model, seed in EXPERIMENTS.jobs(table)
    }


def get_table_inputs(wildcards):
    dirs = train_outputs(wildcards.table)
    inputs = {
        "metrics": [os.path.join(d, "metrics.json") for d in dirs.values()],
        "history": [os.path.join(d, "history.csv") for d in dirs.values()],
    }
    t = EXPERIMENTS.tables[wildcards.table]
    if t.task == "editing":
        # the editing figure renders test INRs before/after the first seed's best checkpoints
        seed = t.seeds[0]
        inputs["checkpoints"] = [
            os.path.join(d, "best.pt") for (v, m, s), d in dirs.items() if s == seed
        ]
        inputs["stores"] = [get_view_stores(c.view)["test"] for c in t.columns]
    if t.task == "embedding":
        # the figures read the first seed's test embeddings and render the columns' test INRs
        seed = t.seeds[0]
        inputs["embeddings"] = [
            os.path.join(d, "embeddings") for (v, m, s), d in dirs.items() if s == seed
        ]
        inputs["stores"] = [get_view_stores(c.view)["test"] for c in t.columns]
    return inputs


def get_table_jobs(wildcards):
    """JSON list of [view, model, seed] in the order of the metrics/history inputs."""
    return ReadableJson(json.dumps([list(k) for k in train_outputs(wildcards.table)]))


def get_table_config(wildcards):
    return ReadableJson(table_params(wildcards.table, RESOLVED_TABLES[wildcards.table]))
