"""scalegmn.logs: the job log every workflow script configures."""

import json
import logging
import pickle

import pytest
from snakemake.logging import format_dict

from scalegmn.logs import ReadableJson, configure, readable


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


# ReadableJson: a rule's JSON params, which Snakemake's report prints as key=value pairs.
SETTINGS = json.dumps({"task": "classification", "seed": 0, "optim": {"lr": 0.001, "epochs": 1},
                       "execution": {}, "columns": [["mnist", {"label": "MNIST \"digits\""}]],
                       "seeds": [0, 1], "view": None}, sort_keys=True)


def _as_the_report_shows(params: dict) -> str:
    """What Snakemake's HTML report shows as a job's params (report.FileRecord.params, then the
    JSON the report embeds, decoded by its app)."""
    shown = format_dict(params).replace("\n", r"\n").replace('"', r"\"")
    return json.loads(json.dumps(shown))


def test_readable_json_prints_key_value_pairs_in_the_report():
    shown = _as_the_report_shows({"settings": ReadableJson(SETTINGS), "device": "cpu"})
    assert shown == ("settings=columns.mnist.label=MNIST 'digits', execution={}, optim.epochs=1, "
                     "optim.lr=0.001, seed=0, seeds=[0, 1], task=classification, view=null, device=cpu")
    # control: the plain JSON string is the escaped blob
    assert '\\"task\\": \\"classification\\"' in _as_the_report_shows({"settings": SETTINGS})


def test_readable_json_is_tracked_and_read_as_the_plain_json():
    params = ReadableJson(SETTINGS)
    assert repr(params) == repr(SETTINGS)  # Snakemake's rerun-on-change compares repr
    assert params == SETTINGS and str(params) == SETTINGS and json.loads(params) == json.loads(SETTINGS)
    unpickled = pickle.loads(pickle.dumps(params))  # how a job's script receives its params
    assert type(unpickled) is str and unpickled == SETTINGS


def test_readable_renders_values_and_lists():
    assert readable({}) == "{}"
    assert readable([["mnist", "mlp", 0], ["mnist", "mlp", 1]]) == "[[mnist, mlp, 0], [mnist, mlp, 1]]"
    assert readable({"a": {"b": [{"c": True}]}}) == "a.b=[{c: true}]"
    assert readable("two\nlines") == "two lines"
