"""The job log of a workflow script: one call points logging at the rule's ``log:`` file.

Every script in ``workflow_scripts/`` starts the same way::

    with configure(snakemake.log[0]):
        ...  # the rule's one job

:func:`configure` sends the package's log records (``logging.getLogger(__name__)`` in every
module) to the job log, and the ``with`` block writes the reason of a failure there before the
exception goes on to Snakemake, which marks the job failed. Standard library only: the scripts
import it before anything heavy.
"""

from __future__ import annotations

import logging
from os import PathLike
from types import TracebackType

__all__ = ["FORMAT", "JobLog", "configure"]

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
