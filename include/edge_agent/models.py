"""Models loaded by name on the device, several side by side: load, unload, predict (TVM runtime).

A model is an installed package folder: its manifest names the compiled library, its variant
(float32 or int8) and the input. The TVM runtime loads the library and runs its Relax VM; nothing of the
compiler is needed on the device.
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
    _vm: object
    _device: object

    def predict(self, batch: np.ndarray) -> np.ndarray:
        import tvm

        if list(batch.shape) != self.input_shape:
            raise ModelError(f"model {self.name}: input shape {list(batch.shape)} != {self.input_shape}")
        result = self._vm["main"](tvm.runtime.tensor(np.ascontiguousarray(batch, dtype=np.float32), self._device))
        return result.numpy()


class ModelManager:
    def __init__(self) -> None:
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def load(self, name: str, folder: Path, manifest: dict) -> LoadedModel:
        """Load the package's compiled library under `name` (replacing a model of that name)."""
        import tvm
        from tvm import relax

        library = folder / manifest["compiled"]["file"]
        if not library.is_file():
            raise ModelError(f"package {manifest['name']} {manifest['version']} has no {library.name}")
        variant = manifest.get("variant", "float32")
        [(input_name, shape)] = manifest["input_shape"].items()
        started = time.perf_counter()
        device = tvm.cpu()
        vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), device)
        model = LoadedModel(name, manifest["version"], variant, input_name, list(shape), vm, device)
        with self._lock:
            self._models[name] = model
        print(f"loaded model {name} ({manifest['name']} {manifest['version']}, {variant}) in "
              f"{time.perf_counter() - started:.2f} s", flush=True)
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
