"""orchard's session factory for the Amazon provider: every botocore session of a process shares ONE data loader.

botocore gives each new session its own data `Loader`, so every hook re-reads and parses endpoints.json and
each service model it makes a client for (with the connection's `role_arn`, twice: the session that calls
AssumeRole and the session of the role): docs/sandbox.md §22, measured in §24 by
benchmarks/aws_hook_session_time.py. The loader only reads botocore's and boto3's packaged JSON (and
AWS_DATA_PATH / `data_path`), the same for every session of the process, so one is enough: the provider
does the same for its async sessions (base_aws `_loader`, botocore issue #3078).

Set by Airflow config `[aws] session_factory = orchard.aws_session.SharedLoaderSessionFactory` (env
AIRFLOW__AWS__SESSION_FACTORY; the Amazon provider's "Configuration Reference",
https://airflow.apache.org/docs/apache-airflow-providers-amazon/stable/configurations-ref.html): the local
stack (local_aws/stack/environment.py) and docker-compose.yaml. Credentials, Region, retries and endpoints
are built exactly as by the provider's BaseSessionFactory; only where the parsed JSON is kept changes.

A process forked from one that ran `warm_shared_loader` inherits the loader already filled: the scheduler's
forkserver runs it (orchard.aws_preload), so a task's first hook parses none of that JSON either.

Thread safety (botocore does not document Loader as thread-safe; this is from botocore/loaders.py, 1.43):
a loader's state is its `instance_cache` dict, filled check-then-set, so two threads that miss at once both
parse the file and the second result replaces the equal first; its search-path list (one duplicate at most
in a race, below); and the extras merged into a model, which set the same keys each time. Under the GIL
nothing is torn, and what a loader returns was already shared by every client of one session. So triggers
(many on the triggerer's event loop and its threads) share it as the provider's own async loader is shared
(apache/airflow#40658).

base_aws resolves the factory while it is still being imported, so import this module through the provider
(any airflow.providers.amazon.aws module first), never before it: the other order is a circular import.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

import boto3
import botocore.session
from airflow.providers.amazon.aws.hooks.base_aws import BaseSessionFactory
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader

# what boto3.session.Session._setup_loader appends to its session's loader: the resource models
BOTO3_DATA_PATH = os.path.join(os.path.dirname(boto3.__file__), "data")

_loaders: dict[str | None, Loader] = {}
_loaders_lock = threading.Lock()


class _SearchPaths(list):
    """A loader's search paths that keep one copy of each: every boto3 Session appends boto3's data folder
    to the loader it is given, so a shared loader's list would otherwise grow by one entry per session."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _search_paths(data_path: str | None) -> _SearchPaths:
    """The extra search paths botocore.loaders.create_loader reads from AWS_DATA_PATH / `data_path`."""
    if data_path is None:
        return _SearchPaths()
    return _SearchPaths(os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep))


def shared_loader(data_path: str | None = None) -> Loader:
    """The process's loader for `data_path` (the session's AWS_DATA_PATH; None for botocore's default),
    with the search paths botocore's create_loader gives it and boto3's data folder, as a boto3 session's."""
    with _loaders_lock:
        loader = _loaders.get(data_path)
        if loader is None:
            loader = Loader(extra_search_paths=_search_paths(data_path))
            loader.search_paths.append(BOTO3_DATA_PATH)
            _loaders[data_path] = loader
        return loader


# What botocore and boto3 load through a session's loader, and with which arguments: a loader caches each
# call under its method, arguments and keywords (botocore.loaders.instance_cache), so the warm-up below makes
# the very calls a client makes. Every session: the endpoint resolver's `endpoints`, the smart defaults'
# `sdk-default-configuration` (botocore/session.py); every client: `partitions` and, in legacy retry mode,
# `_retry` (botocore/client.py ClientCreator).
PROCESS_DATA = ("endpoints", "partitions", "sdk-default-configuration", "_retry")
# a client's own models, loaded when it is created, by keyword api_version=None (ClientCreator)
CLIENT_MODELS = ("service-2", "endpoint-rule-set-1")
# loaded on a client's first paginator / waiter, by the service model's apiVersion, positionally
# (BaseClient._get_waiter_config, can_paginate / get_paginator)
OPERATION_MODELS = ("paginators-1", "waiters-2")


