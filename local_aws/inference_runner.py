"""Apply a SageMaker-style inference handler to request files. Runs INSIDE the model's job environment.

The handler follows the SageMaker inference toolkit convention: `inference.py` (or the module named by
SAGEMAKER_PROGRAM) in the code folder, with optional model_fn, input_fn, predict_fn, output_fn.
No sandbox or Airflow import here: only the standard library and what the handler imports.
"""

import argparse
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path


def load_handler(code_dir: Path):
    module_file = code_dir / os.environ.get("SAGEMAKER_PROGRAM", "inference.py")
    if not module_file.exists():
        raise FileNotFoundError(
            f"no inference handler: {module_file} (set SAGEMAKER_PROGRAM or ship inference.py)"
        )
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location("inference_handler", module_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def default_input_fn(body: bytes, content_type: str):
    return json.loads(body) if "json" in content_type else body


def default_output_fn(prediction, accept: str):
    return prediction if isinstance(prediction, (bytes, str)) else json.dumps(prediction)


def answer(handler, model, body: bytes, content_type: str, accept: str) -> bytes:
    if not hasattr(handler, "predict_fn"):
        source = getattr(handler, "__file__", handler)
        raise NotImplementedError(f"the inference handler {source} defines no predict_fn(data, model)")
    data = getattr(handler, "input_fn", default_input_fn)(body, content_type)
    prediction = handler.predict_fn(data, model)
    out = getattr(handler, "output_fn", default_output_fn)(prediction, accept)
    return out.encode() if isinstance(out, str) else out


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--model-dir", "--code-dir", "--requests", "--content-type", "--accept"):
        parser.add_argument(name, required=True)
    parser.add_argument("--split-lines", action="store_true")
    args = parser.parse_args()
    handler = load_handler(Path(args.code_dir))
    model = handler.model_fn(args.model_dir) if hasattr(handler, "model_fn") else None
    failures = 0
    for request in json.loads(Path(args.requests).read_text()):
        output = Path(request["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        body = Path(request["input"]).read_bytes()
        try:
            if args.split_lines:
                records = [line for line in body.splitlines() if line.strip()]
                result = b"\n".join(
                    answer(handler, model, r, args.content_type, args.accept) for r in records
                )
            else:
                result = answer(handler, model, body, args.content_type, args.accept)
            output.write_bytes(result)
            print(f"answered {request['input']}", flush=True)
        except Exception:  # one bad input must not lose the others' answers
            failures += 1
            Path(f"{output}.error").write_text(traceback.format_exc())
            print(f"failed {request['input']}:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
