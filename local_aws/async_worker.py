"""One async endpoint instance: load the model once, then answer requests read from stdin.

Runs INSIDE the model's job environment (no sandbox or Airflow import). Each stdin line is a JSON
request {"id", "input", "output", "content_type", "accept"} naming local files; each answer is one
stdout line `@@answer@@ {"id", "ok", "error"}`. Anything else the handler prints is the endpoint's log.
"""

import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from inference_runner import answer, load_handler  # noqa: E402

ANSWER_PREFIX = "@@answer@@ "


def reply(request_id: str, ok: bool, error: str = "") -> None:
    print(ANSWER_PREFIX + json.dumps({"id": request_id, "ok": ok, "error": error}), flush=True)


def main() -> int:
    model_dir, code_dir = sys.argv[1], sys.argv[2]
    try:
        handler = load_handler(Path(code_dir))
        missing = None
    except FileNotFoundError as error:  # no handler: the server starts, every invocation fails with this
        handler, missing = None, error
        print(f"model server started without an inference handler: {error}", flush=True)
    model = handler.model_fn(model_dir) if hasattr(handler, "model_fn") else None
    print(ANSWER_PREFIX + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        started = time.perf_counter()
        try:
            if missing is not None:
                raise missing
            body = Path(request["input"]).read_bytes()
            result = answer(handler, model, body, request["content_type"], request["accept"])
            Path(request["output"]).write_bytes(result)
            print(f"answered {request['id']} in {1000 * (time.perf_counter() - started):.0f} ms", flush=True)
            reply(request["id"], True)
        except Exception as error:  # one bad input must not stop the endpoint
            print(traceback.format_exc(), flush=True)
            reply(request["id"], False, f"{type(error).__name__}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
