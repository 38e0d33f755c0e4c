"""Models: the metanetworks trained by the pipeline, built from the blocks of :mod:`scalegmn.nn`.

- :mod:`~scalegmn.models.presets`: model and optimiser configurations and the original
  experiment presets by name (imported when the Snakefile is parsed: torch-free);
- :mod:`~scalegmn.models.metanetworks`: ScaleGMN and GMN models;
- :mod:`~scalegmn.models.baselines`: baselines that ignore the graph structure;
- :mod:`~scalegmn.models.nfn_dws`: the weight-space baselines NFN-NP, NFN-HNP and DWSNets;
- :mod:`~scalegmn.models.neural_graphs`: Neural Graphs' NG-GNN and NG-T baselines;
- :mod:`~scalegmn.models.catalogue`: the presets as built models, with their parameter counts
  (``scalegmn presets``).

This ``__init__`` imports no submodule, so the parse-time ``presets`` stays torch-free.
"""

__all__ = ["baselines", "catalogue", "metanetworks", "neural_graphs", "nfn_dws", "presets"]
