"""Table-driven: what TF Serving will read, derived from command/args/env/volumes exactly as it would be."""

from __future__ import annotations

import base64
import time

import pytest

from rulebook.images import ImageRef, is_tfserving_image
from rulebook.policy import VersionPolicy as Policy
from webhook.extract import (
    ConfigMapError,
    InvalidModelConfig,
    Malformed,
    expand,
    parse_flags,
    serving_containers,
)

IMAGES = ("tensorflow/serving",)
CONFIG = 'model_config_list { config { name: "m" base_path: "s3://b/m" model_version_policy { all {} } } }'


def _deployment(container: dict, volumes: list | None = None) -> dict:
    base = {"name": "tfserving", "image": "tensorflow/serving:2.6.2"}
    base.update(container)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [base], "volumes": volumes or []}}},
    }


def _extract(container: dict, volumes: list | None = None, configmaps: dict | None = None):
    configmaps = configmaps or {}
    found = serving_containers(
        _deployment(container, volumes),
        "ns",
        IMAGES,
        lambda ns, name, deadline: configmaps.get(name),
        time.monotonic() + 5,
    )
    assert len(found) == 1
    return found[0]


CM_VOLUME = [{"name": "cfg", "configMap": {"name": "cm"}}]
CM_MOUNT = [{"name": "cfg", "mountPath": "/etc/tfserving"}]

# (id, container fields, expected (name, base_path) pairs or the unresolved reason's start)
PATH_CASES = [
    ("official-entrypoint-defaults", {}, [("model", "/models/model")]),
    (
        "entrypoint-env",
        {
            "env": [
                {"name": "MODEL_NAME", "value": "half_plus_two"},
                {"name": "MODEL_BASE_PATH", "value": "s3://b/models"},
            ]
        },
        [("half_plus_two", "s3://b/models/half_plus_two")],
    ),
    (
        "entrypoint-env-and-args-override",
        {"env": [{"name": "MODEL_NAME", "value": "a"}], "args": ["--model_base_path=s3://b/x"]},
        [("a", "s3://b/x")],
    ),
    (
        "flag-equals",
        {"command": ["tensorflow_model_server"], "args": ["--model_name=m", "--model_base_path=s3://b/m"]},
        [("m", "s3://b/m")],
    ),
    (
        "flag-space",
        {
            "command": ["/usr/bin/tensorflow_model_server", "--model_name", "m"],
            "args": ["--model_base_path", "s3://b/m"],
        },
        [("m", "s3://b/m")],
    ),
    (
        "single-dash",
        {"command": ["tensorflow_model_server"], "args": ["-model_base_path=s3://b/m"]},
        [("default", "s3://b/m")],
    ),
    (
        "last-wins",
        {
            "command": ["tensorflow_model_server"],
            "args": ["--model_base_path=s3://b/old", "--model_base_path=s3://b/new"],
        },
        [("default", "s3://b/new")],
    ),
    (
        "var-expansion",
        {
            "command": ["tensorflow_model_server"],
            "env": [{"name": "BUCKET", "value": "b"}, {"name": "P", "value": "s3://$(BUCKET)/p"}],
            "args": ["--model_base_path=$(P)", "--model_name=$(UNDEFINED)"],
        },
        [("$(UNDEFINED)", "s3://b/p")],
    ),
    (
        "escaped-var",
        {
            "command": ["tensorflow_model_server"],
            "env": [{"name": "X", "value": "y"}],
            "args": ["--model_base_path=s3://b/$$(X)"],
        },
        [("default", "s3://b/$(X)")],
    ),
    (
        "entrypoint-script",
        {
            "command": ["/usr/bin/tf_serving_entrypoint.sh"],
            "env": [{"name": "MODEL_BASE_PATH", "value": "s3://b"}],
        },
        [("model", "s3://b/model")],
    ),
    (
        "config-file",
        {
            "command": ["tensorflow_model_server"],
            "args": ["--model_config_file=/etc/tfserving/models.config"],
            "volumeMounts": CM_MOUNT,
        },
        [("m", "s3://b/m")],
    ),
    (
        "config-file-beats-base-path",
        {"args": ["--model_config_file", "/etc/tfserving/models.config"], "volumeMounts": CM_MOUNT},
        [("m", "s3://b/m")],
    ),
    (
        "config-file-subpath",
        {
            "command": ["tensorflow_model_server"],
            "args": ["--model_config_file=/config/m.cfg"],
            "volumeMounts": [{"name": "cfg", "mountPath": "/config/m.cfg", "subPath": "models.config"}],
        },
        [("m", "s3://b/m")],
    ),
    (
        "config-file-var",
        {
            "command": ["tensorflow_model_server"],
            "env": [{"name": "DIR", "value": "/etc/tfserving"}],
            "args": ["--model_config_file=$(DIR)/models.config"],
            "volumeMounts": CM_MOUNT,
        },
        [("m", "s3://b/m")],
    ),
]

