"""Report: the results tables and figures, as rule ``table`` assembles them, and inspection.

- :mod:`~scalegmn.report.tables`: a results table (CSV, Markdown, figures) from the train
  jobs' ``metrics.json`` and ``history.csv`` (``scalegmn verify`` checks one is up to date);
- :mod:`~scalegmn.report.paper`: the numbers the ScaleGMN paper reports, shown beside ours;
- :mod:`~scalegmn.report.editing_figure`: table 3's figure of INRs before and after editing;
- :mod:`~scalegmn.report.embedding_figure`: table 5's figures (embeddings in 2-D, INR retrieval);
- :mod:`~scalegmn.report.inspection`: what a cached store holds (``scalegmn inspect``);
- :mod:`~scalegmn.report.budget`: a built table at a shorter step budget, from its histories
  (``scalegmn budget``).
"""

__all__ = ["budget", "editing_figure", "embedding_figure", "inspection", "paper", "tables"]
