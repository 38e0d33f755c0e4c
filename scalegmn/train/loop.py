"""Training and evaluation loops of the tasks, with exact resume after a kill.

One loop serves classification, generalization prediction, INR editing (docs/model.md §5) and
the contrastive embedding task (:mod:`scalegmn.train.contrastive`):
AdamW, gradient-norm clipping, linear warmup stepped once per batch and then constant, an
evaluation of val and test after every epoch (or every ``eval_every_steps`` steps), and the
paper's model selection: the reported number is the TEST metric at the evaluation with the best
VALIDATION metric (``scalegmn.train.metrics.SELECTION``).

Resume: every ``checkpoint_every_steps`` steps (and at each evaluation) the whole training state
is written atomically to a resume file (model, optimizer with its schedule, torch RNG, the shuffling
generator, the epoch's permutation and position, best-so-far, history). A restarted run loads it
and continues with bit-identical batches and dropout masks, so it ends with the same metrics as
an uninterrupted run; the file is deleted after success. A streamed train split
(:class:`~scalegmn.data.stream.StreamedSplit`) is trained on one pass of its block-shuffled
stream per epoch; its resume replays the epoch from the generator state saved at the epoch's
start, so it is exact too. ``SCALEGMN_STOP_AFTER_STEPS=N`` (an
environment variable, so it never changes Snakemake params) makes the run raise after N steps,
to test this.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from scalegmn.data.split_protocol import Split
from scalegmn.data.stream import StreamedSplit, in_order
from scalegmn.execution import DEFAULT_EXECUTION, ExecutionConfig
from scalegmn.models.presets import OptimConfig
from scalegmn.train import editing
from scalegmn.train.checkpoint import restore_resume, save_resume
from scalegmn.train.contrastive import Contrastive, contrastive_loss, evaluate_split
from scalegmn.train.metrics import (
    SELECTION,
    classification_metrics,
    editing_metrics,
    generalization_metrics,
    is_better,
)
from scalegmn.train.optimizer import WarmupAdamW

log = logging.getLogger(__name__)

STOP_ENV = "SCALEGMN_STOP_AFTER_STEPS"
LOG_EVERY_SECONDS = 30


class SimulatedKill(RuntimeError):
    """Raised after ``SCALEGMN_STOP_AFTER_STEPS`` steps, as if the job had been killed."""


class LinearWarmup:
    """lr factor ``min(1, (step + 1) / warmup)``: linear rise, then constant (no decay).

    The original multiplies by ``step / 1000`` from step 0, which wastes the first update;
    starting at ``1 / warmup`` is the same schedule shifted by one step.
    """

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        """The lr factor after ``step`` optimizer steps."""
        if self.warmup_steps <= 0:
            return 1.0
        return min(1.0, (step + 1) / self.warmup_steps)


# --- one batch ---------------------------------------------------------------------------------


def _batch_loss(model, batch, task: str, images, objective: Contrastive | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean training loss, per-item values used for evaluation; for the embedding task the
    loss alone: it is evaluated by :func:`scalegmn.train.contrastive.evaluate_split`)."""
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
    if task == "embedding":
        loss = contrastive_loss(model, batch, objective or Contrastive())
        return loss, loss.detach().reshape(1)
    raise ValueError(f"unknown task {task!r}")


def optimizer_step(
    model: torch.nn.Module,
    optimizer: WarmupAdamW | torch.optim.Optimizer,
    batch,
    loss_of: Callable[[Any], torch.Tensor],
    *,
    clip_grad_norm: float | None,
    execution: ExecutionConfig = DEFAULT_EXECUTION,
) -> torch.Tensor:
    """One optimizer step on ``batch``; returns the (detached) mean loss, on the batch's device.

    No host-device synchronisation: the loss is not read here (a non-finite loss is caught by
    :func:`fit` once per logging interval, :func:`check_losses`).

    With ``execution.micro_batch_size`` the gradient is accumulated over micro-batches, each
    loss weighted by its share of the batch. Every loss here is a mean over networks and no layer uses batch
    statistics (LayerNorm is per sample), so this is the gradient of the whole batch, computed
    with one micro-batch's activation memory.
    """
    n = batch.size
    micro = execution.micro_batch_size
    size = micro if micro and micro < n else n
    optimizer.zero_grad(set_to_none=True)
    total = None
    for start in range(0, n, size):
        part = batch if size == n else batch.take(slice(start, start + size))
        loss = loss_of(part)
        (loss * (part.size / n)).backward()
        # On the loss's device: reading it here would make the host wait for the GPU every step.
        weighted = loss.detach() * (part.size / n)
        total = weighted if total is None else total + weighted
    if clip_grad_norm:
        # WarmupAdamW's list: walking the modules for it costs ~1% of a small model's step.
        params = optimizer.params if isinstance(optimizer, WarmupAdamW) else model.parameters()
        torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
    optimizer.step()
    return total


