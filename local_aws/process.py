"""Run one job process: stream its output line by line, stop it on request or at its time limit.

A job with `mounts` (container path -> host path) runs in its own mount namespace (`unshare --mount`
from util-linux, private propagation) with each host folder bound at its container path, as a
container's volumes are: job code sees `/opt/ml/...` or a Batch mount point at the real path, nothing
it mounts leaks to the host or to other jobs, and the host keeps only the (empty) mount-point folders.
`unshare` rather than bubblewrap: util-linux is Essential in Debian (always installed), and as root
`unshare -m` costs about 2 ms; bubblewrap would be a new package for what one bind per mount does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from local_aws.jobs import RUNNERS

UNSHARE_VARIABLE = "ORCHARD_UNSHARE"  # the unshare binary to use (tests point it at a missing one)
INSTALL_HINT = (
    "install util-linux, which provides unshare (apt-get install util-linux), and run the sandbox as root "
    "or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
)
# Runs inside the new namespace: bind each host folder at its container path, then become the job.
_LAUNCHER = r"""
cwd=$1; n=$2; shift 2
while [ "$n" -gt 0 ]; do
  mount --bind -- "$2" "$1" || { echo "sandbox: cannot bind $2 at $1" >&2; exit 125; }
  if [ "$3" = ro ]; then mount -o remount,bind,ro -- "$1" || exit 125; fi
  shift 3; n=$((n - 1))
done
cd -- "$cwd" || exit 125
exec "$@"
"""
# As root a mount namespace is enough; elsewhere a user namespace mapping the user to root gives one.
_UNSHARE_MODES = (
    ["--mount", "--propagation", "private"],
    ["--user", "--map-root-user", "--mount", "--propagation", "private"],
)
_probed: dict[str, tuple[list[str] | None, str]] = {}  # unshare name -> (its command or None, the problem)


class NamespaceUnavailable(RuntimeError):
    """This machine cannot give a job its own mount namespace; the message says what to install."""


@dataclass
class Outcome:
    exit_code: int
    timed_out: bool = False
    stopped: bool = False


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Callable[[str], None],
    stop: threading.Event,
    timeout_s: float | None = None,
    mounts: dict[str, Path] | None = None,
    read_only: Collection[str] = (),
) -> Outcome:
    """Run argv to its end; `stop` or the timeout sends SIGTERM to its process group, then SIGKILL.

    With `mounts` the process runs in its own mount namespace (see the module's docstring); `cwd` may
    then be a host folder under one of the mounts (it becomes the container path) or a container path.
    `read_only` names the container paths mounted read-only.
    """
    argv, cwd = namespaced(argv, cwd, mounts or {}, read_only)
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: a stop reaches its children too
    )
    reader = threading.Thread(target=_pump, args=(process, log), daemon=True)
    reader.start()
    outcome = _wait(process, stop, timeout_s)
    reader.join(timeout=10)
    return outcome


def namespaced(
    argv: Sequence[str], cwd: Path, mounts: dict[str, Path], read_only: Collection[str] = ()
) -> tuple[list[str], Path]:
    """The argv and cwd that run `argv` with `mounts` bound in a private mount namespace.

    Raises NamespaceUnavailable, naming what to install, where the machine cannot create one.
    """
    if not mounts:
        return list(argv), cwd
    unshare = _unshare()
    mounts = {str(Path(target)): Path(source) for target, source in mounts.items()}
    pairs: list[str] = []
    for target, source in _mount_order(mounts):
        if not source.exists():
            raise FileNotFoundError(f"the host path {source} to mount at {target} does not exist")
        point = _mount_point(target, mounts)  # a bind needs an (empty) folder or file to cover
        try:
            if source.is_dir():
                point.mkdir(parents=True, exist_ok=True)
            elif not point.exists():
                point.parent.mkdir(parents=True, exist_ok=True)
                point.touch()
        except PermissionError as error:
            raise NamespaceUnavailable(
                f"the job's mount point {target} does not exist and cannot be created ({error}): create it "
                f"once as root (mkdir -p {target}; it stays empty) or run the sandbox as root"
            ) from error
        read_only_targets = {str(Path(r)) for r in read_only} | {RUNNERS}  # the sandbox's runners
        pairs += [target, str(source), "ro" if target in read_only_targets else "rw"]
    inner = container_path(cwd, mounts)
    wrapper = [
        *unshare,
        "/bin/sh",
        "-c",
        _LAUNCHER,
        "orchard-container",
        inner,
        str(len(pairs) // 3),
        *pairs,
        *argv,
    ]
    return wrapper, Path("/")


def container_path(host: Path | str, mounts: dict[str, Path]) -> str:
    """Where the host path `host` appears inside a container with `mounts` (itself if under none)."""
    host_path = Path(host)
    best: tuple[int, str] | None = None
    for target, source in mounts.items():
        if host_path == source or source in host_path.parents:
            depth = len(source.parts)
            if best is None or depth > best[0]:
                best = (depth, str(Path(target) / host_path.relative_to(source)))
    return best[1] if best else str(host_path)


def _mount_point(target: str, mounts: dict[str, Path]) -> Path:
    """Where `target` is before it is mounted: in the folder of the mount it lies under, if any (so
    /opt/ml/code under /opt/ml is made in that job's folder), else on the host itself."""
    path = Path(target)
    parents = [Path(t) for t in mounts if Path(t) != path and _is_under(path, Path(t))]
    if not parents:
        return path
    parent = max(parents, key=lambda t: len(t.parts))
    return mounts[str(parent)] / path.relative_to(parent)


def _mount_order(mounts: dict[str, Path]) -> list[tuple[str, Path]]:
    """Parents before children, and a mount that covers another's host folder after that one."""
    pending = {str(Path(target)): Path(source) for target, source in mounts.items()}
    ordered: list[tuple[str, Path]] = []
    while pending:
        for target in sorted(pending):
            others = [t for t in pending if t != target]
            child = any(_is_under(Path(target), Path(t)) for t in others)
            covers = any(_is_under(pending[t], Path(target)) for t in others)
            if not child and not covers:
                ordered.append((target, pending.pop(target)))
                break
        else:
            raise ValueError(f"mounts {mounts} cannot be ordered: one hides the host folder of another")
    return ordered


def _is_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _unshare() -> list[str]:
    """The unshare command, once checked able to create a mount namespace here."""
    name = os.environ.get(UNSHARE_VARIABLE, "unshare")
    if name not in _probed:
        binary, command, problem = shutil.which(name), None, f"no {name!r} on PATH"
        for mode in _UNSHARE_MODES if binary else ():
            probe = subprocess.run([binary, *mode, "true"], capture_output=True, text=True)
            if probe.returncode == 0:
                command = [binary, *mode]
                break
            problem = probe.stderr.strip() or f"{binary} exited {probe.returncode}"
        _probed[name] = (command, problem)
    command, problem = _probed[name]
    if command is None:
        raise NamespaceUnavailable(
            f"the sandbox cannot give the job its own mount namespace ({problem}), so "
            f"/opt/ml and the job's mount points cannot be its real paths: {INSTALL_HINT}"
        )
    return command


def _pump(process: subprocess.Popen, log: Callable[[str], None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        log(line)


def _wait(process: subprocess.Popen, stop: threading.Event, timeout_s: float | None) -> Outcome:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            return Outcome(exit_code=process.wait(timeout=0.1))
        except subprocess.TimeoutExpired:
            pass
        if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
            _terminate(process)
            return Outcome(exit_code=process.returncode, timed_out=not stop.is_set(), stopped=stop.is_set())


def _terminate(process: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
