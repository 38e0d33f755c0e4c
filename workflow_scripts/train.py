"""Rules train and train_embedding (rules/train.smk): train one (task, view, model, seed) job."""

from pathlib import Path

import torch

from scalegmn.logs import configure
from scalegmn.train.experiments import TrainingConfig, TrainJob
from scalegmn.train.job import JobOutputs, run_job

with configure(snakemake.log[0], logger="train", failure="training failed"):
    torch.set_num_threads(snakemake.threads)
    # Trackers change no result, so they are read here rather than made a param (a param change
    # would rerun every train job).
    training = TrainingConfig.from_mapping("training", snakemake.config.get("training"))
    run_job(
        TrainJob.from_json(snakemake.params.settings),
        {name: snakemake.input[name] for name in ("train", "val", "test")},
        JobOutputs(
            metrics=Path(snakemake.output.metrics),
            history=Path(snakemake.output.history),
            checkpoint=Path(snakemake.output.checkpoint),
            embeddings=Path(snakemake.output.embeddings) if "embeddings" in snakemake.output.keys() else None,
        ),
        resume_path=snakemake.params.resume,
        device=snakemake.params.device,
        checkpoint_every_steps=int(snakemake.params.checkpoint_every),
        loggers=training.loggers,
        tracking_dir=training.tracking_dir,
    )
