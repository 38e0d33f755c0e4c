"""CNN Wild Park through the data DAG: the tiny stand-in built, ingested, split and cached by
Snakemake, and the stores load as MixedSplits of mixed-architecture batches."""

from __future__ import annotations

import pytest

from tests.workflow.test_data_dag import copy_workflow, dry_run_jobs, smk, stage_counts

pytestmark = pytest.mark.slow

CONFIG = {
    "datasets": {"cnn_wild_park": {"source": "standin", "standin": {"size": "tiny", "seed": 0},
                                   "canonicalize": "none"}},
    "views": {"wild_park": {"dataset": "cnn_wild_park", "symmetry_copies": 1}},
    "tables": {},
}


def test_wild_park_data_dag(tmp_path):
    from scalegmn.data.cache import load_split
    from scalegmn.weightspace.batch import MixedBatch

    work = copy_workflow(tmp_path, CONFIG)
    assert dry_run_jobs(work) == stage_counts(1, 1)
    smk(work, "data_all", timeout=600)
    sizes = 0
    for split in ("train", "val", "test"):
        s = load_split(work / "results/cache/wild_park" / f"{split}.zarr")
        assert s.is_mixed and s.task_kind == "regression" and s.attrs["split"] == split and s.size > 0
        assert s.attrs["source_sha256"] and s.attrs["config_hash"]
        batch = next(iter(s.batches(8, shuffle=False)))
        assert isinstance(batch, MixedBatch) and batch.size == min(8, s.size)
        sizes += s.size
    assert sizes == 18  # every checkpoint of the tiny stand-in, in exactly one split
    assert "nothing to be done" in smk(work, "data_all").lower()
