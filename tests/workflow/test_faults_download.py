"""`source: download` faults through Snakemake, against the local fault server of
tests/data/test_acquire.py (issue 11, items 6, 7, 8 and 12). Only download (and extract) jobs run."""

from __future__ import annotations

import io
import zipfile

from tests.data.test_acquire import Server, make_zip
from tests.workflow.faults_data_helpers import copy_workflow, nothing_to_do, smk, write_config


def corrupt_zip() -> bytes:
    body = bytearray(make_zip())
    body[200:260] = b"\x00" * 60  # a member's data is damaged: its CRC fails
    return bytes(body)


def big_zip() -> bytes:
    """A zip of a few hundred kB (stored, not compressed), so a broken body leaves a real part."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("mnist-inrs/mnist_png_testing_0_0/checkpoints/model_final.pth", bytes(range(256)) * 2000)
    return buf.getvalue()


def dl(urls: list[str], **download) -> dict:
    return {"source": "download", "download": {"urls": urls, **download}}


def test_permanent_download_failures_run_once(tmp_path):
    """Item 6: a 404, an HTML page, a checksum mismatch and a corrupt archive are each fetched
    once, even where Snakemake is told to retry failed jobs (the profiles set `retries`)."""
    with Server({"data.zip": make_zip(), "corrupt.zip": corrupt_zip()}) as s:
        cfg = {"datasets": {
            "mnist_inr": dl([f"{s.url}/missing/data.zip"], retries=3),
            "fmnist_inr": dl([f"{s.url}/html/data.zip"], retries=3),
            "cifar10_inr": dl([f"{s.url}/ok/data.zip"], sha256="0" * 64, retries=3),
            "svhn_gs": dl([f"{s.url}/ok/corrupt.zip"], retries=3),
        }}
        work = copy_workflow(tmp_path / "wf", cfg)
        targets = [f"results/data/{d}/download" for d in cfg["datasets"]]
        proc = smk(work, "--keep-going", "--retries", "2", *targets)
    assert proc.returncode != 0
    assert s.hits == {"/missing/data.zip": 1, "/html/data.zip": 1, "/ok/data.zip": 1, "/ok/corrupt.zip": 1}, (
        s.hits, proc.out[-3000:])
    for d in cfg["datasets"]:
        assert not (work / f"results/data/{d}/download").exists()
        partial = work / f"results/data/{d}/download.partial"
        assert not partial.exists() or not [p for p in partial.rglob("*") if p.is_file()], d


def test_killed_download_resumes_in_the_next_run(tmp_path):
    """Item 7: the partial file of a failed run is kept and the next run resumes it with Range."""
    body = big_zip()
    with Server({"data.zip": body}) as s:
        work = copy_workflow(tmp_path / "wf", {"datasets": {"mnist_inr": dl([f"{s.url}/resume/data.zip"], retries=1)}})
        first = smk(work, "results/data/mnist_inr/download")
        assert first.returncode != 0  # the body broke off half-way, no attempt left in this run
        second = smk(work, "results/data/mnist_inr/download")
        assert second.returncode == 0, second.out[-3000:]
    assert s.ranges == [f"bytes={len(body) // 2}-"]
    assert (work / "results/data/mnist_inr/download/data.zip").read_bytes() == body
    assert not (work / "results/data/mnist_inr/download.partial").exists()


def test_retries_setting_reruns_nothing(tmp_path):
    """Item 8: `download.retries` cannot change the data, so changing it reruns no stage;
    `download.archive` can, and does (the control)."""
    with Server({"data.zip": make_zip()}) as s:
        ds = dl([f"{s.url}/ok/data.zip"], retries=2)
        work = copy_workflow(tmp_path / "wf", {"datasets": {"mnist_inr": ds}})
        target = "results/data/mnist_inr/raw"
        proc = smk(work, target)
        assert proc.returncode == 0, proc.out[-3000:]
        ds["download"]["retries"] = 7
        write_config(work, {"datasets": {"mnist_inr": ds}})
        assert nothing_to_do(work, target)
        ds["download"]["archive"] = "zip"
        write_config(work, {"datasets": {"mnist_inr": ds}})
        assert not nothing_to_do(work, target)
    assert s.hits == {"/ok/data.zip": 1}


def test_download_retries_print_one_console_line(tmp_path):
    """Item 12: a download that needed retries says so on the console, once per dataset."""
    with Server({"data.zip": make_zip()}) as s:
        work = copy_workflow(tmp_path / "wf", {"datasets": {"mnist_inr": dl([f"{s.url}/flaky/data.zip"], retries=3)}})
        proc = smk(work, "results/data/mnist_inr/download")
    assert proc.returncode == 0, proc.out[-3000:]
    lines = [line for line in proc.out.splitlines() if line.startswith("mnist_inr: download")]
    assert len(lines) == 1, proc.out[-3000:]
    assert "1 retry" in lines[0] and "HTTP 500" in lines[0], lines[0]


def test_quiet_download_prints_no_summary(tmp_path):
    with Server({"data.zip": make_zip()}) as s:
        work = copy_workflow(tmp_path / "wf", {"datasets": {"mnist_inr": dl([f"{s.url}/ok/data.zip"])}})
        proc = smk(work, "results/data/mnist_inr/download")
    assert proc.returncode == 0, proc.out[-3000:]
    assert not [line for line in proc.out.splitlines() if line.startswith("mnist_inr: download")]

