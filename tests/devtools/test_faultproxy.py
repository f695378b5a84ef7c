"""devtools.faultproxy in front of the session's real S3 server."""

from __future__ import annotations

import contextlib
import io
import os
import socket

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from devtools.faultproxy import FaultProxy

pytestmark = pytest.mark.s3


@pytest.fixture()
def proxy(s3_server):
    with FaultProxy(s3_server.url) as running:
        yield running


def client_via(proxy, s3_server, *, attempts: int = 1, read_timeout: float = 10.0):
    return s3_server.client(via=proxy.url, attempts=attempts, read_timeout=read_timeout)


def error_code(excinfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_forwards_signed_requests_unchanged(proxy, s3_server, s3_bucket):
    s3 = client_via(proxy, s3_server)
    s3.put_object(Bucket=s3_bucket, Key="m/1/saved_model.pb", Body=b"0123456789")

    ranged = s3.get_object(Bucket=s3_bucket, Key="m/1/saved_model.pb", Range="bytes=2-4")
    assert ranged["Body"].read() == b"234"
    listing = s3.list_objects_v2(Bucket=s3_bucket, Prefix="m/", Delimiter="/")
    assert [p["Prefix"] for p in listing["CommonPrefixes"]] == ["m/1/"]
    assert s3.head_object(Bucket=s3_bucket, Key="m/1/saved_model.pb")["ContentLength"] == 10
    s3.delete_object(Bucket=s3_bucket, Key="m/1/saved_model.pb")  # 204, no body
    assert s3.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0
    methods = [method for method, _ in proxy.requests]
    assert methods == ["PUT", "GET", "GET", "HEAD", "DELETE", "GET"]
    assert proxy.requests[0][1] == f"/{s3_bucket}/m/1/saved_model.pb"
    assert "list-type=2" in proxy.requests[2][1]
    assert proxy.connections == 1


def test_keeps_client_connections_alive(proxy, s3_server, s3_bucket):
    s3 = client_via(proxy, s3_server)
    for _ in range(5):
        s3.list_objects_v2(Bucket=s3_bucket)
    assert len(proxy.requests) == 5
    assert proxy.connections == 1


def test_streams_large_bodies_both_ways(proxy, s3_server, s3_bucket):
    s3 = client_via(proxy, s3_server)
    payload = os.urandom(3 * 1024 * 1024 + 17)  # big enough for botocore to send Expect: 100-continue
    s3.put_object(Bucket=s3_bucket, Key="big", Body=payload)
    s3.put_object(Bucket=s3_bucket, Key="stream", Body=io.BytesIO(payload[:100_000]))

    assert s3.get_object(Bucket=s3_bucket, Key="big")["Body"].read() == payload
    assert s3.get_object(Bucket=s3_bucket, Key="stream")["Body"].read() == payload[:100_000]
    tail = s3.get_object(Bucket=s3_bucket, Key="big", Range="bytes=-17")["Body"].read()
    assert tail == payload[-17:]


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [("slowdown", "SlowDown", 503), ("403", "AccessDenied", 403), ("500", "InternalError", 500)],
)
def test_error_faults_answer_s3_errors(proxy, s3_server, s3_bucket, kind, code, status):
    s3 = client_via(proxy, s3_server)
    proxy.set_fault(kind)
    with pytest.raises(ClientError) as excinfo:
        s3.list_objects_v2(Bucket=s3_bucket)
    assert error_code(excinfo) == (code, status)
    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket=s3_bucket, Key="anything")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_error_fault_on_upload_leaves_connection_usable(proxy, s3_server, s3_bucket):
    s3 = client_via(proxy, s3_server)
    proxy.set_fault("500", times=1)
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=s3_bucket, Key="k", Body=b"x" * 1000)
    assert error_code(excinfo) == ("InternalError", 500)
    s3.put_object(Bucket=s3_bucket, Key="k", Body=b"x" * 1000)
    assert s3.get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"x" * 1000


def test_times_limits_the_faults_and_retries_get_through(proxy, s3_server, s3_bucket):
    s3 = client_via(proxy, s3_server, attempts=3)
    proxy.set_fault("slowdown", times=2)
    s3.list_objects_v2(Bucket=s3_bucket)
    assert len(proxy.requests) == 3
    s3.list_objects_v2(Bucket=s3_bucket)
    assert len(proxy.requests) == 4


