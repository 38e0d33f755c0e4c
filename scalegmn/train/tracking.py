"""Experiment tracking: each evaluation row of a training job, sent to the trackers the user chose.

``training.loggers`` in config.yaml: ``csv`` is always on (the job's ``history.csv``); ``tensorboard``,
``wandb`` and ``mlflow`` are optional extras, imported only when chosen. Their files go under
``training.tracking_dir`` (default ``results/tracking/``), never beside the declared outputs:

- tensorboard: ``<dir>/tensorboard/<task>/<view>/<model>/seed<k>/`` event files;
- wandb: a run per job in project ``scalegmn`` (group = table cell), ``mode`` from ``WANDB_MODE``
  (default ``offline``: ``wandb sync <dir>/wandb/offline-run-*`` uploads later);
- mlflow: a run per job in experiment ``scalegmn``, stored at ``MLFLOW_TRACKING_URI`` or else
  in the file store ``<dir>/mlruns``.

Tracking never changes a result, so it is not part of a job's params: changing the loggers
reruns nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scalegmn.errors import ConfigError
from scalegmn.vocabulary import LOGGERS

log = logging.getLogger(__name__)

PROJECT = "scalegmn"


def _scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of an evaluation row (booleans as 0/1), for trackers that take only scalars."""
    out = {}
    for k, v in row.items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = float(v)
    return out


def _flat(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in mapping.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v) if not isinstance(v, str) else v
    return out


def _missing(name: str, package: str) -> ConfigError:
    return ConfigError("training.loggers", f"'{name}' needs the package {package}; install it "
                       f"(pip install 'scalegmn[tracking]' or pip install {package}) or remove '{name}'")


class _TensorBoard:
    def __init__(self, directory: Path, run: str, params: Mapping[str, Any]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch without the tensorboard package
            raise _missing("tensorboard", "tensorboard") from None
        self.writer = SummaryWriter(log_dir=str(directory / "tensorboard" / run))
        self.writer.add_text("settings", json.dumps(params, sort_keys=True))

    def log(self, row: Mapping[str, float], step: int) -> None:
        for k, v in row.items():
            self.writer.add_scalar(k, v, step)

    def finish(self, summary: Mapping[str, float]) -> None:
        for k, v in summary.items():
            self.writer.add_scalar(f"final/{k}", v, 0)
        self.writer.close()


class _Wandb:
    def __init__(self, directory: Path, run: str, params: Mapping[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise _missing("wandb", "wandb") from None
        directory.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=PROJECT, name=run, group=run.rpartition("/")[0], dir=str(directory),
                              config=dict(params), mode=os.environ.get("WANDB_MODE", "offline"), reinit="finish_previous")

    def log(self, row: Mapping[str, float], step: int) -> None:
        self.run.log(dict(row), step=step)

    def finish(self, summary: Mapping[str, float]) -> None:
        self.run.summary.update(dict(summary))
        self.run.finish()


class _MLflow:
    def __init__(self, directory: Path, run: str, params: Mapping[str, Any]) -> None:
        try:
            import mlflow
        except ImportError:
            raise _missing("mlflow", "mlflow-skinny") from None
        self.mlflow = mlflow
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # the file store: no server, no database; MLflow 3 asks for an explicit opt-in
            uri = (directory / "mlruns").resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(PROJECT)
        self.run = mlflow.start_run(run_name=run)
        mlflow.log_params({k: v[:500] for k, v in _flat(params).items()})

    def log(self, row: Mapping[str, float], step: int) -> None:
        self.mlflow.log_metrics(dict(row), step=step)

    def finish(self, summary: Mapping[str, float]) -> None:
        self.mlflow.log_metrics({f"final_{k}": v for k, v in summary.items()})
        self.mlflow.end_run()


_BACKENDS = {"tensorboard": _TensorBoard, "wandb": _Wandb, "mlflow": _MLflow}


def check_loggers(loggers: Sequence[str]) -> str | None:
    """What is wrong with a ``training.loggers`` list, or None (for the config schema)."""
    if isinstance(loggers, str):
        return f"{loggers!r} must be a list, e.g. [csv, tensorboard]"
    unknown = [x for x in loggers if not isinstance(x, str) or x not in LOGGERS]
    return f"unknown logger {unknown[0]!r}; choose from {', '.join(LOGGERS)}" if unknown else None


class Tracker:
    """The chosen trackers of one job: :meth:`log` each evaluation row, :meth:`finish` once.

    Args:
        loggers: names from :data:`scalegmn.vocabulary.LOGGERS` (``csv`` is written by the job).
        directory: where the trackers' files go (``training.tracking_dir``).
        run: the job's name, ``<task>/<view>/<model>/seed<k>``.
        params: the job's settings, recorded with the run.
    """

    def __init__(self, loggers: Sequence[str], directory: str | Path, run: str, params: Mapping[str, Any]) -> None:
        problem = check_loggers(loggers)
        if problem:
            raise ConfigError("training.loggers", problem)
        self.backends = []
        for name in dict.fromkeys(loggers):
            if name in _BACKENDS:
                self.backends.append(_BACKENDS[name](Path(directory), run, params))
                log.info("tracking to %s under %s", name, directory)

    def log(self, row: Mapping[str, Any]) -> None:
        """Send one evaluation row (its numbers) to every tracker, at its ``step``."""
        scalars = _scalars(row)
        step = int(row.get("step", 0))
        for backend in self.backends:
            backend.log(scalars, step)

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Record the job's final numbers (the selected test metric, ...) and close every tracker."""
        scalars = _scalars(summary)
        for backend in self.backends:
            backend.finish(scalars)
