"""Is this model archive what the run says it is? Checked in Airflow, before any compilation job starts.

Neo takes a .tar.gz per framework: ONNX (one .onnx), PYTORCH (a TorchScript .pt/.pth: a zip),
TFLITE (a .tflite flatbuffer, "TFL3"), KERAS (.h5 HDF5 or .keras zip), DARKNET (.cfg + .weights).
The declared input shape is checked where the format says it without a framework: ONNX (the graph's
inputs, read from the protobuf wire format here, no onnx package needed) and DARKNET (the [net]
section's width/height/channels). For the others only the shape's form is checked.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from dataclasses import dataclass

FRAMEWORKS = ("PYTORCH", "ONNX", "TFLITE", "KERAS", "DARKNET")


class ModelCheckError(ValueError):
    """The archive does not fit the declared framework or shape; the message says how to fix it."""


@dataclass(frozen=True)
class ModelCheck:
    framework: str
    files: list[str]
    inputs: dict[str, list[int | str]]  # what the model declares, where readable
    size_bytes: int


def parse_input_shape(text: str) -> dict[str, list[int]]:
    try:
        shapes = json.loads(text)
    except ValueError as error:
        raise ModelCheckError(
            f'input_shape is not JSON ({error}); expected e.g. {{"data": [1, 3, 224, 224]}}'
        ) from None
    if not isinstance(shapes, dict) or not shapes:
        raise ModelCheckError('input_shape must map input names to shapes, e.g. {"data": [1, 3, 224, 224]}')
    for name, shape in shapes.items():
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ModelCheckError(f"input_shape[{name!r}] = {shape!r}: expected a list of positive integers")
    return shapes


def check_archive(archive: bytes, framework: str, shapes: dict[str, list[int]]) -> ModelCheck:
    framework = framework.upper()
    if framework not in FRAMEWORKS:
        raise ModelCheckError(f"framework {framework!r} is not one of {', '.join(FRAMEWORKS)}")
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            files = {m.name.lstrip("./"): tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except tarfile.TarError as error:
        raise ModelCheckError(
            f"the model is not a .tar.gz archive ({error}); Neo takes model.tar.gz"
        ) from None
    check = {"ONNX": _onnx, "PYTORCH": _pytorch, "TFLITE": _tflite, "KERAS": _keras, "DARKNET": _darknet}[
        framework
    ]
    inputs = check(files, shapes)
    return ModelCheck(framework, sorted(files), inputs, len(archive))


def _one(files: dict[str, bytes], suffixes: tuple[str, ...], framework: str) -> tuple[str, bytes]:
    found = [(n, d) for n, d in files.items() if n.lower().endswith(suffixes)]
    if len(found) != 1:
        raise ModelCheckError(
            f"a {framework} archive holds one {'/'.join(suffixes)} file; this one has "
            f"{len(found)} ({sorted(files)[:10]})"
        )
    return found[0]


def _onnx(files: dict[str, bytes], shapes: dict[str, list[int]]) -> dict[str, list[int | str]]:
    name, data = _one(files, (".onnx",), "ONNX")
    try:
        inputs = onnx_graph_inputs(data)
    except (IndexError, ValueError) as error:
        raise ModelCheckError(f"{name} is not an ONNX model ({error})") from None
    if set(inputs) != set(shapes):
        raise ModelCheckError(f"input_shape names {sorted(shapes)} but {name} takes {sorted(inputs)}")
    for key, shape in shapes.items():
        declared = inputs[key]
        if len(declared) != len(shape) or any(
            isinstance(d, int) and d > 0 and d != s for d, s in zip(declared, shape, strict=True)
        ):
            raise ModelCheckError(f"input {key!r}: input_shape {shape} does not fit the model's {declared}")
    return inputs


def _pytorch(files: dict[str, bytes], shapes: dict[str, list[int]]) -> dict:
    name, data = _one(files, (".pt", ".pth"), "PYTORCH")
    if not data.startswith(b"PK"):
        raise ModelCheckError(f"{name} is not a TorchScript archive (torch.jit.save writes a zip)")
    return {}


def _tflite(files: dict[str, bytes], shapes: dict[str, list[int]]) -> dict:
    name, data = _one(files, (".tflite",), "TFLITE")
    if data[4:8] != b"TFL3":
        raise ModelCheckError(f"{name} is not a TFLite flatbuffer (no TFL3 identifier)")
    return {}


def _keras(files: dict[str, bytes], shapes: dict[str, list[int]]) -> dict:
    name, data = _one(files, (".h5", ".keras"), "KERAS")
    if not data.startswith((b"\x89HDF\r\n\x1a\n", b"PK")):
        raise ModelCheckError(f"{name} is neither an HDF5 (.h5) nor a .keras (zip) model")
    return {}


def _darknet(files: dict[str, bytes], shapes: dict[str, list[int]]) -> dict:
    cfg_name, cfg = _one(files, (".cfg",), "DARKNET")
    _one(files, (".weights",), "DARKNET")
    net = dict(
        re.findall(r"^\s*(width|height|channels)\s*=\s*(\d+)", cfg.decode(errors="replace"), re.MULTILINE)
    )
    [(key, shape)] = shapes.items() if len(shapes) == 1 else [(None, None)]
    if key is None:
        raise ModelCheckError("a DARKNET model has one input: input_shape must name exactly one")
    expected = [shape[0], int(net.get("channels", 3)), int(net.get("height", 0)), int(net.get("width", 0))]
    if shape != expected:
        raise ModelCheckError(
            f"input_shape {shape} does not fit {cfg_name}'s [net] section: expected {expected}"
        )
    return {key: expected}


# --------------------------------------------------------------------- ONNX protobuf, just enough


def onnx_graph_inputs(data: bytes) -> dict[str, list[int | str]]:
    """The graph inputs (minus initializers) and their dims: ModelProto.graph(7) → GraphProto.input(11)."""
    graph = _fields(data).get(7)
    if not graph:
        raise ValueError("no graph")
    graph_fields = _fields(graph[0], repeated=(11, 5))
    initializers = {_string(_fields(t).get(8, [b""])[0]) for t in graph_fields.get(5, [])}
    inputs: dict[str, list[int | str]] = {}
    for value_info in graph_fields.get(11, []):
        info = _fields(value_info)
        name = _string(info.get(1, [b""])[0])
        if name in initializers:
            continue
        tensor = _fields(_fields(info.get(2, [b""])[0]).get(1, [b""])[0])
        dims = []
        for dim in _fields(tensor.get(2, [b""])[0], repeated=(1,)).get(1, []):
            d = _fields(dim)
            dims.append(d[1][0] if 1 in d else _string(d.get(2, [b"?"])[0]))
        inputs[name] = dims
    return inputs


def _string(value: bytes | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes, repeated: tuple[int, ...] = ()) -> dict[int, list]:
    """Protobuf wire format → {field number: [values]} (varints as int, length-delimited as bytes)."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields
