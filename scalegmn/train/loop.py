"""Training and evaluation loops of the three tasks, with exact resume after a kill.

One loop serves classification, generalization prediction and INR editing (spec §5):
AdamW, gradient-norm clipping, linear warmup stepped once per batch and then constant, an
evaluation of val and test after every epoch (or every ``eval_every_steps`` steps), and the
paper's model selection: the reported number is the TEST metric at the evaluation with the best
VALIDATION metric (``scalegmn.train.metrics.SELECTION``).

Resume: every ``checkpoint_every_steps`` steps (and at each evaluation) the whole training state
is written atomically to a resume file (model, optimizer, scheduler, torch RNG, the shuffling
generator, the epoch's permutation and position, best-so-far, history). A restarted run loads it
and continues with bit-identical batches and dropout masks, so it ends with the same metrics as
an uninterrupted run; the file is deleted after success. ``SCALEGMN_STOP_AFTER_STEPS=N`` (an
environment variable, so it never changes Snakemake params) makes the run raise after N steps,
to test this.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import os
import pickle
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalegmn.data.cache import load_split
from scalegmn.errors import DataError
from scalegmn.models.metanetworks import build_model, count_parameters
from scalegmn.models.presets import OptimConfig
from scalegmn.nn.execution import DEFAULT_EXECUTION, ExecutionConfig
from scalegmn.train import editing
from scalegmn.train.experiments import TrainJob
from scalegmn.train.metrics import (
    SELECTION,
    classification_metrics,
    editing_metrics,
    generalization_metrics,
    is_better,
)
from scalegmn.weightspace.network import Network, NetworkSpec

log = logging.getLogger(__name__)

STOP_ENV = "SCALEGMN_STOP_AFTER_STEPS"
ENV_RECORDED = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_GPUS_ON_NODE", "SLURM_JOB_PARTITION")


class SimulatedKill(RuntimeError):
    """Raised after ``SCALEGMN_STOP_AFTER_STEPS`` steps, as if the job had been killed."""


class LinearWarmup:
    """lr factor ``min(1, (step + 1) / warmup)``: linear rise, then constant (no decay).

    The original multiplies by ``step / 1000`` from step 0, which wastes the first update;
    starting at ``1 / warmup`` is the same schedule shifted by one step. A class, not a lambda,
    so the scheduler's state pickles into the resume file.
    """

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        if self.warmup_steps <= 0:
            return 1.0
        return min(1.0, (step + 1) / self.warmup_steps)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; deterministic kernels (warn only where none exists)."""

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


# --- one batch ---------------------------------------------------------------------------------


