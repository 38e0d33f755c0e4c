# Data stages: acquire (download | extract | build_standin) -> ingest -> splits -> canonicalize
# -> cache (with train-only augmentation). Paths:
#   results/data/{dataset}/download/        downloaded files + manifest.json (source: download)
#   results/data/{dataset}/download.partial/ files in progress, kept by a failed run to resume
#   results/data/{dataset}/raw/<root>/      the dataset root in its real format
#   results/data/{dataset}/weights.h5       every network, ingested once (+ quarantine.tsv)
#   results/data/{dataset}/splits.json      row indices of train/val/test (+ aug copies)
#   results/data/{dataset}/canonical.h5     canonicalized table (+ canonical.json summary)
#   results/cache/{view}/{split}.zarr       what training reads (scalegmn.data.cache.load_split);
#                                           one job per view writes its three splits


rule data_all:
    input:
        get_data_targets(),


rule download_dataset:
    output:
        directory(f"results/data/{{dataset,{DOWNLOAD_DATASETS}}}/download"),
    log:
        "results/logs/download_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/download_dataset/{dataset}.tsv"
    # Never rerun by Snakemake (this overrides a profile's `retries`): transient failures are
    # retried inside the job (`download.retries` attempts, backoff, resumed with Range) and a
    # failed run keeps its partial files in download.partial/ for the next run to resume; an
    # HTML page, a 4xx, a corrupt archive or a checksum mismatch would only come again.
    retries: 0
    conda:
        "../envs/scalegmn-cpu.yaml"
    params:
        acquire=get_acquire_params,
    script:
        "../workflow_scripts/download_dataset.py"


rule extract_dataset:
    input:
        unpack(get_extract_input),
    output:
        directory(f"results/data/{{dataset,{EXTERNAL_DATASETS}}}/raw"),
    log:
        "results/logs/extract_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/extract_dataset/{dataset}.tsv"
    conda:
        "../envs/scalegmn-cpu.yaml"
    params:
        acquire=get_acquire_params,
    script:
        "../workflow_scripts/extract_dataset.py"


rule build_standin:
    input:
        code=get_standin_code,
    output:
        directory(f"results/data/{{dataset,{STANDIN_DATASETS}}}/raw"),
    log:
        "results/logs/build_standin/{dataset}.log",
    benchmark:
        "results/benchmarks/build_standin/{dataset}.tsv"
    conda:
        "../envs/scalegmn-cpu.yaml"
    # One torch thread: the stand-in's bits then depend on no machine's core count, and two
    # builds side by side do not oversubscribe the cores.
    threads: 1
    params:
        acquire=get_acquire_params,
    script:
        "../workflow_scripts/build_standin.py"


rule ingest_dataset:
    input:
        raw="results/data/{dataset}/raw",
    output:
        table="results/data/{dataset}/weights.h5",
        quarantine="results/data/{dataset}/quarantine.tsv",
    log:
        "results/logs/ingest_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/ingest_dataset/{dataset}.tsv"
    conda:
        "../envs/scalegmn-cpu.yaml"
    params:
        ingest=get_ingest_params,
    script:
        "../workflow_scripts/ingest_dataset.py"


rule make_splits:
    input:
        table="results/data/{dataset}/weights.h5",
    output:
        splits="results/data/{dataset}/splits.json",
    log:
        "results/logs/make_splits/{dataset}.log",
    benchmark:
        "results/benchmarks/make_splits/{dataset}.tsv"
    conda:
        "../envs/scalegmn-cpu.yaml"
    params:
        seed=get_split_seed,
    script:
        "../workflow_scripts/make_splits.py"


rule canonicalize_dataset:
    input:
        table="results/data/{dataset}/weights.h5",
    output:
        table="results/data/{dataset}/canonical.h5",
        summary="results/data/{dataset}/canonical.json",
    log:
        "results/logs/canonicalize_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/canonicalize_dataset/{dataset}.tsv"
    conda:
        "../envs/scalegmn-cpu.yaml"
    params:
        mode=get_canonicalize_mode,
    script:
        "../workflow_scripts/canonicalize_dataset.py"


rule build_cache:
    input:
        unpack(get_view_dataset_files),
    output:
        train=directory("results/cache/{view}/train.zarr"),
        val=directory("results/cache/{view}/val.zarr"),
        test=directory("results/cache/{view}/test.zarr"),
    log:
        "results/logs/build_cache/{view}.log",
    benchmark:
        "results/benchmarks/build_cache/{view}.tsv"
    conda:
        "../envs/scalegmn-cpu.yaml"
    params:
        view=get_view_params,
        config_hash=get_view_config_hash,
    script:
        "../workflow_scripts/build_cache.py"
