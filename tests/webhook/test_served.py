"""The webhook as deployed (gunicorn over TLS), real AdmissionReviews, the real S3 server, exact messages."""

from __future__ import annotations

import contextlib
import json
import ssl
import uuid
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.admission import build_review, kubectl_denial
from tests.webhook.deployments import (
    NAMESPACE,
    deployment,
    models_config,
    set_env,
    upload_model,
    with_container,
)

pytestmark = pytest.mark.s3


@pytest.fixture()
def model(s3_server, s3_bucket, fake_kube):
    """A ConfigMap for half_plus_two in a fresh bucket, and a Deployment that mounts it."""
    configmap = f"half-plus-two-tfserving-config-{uuid.uuid4().hex[:10]}"
    base = f"s3://{s3_bucket}/tfserving/half_plus_two"
    fake_kube.add_configmap(NAMESPACE, configmap, {"models.config": models_config("half_plus_two", base)})
    return {
        "bucket": s3_bucket,
        "base": base,
        "configmap": configmap,
        "deployment": deployment(s3_endpoint=s3_server.host_port, configmap=configmap),
    }


def _response(served, review):
    status, body = served.post(review)
    assert status == 200
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]


def test_the_story_admit_deny_partial_admit_complete_deny_gpu(served, s3_server, model):
    client = s3_server.client()
    upload_model(client, model["bucket"], "tfserving/half_plus_two", ("00000123",))
    response = _response(served, build_review(model["deployment"]))
    assert response["allowed"] is True and "warnings" not in response and "status" not in response

    upload_model(
        client,
        model["bucket"],
        "tfserving/half_plus_two",
        ("00000124",),
        leave_out=("00000124/variables/variables.index",),
    )
    response = _response(served, build_review(model["deployment"]))
    expected = (
        f'savedmodel: model "half_plus_two" version 124 ({model["base"]}/00000124) is invalid: '
        "variables/variables.index is missing: the variables cannot be restored (a partial upload?); "
        "finish the upload or pin a complete version (model_version_policy specific)"
    )
    assert response["allowed"] is False
    assert response["status"] == {"code": 403, "message": expected}
    assert len(expected) < 300
    assert kubectl_denial("tfserving.tfs-gitops.io", response["status"]["message"]) == (
        'Error from server: error when creating "STDIN": admission webhook "tfserving.tfs-gitops.io" '
        f"denied the request: {expected}"
    )

    upload_model(client, model["bucket"], "tfserving/half_plus_two", ("00000124",))
    assert _response(served, build_review(model["deployment"]))["allowed"] is True

    gpu = with_container(model["deployment"], image="tensorflow/serving:2.6.2-gpu")
    response = _response(served, build_review(gpu))
    assert response["status"] == {
        "code": 403,
        "message": (
            'gpu-image: container "tfserving" runs the GPU image tensorflow/serving:2.6.2-gpu '
            "without a GPU; set "
            'resources.limits["nvidia.com/gpu"] to 1 or more, or use the CPU image tensorflow/serving:2.6.2'
        ),
    }


def test_dry_run_gets_the_same_verdict(served, s3_server, model):
    upload_model(
        s3_server.client(),
        model["bucket"],
        "tfserving/half_plus_two",
        ("00000123",),
        leave_out=("00000123/saved_model.pb",),
    )
    normal = _response(served, build_review(model["deployment"]))
    dry = _response(served, build_review(model["deployment"], dry_run=True))
    assert normal["allowed"] is dry["allowed"] is False
    assert normal["status"] == dry["status"]


def test_empty_base_path_is_denied(served, model):
    response = _response(served, build_review(model["deployment"]))
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        f'savedmodel: model "half_plus_two" at {model["base"]} (policy latest): '
    )
    assert response["status"]["message"].endswith("; upload a complete version or fix the version policy")


def test_missing_configmap_is_unresolved_and_denied(served, s3_server):
    dep = deployment(s3_endpoint=s3_server.host_port, configmap="does-not-exist")
    response = _response(served, build_review(dep))
    assert response == {
        "uid": response["uid"],
        "allowed": False,
        "status": {
            "code": 422,
            "message": (
                'savedmodel: cannot tell what container "tfserving" loads: ConfigMap '
                "tfserving-dev/does-not-exist "
                "(--model_config_file) does not exist"
            ),
        },
    }


def test_s3_path_with_a_tf_serving_image_without_s3(served, model):
    dep = with_container(model["deployment"], image="tensorflow/serving:2.11.0")
    response = _response(served, build_review(dep))
    assert response["status"] == {
        "code": 403,
        "message": (
            f's3-support: model "half_plus_two" is at {model["base"]} but '
            "tensorflow/serving:2.11.0 cannot read S3 "
            "(the S3 filesystem was removed in tensorflow/serving 2.7.0); use "
            "tensorflow/serving:2.6.5 or an image "
            "built with S3 support"
        ),
    }