def _batch_loss(model, batch, task: str, images) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean training loss, per-item values used for evaluation)."""
    if task == "classification":
        logits = model(batch)
        return torch.nn.functional.cross_entropy(logits, batch.y), logits
    if task == "generalization":
        pred = torch.sigmoid(model(batch)).reshape(-1)
        return torch.nn.functional.mse_loss(pred, batch.y.to(pred.dtype)), pred
    if task == "editing":
        delta_w, delta_b = model(batch)
        target = editing.dilate(editing.source_images(batch.net, images, batch.index))
        rendered = editing.render(editing.apply_delta(batch.net, delta_w, delta_b), editing.IMAGE_SHAPE)
        err = editing.per_image_mse(rendered, target)
        return err.mean(), err
    raise ValueError(f"unknown task {task!r}")


def optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch,
    loss_of: Callable[[Any], torch.Tensor],
    *,
    clip_grad_norm: float | None,
    execution: ExecutionConfig = DEFAULT_EXECUTION,
) -> torch.Tensor:
    """One optimizer step on ``batch``; returns the (detached) mean loss.

    With ``execution.micro_batch_size`` the gradient is accumulated over micro-batches, each
    loss weighted by its share of the batch. Every loss here is a mean over networks and no layer uses batch
    statistics (LayerNorm is per sample), so this is the gradient of the whole batch, computed
    with one micro-batch's activation memory.
    """
    n = batch.size
    micro = execution.micro_batch_size
    size = micro if micro and micro < n else n
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros(())
    for start in range(0, n, size):
        part = batch if size == n else batch.take(slice(start, start + size))
        loss = loss_of(part)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()}; lower optim.lr")
        (loss * (part.size / n)).backward()
        total = total + loss.detach().cpu() * (part.size / n)
    if clip_grad_norm:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    optimizer.step()
    return total


@torch.no_grad()
def evaluate(model, split, task: str, batch_size: int, device: torch.device) -> dict[str, float]:
    """Metrics of ``model`` over the whole split (in order, no shuffling)."""
    was_training = model.training
    model.eval()
    outs, ys = [], []
    images = getattr(split, "images", None)
    for start in range(0, split.size, batch_size):
        idx = torch.arange(start, min(start + batch_size, split.size))
        batch = split.get(idx).to(device)
        _, values = _batch_loss(model, batch, task, images)
        outs.append(values.detach().cpu())
        if batch.y is not None:
            ys.append(batch.y.detach().cpu())
    model.train(was_training)
    out = torch.cat(outs)
    if task == "classification":
        return classification_metrics(out, torch.cat(ys))
    if task == "generalization":
        return generalization_metrics(out, torch.cat(ys))
    return editing_metrics(out)


# --- the loop ----------------------------------------------------------------------------------


@dataclass
class FitResult:
    """Outcome of :func:`fit`: the selected evaluation and the whole history."""

    metric: str
    selected: dict[str, Any]
    history: list[dict[str, Any]]
    best_state: dict[str, torch.Tensor]
    steps: int
    resumed_from_step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


#: Types a checkpoint (``best.pt``) or resume file (``.resume/last.pt``) may hold beyond what
#: ``torch.load(weights_only=True)`` accepts anyway (tensors, dicts, lists, tuples, str, numbers,
#: None, OrderedDict). Both are plain dicts of tensors and builtins, so nothing needs adding; a
#: type that must be stored in the future goes here, never ``weights_only=False``.
CHECKPOINT_SAFE_GLOBALS: tuple[Any, ...] = ()


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load`` that runs no pickled code: weights-only, with the
    :data:`CHECKPOINT_SAFE_GLOBALS` allow-list. A file holding anything else (a callable, a
    class) raises ``pickle.UnpicklingError``."""
    with torch.serialization.safe_globals(list(CHECKPOINT_SAFE_GLOBALS)):
        return torch.load(path, map_location="cpu", weights_only=True)


def _refused_global(err: BaseException) -> str | None:
    """The pickled global (a callable or class) that a weights-only load refused, if that is why
    ``err`` was raised."""
    if not isinstance(err, pickle.UnpicklingError):
        return None
    found = re.search(r"GLOBAL (\S+)", str(err))
    return found.group(1) if found else None


def _load_problem(err: BaseException) -> str:
    """One line saying why a torch file did not load (torch's messages span several lines)."""
    refused = _refused_global(err)
    if refused:
        return f"it holds a pickled object that is not on the allow-list ({refused}), which could run code"
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.corrupt-<UTC time>`` beside it (never overwriting one)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    k = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{k}")
        k += 1
    os.replace(path, target)
    return target


def _restore_resume(path: Path, fingerprint: str, model, optimizer, scheduler, generator) -> dict[str, Any] | None:
    """The loop state of the resume file ``path`` with model, optimizer, scheduler and RNGs
    restored from it; None to start from step 0 (a file of other settings, or a corrupt one).

    A file that cannot be read or applied (truncated by a full disk, say) is set aside as
    ``last.pt.corrupt-<time>`` with a warning naming it, and everything is left as it was before
    the attempt, so the run starts from step 0 exactly as an uninterrupted run would: a retry
    never meets the same file again.
    """
    before = [copy.deepcopy(x.state_dict()) for x in (model, optimizer, scheduler)]
    rng_before = _rng_state(generator)
    try:
        saved = safe_torch_load(path)
        if not isinstance(saved, Mapping) or "fingerprint" not in saved:
            raise ValueError("not a resume file of scalegmn.train.loop.fit")
        if saved["fingerprint"] != fingerprint:
            log.warning("ignoring %s: it was written for other settings", path)
            return None
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        _set_rng_state(saved["rng"], generator)
        state = dict(saved["loop"])
        int(state["step"])
        return state
    except Exception as err:  # noqa: BLE001 - whatever is wrong with it, the fix is the same
        for x, sd in zip((model, optimizer, scheduler), before, strict=True):
            x.load_state_dict(sd)
        _set_rng_state(rng_before, generator)
        moved = set_aside(path)
        log.warning(
            "resume file %s is unreadable (%s); set aside as %s, training restarts from step 0",
            path, _load_problem(err), moved,
        )
        return None