def test_match_selects_requests_by_path_and_query(proxy, s3_server, s3_bucket):
    s3 = client_via(proxy, s3_server)
    s3.put_object(Bucket=s3_bucket, Key="a/1/saved_model.pb", Body=b"pb")
    s3.put_object(Bucket=s3_bucket, Key="a/1/variables/variables.index", Body=b"ix")
    proxy.set_fault("403", match="variables.index")
    assert s3.get_object(Bucket=s3_bucket, Key="a/1/saved_model.pb")["Body"].read() == b"pb"
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=s3_bucket, Key="a/1/variables/variables.index")
    assert error_code(excinfo) == ("AccessDenied", 403)

    proxy.set_fault("slowdown", match="delimiter=")
    s3.list_objects_v2(Bucket=s3_bucket, Prefix="a/")
    with pytest.raises(ClientError):
        s3.list_objects_v2(Bucket=s3_bucket, Prefix="a/", Delimiter="/")

    proxy.set_fault("500", match="variables.index", method="PUT")
    assert s3.get_object(Bucket=s3_bucket, Key="a/1/variables/variables.index")["Body"].read() == b"ix"
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=s3_bucket, Key="a/1/variables/variables.index", Body=b"ix")
    assert error_code(excinfo) == ("InternalError", 500)

    proxy.set_fault(None)
    s3.list_objects_v2(Bucket=s3_bucket, Prefix="a/", Delimiter="/")


def test_reset_closes_the_connection_abruptly(proxy, s3_server, s3_bucket):
    s3 = client_via(proxy, s3_server)
    proxy.set_fault("reset")
    with pytest.raises(ConnectionClosedError):
        s3.list_objects_v2(Bucket=s3_bucket)

    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=5) as raw:
        raw.sendall(f"GET /{s3_bucket} HTTP/1.1\r\nHost: {proxy.host_port}\r\n\r\n".encode())
        with pytest.raises(ConnectionResetError):
            raw.recv(1024)


def test_delay_holds_the_request(proxy, s3_server, s3_bucket):
    proxy.set_fault("delay", seconds=0.05)
    client_via(proxy, s3_server).list_objects_v2(Bucket=s3_bucket)

    proxy.set_fault("delay", seconds=30)
    with pytest.raises(ReadTimeoutError):
        client_via(proxy, s3_server, read_timeout=0.3).list_objects_v2(Bucket=s3_bucket)


def test_chunked_request_bodies_are_forwarded(proxy):
    """Framing only: an unsigned chunked PUT gets the server's own answer, and the connection stays usable."""
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as raw:
        request = (f"PUT /nobucket/key HTTP/1.1\r\nHost: {proxy.host_port}\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        raw.sendall(request.encode() * 2)
        reader = raw.makefile("rb")
        for _ in range(2):
            status = reader.readline()
            assert status.startswith(b"HTTP/1.1 4"), status
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            reader.read(length)
        reader.close()
    assert proxy.connections == 1
    assert proxy.requests == [("PUT", "/nobucket/key")] * 2


def test_rejects_unknown_fault_kinds(proxy):
    with pytest.raises(ValueError, match="unknown fault"):
        proxy.set_fault("teapot")


def test_stops_cleanly_with_requests_in_flight(s3_server, s3_bucket):
    with FaultProxy(s3_server.url) as proxy:
        client_via(proxy, s3_server).list_objects_v2(Bucket=s3_bucket)  # an idle keep-alive connection
        proxy.set_fault("delay", seconds=600)
        held = socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10)
        held.sendall(f"GET /{s3_bucket} HTTP/1.1\r\nHost: {proxy.host_port}\r\n\r\n".encode())
        while len(proxy.requests) < 2:
            held.settimeout(0.01)
            with contextlib.suppress(TimeoutError):
                held.recv(1)
    with held:
        held.settimeout(10)
        assert held.recv(1024) == b""  # closed by stop(), not after 600 s
    assert not proxy._threads
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=2).close()


def test_rejects_non_http_upstreams():
    with pytest.raises(ValueError, match="http://host:port"):
        FaultProxy("https://127.0.0.1:1")
