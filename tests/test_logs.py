"""scalegmn.logs: the job log every workflow script configures."""

import logging

import pytest

from scalegmn.logs import configure


@pytest.fixture(autouse=True)
def _restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = handlers, level


def test_records_go_to_the_job_log(tmp_path):
    log = tmp_path / "job.log"
    with configure(log):
        logging.getLogger("scalegmn.data.ingest").info("42 networks")
    assert log.read_text().endswith(" INFO scalegmn.data.ingest: 42 networks\n")


def test_a_failure_logs_its_one_line_reason_and_goes_on(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(ValueError, match="bad file"), configure(log):
        raise ValueError("a.pth: bad file")
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith(" ERROR scalegmn: a.pth: bad file")


def test_a_failure_message_comes_with_the_traceback(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(RuntimeError), configure(log, logger="train", failure="training failed"):
        raise RuntimeError("nan loss")
    text = log.read_text()
    assert " ERROR train: training failed\nTraceback" in text and "RuntimeError: nan loss" in text
