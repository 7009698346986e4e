"""auto_labeling's async fan-out against its in-flight/latency limit: where the limit is, and whose CPU.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/async_fanout_limit.py [--runs 5] [--frames 600]

SageMakerAsyncInferenceHook.invoke_many (the DAG's 16 calls in flight) can at best reach in_flight /
latency invocations/s (16 / 50 ms = 320/s). Each run measures its rate, in one process, against two
servers that both answer every InvokeEndpointAsync after 50 ms, interleaved (the order alternates):

* sandbox: `python -m local_aws serve` with ORCHARD_SANDBOX_LATENCY_MS=50, as auto_labeling_throughput.py
  measures it (moto and the sandbox's endpoint model behind werkzeug);
* responder: a minimal asyncio HTTP/1.1 server in its own process that answers with the API's response
  shape after the same 50 ms and does nothing else (it keeps connections open, as AWS and the sandbox
  do): the client's own limit, with no server work on this machine.

Per run and server: invocations/s, its ratio to in_flight / latency, and the CPU each side spent per call
(client: this process's CPU time; server: the server process's, from /proc), and the cores both used
together. The machine's load average is printed next to each figure: on a shared 2-core machine the two
processes compete with everything else. Last, the sandbox's CPU budget: the cores 0.8 of the limit needs
at the measured CPU per call, each side's one-process ceiling, and the cores it got.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "plugins", REPO / "benchmarks"):
    sys.path.insert(0, str(path))

LATENCY_MS = 50
ENDPOINT = "rate"


# ------------------------------------------------------------------------------- the responder


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """InvokeEndpointAsync's response (202, InferenceId in the body, OutputLocation header) per request,
    on one kept-alive connection until the client closes it."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(
                line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
            )
            lowered = {key.lower(): value for key, value in headers.items()}
            length = int(lowered.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(delay_s)
            inference = lowered.get("x-amzn-sagemaker-inference-id", "none")
            body = json.dumps({"InferenceId": inference}).encode()
            writer.write(
                b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                + f"X-Amzn-SageMaker-OutputLocation: s3://responder/out/{inference}.out\r\n".encode()
                + f"x-amzn-RequestId: {inference}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(port: int, delay_s: float) -> None:
    server = await asyncio.start_server(lambda r, w: _answer(r, w, delay_s), "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def start_responder(latency_ms: int) -> tuple[subprocess.Popen, str]:
    from local_aws.stack import pick_port

    port = pick_port(0)
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    if process.stdout is None or process.stdout.readline().strip() != "ready":
        raise RuntimeError("the responder did not start")
    return process, f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------------------- measuring


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fan_out(conn_id: str, uris: list[str], in_flight: int, server_pid: int) -> dict[str, float]:
    from orchard.hooks.async_inference import SageMakerAsyncInferenceHook

    hook = SageMakerAsyncInferenceHook(aws_conn_id=conn_id, region_name="us-east-1")
    server_cpu, client_cpu, started = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
    results = hook.invoke_many(ENDPOINT, uris, "image/png", in_flight)
    seconds = time.perf_counter() - started
    refused = [r for r in results if "error" in r]
    if refused:
        raise RuntimeError(f"{len(refused)} invocations refused, e.g. {refused[0]}")
    client_s, server_s = time.process_time() - client_cpu, cpu_seconds(server_pid) - server_cpu
    return {
        "rate": len(uris) / seconds,
        "client_cpu_ms": client_s / len(uris) * 1000,
        "server_cpu_ms": server_s / len(uris) * 1000,
        "cores_used": (client_s + server_s) / seconds,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    import logging

    logging.disable(logging.INFO)  # botocore's per-client endpoint lines would drown the figures
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--serve", nargs=2, type=int, metavar=("PORT", "LATENCY_MS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve[0], args.serve[1] / 1000))
        return

    import auto_labeling_throughput as bench
    from PIL import Image

    from local_aws import aws_connection

    sandbox = bench.start_sandbox(LATENCY_MS)  # points this process's AWS environment at the sandbox
    responder, responder_url = start_responder(LATENCY_MS)
    os.environ["AIRFLOW_CONN_AWS_RESPONDER"] = aws_connection(responder_url)
    try:
        bench.deploy_detector(ENDPOINT)
        tiny = io.BytesIO()
        Image.new("RGB", (64, 128), (120, 120, 120)).save(tiny, "PNG")
        uris = bench.upload([(f"tiny/{i:05d}.png", tiny.getvalue()) for i in range(args.frames)])
        servers = {"sandbox": ("aws_default", sandbox.pid), "responder": ("aws_responder", responder.pid)}
        fan_out("aws_default", uris[:50], args.in_flight, sandbox.pid)  # warm-up: clients, endpoint model
        limit = args.in_flight / (LATENCY_MS / 1000)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        for run in range(args.runs):
            order = list(servers) if run % 2 == 0 else list(reversed(servers))
            for name in order:
                conn_id, pid = servers[name]
                samples[name].append(fan_out(conn_id, uris, args.in_flight, pid))
            print(
                f"  run {run + 1}: "
                + "; ".join(
                    f"{name} {samples[name][-1]['rate']:.0f}/s ({samples[name][-1]['rate'] / limit:.2f})"
                    for name in servers
                )
                + f"; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        for process in (sandbox, responder):
            process.terminate()
            process.wait()
    med = statistics.median
    print(
        f"\n{args.frames} InvokeEndpointAsync per run, {args.in_flight} in flight, {LATENCY_MS} ms latency: "
        f"limit {limit:.0f}/s; median of {args.runs} runs, {os.cpu_count()} CPUs\n"
    )
    print(
        "| server | invocations/s | x limit | client CPU ms/call | server CPU ms/call | cores used | load |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, runs in samples.items():
        print(
            f"| {name} | {med(r['rate'] for r in runs):.1f} | {med(r['rate'] / limit for r in runs):.2f} "
            f"| {med(r['client_cpu_ms'] for r in runs):.2f} | {med(r['server_cpu_ms'] for r in runs):.2f} "
            f"| {med(r['cores_used'] for r in runs):.2f} | {med(r['load'] for r in runs):.2f} |"
        )
    print_cpu_budget(samples["sandbox"], limit)


def print_cpu_budget(runs: list[dict[str, float]], limit: float, share: float = 0.8) -> None:
    """Where the limit is when it is CPU: what `share` of the limit costs in CPU against the cores there are.

    Each call costs client + server CPU; at `share` × limit calls/s that is a number of cores. Each side is
    one Python process (one core at most, the GIL), so it cannot exceed 1000 / its ms per call. The cores
    the two used during the run (CPU seconds / wall seconds) next to the machine's cores and load average
    say whether they got the CPU they needed."""
    med = statistics.median
    client_ms, server_ms = med(r["client_cpu_ms"] for r in runs), med(r["server_cpu_ms"] for r in runs)
    target = share * limit
    print(
        f"\nsandbox CPU budget: {share:.1f} x limit = {target:.0f}/s needs ({client_ms:.2f} + {server_ms:.2f}) ms"
        f" x {target:.0f}/s = {(client_ms + server_ms) * target / 1000:.2f} cores "
        f"(client {client_ms * target / 1000:.2f}, sandbox {server_ms * target / 1000:.2f}); "
        f"one process each: client <= {1000 / client_ms:.0f}/s, sandbox <= {1000 / server_ms:.0f}/s. "
        f"Used: {med(r['cores_used'] for r in runs):.2f} cores of {os.cpu_count()}, "
        f"load average {med(r['load'] for r in runs):.2f}."
    )


if __name__ == "__main__":
    main()
