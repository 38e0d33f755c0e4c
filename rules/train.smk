# Training: one job per (task, view, model, seed). GPU requests live in profiles/slurm
# (set-resources), so laptops and CI never wait for a GPU.


rule train:
    input:
        unpack(get_train_inputs),
    output:
        metrics="results/train/{task}/{view}/{model}/seed{seed}/metrics.json",
        history="results/train/{task}/{view}/{model}/seed{seed}/history.csv",
        checkpoint="results/train/{task}/{view}/{model}/seed{seed}/best.pt",
    log:
        "results/logs/train/{task}/{view}/{model}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{task}/{view}/{model}/seed{seed}.tsv"
    wildcard_constraints:
        task=alternatives(t for t in TASKS if t != "embedding"),
        seed=r"\d+",
    retries: 2
    conda:
        f"../envs/scalegmn-{EXPERIMENTS.training.conda_env}.yaml"
    threads: 1
    resources:
        runtime=get_train_runtime,
        mem_mb=get_train_mem_mb,
    params:
        settings=get_train_settings,
        resume=get_resume_path,
        device=EXPERIMENTS.training.device,
        checkpoint_every=EXPERIMENTS.training.checkpoint_every_steps,
    script:
        "../workflow_scripts/train.py"


# The embedding task's jobs also write the selected encoder's embedding of every split
# (embeddings/<split>.zarr, scalegmn.train.embeddings); otherwise they are train jobs.
use rule train as train_embedding with:
    output:
        metrics="results/train/{task}/{view}/{model}/seed{seed}/metrics.json",
        history="results/train/{task}/{view}/{model}/seed{seed}/history.csv",
        checkpoint="results/train/{task}/{view}/{model}/seed{seed}/best.pt",
        embeddings=directory("results/train/{task}/{view}/{model}/seed{seed}/embeddings"),
    wildcard_constraints:
        task="embedding",
        seed=r"\d+",
