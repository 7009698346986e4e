"""The Amazon provider's own log fetching finds the sandbox's job output (what users see in task logs)."""

from __future__ import annotations

from tests.local_aws.training_jobs import training_request


def test_sagemaker_hook_print_log_shows_the_training_jobs_lines(s3, capfd):
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    SageMakerHook(aws_conn_id="aws_default").create_training_job(
        training_request("print-log", seconds_per_epoch=1),
        wait_for_completion=True,
        print_log=True,
        check_interval=1,
    )

    hook_log = capfd.readouterr().out  # Airflow's structlog writes the hook's lines to stdout
    assert "epoch=2 loss=0.3333" in hook_log