@torch.no_grad()
def evaluate(model, split: Split, task: str, batch_size: int, device: torch.device, *,
             objective: Contrastive | None = None) -> dict[str, float]:
    """Metrics of ``model`` over the whole split (in order, no shuffling); ``objective``: the
    embedding task's settings."""
    if task == "embedding":
        return evaluate_split(model, split, batch_size, device, objective or Contrastive())
    was_training = model.training
    model.eval()
    outs, ys = [], []
    images = getattr(split, "images", None)
    for batch in in_order(split, batch_size):
        batch = batch.to(device)
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


@dataclass
class TrainState:
    """Everything of the loop that changes from step to step; saved in the resume file as a
    plain dict (:meth:`to_dict`), so a resumed run continues exactly where the killed one was.

    Attributes:
        step: optimizer steps done; epoch: epochs completed; pos: position in ``perm``, the
            current epoch's permutation of the train split (None before the first epoch);
        best_value, selected, best_state: the validation metric, evaluation record and model
            weights of the best evaluation so far; history: one row per evaluation;
        loss_sum, loss_count: the training loss since the last evaluation; val_trace: the
            validation metric of every evaluation (early stopping); stream_rng: for a streamed
            train split (:class:`~scalegmn.data.stream.StreamedSplit`), the shuffling
            generator's state at the start of the epoch (``pos`` then counts the networks of the
            epoch already trained on), from which a resumed run replays the epoch's block order.
    """

    step: int = 0
    epoch: int = 0
    pos: int = 0
    perm: torch.Tensor | None = None
    best_value: float | None = None
    selected: dict[str, Any] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    loss_sum: float = 0.0
    loss_count: int = 0
    val_trace: list[float] = field(default_factory=list)
    stream_rng: torch.Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, for the resume file."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> TrainState:
        """The state saved by :meth:`to_dict`."""
        state = cls(**saved)
        int(state.step)
        return state


@dataclass
class _Run:
    """What stays fixed during :func:`fit`: the model, its optimizer and schedule, the data."""

    model: torch.nn.Module
    loop: OptimConfig
    task: str
    splits: Mapping[str, Split]
    device: torch.device
    execution: ExecutionConfig
    optimizer: WarmupAdamW
    generator: torch.Generator
    total_steps: int
    steps_per_epoch: int
    on_eval: Callable[[dict[str, Any]], None] | None
    pending: list[torch.Tensor] = field(default_factory=list)  # step losses not yet read
    checked_step: int = 0  # the last step whose loss was read
    stream: Iterator | None = None  # a streamed train split's current epoch of batches
    objective: Contrastive = field(default_factory=Contrastive)  # the embedding task's

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def metric(self) -> str:
        return SELECTION[self.task][0]


def _total_steps(loop: OptimConfig, steps_per_epoch: int) -> int:
    if loop.max_steps:
        return int(loop.max_steps)
    if loop.epochs:
        return int(loop.epochs) * steps_per_epoch
    raise ValueError("set optim.epochs or optim.max_steps")


def _start(model, loop: OptimConfig, task: str, splits: Mapping[str, Split], *, seed: int,
           device: torch.device, execution: ExecutionConfig, on_eval) -> _Run:
    """Move the model to ``device`` and build its optimizer, schedule and shuffling generator."""
    n = splits["train"].size
    if n == 0:
        raise ValueError("the train split is empty")
    steps_per_epoch = math.ceil(n / loop.batch_size)
    total_steps = _total_steps(loop, steps_per_epoch)
    model.to(device)
    model.train()
    optimizer = WarmupAdamW(model.parameters(), lr=loop.lr, weight_decay=loop.weight_decay,
                            schedule=LinearWarmup(loop.warmup_steps))
    generator = torch.Generator().manual_seed(seed)
    objective = Contrastive.of(loop)
    if task == "embedding" and loop.positive == "sibling":
        if isinstance(splits["train"], StreamedSplit):
            raise ValueError("optim.positive: sibling needs a resident train split (raise execution.resident_max_mb)")
        objective = Contrastive.of(loop, splits["train"])
        if not objective.siblings.any:
            log.warning("optim.positive is sibling, but no train network has a sibling (another checkpoint of "
                        "its run or INR of its image): every positive is a copy")
    return _Run(model, loop, task, splits, device, execution, optimizer, generator,
                total_steps, steps_per_epoch, on_eval, objective=objective)


