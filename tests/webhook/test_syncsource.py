"""webhook.syncsource: sync containers read back from a Deployment, and which local path each one fills."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from rulebook.policy import VersionPolicy
from rulebook.sync import SyncSpec
from webhook.extract import Malformed, ServedModel, ServingContainer
from webhook.syncsource import InvalidSyncLine, attach, sync_fields, sync_sources

SPEC = SyncSpec("s3://models/m", "/models/m", VersionPolicy("latest"))


def _deployment(*, sync_mount="/models", serving_mount="/models", sub_path=None, args=None, env=None):
    mount = {"name": "models", "mountPath": sync_mount}
    if sub_path:
        mount["subPath"] = sub_path
    sync = {
        "name": "sync",
        "image": "ghcr.io/tfserving-gitops/webhook:0.1.0",
        "command": ["/opt/venv/bin/tfs-gitops"],
        "args": args if args is not None else SPEC.args(),
        "env": env or [{"name": "S3_ENDPOINT", "value": "rgw.storage.svc:7480"}],
        "volumeMounts": [mount],
    }
    init = {
        **copy.deepcopy(sync),
        "name": "sync-init",
        "args": dataclasses.replace(SPEC, once=True).args(),
    }
    if args is not None:
        init["args"] = args
    serving = {
        "name": "tfserving",
        "image": "tensorflow/serving:2.19.0",
        "volumeMounts": [{"name": "models", "mountPath": serving_mount, "readOnly": True}],
    }
    return {
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [init],
                    "containers": [serving, sync, {"name": "other", "image": "busybox", "args": ["sync"]}],
                    "volumes": [{"name": "models", "emptyDir": {}}],
                }
            }
        }
    }


def _serving(base_path="/models/m") -> ServingContainer:
    return ServingContainer("tfserving", "tensorflow/serving:2.19.0", models=(ServedModel("m", base_path),))


def test_init_container_and_sidecar_are_read_back():
    sources = sync_sources(_deployment())
    assert [(s.name, s.init, s.spec.once, s.fills) for s in sources] == [
        ("sync-init", True, True, ("models", "m")),
        ("sync", False, False, ("models", "m")),
    ]
    assert sources[1].spec == SPEC
    assert sources[1].env == {"S3_ENDPOINT": "rgw.storage.svc:7480"}


def test_the_served_path_is_filled_through_the_same_volume_whatever_the_mount_paths():
    deployment = _deployment(sync_mount="/data", serving_mount="/srv/models", args=[*SPEC.args()])
    deployment["spec"]["template"]["spec"]["containers"][1]["args"][2] = "/data/m"
    deployment["spec"]["template"]["spec"]["initContainers"][0]["args"][2] = "/data/m"
    container = attach(_serving("/srv/models/m"), deployment, sync_sources(deployment))
    assert [s.name for s in container.synced["/srv/models/m"]] == ["sync-init", "sync"]


def test_sub_paths_are_followed():
    deployment = _deployment(sync_mount="/out", sub_path="models", args=[*SPEC.args()])
    for container in (
        deployment["spec"]["template"]["spec"]["initContainers"][0],
        deployment["spec"]["template"]["spec"]["containers"][1],
    ):
        container["args"][2] = "/out/m"
    filled = attach(_serving("/models/models/m"), deployment, sync_sources(deployment))
    assert "/models/models/m" in filled.synced
    assert attach(_serving("/models/m"), deployment, sync_sources(deployment)).synced == {}


def test_another_directory_is_not_filled():
    deployment = _deployment()
    assert attach(_serving("/models/other"), deployment, sync_sources(deployment)).synced == {}
    assert attach(_serving("/tmp/m"), deployment, sync_sources(deployment)).synced == {}


def test_variables_are_expanded_from_literal_env():
    env = [{"name": "S3_ENDPOINT", "value": "x:1"}, {"name": "SRC", "value": "s3://models/m"}]
    args = ["sync", "$(SRC)", "/models/m", "--policy", "latest", "--interval", "30"]
    (source, _) = sync_sources(_deployment(args=args, env=env))[:2]
    assert source.spec.source == "s3://models/m"


@pytest.mark.parametrize(
    ("args", "env", "reason"),
    [
        (
            ["sync", "s3://models/m", "/models/m", "--interval", "soon"],
            None,
            "its command line is malformed: --interval must be a number of seconds, not 'soon'",
        ),
        (["sync", "s3://models/m"], None, "its command line is malformed: expected SOURCE"),
        (["sync", "s3://models/m", "models/m"], None, "its destination 'models/m' is not an absolute path"),
        (
            ["sync", "$(SRC)", "/models/m"],
            [{"name": "SRC", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "its command line uses $(SRC) from a Secret or ConfigMap",
        ),
        (["sync", "s3://m/m", "/models/m", "--policy", "newest"], None, "unknown version policy 'newest'"),
    ],
)
def test_sync_lines_that_cannot_work_are_findings(args, env, reason):
    with pytest.raises(InvalidSyncLine) as raised:
        sync_sources(_deployment(args=args, env=env))
    assert raised.value.container == "sync-init"
    assert reason in str(raised.value)


def test_malformed_objects():
    deployment = _deployment()
    deployment["spec"]["template"]["spec"]["initContainers"] = {"name": "x"}
    with pytest.raises(Malformed):
        sync_sources(deployment)
    assert sync_fields(deployment) is None


def test_fields_change_with_the_sync_line_only():
    before = _deployment()
    after = copy.deepcopy(before)
    after["spec"]["template"]["spec"]["containers"][2]["image"] = "busybox:2"  # not a sync container
    assert sync_fields(before) == sync_fields(after)
    after["spec"]["template"]["spec"]["containers"][1]["args"][1] = "s3://models/other"
    assert sync_fields(before) != sync_fields(after)
