"""moto's per-request work that the sandbox does once (local_aws/hot_path.py)."""

from __future__ import annotations

import os

import boto3


def test_an_api_call_lists_no_directory(aws, monkeypatch):
    """moto's dispatch listed its package directory on every request; the sandbox reads it once."""
    import moto

    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.list_buckets()  # the services' apps exist before counting (moto builds one per service, once)
    sagemaker.list_endpoints()
    listed = []
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listed.append(path) or listdir(path))
    s3.list_buckets()
    sagemaker.list_endpoints()
    assert os.path.dirname(moto.__file__) not in listed


def test_the_module_list_still_names_moto_modules(aws):
    from moto import backends

    modules = list(backends.list_of_moto_modules())
    assert "s3" in modules and "sagemaker" in modules and "__pycache__" not in modules
    assert modules == list(backends.list_of_moto_modules())  # the same answer on every call


def test_a_response_classes_methods_are_listed_once(aws, monkeypatch):
    import inspect

    sagemaker = boto3.client("sagemaker")
    sagemaker.list_endpoints()
    listings = []
    getmembers = inspect.getmembers
    monkeypatch.setattr(
        inspect, "getmembers", lambda *args, **kw: listings.append(args) or getmembers(*args, **kw)
    )
    sagemaker.list_endpoints()
    sagemaker.list_models()
    assert listings == []
    assert sagemaker.list_endpoints()["Endpoints"] == []  # still served by the class's own method