def session_data_path() -> str | None:
    """The `data_path` a new session of this process reads (AWS_DATA_PATH or the profile's): the key of the
    loader share_loader gives it."""
    return botocore.session.get_session().get_config_variable("data_path")


def warm_shared_loader(services: Iterable[str], data_path: str | None = None) -> Loader:
    """Load into the process's shared loader what a first client of each of `services` loads (and its
    paginators, waiters and boto3 resource model, where the service has them), so that a process forked
    from this one (the scheduler's forkserver: local_aws/stack/environment.py) parses none of that JSON;
    and fill botocore's process-wide cache of the services' Python operation names.
    Raises botocore's DataNotFoundError / UnknownServiceError for a service botocore does not know."""
    loader = shared_loader(data_path)
    for name in PROCESS_DATA:
        loader.load_data(name)
    for service in services:
        model = {t: loader.load_service_model(service, t, api_version=None) for t in CLIENT_MODELS}
        api_version = model["service-2"]["metadata"]["apiVersion"]
        model.update({t: _load_if_present(loader, service, t, api_version) for t in OPERATION_MODELS})
        _warm_operation_names(model["service-2"], model["waiters-2"])
        if service in loader.list_available_services("resources-1"):  # only some services have one
            _warm_resource(loader, service)
    return loader


def _warm_operation_names(service_model: dict, waiter_model: dict | None) -> None:
    """botocore.xform_name's cache, a module-level dict (camel case → snake case, a pure function): a client
    class's creation converts every operation name of its service (ClientCreator._create_methods and
    _create_name_mapping), 409 names of regular-expression substitutions for SageMaker alone; `waiter_names`
    converts the waiters' names."""
    for name in [*service_model["operations"], *(waiter_model or {}).get("waiters", {})]:
        botocore.xform_name(name)


def _warm_resource(loader: Loader, service: str) -> None:
    """What boto3's Session.resource loads: its model (api_version None, positionally), then a client of the
    resource model's API version (by keyword)."""
    loader.load_service_model(service, "resources-1", None)
    api_version = loader.determine_latest_version(service, "resources-1")
    for type_name in CLIENT_MODELS:
        loader.load_service_model(service, type_name, api_version=api_version)


def _load_if_present(loader: Loader, service: str, type_name: str, api_version: str) -> dict | None:
    try:
        return loader.load_service_model(service, type_name, api_version)
    except DataNotFoundError:  # a service without paginators or waiters: botocore handles it the same way
        return None


def share_loader(session: botocore.session.Session) -> botocore.session.Session:
    """Give a botocore (or aiobotocore) session the shared loader, lazily, as botocore registers its own:
    `data_path` is read when the loader is first needed, after the profile is set."""
    session.lazy_register_component(
        "data_loader", lambda: shared_loader(session.get_config_variable("data_path"))
    )
    return session


def _adopt_shared_loader(session: Any) -> Any:
    """A session the provider built with botocore's own loader, moved to the shared one before it loaded
    anything (building a session reads no JSON). boto3 keeps the loader it was given for its resource
    models (`Session._loader`, set once in `_setup_loader`); boto3 has no public way to hand it another."""
    if isinstance(session, boto3.session.Session):
        share_loader(session._session)
        session._loader = session._session.get_component("data_loader")
    else:
        share_loader(session)
    return session


class SharedLoaderSessionFactory(BaseSessionFactory):
    """BaseSessionFactory whose sessions, sync and async, with and without AssumeRole, share one loader."""

    def _create_basic_session(self, session_kwargs: dict[str, Any]) -> boto3.session.Session:
        # the session that holds the connection's credentials, and calls STS for AssumeRole
        return boto3.session.Session(
            botocore_session=share_loader(botocore.session.get_session()), **session_kwargs
        )

    def get_async_session(self):
        return share_loader(super().get_async_session())

    def create_session(self, deferrable: bool = False):
        # the sessions the provider builds itself: the role's (AssumeRole) and the one without a connection
        return _adopt_shared_loader(super().create_session(deferrable=deferrable))
