"""The embedded SeaweedFS takes as many buckets on any machine: its capacity does not follow free disk; and
it leaves nothing behind when it stops."""

from __future__ import annotations

import resource
import time
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from devtools.s3server import SOCKET_DIR, VOLUME_SLOTS, SeaweedFS

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
