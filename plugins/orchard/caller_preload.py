"""Imported by the scheduler's forkserver after every other preloaded module but orchard.preload_freeze
(local_aws/stack/environment.py TASK_PRELOAD_MODULES): fills `inspect`'s file → module map for every module
the forkserver imported, so a task forked from it does not build that map again on its first AWS client.

Every Amazon-provider client names its caller in its user agent (`AwsGenericHook._get_config` →
`_get_caller` → `inspect.stack()`, read by AWS support). For each frame `inspect.stack()` asks
`inspect.getmodule` which module the frame's file belongs to; the first time a file is not in its map,
getmodule maps every module in `sys.modules` (an `os.path.realpath` each: ~28,000 lstat calls for the ~2,350
preloaded modules), 0.5-1.4 s in a task process (benchmarks/aws_hook_caller_time.py). The map
(`inspect.modulesbyfile`, keyed by the module's `__file__`, skipped once mapped) is inherited by the forks, so
a task maps only the modules it imports itself (its DAG file's, ~20). The walk is inspect's own, asked for
through its public `getmodule`: the caller the provider finds, and the user agent, stay the same.

A forkserver survives only an ImportError of a preloaded module (multiprocessing.forkserver.main): any other
error here would stop every task from starting, so the warm-up logs its error and leaves the map empty.
"""

from __future__ import annotations

import inspect
import logging

log = logging.getLogger(__name__)


def warm() -> None:
    try:
        # this module's file is in no map yet (it is being imported): getmodule maps all of sys.modules
        inspect.getmodule(inspect.currentframe())
    except Exception:  # an empty map only costs time; a failed preload would cost every task
        log.exception("orchard.caller_preload: inspect's module map stays empty")


warm()
