"""The embedded SeaweedFS takes as many buckets on any machine: its capacity does not follow free disk; and
it leaves nothing behind when it stops."""

from __future__ import annotations

import resource
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from devtools import s3server
from devtools.s3server import _PORT_FLAGS, SOCKET_DIR, VOLUME_SLOTS, SeaweedFS

# Every test using the s3_bucket fixture creates a bucket (about 175 in the suite), and each bucket written
# to takes one volume slot. More than the suite creates, each with an object written (the write is what
# allocates the volume); the test checks it stays more as the suite grows.
BUCKETS = 300
# A full server refuses every later write the same way; a write that fails and then succeeds was the
# server catching up (volume growth queued behind others on a slow machine), not a lack of capacity.
TRIES = 5


def _create_with_a_write(client, name: str) -> str | None:
    steps = [lambda: client.create_bucket(Bucket=name),
             lambda: client.put_object(Bucket=name, Key="model/1/saved_model.pb", Body=b"x")]
    for step in steps:
        for attempt in range(1, TRIES + 1):
            try:
                step()
                break
            except ClientError as exc:
                if attempt == TRIES:
                    return f"{name}: {exc}"
                time.sleep(0.5 * attempt)
    return None


def test_more_buckets_than_the_suite_creates_each_take_a_write(request):
    suite_buckets = sum("s3_bucket" in getattr(item, "fixturenames", ()) for item in request.session.items)
    assert suite_buckets + 10 < BUCKETS < VOLUME_SLOTS
    server = SeaweedFS()
    with server as endpoint:
        client = endpoint.client()
        names = [f"capacity-{index:04d}" for index in range(BUCKETS)]
        with ThreadPoolExecutor(4) as pool:
            failures = [error for error in pool.map(lambda name: _create_with_a_write(client, name), names)
                        if error]
        listed = {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert not failures, (f"{len(failures)} of {BUCKETS} buckets took no write (open-file limit "
                              f"{open_files}):\n" + "\n".join(failures[:5]) + "\n" + server.diagnosis())
        assert set(names) <= listed


def test_a_stopped_server_leaves_no_unix_socket_behind():
    server = SeaweedFS()
    with server as endpoint:
        endpoint.client().list_buckets()
        ports = set(server.ports.values())
        made = [path for port in ports for path in SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock")]
        assert made  # what weed 4.x does; if it stops doing so, this test has nothing left to hold
    left = [path for port in ports for path in SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock")]
    assert left == [] and not server.workdir.exists()


def test_a_port_taken_before_weed_binds_it_means_another_try_on_new_ports(monkeypatch):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        attempts = []

        def free_ports(count: int) -> list[int]:  # the first S3 port chosen is bound by another meanwhile
            ports = real(count)
            if not attempts:
                ports[_PORT_FLAGS.index("s3.port")] = taken
            attempts.append(ports)
            return ports

        real = s3server.free_ports
        monkeypatch.setattr(s3server, "free_ports", free_ports)
        server = SeaweedFS()
        with server as s3:
            assert len(attempts) == 2 and server.ports["s3.port"] != taken
            s3.client().list_buckets()
        ports = [port for chosen in attempts for port in chosen]
        assert [path for port in ports for path in SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock")] == []


def test_free_ports_are_distinct():
    assert len(set(s3server.free_ports(200))) == 200
