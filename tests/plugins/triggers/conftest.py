"""The fixtures of the trigger tests that end a task in the triggerer (tests/plugins/triggers/test_task_end.py):
a test database, the supervisor's comms stand-in, and a fresh run with its job task deferred."""

from tests.plugins.triggers.test_task_end import airflow_db, comms, deferred  # noqa: F401 (fixtures)
