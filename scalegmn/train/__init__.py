"""Training: one job per (task, view, model, seed), as rule ``train`` runs it.

- :mod:`~scalegmn.train.experiments`: the EXPERIMENTS section of ``config.yaml`` (tables,
  columns, rows, seeds), validated at parse time;
- :mod:`~scalegmn.train.loop`: the training and evaluation loops of the three tasks, with exact
  resume after a kill, and the job that writes ``metrics.json``, ``history.csv`` and ``best.pt``;
- :mod:`~scalegmn.train.metrics`: evaluation metrics over a whole split;
- :mod:`~scalegmn.train.editing`: INR editing (targets, residual edits, rendering);
- :mod:`~scalegmn.train.predict`: apply a trained checkpoint to networks (``scalegmn predict``).

This ``__init__`` imports no submodule, so the parse-time ``experiments`` stays torch-free.
"""

__all__ = ["editing", "experiments", "loop", "metrics", "predict"]