def fit(
    model: torch.nn.Module,
    loop: OptimConfig,
    task: str,
    splits: Mapping[str, Any],
    *,
    seed: int,
    device: torch.device | str = "cpu",
    resume_path: str | Path | None = None,
    checkpoint_every_steps: int = 200,
    fingerprint: str = "",
    stop_after_steps: int | None = None,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train ``model`` on ``splits['train']``; select on ``val``; report ``test``.

    ``fingerprint`` identifies the job's settings: a resume file written with another
    fingerprint is ignored (and replaced), so a changed config never resumes a stale run.
    """
    device = torch.device(device)
    metric, _ = SELECTION[task]
    train = splits["train"]
    n = train.size
    if n == 0:
        raise ValueError("the train split is empty")
    steps_per_epoch = math.ceil(n / loop.batch_size)
    if loop.max_steps:
        total_steps = int(loop.max_steps)
    elif loop.epochs:
        total_steps = int(loop.epochs) * steps_per_epoch
    else:
        raise ValueError("set optim.epochs or optim.max_steps")
    images = getattr(train, "images", None)

    model.to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=loop.lr, weight_decay=loop.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LinearWarmup(loop.warmup_steps))
    generator = torch.Generator().manual_seed(seed)

    state: dict[str, Any] = {
        "step": 0,
        "epoch": 0,
        "pos": 0,
        "perm": None,
        "best_value": None,
        "selected": None,
        "best_state": None,
        "history": [],
        "loss_sum": 0.0,
        "loss_count": 0,
        "val_trace": [],
    }
    resumed_from = None
    resume_path = Path(resume_path) if resume_path else None
    if resume_path is not None and resume_path.exists():
        restored = _restore_resume(resume_path, fingerprint, model, optimizer, scheduler, generator)
        if restored is not None:
            state = restored
            resumed_from = state["step"]
            log.info("resuming from %s at step %d/%d", resume_path, resumed_from, total_steps)

    def save_resume() -> None:
        if resume_path is None:
            return
        _atomic_torch_save(
            {
                "fingerprint": fingerprint,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": _rng_state(generator),
                "loop": state,
            },
            resume_path,
        )

    def run_eval() -> bool:
        """Evaluate val + test, apply the selection rule; True when training should stop."""
        row: dict[str, Any] = {
            "step": state["step"],
            "epoch": state["step"] / steps_per_epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": state["loss_sum"] / max(state["loss_count"], 1),
        }
        state["loss_sum"], state["loss_count"] = 0.0, 0
        results = {name: evaluate(model, splits[name], task, loop.batch_size, device) for name in ("val", "test")}
        for name, res in results.items():
            row.update({f"{name}_{k}": v for k, v in res.items()})
        value = results["val"][metric]
        row["selected"] = is_better(task, value, state["best_value"])
        if row["selected"]:
            state["best_value"] = value
            state["selected"] = {"step": state["step"], "epoch": row["epoch"], "val": results["val"], "test": results["test"]}
            state["best_state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        state["history"].append(row)
        log.info(
            "step %d/%d epoch %.2f train_loss %.4g val_%s %.4f test_%s %.4f%s",
            state["step"], total_steps, row["epoch"], row["train_loss"], metric, value,
            metric, results["test"][metric], " (best)" if row["selected"] else "",
        )
        if on_eval is not None:
            on_eval(row)
        # Early exit of the original's epoch mode: the last `patience` val values strictly worse.
        trace = state["val_trace"]
        trace.append(value)
        p = loop.patience
        if p and not loop.eval_every_steps and len(trace) > p:
            window = trace[-(p + 1):]
            worse = all(
                (b < a) if SELECTION[task][1] == ">=" else (b > a) for a, b in zip(window, window[1:], strict=False)
            )
            if worse:
                log.info("stopping early: validation %s got worse %d evaluations in a row", metric, p)
                return True
        return False

    t0 = time.monotonic()
    last_log = t0
    stop = False
    while state["step"] < total_steps and not stop:
        if state["perm"] is None or state["pos"] >= n:
            state["perm"] = torch.randperm(n, generator=generator)
            state["pos"] = 0
        idx = state["perm"][state["pos"]: state["pos"] + loop.batch_size]
        state["pos"] += len(idx)
        batch = train.get(idx).to(device)
        try:
            loss = optimizer_step(
                model,
                optimizer,
                batch,
                lambda part: _batch_loss(model, part, task, images)[0],
                clip_grad_norm=loop.clip_grad_norm,
                # Until the `execution:` section replaces optim.micro_batch_size.
                execution=ExecutionConfig(micro_batch_size=loop.micro_batch_size),
            )
        except FloatingPointError as err:
            raise FloatingPointError(f"{err} (at step {state['step']})") from None
        scheduler.step()
        state["step"] += 1
        state["loss_sum"] += float(loss.detach())
        state["loss_count"] += 1
        step = state["step"]
        end_of_epoch = state["pos"] >= n
        if end_of_epoch:
            state["epoch"] += 1
        due = (
            (loop.eval_every_steps and step % loop.eval_every_steps == 0)
            or (not loop.eval_every_steps and end_of_epoch)
            or step == total_steps
        )
        if due:
            stop = run_eval()
        if due or step % checkpoint_every_steps == 0:
            save_resume()
        if time.monotonic() - last_log > 30:
            last_log = time.monotonic()
            log.info("step %d/%d (%.1f steps/s)", step, total_steps, step / (last_log - t0))
        if stop_after_steps is not None and step >= stop_after_steps and step < total_steps:
            raise SimulatedKill(f"stopped after {step} steps ({STOP_ENV})")

    if state["selected"] is None:
        raise FloatingPointError(f"validation {metric} was never a number; nothing to select")
    return FitResult(
        metric=metric,
        selected=state["selected"],
        history=state["history"],
        best_state=state["best_state"],
        steps=state["step"],
        resumed_from_step=resumed_from,
    )


def discard_resume(path: Path) -> None:
    """After success: delete the resume file, temporary files a killed save left beside it, and
    its folder when nothing else (a set-aside corrupt file) is left there."""
    path.unlink(missing_ok=True)
    folder = path.parent
    if not folder.is_dir():
        return
    for tmp in folder.glob(f".{path.name}.tmp*"):
        tmp.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:  # not empty: a set-aside file the log named stays for the user
        pass


# --- one pipeline job --------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOutputs:
    metrics: Path
    history: Path
    checkpoint: Path


def write_history(history: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fields = list(dict.fromkeys(k for row in history for k in row))
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


def write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _rounded(t: torch.Tensor) -> list[float]:
    return [float(f"{v:.4g}") for v in t.tolist()]


def n_outputs_for(task: str, splits: Mapping[str, Any]) -> int:
    """Classes (classification) from the store, else from the labels seen; 1 otherwise."""
    if task != "classification":
        return 1
    declared = [s.n_classes for s in splits.values() if getattr(s, "n_classes", None)]
    seen = max(int(s.y.max()) + 1 for s in splits.values() if s.size)
    return max(declared + [seen])


def run_job(
    job: TrainJob,
    stores: Mapping[str, str | Path],
    outputs: JobOutputs,
    *,
    resume_path: str | Path,
    device: str = "auto",
    checkpoint_every_steps: int = 200,
) -> dict[str, Any]:
    """Train one (task, view, model, seed) job from cached stores and write its outputs."""

    settings_json, settings = job.to_json(), job.settings()
    task, seed = job.task, job.seed
    seed_everything(seed)
    dev = resolve_device(device)
    log.info("job %s on %s (torch %s, %d threads)", settings_json, dev, torch.__version__, torch.get_num_threads())
    env = {k: os.environ[k] for k in ENV_RECORDED if k in os.environ}
    if env:
        log.info("environment: %s", env)

    model_cfg, optim_cfg = job.model, job.optim
    splits = {name: load_split(stores[name]) for name in ("train", "val", "test")}
    for name, s in splits.items():
        log.info("%s: %d networks from %s", name, s.size, stores[name])
    spec = splits["train"].spec
    n_out = n_outputs_for(task, splits)
    torch.manual_seed(seed)  # model init depends on the seed only
    model = build_model(model_cfg, spec, task=task, n_outputs=n_out,
                        execution=ExecutionConfig.from_settings(model_cfg, optim_cfg))
    n_params = count_parameters(model)
    log.info("model %s: %d parameters", settings["preset"], n_params)
    if model_cfg.input_scaling == "rms":
        train = splits["train"]
        model.input_scale.calibrate(Network(spec, train.weights[0], train.biases[0]))
        log.info("input scaling (layer RMS over train): weights %s, biases %s",
                 _rounded(model.input_scale.weight_scale), _rounded(model.input_scale.bias_scale))

    stop = os.environ.get(STOP_ENV)
    t0 = time.monotonic()
    result = fit(
        model,
        optim_cfg,
        task,
        splits,
        seed=seed,
        device=dev,
        resume_path=resume_path,
        checkpoint_every_steps=checkpoint_every_steps,
        fingerprint=settings_json,
        stop_after_steps=int(stop) if stop else None,
    )
    wall = time.monotonic() - t0
    metric = result.metric
    reference = None
    if task == "editing":
        unedited = evaluate(editing.NoEdit(), splits["test"], task, optim_cfg.batch_size, dev)
        reference = {"label": "Unedited INRs (no model)", "value": unedited[metric]}
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
    }
    checkpoint = {
        "format": "scalegmn-checkpoint/1",
        "model_state": result.best_state,
        "model_config": model_cfg.to_dict(),
        "settings": settings,
        "spec": spec.to_dict(),
        "task": task,
        "view": settings["view"],
        "n_outputs": n_out,
        "selected": result.selected,
    }
    _atomic_torch_save(checkpoint, outputs.checkpoint)
    write_history(result.history, outputs.history)
    write_json(metrics, outputs.metrics)  # last: its presence means the job is complete
    discard_resume(Path(resume_path))
    log.info("done in %.1f s: test %s %.4f at step %s", wall, metric, metrics["value"], result.selected["step"])
    return metrics


def load_checkpoint(path: str | Path, device: str = "cpu"):
    """(model, checkpoint dict) from a ``best.pt`` written by :func:`run_job`."""

    try:
        ckpt = safe_torch_load(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        if _refused_global(err):
            raise DataError(path, f"refused to load: {_load_problem(err)}; use only best.pt "
                            "files written by the train rule") from None
        raise DataError(path, f"not a readable checkpoint ({_load_problem(err)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "scalegmn-checkpoint/1":
        raise DataError(path, "not a scalegmn checkpoint (expected best.pt written by the train rule)")
    job = TrainJob.from_settings(ckpt["settings"])
    model_cfg, optim_cfg = job.model, job.optim
    spec = NetworkSpec.from_dict(ckpt["spec"])
    model = build_model(model_cfg, spec, task=ckpt["task"], n_outputs=ckpt["n_outputs"],
                        execution=ExecutionConfig.from_settings(model_cfg, optim_cfg))
    model.load_state_dict(ckpt["model_state"])
    model.to(resolve_device(device)).eval()
    return model, ckpt


def copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.state_dict())
