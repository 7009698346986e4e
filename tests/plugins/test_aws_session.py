"""orchard.aws_session: the Amazon provider's sessions share one botocore data loader per process."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from airflow.providers.amazon.aws.hooks import (
    base_aws,
)  # first: it imports orchard.aws_session when configured
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook, BaseSessionFactory
from botocore.exceptions import UnknownServiceError
from botocore.loaders import JSONFileLoader

from orchard import aws_session
from orchard.aws_session import SharedLoaderSessionFactory, shared_loader
from tests.plugins.conftest import create_role_the_account_assumes

FACTORY_PATH = "orchard.aws_session.SharedLoaderSessionFactory"
ACCOUNT = "123456789012"


@pytest.fixture
def files_read(monkeypatch) -> Counter:
    """The JSON files botocore parses, by name (endpoints, service-2, ...), from now on."""
    read: Counter = Counter()
    load_file = JSONFileLoader.load_file

    def counting(self, file_path):
        read[file_path.rsplit("/", 1)[-1]] += 1
        return load_file(self, file_path)

    monkeypatch.setattr(JSONFileLoader, "load_file", counting)
    return read


def _use_factory(monkeypatch, factory: type[BaseSessionFactory]) -> None:
    # base_aws resolves `[aws] session_factory` once, at import: what the setting does in a fresh process
    monkeypatch.setattr(base_aws, "SessionFactory", factory)


def _loader_of(session: boto3.session.Session):
    return session._session.get_component("data_loader")


def _second_hook_reads(monkeypatch, factory, files_read) -> Counter:
    _use_factory(monkeypatch, factory)
    AwsBaseHook(aws_conn_id="aws_default", client_type="sagemaker").conn.list_models()
    files_read.clear()
    AwsBaseHook(aws_conn_id="aws_default", client_type="sagemaker").conn.list_models()
    return Counter(files_read)


def test_a_second_hook_parses_no_file_again(aws, monkeypatch, files_read):
    # botocore's own loader per session: the second hook parses endpoints and the model again
    assert _second_hook_reads(monkeypatch, BaseSessionFactory, files_read)["endpoints"] == 1
    assert _second_hook_reads(monkeypatch, SharedLoaderSessionFactory, files_read) == Counter()


def test_two_hooks_sessions_share_one_loader(aws, monkeypatch):
    _use_factory(monkeypatch, SharedLoaderSessionFactory)
    first = AwsBaseHook(aws_conn_id="aws_default", client_type="s3").get_session()
    second = AwsBaseHook(aws_conn_id="aws_default", client_type="sagemaker").get_session()
    assert first is not second
    assert _loader_of(first) is _loader_of(second) is shared_loader() is first._loader


def test_search_paths_are_a_boto3_sessions_and_do_not_grow(aws, monkeypatch):
    _use_factory(monkeypatch, SharedLoaderSessionFactory)
    for _ in range(5):
        AwsBaseHook(aws_conn_id="aws_default", client_type="s3").get_session()
    assert shared_loader().search_paths == _loader_of(boto3.session.Session()).search_paths


def _role_connection(monkeypatch, sandbox_url: str) -> str:
    role_arn = create_role_the_account_assumes("hook-role")
    extra = {"endpoint_url": sandbox_url, "region_name": "us-east-1", "role_arn": role_arn}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_ROLE", json.dumps({"conn_type": "aws", "extra": extra}))
    return role_arn


def test_assume_role_credentials_still_come_from_the_role(aws, monkeypatch):
    _role_connection(monkeypatch, aws.url)
    _use_factory(monkeypatch, SharedLoaderSessionFactory)
    hook = AwsBaseHook(aws_conn_id="aws_role", client_type="sts")
    identity = hook.conn.get_caller_identity()
    assert identity["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/hook-role/airflow_aws_role")
    session = hook.get_session()
    assert session.get_credentials().method == "sts-assume-role"
    assert session.region_name == "us-east-1"
    assert _loader_of(session) is shared_loader() is session._loader


def test_async_sessions_share_it_too(aws, monkeypatch):
    _use_factory(monkeypatch, SharedLoaderSessionFactory)
    session = AwsBaseHook(aws_conn_id="aws_default", client_type="s3").get_session(deferrable=True)
    assert session.get_component("data_loader") is shared_loader()


def test_threads_that_race_on_a_new_loader_get_working_clients(aws, monkeypatch, files_read):
    # as in the triggerer: many threads, one loader, nothing cached yet; a race may parse a file twice
    monkeypatch.setattr(aws_session, "_loaders", {})
    _use_factory(monkeypatch, SharedLoaderSessionFactory)
    services = ["sagemaker", "s3", "sqs", "logs"] * 4

    def call(service: str) -> str:
        hook = AwsBaseHook(aws_conn_id="aws_default", client_type=service)
        return hook.conn.meta.service_model.service_name

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(call, services)) == services
    # botocore's own loader per session parses endpoints and a model once a hook: 16 times each
    assert files_read["endpoints"] < len(services) and files_read["service-2"] < len(services)
    files_read.clear()
    call("sagemaker")
    assert files_read == Counter()


def test_the_config_key_resolves_to_the_factory(monkeypatch):
    monkeypatch.setenv("AIRFLOW__AWS__SESSION_FACTORY", FACTORY_PATH)
    assert base_aws.resolve_session_factory() is SharedLoaderSessionFactory


def test_the_local_stack_sets_it(tmp_path):
    from local_aws.stack.environment import airflow_env

    assert airflow_env(tmp_path, tmp_path)["AIRFLOW__AWS__SESSION_FACTORY"] == FACTORY_PATH


def test_a_warmed_loader_leaves_a_first_client_nothing_to_parse(monkeypatch, files_read):
    """What orchard.aws_preload does in the scheduler's forkserver: what a hook's first clients load, with
    their paginators, waiters and boto3 resources, is in the shared loader before the first session."""
    monkeypatch.setattr(aws_session, "_loaders", {})
    aws_session.warm_shared_loader(["sts", "sagemaker", "s3"], aws_session.session_data_path())
    assert files_read, "the warm-up parses the files"
    files_read.clear()
    _use_factory(monkeypatch, SharedLoaderSessionFactory)
    for service in ("sts", "sagemaker", "s3"):
        client = AwsBaseHook(aws_conn_id=None, region_name="eu-west-1", client_type=service).conn
        client.waiter_names
        client.can_paginate(next(iter(client.meta.method_to_api_mapping)))
    AwsBaseHook(aws_conn_id=None, region_name="eu-west-1", resource_type="s3").get_resource_type("s3")
    assert files_read == Counter()


def test_warming_a_service_botocore_does_not_know_fails():
    with pytest.raises(UnknownServiceError):
        aws_session.warm_shared_loader(["no-such-service"])
