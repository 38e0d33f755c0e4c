"""The job log of a workflow script: one call points logging at the rule's ``log:`` file.

Every script in ``workflow_scripts/`` starts the same way::

    with configure(snakemake.log[0]):
        ...  # the rule's one job

:func:`configure` sends the package's log records (``logging.getLogger(__name__)`` in every
module) to the job log, and the ``with`` block writes the reason of a failure there before the
exception goes on to Snakemake, which marks the job failed. :class:`ReadableJson` is the JSON
string a rule passes as a param, printed as ``key=value`` pairs. Standard library only: the scripts
import it before anything heavy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from os import PathLike
from types import TracebackType
from typing import Any

__all__ = ["FORMAT", "JobLog", "ReadableJson", "configure", "readable"]

#: Format of every job log line: time, level, logger name, message.
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JobLog:
    """Logs the failure of the ``with`` block it guards, then lets the exception propagate.

    Args:
        logger: name of the logger the failure is written to.
        failure: ``None`` writes the exception's own one-line message (the reason a user can
            act on: a bad file, a checksum mismatch); a message writes that line followed by
            the traceback, for failures whose cause is in the code (training, tables).
    """

    def __init__(self, logger: str = "scalegmn", failure: str | None = None) -> None:
        self.logger = logging.getLogger(logger)
        self.failure = failure

    def __enter__(self) -> logging.Logger:
        return self.logger

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if isinstance(exc, Exception):
            if self.failure is None:
                self.logger.error("%s", exc)
            else:
                self.logger.error("%s", self.failure, exc_info=(exc_type, exc, tb))
        return False  # never swallow: Snakemake must see the job fail


def configure(
    log_path: str | PathLike[str],
    *,
    logger: str = "scalegmn",
    failure: str | None = None,
) -> JobLog:
    """Send log records of level INFO and above to ``log_path`` (replacing any handler).

    Args:
        log_path: the job's log file, ``snakemake.log[0]``.
        logger: name of the logger a failure is written to.
        failure: what the failure line says (see :class:`JobLog`).

    Returns:
        A context manager that logs a failure of its block to the job log and re-raises it.
    """
    logging.basicConfig(filename=log_path, level=logging.INFO, format=FORMAT, force=True)
    return JobLog(logger, failure)


class ReadableJson(str):
    r"""A JSON string that prints as one line of ``key=value`` pairs.

    A rule's params are JSON strings: the job reads them with :func:`json.loads`, and Snakemake
    reruns a job when one changes, comparing each param's ``repr``, which this class leaves as a
    plain string's. Snakemake's HTML report prints a job's params with ``f"{name}={value}"``,
    escaping every ``"``: for a plain JSON string that is a blob of ``\"``. This class formats
    (``format``, f-strings; ``str`` is unchanged) as :func:`readable` instead, and pickles as a
    plain string, so a job's script receives ordinary JSON.
    """

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return format(readable(json.loads(self)), spec)

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return str, (str.__str__(self),)


def readable(value: Any) -> str:
    """One line of ``key=value`` pairs for a JSON value, nested keys dotted (for display only).

    ``{"optim": {"lr": 0.001}, "seeds": [0, 1]}`` gives ``optim.lr=0.001, seeds=[0, 1]``. A list
    of ``[name, value]`` pairs (an ordered mapping, as tables keep their columns) reads as a
    mapping. Strings are bare, and no ``"`` or line break is left.
    """
    if _as_mapping(value) is None:
        return _value(value)
    return ", ".join(f"{k}={v}" for k, v in _pairs(value, "")) or "{}"


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if (isinstance(value, list) and value
            and all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in value)
            and len({p[0] for p in value}) == len(value)):
        return dict(value)
    return None


def _pairs(value: Any, prefix: str) -> list[tuple[str, str]]:
    mapping = _as_mapping(value)
    if mapping is None or (prefix and not mapping):
        return [(prefix[:-1], _value(value))]
    return [p for k, v in mapping.items() for p in _pairs(v, f"{prefix}{k}.")]


def _value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_value(v) for v in value) + "]"
    else:
        text = json.dumps(value)  # numbers, true/false/null as JSON writes them
    return " ".join(text.replace('"', "'").split())
