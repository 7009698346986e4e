"""Task defaults every orchard DAG shares: one owner, one retry policy for AWS calls.

Retries are for infrastructure (throttling, timeouts, a lost worker); bad input raises
``orchard.errors.InputError``, which Airflow never retries. Tasks that must not repeat set ``retries=0``.
"""

from __future__ import annotations

from datetime import timedelta

OWNER = "ml-platform"

# default_args of every DAG: 3 tries, 30 s then 60 s apart, never more than 10 min.
DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}
