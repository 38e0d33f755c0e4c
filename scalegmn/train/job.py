"""One pipeline job: train one (task, view, model, seed) from its cached stores and write its files.

Outputs: ``best.pt`` (the selected model, :mod:`scalegmn.train.checkpoint`), ``history.csv``
(one row per evaluation), for the embedding task ``embeddings/<split>.zarr`` (the selected
model's embedding of every split, :mod:`scalegmn.train.embeddings`), and ``metrics.json``
(written last: its presence means the job is complete). The resume file is deleted after success.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scalegmn.atomic import atomic_write
from scalegmn.data.cache import load_split
from scalegmn.data.stream import StreamedSplit, store_bytes
from scalegmn.models.metanetworks import build_model, count_parameters
from scalegmn.train import editing
from scalegmn.train.checkpoint import CHECKPOINT_FORMAT, discard_resume, save_torch
from scalegmn.train.embeddings import job_embeddings, probe_metrics, write_job_stores
from scalegmn.train.experiments import TrainJob
from scalegmn.train.interpolation import interpolation_metrics
from scalegmn.train.loop import STOP_ENV, Resume, evaluate, fit
from scalegmn.train.setup import n_outputs_for, resolve_device, retain_freed_memory, seed_everything
from scalegmn.train.tracking import Tracker
from scalegmn.weightspace.graph import ZooSpec
from scalegmn.weightspace.network import Network, NetworkSpec

log = logging.getLogger(__name__)

ENV_RECORDED = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_GPUS_ON_NODE", "SLURM_JOB_PARTITION")


def write_history(history: list[dict[str, Any]], path: Path) -> None:
    """One CSV row per evaluation; the columns in order of first appearance."""
    fields = list(dict.fromkeys(k for row in history for k in row))
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)


def write_json(obj: Any, path: Path) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class JobOutputs:
    """The files one train job writes (``embeddings``: the embedding task's stores folder)."""

    metrics: Path
    history: Path
    checkpoint: Path
    embeddings: Path | None = None


def _rounded(t: torch.Tensor) -> list[float]:
    return [float(f"{v:.4g}") for v in t.tolist()]


#: Whole splits go onto the GPU when they take at most this fraction of its free memory.
GPU_RESIDENT_FRACTION = 0.5


def resident_device(dev: torch.device, stores: list) -> torch.device:
    """Where the splits live: on the GPU when all of them fit GPU_RESIDENT_FRACTION of its free
    memory (batches are then gathered there: no host-to-device copy per step), else on the host
    (each batch is copied non-blocking)."""
    if dev.type != "cuda":
        return torch.device("cpu")
    need = sum(store_bytes(s) for s in stores)
    free, _ = torch.cuda.mem_get_info(dev)
    if need <= GPU_RESIDENT_FRACTION * free:
        log.info("splits resident on %s (%.0f MB of %.0f MB free)", dev, need / 2**20, free / 2**20)
        return dev
    log.info("splits on the host: %.0f MB over half of %s's %.0f MB free", need / 2**20, dev, free / 2**20)
    return torch.device("cpu")


def open_splits(stores: Mapping[str, str | Path], dev: torch.device,
                resident_max_mb: float | None) -> dict[str, Any]:
    """The train, val and test splits of a job: each loaded whole (on the GPU when all the
    resident ones fit there, :func:`resident_device`) unless its weights take more than
    ``resident_max_mb`` MB (``execution.resident_max_mb``; None: no limit), then streamed from
    its store (:class:`~scalegmn.data.stream.StreamedSplit`, batches arriving on ``dev``)."""
    names = ("train", "val", "test")
    streamed = set()
    if resident_max_mb is not None:
        streamed = {name for name in names if store_bytes(stores[name]) / 2**20 > resident_max_mb}
    split_device = resident_device(dev, [stores[name] for name in names if name not in streamed])
    splits: dict[str, Any] = {}
    for name in names:
        if name in streamed:
            splits[name] = StreamedSplit(stores[name], device=dev)
            log.info("%s: streamed from its store (%.0f MB over execution.resident_max_mb %g)",
                     name, store_bytes(stores[name]) / 2**20, resident_max_mb)
        else:
            splits[name] = load_split(stores[name], device=split_device)
    return splits


def _embedding_results(model, best_state, splits, job: TrainJob, outputs: JobOutputs,
                       device: torch.device) -> dict[str, float]:
    """The selected encoder's zero-shot probe (CNN zoos) and aligned interpolation (INR zoos,
    :mod:`scalegmn.train.interpolation`); writes its embedding stores when ``outputs.embeddings`` is set."""
    model.load_state_dict(best_state)
    embeddings = job_embeddings(model, splits, job.optim.batch_size, device)
    probe = probe_metrics(embeddings, splits)
    if probe:
        log.info("zero-shot accuracy probe on test: R2 %.4f, Spearman %.4f", probe["probe_r2"], probe["probe_spearman"])
    interp = interpolation_metrics(model, splits["test"], job.optim.positive_noise)
    if interp:
        log.info("midpoint of a test INR and its positive, render MSE: naive %.4g, aligned by the encoder %.4g, "
                 "oracle %.4g", interp["interp_naive_mse"], interp["interp_aligned_mse"], interp["interp_oracle_mse"])
    if outputs.embeddings is not None:
        write_job_stores(outputs.embeddings, embeddings, splits,
                         {"view": job.view, "settings": job.settings(), "checkpoint": str(outputs.checkpoint)})
    return {**probe, **interp}


def model_spec(splits: Mapping[str, Any]) -> NetworkSpec | ZooSpec:
    """What the model is built for: the train split's architecture, or, when the splits mix
    architectures (``is_mixed``), a ZooSpec covering every architecture of every split."""
    if any(getattr(s, "is_mixed", False) for s in splits.values()):
        specs = [a for s in splits.values() for a in (s.specs if getattr(s, "is_mixed", False) else [s.spec])]
        return ZooSpec.covering(specs)
    return splits["train"].spec


def run_job(
    job: TrainJob,
    stores: Mapping[str, str | Path],
    outputs: JobOutputs,
    *,
    resume_path: str | Path,
    device: str = "auto",
    checkpoint_every_steps: int = 200,
    loggers: tuple[str, ...] = ("csv",),
    tracking_dir: str | Path = "results/tracking",
) -> dict[str, Any]:
    """Train one (task, view, model, seed) job from cached stores and write its outputs.

    ``loggers`` beyond ``csv`` (always: ``history.csv``) get every evaluation row and the final
    metrics (:mod:`scalegmn.train.tracking`), writing under ``tracking_dir``.
    """
    settings_json, settings = job.to_json(), job.settings()
    task, seed = job.task, job.seed
    seed_everything(seed)
    dev = resolve_device(device)
    retained = retain_freed_memory()
    log.info("job %s on %s (torch %s, %d threads%s)", settings_json, dev, torch.__version__, torch.get_num_threads(),
             ", freed memory retained" if retained else "")
    env = {k: os.environ[k] for k in ENV_RECORDED if k in os.environ}
    if env:
        log.info("environment: %s", env)

    model_cfg, optim_cfg = job.model, job.optim
    splits = open_splits(stores, dev, job.execution.resident_max_mb)
    for name, s in splits.items():
        log.info("%s: %d networks from %s", name, s.size, stores[name])
    spec = model_spec(splits)
    n_out = model_cfg.embed_dim if task == "embedding" else n_outputs_for(task, splits)
    torch.manual_seed(seed)  # model init depends on the seed only
    model = build_model(model_cfg, spec, task=task, n_outputs=n_out, execution=job.execution)
    n_params = count_parameters(model)
    log.info("model %s: %d parameters", settings["preset"], n_params)
    if model_cfg.input_scaling == "rms" and isinstance(spec, ZooSpec):
        # As StatNN on mixed batches: per-layer scales do not align across architectures.
        log.info("input scaling: not applied to a zoo of mixed architectures")
    elif model_cfg.input_scaling == "rms":
        train = splits["train"]
        if isinstance(train, StreamedSplit):
            model.input_scale.set_scales(*train.layer_rms())
        else:
            model.input_scale.calibrate(Network(spec, train.weights[0], train.biases[0]))
        log.info("input scaling (layer RMS over train): weights %s, biases %s",
                 _rounded(model.input_scale.weight_scale), _rounded(model.input_scale.bias_scale))

    # The run is named as its output folder: <task>/<view>/<model>/seed<k>.
    tracker = Tracker(loggers, tracking_dir, "/".join(outputs.metrics.parent.parts[-4:]),
                      {**settings, "n_params": n_params, "device": str(dev)})
    stop = os.environ.get(STOP_ENV)
    t0 = time.monotonic()
    result = fit(
        model,
        optim_cfg,
        task,
        splits,
        seed=seed,
        device=dev,
        execution=job.execution,
        resume=Resume(Path(resume_path), every_steps=checkpoint_every_steps, fingerprint=settings_json,
                      stop_after_steps=int(stop) if stop else None),
        on_eval=tracker.log,
    )
    wall = time.monotonic() - t0
    metric = result.metric
    reference = None
    if task == "editing":
        unedited = evaluate(editing.NoEdit(), splits["test"], task, optim_cfg.batch_size, dev)
        reference = {"label": "Unedited INRs (no model)", "value": unedited[metric]}
    extra = {}
    if task == "embedding":
        extra = {k: v for k, v in result.selected["test"].items() if k != "loss"}
        extra.update(_embedding_results(model, result.best_state, splits, job, outputs, dev))
    metrics = {
        "task": task,
        "view": settings["view"],
        "preset": settings["preset"],
        "seed": seed,
        "metric": metric,
        "value": result.selected["test"][metric],
        "selected": result.selected,
        "steps": result.steps,
        "n_params": n_params,
        "n_outputs": n_out,
        "n_train": splits["train"].size,
        "device": str(dev),
        "environment": env,
        "train_seconds": wall,
        "resumed_from_step": result.resumed_from_step,
        "settings": settings,
        **({"reference": reference} if reference else {}),
        **({"extra_metrics": extra} if extra else {}),
    }
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "model_state": result.best_state,
        "model_config": model_cfg.to_dict(),
        "settings": settings,
        "spec": spec.to_dict(),
        "task": task,
        "view": settings["view"],
        "n_outputs": n_out,
        "selected": result.selected,
    }
    save_torch(checkpoint, outputs.checkpoint)
    write_history(result.history, outputs.history)
    write_json(metrics, outputs.metrics)  # last: its presence means the job is complete
    discard_resume(Path(resume_path))
    tracker.finish({f"test_{metric}": metrics["value"], "selected_step": result.selected["step"],
                    "train_seconds": wall})
    log.info("done in %.1f s: test %s %.4f at step %s", wall, metric, metrics["value"], result.selected["step"])
    return metrics
