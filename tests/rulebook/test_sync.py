from __future__ import annotations

import pytest

from rulebook.policy import VersionPolicy, parse_version_name
from rulebook.sync import STAGING_PREFIX, SyncSpec


def test_args_round_trip():
    for spec in (
        SyncSpec("s3://models/a", "/models/a", VersionPolicy("latest", count=2), interval=15),
        SyncSpec("s3://models/a", "/models/a", VersionPolicy("specific", versions=(1, 2)), once=True),
        SyncSpec("s3://models/a", "/models/a", VersionPolicy("all"), 2.5, endpoint_url="http://rgw:7480"),
    ):
        assert SyncSpec.parse(["tfs-gitops", *spec.args()]) == spec


def test_other_commands_are_not_sync_containers():
    assert SyncSpec.parse(["/usr/bin/tensorflow_model_server", "--port=8500"]) is None
    assert SyncSpec.parse(["tfs-gitops", "webhook", "serve"]) is None
    assert SyncSpec.parse([]) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["tfs-gitops", "sync", "s3://m/a"],
        ["tfs-gitops", "sync", "s3://m/a", "/models/a", "--interval", "soon"],
        ["tfs-gitops", "sync", "s3://m/a", "/models/a", "--policy"],
        ["tfs-gitops", "sync", "s3://m/a", "/models/a", "--policy", "newest"],
        ["tfs-gitops", "sync", "s3://m/a", "/models/a", "--polcy", "all"],
        ["tfs-gitops", "sync", "s3://m/a", "/models/a", "--no-copy"],
        ["tfs-gitops", "sync", "s3://m/a", "/models/a", "--interval", "0"],
    ],
)
def test_malformed_sync_lines_are_errors(argv):
    with pytest.raises(ValueError):
        SyncSpec.parse(argv)


def test_staging_names_are_never_versions():
    assert parse_version_name(f"{STAGING_PREFIX}00000124") is None
    assert parse_version_name(f"{STAGING_PREFIX}124.tmp") is None
