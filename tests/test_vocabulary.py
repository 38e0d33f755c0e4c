"""The vocabulary is the one source of tasks (with their metric and direction), splits and
datasets: the metrics' selection, the stand-ins and the wildcard constraints read it."""

import re

from scalegmn.data.standins.sizes import STANDINS, default_root_name
from scalegmn.train.metrics import SELECTION
from scalegmn.vocabulary import DATASET_ROOTS, SPLITS, TASK_METRICS, TASKS, alternatives


def test_tasks_carry_their_metric_and_direction():
    assert TASKS == ("classification", "generalization", "editing", "embedding")
    assert SELECTION == {"classification": ("accuracy", ">="), "generalization": ("kendall_tau", ">="),
                         "editing": ("mse", "<"), "embedding": ("recall_at_1", ">=")}
    assert [TASK_METRICS[t].higher_is_better for t in TASKS] == [True, True, False, True]


def test_standins_and_wildcards_come_from_it():
    assert set(STANDINS) == set(DATASET_ROOTS)
    assert all(default_root_name(n) == DATASET_ROOTS[n] for n in STANDINS)
    split = alternatives(SPLITS)
    assert all(re.fullmatch(split, s) for s in SPLITS) and not re.fullmatch(split, "training")
    assert not re.fullmatch(alternatives([]), "")
