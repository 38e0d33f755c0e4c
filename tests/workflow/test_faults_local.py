"""`source: local` folders through Snakemake: their content decides the ingest stage (issue 11,
items 1, 2, 12 and 13). Each test builds only extract + ingest of a 16-network MNIST-INR folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from scalegmn.data.network_set import read_network_set
from tests.workflow.faults_data_helpers import (
    copy_workflow,
    nothing_to_do,
    smk,
    write_config,
    write_mnist_folder,
)

TABLE = "results/data/mnist_inr/weights.h5"


def local_config(path: Path, **extra) -> dict:
    return {"datasets": {"mnist_inr": {"source": "local", "local": {"path": str(path)}, **extra}}}


def quarantined(work: Path) -> list[str]:
    lines = (work / "results/data/mnist_inr/quarantine.tsv").read_text().splitlines()
    return [line.split("\t")[0] for line in lines[1:]]


def test_repaired_local_files_are_ingested_again(tmp_path):
    """Item 1: repairing quarantined files in a local folder makes ingest rerun; an untouched
    folder reruns nothing."""
    data = tmp_path / "data" / "mnist-inrs"
    files = write_mnist_folder(data, 16, corrupt=(1, 5, 9))
    work = copy_workflow(tmp_path / "wf", local_config(data, on_bad_file="skip"))
    proc = smk(work, TABLE)
    assert proc.returncode == 0, proc.out[-3000:]
    assert read_network_set(work / TABLE, arrays=False).size == 13 and len(quarantined(work)) == 3
    assert nothing_to_do(work, TABLE), "an unchanged folder must not rerun anything"

    good = write_mnist_folder(tmp_path / "scratch" / "mnist-inrs", 16)
    for i in (1, 5, 9):
        shutil.copy2(good[i], files[i])
    os.utime(files[1])  # copy2 keeps the scratch file's time; the repair happens now
    assert not nothing_to_do(work, TABLE), "repaired files must be read again"
    proc = smk(work, TABLE)
    assert proc.returncode == 0, proc.out[-3000:]
    assert read_network_set(work / TABLE, arrays=False).size == 16 and quarantined(work) == []


def test_quarantine_prints_one_console_line_per_dataset(tmp_path):
    """Item 12: quarantined files are reported on the console, once, naming the TSV."""
    data = tmp_path / "data" / "mnist-inrs"
    write_mnist_folder(data, 16, corrupt=(2, 3))
    work = copy_workflow(tmp_path / "wf", local_config(data, on_bad_file="skip"))
    proc = smk(work, TABLE)
    assert proc.returncode == 0, proc.out[-3000:]
    lines = [line for line in proc.out.splitlines() if "quarantine" in line and "mnist_inr" in line
             and "output:" not in line and "rule " not in line]
    assert len(lines) == 1, proc.out[-3000:]
    assert "2 of 16" in lines[0] and "results/data/mnist_inr/quarantine.tsv" in lines[0]


def test_moved_local_folder_recovers_on_a_plain_rerun(tmp_path):
    """Item 2: the link follows the user's path (not the folder it resolved to on the first run),
    so re-pointing that path recovers with a plain rerun; a path that is gone stops the run with
    one line naming it and the config key."""
    store = tmp_path / "disk"
    write_mnist_folder(store / "v1" / "mnist-inrs", 16)
    current = tmp_path / "current"
    current.symlink_to(store / "v1", target_is_directory=True)
    work = copy_workflow(tmp_path / "wf", local_config(current / "mnist-inrs"))
    assert smk(work, TABLE).returncode == 0

    (store / "v1").rename(store / "v2")  # the folder moves; the user's path is re-pointed to it
    current.unlink()
    current.symlink_to(store / "v2", target_is_directory=True)
    (work / TABLE).unlink()  # something makes ingest run again
    proc = smk(work, TABLE)
    assert proc.returncode == 0, proc.out[-3000:]
    assert read_network_set(work / TABLE, arrays=False).size == 16

    gone = tmp_path / "elsewhere"
    (store / "v2").rename(gone)  # now the user's path leads nowhere
    proc = smk(work, TABLE)
    assert proc.returncode != 0
    lines = [line for line in proc.out.splitlines() if "datasets.mnist_inr.local.path" in line]
    assert len(lines) == 1 and str(current / "mnist-inrs") in lines[0], proc.out[-3000:]
    assert "results/data/mnist_inr/raw" not in lines[0]

    write_config(work, local_config(gone / "mnist-inrs"))  # the user fixes the path: plain rerun
    proc = smk(work, TABLE)
    assert proc.returncode == 0, proc.out[-3000:]
    assert nothing_to_do(work, TABLE)


def test_local_path_may_name_the_folder_that_holds_the_root(tmp_path):
    """Item 13: `local.path` at the folder containing `mnist-inrs/` finds the root, as an archive does."""
    data = tmp_path / "download"
    write_mnist_folder(data / "mnist-inrs", 16)
    (data / "README.txt").write_text("the DWS zoo\n")
    work = copy_workflow(tmp_path / "wf", local_config(data))
    proc = smk(work, TABLE)
    assert proc.returncode == 0, proc.out[-3000:]
    assert read_network_set(work / TABLE, arrays=False).size == 16
