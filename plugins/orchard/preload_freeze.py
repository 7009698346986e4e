"""The last module the scheduler's forkserver preloads (local_aws/stack/environment.py TASK_PRELOAD_MODULES):
moves every object the preload made into the garbage collector's permanent generation, `gc.freeze()`, so
the task processes forked from it share those pages instead of copying them.

Without it, a task's first full collection walks every object it inherited (the preloaded Airflow, boto3,
matplotlib and the parsed botocore models) and writes to each one's GC header: 0.7-1.5 s at a load of 12-14
and ~95 MiB copied per task (benchmarks/aws_hook_warm_loader.py, docs/sandbox.md §25). The Python docs
advise exactly this for a process that forks without exec ("gc.freeze() right before fork()",
https://docs.python.org/3/library/gc.html#gc.freeze); Airflow's LocalExecutor does it when it forks its
workers itself (`_spawn_workers_with_gc_freeze`), which with a forkserver happens in the scheduler, not here.
The forkserver forks every worker from this state; it never unfreezes, so these objects are not collected:
they live as long as it does anyway. The collection first leaves out the preload's garbage.
"""

from __future__ import annotations

import gc

gc.collect()
gc.freeze()
