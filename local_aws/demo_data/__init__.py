"""Demo data that `make demo` (and `make up`) uploads to the sandbox before triggering the DAGs.

Each pipeline registers its data with one module here, named after its DAG id,
`local_aws/demo_data/<dag_id>.py`, exposing:

    def upload(s3_client, settings) -> dict:
        '''Generate small data in code, upload it with `s3_client`, return the DAG run conf.'''

`s3_client` is a boto3 S3 client pointed at the sandbox, `settings` is
`orchard.settings.load_settings()` (bucket names, region, ...). The buckets named in the settings exist
before `upload` is called. The returned conf must be JSON-safe: it is passed as is to the DAG run.
A DAG with no module here is triggered with `{}`.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable, Iterable
from typing import Any

Uploader = Callable[[Any, Any], dict]


def module_names() -> list[str]:
    """DAG ids that have a demo data module (without importing them)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _uploader(name: str) -> Uploader:
    module = importlib.import_module(f"{__name__}.{name}")
    upload = getattr(module, "upload", None)
    if not callable(upload):
        raise TypeError(f"{module.__name__} must define upload(s3_client, settings) -> dict")
    return upload


def discover() -> dict[str, Uploader]:
    """Every registered uploader, by DAG id."""
    return {name: _uploader(name) for name in module_names()}


def upload_all(s3_client: Any, dag_ids: Iterable[str], settings: Any) -> dict[str, dict]:
    """Upload the demo data of each DAG in `dag_ids`; return the conf to trigger each one with.

    Only the modules of the DAGs asked for are imported, so one pipeline's data never blocks another's demo.
    """
    registered = set(module_names())
    confs: dict[str, dict] = {}
    for dag_id in dag_ids:
        if dag_id not in registered:
            confs[dag_id] = {}
            continue
        conf = _uploader(dag_id)(s3_client, settings)
        if conf is None:
            conf = {}
        if not isinstance(conf, dict):
            raise TypeError(f"{__name__}.{dag_id}.upload returned {type(conf).__name__}, not a dict conf")
        try:
            json.dumps(conf)
        except TypeError as err:
            raise TypeError(
                f"{__name__}.{dag_id}.upload returned a conf that is not JSON-safe: {err}"
            ) from None
        confs[dag_id] = conf
    return confs
