"""Train one (task, view, model, seed) job: rule `train` (rules/train.smk)."""

import logging
from pathlib import Path

import torch

from scalegmn.train.job import JobOutputs, run_job

logging.basicConfig(
    filename=snakemake.log[0],  # noqa: F821 - injected by Snakemake
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
torch.set_num_threads(snakemake.threads)  # noqa: F821
try:
    run_job(
        snakemake.params.settings,  # noqa: F821
        {name: snakemake.input[name] for name in ("train", "val", "test")},  # noqa: F821
        JobOutputs(
            metrics=Path(snakemake.output.metrics),  # noqa: F821
            history=Path(snakemake.output.history),  # noqa: F821
            checkpoint=Path(snakemake.output.checkpoint),  # noqa: F821
        ),
        resume_path=snakemake.params.resume,  # noqa: F821
        device=snakemake.params.device,  # noqa: F821
        checkpoint_every_steps=int(snakemake.params.checkpoint_every),  # noqa: F821
    )
except Exception:
    logging.getLogger("train_model").exception("training failed")
    raise
