"""The sandbox keeps HTTP/1.1 connections open between requests, as AWS does (local_aws/keepalive.py)."""

from __future__ import annotations

import http.client
import os
import socket
import urllib.request
from urllib.parse import urlparse

import boto3
import pytest
from botocore.config import Config

from local_aws.keepalive import KeepAliveMotoServer
from local_aws.stack import pick_port

S3_HOST = {"Host": "s3.amazonaws.com"}
UNSIGNED = b"Anonymous requests are not allowed"


def connect(sandbox) -> http.client.HTTPConnection:
    address = urlparse(sandbox.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    connection.connect()
    return connection


def answer(connection: http.client.HTTPConnection, method: str, path: str, **kwargs) -> tuple:
    connection.request(method, path, **kwargs)
    response = connection.getresponse()
    return response, response.read()


def test_requests_share_one_connection(aws):
    connection = connect(aws)
    first_socket = connection.sock
    for _ in range(3):
        response, body = answer(connection, "GET", "/moto-api/data.json")
        assert response.status == 200
        assert response.getheader("Connection") is None
        assert int(response.getheader("Content-Length")) == len(body)
        assert connection.sock is first_socket  # http.client drops its socket when the server closes it


def test_an_error_answer_to_an_unread_body_leaves_the_connection_usable(aws):
    """The unsigned PUT is refused before its body is read: the body must not become the next request."""
    connection = connect(aws)
    first_socket = connection.sock
    response, body = answer(
        connection, "PUT", "/bucket/key", body=b"GET / HTTP/1.1\r\n\r\n" * 5000, headers=S3_HOST
    )
    assert response.status == 403 and UNSIGNED in body
    assert int(response.getheader("Content-Length")) == len(body)
    response, body = answer(connection, "GET", "/moto-api/data.json")
    assert response.status == 200 and body.startswith(b"{")
    assert connection.sock is first_socket


def test_a_chunked_request_body_is_read_to_its_last_chunk(aws):
    connection = connect(aws)
    chunks = iter([b"<CreateBucketConfiguration/>", b"x" * 70000])
    response, body = answer(connection, "PUT", "/bucket", body=chunks, headers=S3_HOST, encode_chunked=True)
    assert response.status == 403 and UNSIGNED in body
    response, _ = answer(connection, "GET", "/moto-api/data.json")
    assert response.status == 200
    assert connection.sock is not None


def test_the_client_closes_with_connection_close(aws):
    connection = connect(aws)
    response, _ = answer(connection, "GET", "/moto-api/data.json", headers={"Connection": "close"})
    assert response.status == 200 and response.getheader("Connection") == "close"
    assert connection.sock is None  # http.client saw the server end the connection


def test_an_http_1_0_request_gets_one_answer_per_connection(aws):
    address = urlparse(aws.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as raw:
        raw.sendall(b"GET /moto-api/data.json HTTP/1.0\r\nHost: localhost\r\n\r\n")
        received = b""
        while chunk := raw.recv(65536):  # ends: the server closes after the answer
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert body.startswith(b"{")


def test_head_answers_carry_the_length_and_no_body(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="keepalive")
    s3.put_object(Bucket="keepalive", Key="object", Body=b"x" * 1234)
    assert s3.head_object(Bucket="keepalive", Key="object")["ContentLength"] == 1234
    assert (
        s3.get_object(Bucket="keepalive", Key="object")["Body"].read() == b"x" * 1234
    )  # the same connection


def test_a_large_object_goes_up_and_down_one_kept_connection(aws):
    """S3 PUT (botocore sends `Expect: 100-continue` for it), a streamed GET and a presigned GET, then more
    calls. Presigned with SigV4: "Amazon S3 will only accept API requests that are signed using Signature
    Version 4" (https://docs.aws.amazon.com/AmazonS3/latest/API/Appendix-Sigv2.html)."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="large")
    body = os.urandom(9 * 1024 * 1024)
    s3.put_object(Bucket="large", Key="blob", Body=body)
    streamed = s3.get_object(Bucket="large", Key="blob")["Body"]
    assert b"".join(streamed.iter_chunks(1024 * 1024)) == body
    presigner = boto3.client("s3", config=Config(signature_version="s3v4"))  # S3 takes SigV4 only
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": "large", "Key": "blob"})
    with urllib.request.urlopen(url, timeout=30) as answer_:
        assert answer_.read() == body
    assert [item["Key"] for item in s3.list_objects_v2(Bucket="large")["Contents"]] == ["blob"]


def test_boto3_calls_reuse_pooled_connections(aws, monkeypatch):
    import urllib3.connection

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pooled")
    connects = []
    connect_once = urllib3.connection.HTTPConnection.connect
    monkeypatch.setattr(
        urllib3.connection.HTTPConnection, "connect", lambda self: connects.append(1) or connect_once(self)
    )
    for key in range(5):
        s3.put_object(Bucket="pooled", Key=f"k{key}", Body=b"data")
    assert len(connects) <= 1  # one TCP connection (or none: the pool's from create_bucket) for five calls


def test_answers_are_not_held_back_by_nagles_algorithm():
    """Head and body are two writes; without TCP_NODELAY the body waited ~40 ms for the client's delayed ACK
    on every kept-alive answer (benchmarks/sandbox_call_latency.py: InvokeEndpointAsync 104 ms at 50 ms
    latency without it, 64 ms with it)."""
    from local_aws.keepalive import connections

    server = KeepAliveMotoServer(ip_address="127.0.0.1", port=pick_port(0), verbose=False)
    server.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server._port, timeout=10)
        response, _ = answer(connection, "GET", "/moto-api/data.json")
        assert response.status == 200
        (served,) = connections(server._server)
        assert served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        connection.close()
    finally:
        server.stop()


def test_stopping_the_server_ends_its_kept_alive_connections():
    server = KeepAliveMotoServer(ip_address="127.0.0.1", port=pick_port(0), verbose=False)
    server.start()
    connection = http.client.HTTPConnection("127.0.0.1", server._port, timeout=10)
    response, _ = answer(connection, "GET", "/moto-api/data.json")
    assert response.status == 200 and connection.sock is not None
    server.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        connection.request("GET", "/moto-api/data.json")
        connection.getresponse()
