"""Fixtures of aerial_pretraining's plugin tests: the DAG's own trigger-form defaults and settings."""

from __future__ import annotations

import pytest

from tests.dag_files import load_dag_module
from tests.plugins.aerial_pretraining.samples import DAG_FILE


@pytest.fixture(scope="module")
def dag_params() -> dict:
    return load_dag_module(DAG_FILE).PARAMS


@pytest.fixture
def params(dag_params) -> dict:
    return {key: param.value for key, param in dag_params.items()}


@pytest.fixture
def settings():
    from orchard.settings import load_settings

    return load_settings(variables=False)
