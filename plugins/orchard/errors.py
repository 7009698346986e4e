"""The one error that means "the input is wrong": it ends a task at once, without retry.

Every pipeline raises ``InputError`` for what a person must fix (a bad param, a malformed upload, an object
that is missing), with a message naming the object (its S3 URI or the param) and the fix. Airflow fails the
task without using its retries (``AirflowFailException``), so nothing billable is started again for it.

Job code (``include/``) runs without Airflow and cannot import this module: a job that finds an input
error exits with ``INPUT_ERROR_EXIT_CODE`` (Batch, EMR steps) or writes ``INPUT_ERROR_PREFIX`` first in
``/opt/ml/output/failure`` (SageMaker jobs, whose FailureReason then starts with it). Batch retry
strategies EXIT on that code and the operators turn such a failure into ``InputError``: no retry at either
level, one billed attempt.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

# sysexits.h EX_DATAERR: "the input data was incorrect in some way". Job code repeats the value.
INPUT_ERROR_EXIT_CODE = 65
# The first words of a SageMaker job's FailureReason (its /opt/ml/output/failure) for an input error.
INPUT_ERROR_PREFIX = "InputError: "


class InputError(AirflowFailException, ValueError):
    """Input a person must fix; fails the task without retry. The message names the object and the fix."""


def is_input_failure(reason: str | None) -> bool:
    """Whether a SageMaker job's FailureReason (or a Batch statusReason) says its input was wrong."""
    return bool(reason) and INPUT_ERROR_PREFIX.strip() in reason
