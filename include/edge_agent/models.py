"""Models loaded by name on the device, several side by side: load, unload, predict.

A model is an installed package folder holding what Neo wrote; the manifest's `artifacts` says which
layout that is and which runtime loads it:
* "dlr": Neo's layout for DLR targets (compiled.so, compiled.params, compiled_model.json, compiled.meta),
  loaded with the DLR runtime (`dlr.DLRModel`), as on real devices. Where DLR is not installed (its PyPI
  wheels carry no libdlr.so for current Pythons), the package is refused with a message saying so.
* "tvm-relax-vm": the sandbox's Neo output (compiled.so, a TVM Relax VM executable, + compiled.meta),
  loaded with TVM's runtime; nothing of the compiler is needed on the device.
Any other layout is refused with the files it holds: never a crash half-way through a load.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ModelError(Exception):
    pass


@dataclass
class LoadedModel:
    name: str
    version: str
    variant: str
    input_name: str
    input_shape: list[int]
    _run: object  # float32 batch -> scores

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if list(batch.shape) != self.input_shape:
            raise ModelError(f"model {self.name}: input shape {list(batch.shape)} != {self.input_shape}")
        return self._run(np.ascontiguousarray(batch, dtype=np.float32))


def _tvm_relax_loader(folder: Path, artifacts: dict, input_name: str):
    import tvm
    from tvm import relax

    device = tvm.cpu()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(folder / "compiled.so")), device)
    return lambda batch: vm["main"](tvm.runtime.tensor(batch, device)).numpy()


def _dlr_loader(folder: Path, artifacts: dict, input_name: str):
    try:
        import dlr

        model = dlr.DLRModel(str(folder), "cpu", 0)
    except Exception as error:  # ImportError, or DLR's DLRLibraryNotFound: no libdlr.so for this platform
        files = ", ".join(artifacts.get("files", []))
        raise ModelError(
            f"the package holds Neo's DLR artifacts ({files}) and this device cannot load them: the DLR "
            f"runtime is not usable here ({type(error).__name__}: {error}). Install DLR with its libdlr.so "
            "for this device (neo-ai-dlr releases), or deploy a package compiled for a runtime this device "
            "has"
        ) from None
    return lambda batch: model.run({input_name: batch})[0]


LOADERS = {"tvm-relax-vm": _tvm_relax_loader, "dlr": _dlr_loader}


class ModelManager:
    def __init__(self) -> None:
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def load(self, name: str, folder: Path, manifest: dict) -> LoadedModel:
        """Load the package's compiled library under `name` (replacing a model of that name)."""
        artifacts = manifest.get("artifacts") or {}
        label = f"package {manifest.get('name')} {manifest.get('version')}"
        loader = LOADERS.get(artifacts.get("runtime"))
        if loader is None:
            files = artifacts.get("files") or sorted(manifest.get("files", {}))
            raise ModelError(
                f"{label}: no runtime on this device loads its artifacts (layout "
                f"{artifacts.get('layout', 'not described')}, "
                f"runtime {artifacts.get('runtime')}, "
                f"files {files}); this agent loads {', '.join(sorted(LOADERS))}"
            )
        missing = [f for f in artifacts.get("files", []) if not (folder / f).is_file()]
        if missing:
            raise ModelError(f"{label} lacks {', '.join(missing)}")
        variant = manifest.get("variant", "float32")
        [(input_name, shape)] = manifest["input_shape"].items()
        started = time.perf_counter()
        run = loader(folder, artifacts, input_name)
        model = LoadedModel(name, manifest["version"], variant, input_name, list(shape), run)
        with self._lock:
            self._models[name] = model
        print(
            f"loaded model {name} ({manifest['name']} {manifest['version']}, {variant}) in "
            f"{time.perf_counter() - started:.2f} s",
            flush=True,
        )
        return model

    def unload(self, name: str) -> None:
        with self._lock:
            if self._models.pop(name, None) is None:
                raise ModelError(f"no model named {name} is loaded")

    def get(self, name: str) -> LoadedModel:
        with self._lock:
            if name not in self._models:
                raise ModelError(f"no model named {name} is loaded (loaded: {sorted(self._models)})")
            return self._models[name]

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)