UNRESOLVED_CASES = [
    ("shell-command", {"command": ["/bin/sh", "-c", "tensorflow_model_server ..."]}, "command '/bin/sh'"),
    (
        "no-base-path",
        {"command": ["tensorflow_model_server"], "args": ["--port=8500"]},
        "it sets neither --model_base_path",
    ),
    (
        "secret-var",
        {
            "command": ["tensorflow_model_server"],
            "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "args": ["--model_base_path=$(P)"],
        },
        "--model_base_path uses a variable set from a Secret",
    ),
    (
        "env-from-secret",
        {"env": [{"name": "MODEL_BASE_PATH", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]},
        "MODEL_NAME/MODEL_BASE_PATH are set from",
    ),
    ("envfrom", {"envFrom": [{"configMapRef": {"name": "c"}}]}, "envFrom may set"),
    (
        "config-not-mounted",
        {"command": ["tensorflow_model_server"], "args": ["--model_config_file=/x/m"]},
        "--model_config_file /x/m is not on a mounted volume",
    ),
    (
        "config-missing-configmap",
        {
            "command": ["tensorflow_model_server"],
            "args": ["--model_config_file=/etc/tfserving/models.config"],
            "volumeMounts": [{"name": "other", "mountPath": "/etc/tfserving"}],
        },
        "--model_config_file volume 'other' is not defined",
    ),
]


@pytest.mark.parametrize(
    ("container", "expected"), [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES]
)
def test_model_paths(container, expected):
    found = _extract(container, CM_VOLUME, {"cm": {"data": {"models.config": CONFIG}}})
    assert found.unresolved == ()
    assert [(m.name, m.base_path) for m in found.models] == expected


@pytest.mark.parametrize(
    ("container", "reason"), [c[1:] for c in UNRESOLVED_CASES], ids=[c[0] for c in UNRESOLVED_CASES]
)
def test_unresolved(container, reason):
    found = _extract(container, CM_VOLUME, {"cm": {"data": {"models.config": CONFIG}}})
    assert found.models == ()
    assert found.unresolved[0].startswith(reason), found.unresolved


def test_config_file_with_several_models_policies_and_labels():
    text = """
    model_config_list {
      config { name: "a" base_path: "s3://b/a" model_platform: "tensorflow"
               model_version_policy { specific { versions: 123 versions: 124 } }
               version_labels { key: "stable" value: 123 } version_labels { key: "canary" value: 124 } }
      config { name: "b" base_path: "s3://b/b" model_version_policy { latest { num_versions: 2 } } }
      config { name: "c" base_path: "s3://b/c" }
    }"""
    found = _extract(
        {"args": ["--model_config_file=/etc/tfserving/models.config"], "volumeMounts": CM_MOUNT},
        CM_VOLUME,
        {"cm": {"binaryData": {"models.config": base64.b64encode(text.encode()).decode()}}},
    )
    assert [(m.name, m.policy, m.labels) for m in found.models] == [
        ("a", Policy("specific", versions=(123, 124)), (("stable", 123), ("canary", 124))),
        ("b", Policy("latest", count=2), ()),
        ("c", Policy("latest"), ()),
    ]
    assert found.models[0].source == "ConfigMap ns/cm key models.config"


def test_configmap_items_map_paths_to_keys():
    volumes = [
        {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "real", "path": "models.config"}]}}
    ]
    found = _extract(
        {"args": ["--model_config_file=/etc/tfserving/models.config"], "volumeMounts": CM_MOUNT},
        volumes,
        {"cm": {"data": {"real": CONFIG}}},
    )
    assert [m.name for m in found.models] == ["m"]