def test_update_with_unchanged_serving_fields_makes_no_s3_call(served, model):
    # The bucket is empty: a storage check would deny. An UPDATE that only scales must not look.
    old = model["deployment"]
    new = json.loads(json.dumps(old))
    new["spec"]["replicas"] = 3
    new["metadata"]["annotations"] = {"argocd.argoproj.io/tracking-id": "x"}
    before = served.metric("tfs_webhook_s3_checks_total")
    response = _response(served, build_review(new, operation="UPDATE", old=old))
    assert response["allowed"] is True
    assert served.metric("tfs_webhook_s3_checks_total") == before
    changed = with_container(new, image="tensorflow/serving:2.6.3")
    response = _response(served, build_review(changed, operation="UPDATE", old=old))
    assert response["allowed"] is False
    assert served.metric("tfs_webhook_s3_checks_total") == before + 1


def test_workload_tls_settings_and_keys_are_not_used(served, s3_server, model):
    # The Deployment's own keys come from a Secret we never read; S3_VERIFY_SSL=0 changes nothing.
    upload_model(s3_server.client(), model["bucket"], "tfserving/half_plus_two", ("00000123",))
    dep = set_env(model["deployment"], "S3_VERIFY_SSL", "0")
    dep = set_env(dep, "AWS_ACCESS_KEY_ID", "stolen")
    assert _response(served, build_review(dep))["allowed"] is True


def test_kubernetes_api_is_only_asked_for_configmaps(served, fake_kube, model):
    _response(served, build_review(model["deployment"]))
    assert fake_kube.requests
    assert all(method == "GET" and "/configmaps/" in path for method, path in fake_kube.requests)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"null", "application/json", 400),
        (b"{}", "text/plain", 415),
        (b"[" * 200_000 + b"]" * 200_000, "application/json", 400),
    ],
)
def test_bad_bodies_get_a_clear_4xx_over_tls(served, body, content_type, status):
    got, payload = served.post_raw(body, content_type=content_type)
    assert got == status
    assert set(json.loads(payload)) == {"error"}
    assert served.get("/healthz")[0] == 200  # the worker survived


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=20,
    ),
    where=st.sampled_from(["request", "object", "spec", "container"]),
)
def test_hostile_reviews_over_tls_get_a_4xx_or_a_decision(served, body, where):
    review = build_review(deployment(s3_endpoint="127.0.0.1:1"))
    target = {
        "request": review,
        "object": review["request"],
        "spec": review["request"]["object"],
        "container": review["request"]["object"]["spec"]["template"]["spec"]["containers"][0],
    }[where]
    target[sorted(target)[len(json.dumps(body)) % len(target)]] = body
    status, payload = served.post(review)
    assert status in (200, 400), payload
    if status == 200:
        assert payload["response"].get("status", {}).get("code") != 500


def test_a_body_over_the_cap_is_refused_before_it_is_read(served):
    conn = served.connection()
    conn.putrequest("POST", "/validate")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(5 * 1024 * 1024))
    conn.endheaders()
    conn.send(b"{" * 1024)
    response = conn.getresponse()
    assert response.status == 413
    assert set(json.loads(response.read())) == {"error"}
    conn.close()
    assert served.get("/healthz")[0] == 200


def test_health_and_metrics(served):
    assert served.get("/healthz") == (200, b"ok\n")
    assert served.get("/readyz") == (200, b"ready\n")
    status, body = served.get("/metrics")
    assert status == 200
    for name in (
        "tfs_webhook_admissions_total",
        "tfs_webhook_admission_duration_seconds_bucket",
        "tfs_webhook_s3_requests_total",
        "tfs_webhook_s3_errors_total",
        "tfs_webhook_cache_lookups",
    ):
        assert name.encode() in body


def test_tls_1_1_is_refused_and_1_2_accepted(served):
    import http.client

    old = served.ssl_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        old.set_ciphers("ALL:@SECLEVEL=0")
    conn = http.client.HTTPSConnection(served.host, served.port, context=old, timeout=5)
    with pytest.raises((ssl.SSLError, OSError)):
        conn.request("GET", "/healthz")
        conn.getresponse()
    conn.close()
    tls12 = served.ssl_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    conn = http.client.HTTPSConnection(served.host, served.port, context=tls12, timeout=5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    assert conn.sock.version() == "TLSv1.2"
    conn.close()
