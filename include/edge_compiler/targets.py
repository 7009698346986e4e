"""Neo's targets as TVM targets: the CPU each TargetDevice or TargetPlatform names, and its linker.

Only CPU code generation is done here (no CUDA/TensorRT/NPU back ends): an accelerator in
TargetPlatform is refused with a reason, as Neo refuses an unsupported combination.
"""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass

from errors import CompilationError


@dataclass(frozen=True)
class Target:
    name: str
    tvm_target: dict
    cc: str  # the C compiler that links the shared library for that machine
    native: bool  # this machine can run what is compiled (same architecture)


# Neo TargetDevice -> (triple, mcpu). x86 instances by generation, ARM boards by core.
_DEVICES = {
    "ml_c4": ("x86_64-linux-gnu", "haswell"),
    "ml_m4": ("x86_64-linux-gnu", "haswell"),
    "ml_c5": ("x86_64-linux-gnu", "skylake-avx512"),
    "ml_m5": ("x86_64-linux-gnu", "skylake-avx512"),
    "ml_c6i": ("x86_64-linux-gnu", "icelake-server"),
    "ml_m6i": ("x86_64-linux-gnu", "icelake-server"),
    "ml_c6g": ("aarch64-linux-gnu", "neoverse-n1"),
    "ml_m6g": ("aarch64-linux-gnu", "neoverse-n1"),
    "rasp4b": ("aarch64-linux-gnu", "cortex-a72"),
    "jetson_nano": ("aarch64-linux-gnu", "cortex-a57"),
    "jetson_xavier": ("aarch64-linux-gnu", "carmel"),
    "rasp3b": ("armv7l-linux-gnueabihf", "cortex-a53"),
}
_ARCHES = {
    "X86_64": ("x86_64-linux-gnu", "x86-64"),
    "ARM64": ("aarch64-linux-gnu", "generic"),
    "ARM_EABIHF": ("armv7l-linux-gnueabihf", "generic"),
}
_CROSS_CC = {
    "aarch64-linux-gnu": "aarch64-linux-gnu-gcc",
    "armv7l-linux-gnueabihf": "arm-linux-gnueabihf-gcc",
}


def known_devices() -> list[str]:
    return sorted(_DEVICES)


def resolve(spec: dict) -> Target:
    if spec.get("TargetDevice"):
        device = spec["TargetDevice"]
        if device not in _DEVICES:
            raise _error(
                f"TargetDevice {device!r} is not one this sandbox compiler knows ({', '.join(known_devices())})"
            )
        triple, mcpu = _DEVICES[device]
        name = device
    else:
        platform_spec = spec.get("TargetPlatform") or {}
        if platform_spec.get("Os", "LINUX") != "LINUX":
            raise _error(f"TargetPlatform Os {platform_spec.get('Os')!r}: only LINUX is compiled here")
        if platform_spec.get("Accelerator"):
            raise _error(
                f"TargetPlatform Accelerator {platform_spec['Accelerator']!r}: only CPU code is generated here"
            )
        arch = platform_spec.get("Arch", "")
        if arch not in _ARCHES:
            raise _error(f"TargetPlatform Arch {arch!r}: expected one of {', '.join(_ARCHES)}")
        triple, mcpu = _ARCHES[arch]
        name = f"linux_{arch.lower()}"
    native = _is_native(triple)
    return Target(
        name, {"kind": "llvm", "mtriple": triple, "mcpu": mcpu}, _linker(triple, name, native), native
    )


def _is_native(triple: str) -> bool:
    return platform.machine() == triple.split("-")[0]


def _linker(triple: str, name: str, native: bool) -> str:
    if native:
        return "g++" if shutil.which("g++") else "gcc"
    cross = _CROSS_CC.get(triple, f"{triple}-gcc")
    if shutil.which(cross) is None:
        raise _error(
            f"{name} needs the cross linker {cross}, which this machine lacks; compile for an "
            f"x86_64 target here, or install {cross}"
        )
    return cross


def _error(message: str) -> Exception:
    return CompilationError(message)
