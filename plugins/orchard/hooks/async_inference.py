"""SageMaker asynchronous inference: many `InvokeEndpointAsync` calls with bounded concurrency.

The provider has no hook for sagemaker-runtime's async API. Calls are I/O bound (a few tens of ms each
on AWS, no payload: the input is an S3 URI), so a small thread pool multiplies throughput without
overwhelming the endpoint's admission: each call only queues a request on the endpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


def inference_id(endpoint_name: str, input_location: str) -> str:
    """A stable id per (endpoint, input): the same frame gets the same id on every try (≤ 64 chars)."""
    return hashlib.sha256(f"{endpoint_name}|{input_location}".encode()).hexdigest()[:40]


def pool_size(max_concurrency: int) -> int:
    """Connections for one (thread-safe) client shared by `max_concurrency` threads: one per thread, never
    under botocore's 10 (with its default pool every call past the tenth would open a new connection)."""
    return max(10, max_concurrency)


class SageMakerAsyncInferenceHook(AwsBaseHook):
    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["client_type"] = "sagemaker-runtime"
        super().__init__(*args, **kwargs)

    def invoke_async(
        self,
        endpoint_name: str,
        input_location: str,
        content_type: str,
        client: Any = None,
        accept: str = "",
    ) -> dict[str, str]:
        """One invocation: {input, inference_id, output, failure} or {input, error} when the call is refused.

        `accept`: the answer's MIME type asked of the model ([InvokeEndpointAsync] `Accept`); empty: none."""
        try:
            response = (client or self.conn).invoke_endpoint_async(
                EndpointName=endpoint_name,
                InputLocation=input_location,
                ContentType=content_type,
                InferenceId=inference_id(endpoint_name, input_location),
                **({"Accept": accept} if accept else {}),
            )
        except (ClientError, BotoCoreError) as error:
            return {"input": input_location, "error": f"InvokeEndpointAsync refused: {error}"}
        return {
            "input": input_location,
            "inference_id": response["InferenceId"],
            "output": response["OutputLocation"],
            "failure": response.get("FailureLocation", ""),
        }

    def invoke_many(
        self,
        endpoint_name: str,
        input_locations: Iterable[str],
        content_type: str | Callable[[str], str],
        max_concurrency: int,
        on_result: Callable[[dict[str, str]], None] | None = None,
        accept: str = "",
        client: Any = None,
    ) -> list[dict[str, str]]:
        """Invoke for every input, at most `max_concurrency` calls in flight; results in input order.

        `content_type`: one MIME type for every input, or a function of the input's location. `client`: a
        sagemaker-runtime client with a pool of at least `max_concurrency` connections (a caller that
        already holds a session makes it there); none: one is made on a session of its own."""
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be ≥ 1, got {max_concurrency}")
        if client is None:
            config = (self.config or Config()).merge(Config(max_pool_connections=pool_size(max_concurrency)))
            client = self.get_client_type(config=config)
        results = []
        with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="invoke-async") as pool:
            for result in pool.map(
                lambda uri: self.invoke_async(
                    endpoint_name,
                    uri,
                    content_type(uri) if callable(content_type) else content_type,
                    client,
                    accept=accept,
                ),
                input_locations,
            ):
                results.append(result)
                if on_result is not None:
                    on_result(result)
        return results