def _training_loss(model, task: str, images, objective: Contrastive, part) -> torch.Tensor:
    return _batch_loss(model, part, task, images, objective)[0]


def _next_indices(run: _Run, state: TrainState) -> torch.Tensor:
    """The next batch's rows: a fresh permutation (from the run's generator) at each epoch start."""
    n = run.train.size
    if state.perm is None or state.pos >= n:
        state.perm = torch.randperm(n, generator=run.generator)
        state.pos = 0
    idx = state.perm[state.pos: state.pos + run.loop.batch_size]
    state.pos += len(idx)
    return idx


def _epoch_stream(run: _Run) -> Iterator:
    return iter(run.train.batches(run.loop.batch_size, shuffle=True, generator=run.generator))


def _next_streamed(run: _Run, state: TrainState):
    """The next batch of a streamed train split: one pass over the stream per epoch (blocks
    and the rows inside them shuffled by the run's generator, every batch full but the last,
    so an epoch has as many steps as a resident one). A run resumed mid-epoch replays the
    epoch from its saved generator state up to where it was (the same batches and generator
    state as the killed run; reading the skipped batches costs up to one epoch's I/O)."""
    n = run.train.size
    if run.stream is None and state.stream_rng is not None and 0 < state.pos < n:
        run.generator.set_state(state.stream_rng)
        run.stream, done = _epoch_stream(run), 0
        while done < state.pos:
            done += next(run.stream).size
        log.info("resumed mid-epoch: replayed %d networks of the stream", done)
    elif run.stream is None and 0 < state.pos < n:  # a resume file of the resident path
        log.warning("the resume file was written training on the resident split: the streamed run "
                    "starts a new pass over the train split at step %d", state.step)
    if run.stream is None or state.pos >= n:
        _close_stream(run)
        state.stream_rng = run.generator.get_state()
        run.stream, state.pos = _epoch_stream(run), 0
    batch = next(run.stream)
    state.pos += batch.size
    return batch


def _close_stream(run: _Run) -> None:
    """Stop the background reader of the current epoch's stream, if any."""
    if run.stream is not None:
        run.stream.close()
        run.stream = None


def _train_step(run: _Run, state: TrainState) -> bool:
    """One optimizer step on the next batch; True when it ended an epoch."""
    if isinstance(run.train, StreamedSplit):
        batch = _next_streamed(run, state).to(run.device)
    else:
        batch = run.train.get(_next_indices(run, state)).to(run.device)
    loss = optimizer_step(
        run.model,
        run.optimizer,
        batch,
        functools.partial(_training_loss, run.model, run.task, getattr(run.train, "images", None), run.objective),
        clip_grad_norm=run.loop.clip_grad_norm,
        execution=run.execution,
    )
    state.step += 1
    run.pending.append(loss)  # read by check_losses, once per logging interval
    end_of_epoch = state.pos >= run.train.size
    if end_of_epoch:
        state.epoch += 1
    return end_of_epoch


def check_losses(run: _Run, state: TrainState) -> None:
    """Read the step losses since the last check (one host-device synchronisation) into the
    state's running sum; ``FloatingPointError`` if one is not finite."""
    if not run.pending:
        return
    losses = torch.stack(run.pending).double().cpu()
    run.pending.clear()
    first, run.checked_step = run.checked_step + 1, state.step
    bad = torch.nonzero(~torch.isfinite(losses)).flatten()
    if bad.numel():
        at = first + int(bad[0])
        raise FloatingPointError(f"training loss is {float(losses[bad[0]])} at step {at} (checked at step "
                                 f"{state.step}); lower optim.lr")
    for value in losses.tolist():  # one by one, as read: the same sum however steps are grouped
        state.loss_sum += value
    state.loss_count += len(losses)


def _eval_due(run: _Run, step: int, end_of_epoch: bool) -> bool:
    every = run.loop.eval_every_steps
    return bool((every and step % every == 0) or (not every and end_of_epoch) or step == run.total_steps)


def _evaluate_and_select(run: _Run, state: TrainState) -> float:
    """Evaluate val + test, record the history row, apply the selection rule; the val metric."""
    check_losses(run, state)
    row: dict[str, Any] = {
        "step": state.step,
        "epoch": state.step / run.steps_per_epoch,
        "lr": run.optimizer.lr,
        "train_loss": state.loss_sum / max(state.loss_count, 1),
    }
    state.loss_sum, state.loss_count = 0.0, 0
    results = {name: evaluate(run.model, run.splits[name], run.task, run.loop.batch_size, run.device,
                              objective=run.objective)
               for name in ("val", "test")}
    for name, res in results.items():
        row.update({f"{name}_{k}": v for k, v in res.items()})
    metric = run.metric
    value = results["val"][metric]
    row["selected"] = is_better(run.task, value, state.best_value)
    if row["selected"]:
        state.best_value = value
        state.selected = {"step": state.step, "epoch": row["epoch"], "val": results["val"], "test": results["test"]}
        state.best_state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    state.history.append(row)
    log.info(
        "step %d/%d epoch %.2f train_loss %.4g val_%s %.4f test_%s %.4f%s",
        state.step, run.total_steps, row["epoch"], row["train_loss"], metric, value,
        metric, results["test"][metric], " (best)" if row["selected"] else "",
    )
    if run.on_eval is not None:
        run.on_eval(row)
    return value