def test_projected_configmap():
    volumes = [{"name": "cfg", "projected": {"sources": [{"configMap": {"name": "cm"}}]}}]
    found = _extract(
        {"args": ["--model_config_file=/etc/tfserving/models.config"], "volumeMounts": CM_MOUNT},
        volumes,
        {"cm": {"data": {"models.config": CONFIG}}},
    )
    assert [m.name for m in found.models] == ["m"]


def test_missing_configmap_and_key_and_api_errors():
    container = {"args": ["--model_config_file=/etc/tfserving/models.config"], "volumeMounts": CM_MOUNT}
    assert _extract(container, CM_VOLUME, {}).unresolved == (
        "ConfigMap ns/cm (--model_config_file) does not exist",
    )
    assert _extract(container, CM_VOLUME, {"cm": {"data": {}}}).unresolved == (
        "ConfigMap ns/cm has no key models.config (--model_config_file)",
    )

    def failing(ns, name, deadline):
        raise ConfigMapError("the API server answered 403 Forbidden")

    found = serving_containers(_deployment(container, CM_VOLUME), "ns", IMAGES, failing, time.monotonic() + 5)
    assert found[0].unresolved == (
        "cannot read ConfigMap ns/cm key models.config: the API server answered 403 Forbidden",
    )
    found = serving_containers(_deployment(container, CM_VOLUME), "ns", IMAGES, None, time.monotonic() + 5)
    assert found[0].unresolved == ("cannot read ConfigMap ns/cm key models.config: no Kubernetes API access",)


def test_invalid_model_config_is_a_finding():
    container = {"args": ["--model_config_file=/etc/tfserving/models.config"], "volumeMounts": CM_MOUNT}
    with pytest.raises(InvalidModelConfig, match="line 1: expected ':' or '\\{' after improperly"):
        _extract(container, CM_VOLUME, {"cm": {"data": {"models.config": "improperly formatted file"}}})


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("tensorflow/serving:2.6.2", ("tensorflow/serving", "2.6.2", None)),
        ("docker.io/tensorflow/serving:2.6.2-gpu", ("tensorflow/serving", "2.6.2-gpu", None)),
        ("index.docker.io/tensorflow/serving", ("tensorflow/serving", None, None)),
        ("tensorflow/serving@sha256:abc", ("tensorflow/serving", None, "sha256:abc")),
        ("tensorflow/serving:2.6.2@sha256:abc", ("tensorflow/serving", "2.6.2", "sha256:abc")),
        ("registry:5000/team/tfs:1.0", ("registry:5000/team/tfs", "1.0", None)),
        ("docker.io/library/nginx:1", ("nginx", "1", None)),
    ],
)
def test_split_image(image, expected):
    ref = ImageRef.parse(image)
    assert (ref.repository, ref.tag, ref.digest) == expected


def test_only_configured_repositories_are_tf_serving():
    assert is_tfserving_image("docker.io/tensorflow/serving:2.6.2", IMAGES)
    assert not is_tfserving_image("tensorflow/serving-proxy:1", IMAGES)
    assert is_tfserving_image("registry.local/tfs:1", ("registry.local/tfs",))
    dep = _deployment({"image": "nginx:1"})
    assert serving_containers(dep, "ns", IMAGES, None, time.monotonic() + 1) == []


def test_flag_parsing_and_expansion_helpers():
    assert parse_flags(["--enable_batching", "--model_name", "--model_base_path=x"]) == {
        "model_base_path": "x"
    }
    assert expand("$(A)-$(B)-$$(A)", {"A": "1"}, frozenset({"B"})) == ("1-$(B)-$(A)", {"B"})


@pytest.mark.parametrize(
    "deployment",
    [
        "not a dict",
        {"spec": []},
        {"spec": {"template": {"spec": {"containers": "x"}}}},
        {"spec": {"template": {"spec": {"containers": [5]}}}},
        {"spec": {"template": {"spec": {"containers": [{"image": "tensorflow/serving", "args": [1]}]}}}},
        {
            "spec": {
                "template": {"spec": {"containers": [{"image": "tensorflow/serving", "env": [{"name": 1}]}]}}
            }
        },
    ],
)
def test_malformed_objects(deployment):
    with pytest.raises(Malformed):
        serving_containers(deployment, "ns", IMAGES, None, time.monotonic() + 1)
