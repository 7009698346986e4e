"""Per-request work in moto's dispatch that the sandbox does once instead.

benchmarks/async_fanout_profile.py profiles the sandbox's request threads (CPU time) under the DAG's fan-out.
Two things moto recomputed on every request from facts that do not change once the sandbox serves:

* `DomainDispatcherApplication.get_backend_for_host` asks `moto.backends.list_of_moto_modules()` whether the
  Host header names a moto module: a generator that lists moto's package directory and stats each of its
  ~175 entries, twice per request (a third of a request thread's CPU). Read once.
* `BaseResponse.call_action` lists the response class's methods with `inspect.getmembers` to see whether
  the action is one (9 %). Listed once per class: the sandbox's patches replace or add methods at install
  time, before the first request, and `call_action` still fetches the method itself with getattr.

What each request is answered is unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    backends.list_of_moto_modules = list_of_moto_modules  # werkzeug_app reads it as backends.<name>
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)
    _installed = True