def _stops_early(run: _Run, state: TrainState, value: float) -> bool:
    """Early exit of the original's epoch mode: the last ``patience`` val values strictly worse."""
    trace = state.val_trace
    trace.append(value)
    p = run.loop.patience
    if not (p and not run.loop.eval_every_steps and len(trace) > p):
        return False
    window = trace[-(p + 1):]
    higher_is_better = SELECTION[run.task][1] == ">="
    worse = all((b < a) if higher_is_better else (b > a) for a, b in zip(window, window[1:], strict=False))
    if worse:
        log.info("stopping early: validation %s got worse %d evaluations in a row", run.metric, p)
    return worse


@dataclass(frozen=True)
class Resume:
    """Where :func:`fit` keeps its resume file, how often it writes it, and whose it is.

    Attributes:
        path: the resume file (``.resume/last.pt`` of a job).
        every_steps: also write it every this many steps (it is always written at evaluations).
        fingerprint: the job's settings; a file written with another fingerprint is ignored
            and replaced, so a changed config never resumes a stale run.
        stop_after_steps: raise :class:`SimulatedKill` after this many steps, as if the job had
            been killed (``SCALEGMN_STOP_AFTER_STEPS``; tests of the resume).
    """

    path: Path
    every_steps: int = 200
    fingerprint: str = ""
    stop_after_steps: int | None = None


def fit(
    model: torch.nn.Module,
    loop: OptimConfig,
    task: str,
    splits: Mapping[str, Split],
    *,
    seed: int,
    device: torch.device | str = "cpu",
    execution: ExecutionConfig = DEFAULT_EXECUTION,
    resume: Resume | None = None,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train ``model`` on ``splits['train']``; select on ``val``; report ``test``.

    ``execution`` is the policy the model was built with; the training step uses its
    ``micro_batch_size``. With ``resume`` the run continues from its resume file when there is
    one of the same fingerprint, and keeps it up to date (see :class:`Resume`).
    """
    run = _start(model, loop, task, splits, seed=seed, device=torch.device(device), execution=execution,
                 on_eval=on_eval)
    state, resumed_from = TrainState(), None
    if resume is not None and Path(resume.path).exists():
        restored = restore_resume(Path(resume.path), resume.fingerprint, run.model, run.optimizer, run.generator,
                                  TrainState.from_dict)
        if restored is not None:
            state, resumed_from = restored, restored.step
            run.checked_step = restored.step
            log.info("resuming from %s at step %d/%d", resume.path, resumed_from, run.total_steps)

    try:
        _loop(run, state, resume)
    finally:
        _close_stream(run)
    if state.selected is None:
        raise FloatingPointError(f"validation {run.metric} was never a number; nothing to select")
    return FitResult(
        metric=run.metric,
        selected=state.selected,
        history=state.history,
        best_state=state.best_state,
        steps=state.step,
        resumed_from_step=resumed_from,
    )


def _loop(run: _Run, state: TrainState, resume: Resume | None) -> None:
    """Train, evaluate and checkpoint until the run's last step (or an early stop)."""
    t0 = last_log = time.monotonic()
    stop = False
    while state.step < run.total_steps and not stop:
        end_of_epoch = _train_step(run, state)
        step = state.step
        due = _eval_due(run, step, end_of_epoch)
        if due:
            stop = _stops_early(run, state, _evaluate_and_select(run, state))
        if resume is not None and (due or step % resume.every_steps == 0):
            check_losses(run, state)
            save_resume(Path(resume.path), resume.fingerprint, run.model, run.optimizer, run.generator,
                        state.to_dict())
        if time.monotonic() - last_log > LOG_EVERY_SECONDS:
            check_losses(run, state)  # the one synchronisation per logging interval
            last_log = time.monotonic()
            log.info("step %d/%d (%.1f steps/s)", step, run.total_steps, step / (last_log - t0))
        stop_after = resume.stop_after_steps if resume is not None else None
        if stop_after is not None and step >= stop_after and step < run.total_steps:
            raise SimulatedKill(f"stopped after {step} steps ({STOP_ENV})")
