"""Training: one job per (task, view, model, seed), as rule ``train`` runs it.

- :mod:`~scalegmn.train.experiments`: the EXPERIMENTS section of ``config.yaml`` (tables,
  columns, rows, seeds), validated at parse time;
- :mod:`~scalegmn.train.job`: one pipeline job: data, model, fit, and the files it writes
  (``metrics.json``, ``history.csv``, ``best.pt``);
- :mod:`~scalegmn.train.loop`: the training and evaluation loop of the tasks;
- :mod:`~scalegmn.train.optimizer`: the loop's AdamW with warm-up (torch.optim's math, without
  its per-job import of ``torch._dynamo``);
- :mod:`~scalegmn.train.contrastive`: the embedding task's objective (InfoNCE, symmetry + noise
  positives) and its retrieval evaluation;
- :mod:`~scalegmn.train.embeddings`: embedding stores (zarr) and ``scalegmn embed``;
- :mod:`~scalegmn.train.interpolation`: midpoints of two networks after the encoder's alignment;
- :mod:`~scalegmn.train.search`: nearest networks in an embedding store (``scalegmn search``);
- :mod:`~scalegmn.train.checkpoint`: resume files (exact resume after a kill), ``best.pt``
  reading and writing, weights-only loading;
- :mod:`~scalegmn.train.setup`: device, seeding, allocator, output count;
- :mod:`~scalegmn.train.metrics`: evaluation metrics over a whole split;
- :mod:`~scalegmn.train.editing`: INR editing (targets, residual edits, rendering);
- :mod:`~scalegmn.train.tracking`: experiment trackers (TensorBoard, wandb, MLflow) fed each
  evaluation (``training.loggers``);
- :mod:`~scalegmn.train.predict`: apply a trained checkpoint to networks (``scalegmn predict``).

This ``__init__`` imports no submodule, so the parse-time ``experiments`` stays torch-free.
"""

__all__ = ["checkpoint", "contrastive", "editing", "embeddings", "experiments", "interpolation", "job", "loop",
           "metrics", "optimizer", "predict", "search", "setup", "tracking"]
