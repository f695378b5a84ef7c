"""The Flask app in-process: the response contract on real AdmissionReviews, hostile bodies (hypothesis),
the deny/warn choices, the internal-error row, single-flight."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.admission import build_review
from devtools.s3server import free_port
from tests.webhook.deployments import deployment, models_config, upload_model, with_container
from webhook.admission import RESPONSE_CONTRACT
from webhook.app import create_app
from webhook.config import WebhookConfig

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "admission"


def _app(env: dict | None = None, configmaps: dict | None = None):
    config = WebhookConfig.from_env(env or {"WEBHOOK_ALLOWED_S3_ENDPOINTS": "http://127.0.0.1:1"})
    configmaps = configmaps or {}
    return create_app(config, read_configmap=lambda ns, name, deadline: configmaps.get(name))


@pytest.fixture(scope="module")
def client():
    return _app().test_client()


# file, HTTP status, allowed (None for no decision)
FIXTURES = [
    ("connaisseur/01_deployment.json", 400, None),  # admission.k8s.io/v1beta1 envelope
    ("connaisseur/02_pod.json", 200, True),
    ("connaisseur/07_statefulset.json", 200, True),
    ("connaisseur/10_update.json", 200, True),  # a ReplicaSet UPDATE
    ("connaisseur/12_err_pod.json", 200, True),  # object is not a Pod; not a Deployment anyway
    ("connaisseur/21_broken_admission_request.json", 400, None),
    ("connaisseur/25_null_request.json", 400, None),
    ("kubernetes-api/admission.k8s.io.v1.AdmissionReview.json", 200, True),
]


@pytest.mark.parametrize(("name", "status", "allowed"), FIXTURES)
def test_real_admission_reviews(client, name, status, allowed):
    body = (TESTDATA / name).read_bytes()
    response = client.post("/validate", data=body, content_type="application/json")
    assert response.status_code == status
    payload = response.get_json()
    if allowed is None:
        assert set(payload) == {"error"}
        return
    request = json.loads(body)["request"]
    assert payload == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": request["uid"], "allowed": allowed},
    }


def test_the_contract_table_covers_every_status():
    assert {status for _, status, _ in RESPONSE_CONTRACT} == {200, 400, 403, 405, 413, 415}


def test_wrong_method_type_and_size(client):
    assert client.get("/validate").status_code == 405
    assert client.post("/validate", data="{}", content_type="text/plain").status_code == 415
    assert (
        client.post("/validate", data=b" " * (5 * 1024 * 1024), content_type="application/json").status_code
        == 413
    )
    assert client.get("/nope").status_code == 404


def _review_variants():
    scalar = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
    )
    tree = st.recursive(
        scalar,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=30,
    )
    base = build_review(deployment(s3_endpoint="127.0.0.1:1"), uid="u")
    keys = ["apiVersion", "kind", "request"]
    request_keys = ["uid", "kind", "operation", "namespace", "name", "object", "oldObject", "dryRun"]

    @st.composite
    def mutated(draw):
        review = json.loads(json.dumps(base))
        where = draw(st.sampled_from(["top", "request", "object", "container"]))
        value = draw(tree)
        if where == "top":
            review[draw(st.sampled_from(keys))] = value
        elif where == "request":
            review["request"][draw(st.sampled_from(request_keys))] = value
        elif where == "object":
            spec = review["request"]["object"]["spec"]["template"]["spec"]
            spec[draw(st.sampled_from(["containers", "volumes"]))] = value
        else:
            container = review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]
            container[
                draw(st.sampled_from(["image", "args", "command", "env", "resources", "volumeMounts"]))
            ] = value
        return json.dumps(review).encode()

    return st.one_of(mutated(), tree.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_review_variants())
def test_hostile_bodies_get_a_4xx_or_a_decision(client, body):
    response = client.post("/validate", data=body, content_type="application/json")
    assert response.status_code in (200, 400)
    payload = response.get_json()
    if response.status_code == 400:
        assert set(payload) == {"error"}
        return
    assert payload["kind"] == "AdmissionReview"
    decision = payload["response"]
    assert isinstance(decision["allowed"], bool)
    if not decision["allowed"]:
        message = decision["status"]["message"]
        assert "\n" not in message and len(message) <= 300 and "Traceback" not in message
        assert decision["status"]["code"] != 500  # no check crashed


def test_deep_nesting_and_huge_numbers(client):
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert client.post("/validate", data=deep, content_type="application/json").status_code == 400
    huge = b'{"apiVersion": ' + b"9" * 100_000 + b"}"
    assert client.post("/validate", data=huge, content_type="application/json").status_code == 400


def test_unresolvable_deployment_deny_or_warn():
    dep = with_container(deployment(s3_endpoint="127.0.0.1:1"), command=["/bin/sh", "-c", "serve"])
    denied = _app().test_client().post("/validate", json=build_review(dep, uid="u")).get_json()["response"]
    assert denied == {
        "uid": "u",
        "allowed": False,
        "status": {
            "code": 422,
            "message": (
                "savedmodel: cannot tell what container \"tfserving\" loads: command '/bin/sh' is not "
                "tensorflow_model_server or tf_serving_entrypoint.sh"
            ),
        },
    }
    warn = _app({"WEBHOOK_ON_UNRESOLVED": "warn"}).test_client()
    allowed = warn.post("/validate", json=build_review(dep, uid="u")).get_json()["response"]
    assert allowed["allowed"] is True
    assert allowed["warnings"] == [
        "savedmodel: cannot tell what container \"tfserving\" loads: command '/bin/sh' is "
        "not tensorflow_model_server or tf_servin…"
    ]
    assert all(len(w) <= 120 for w in allowed["warnings"])
    assert allowed["auditAnnotations"] == {"unresolved": denied["status"]["message"]}


def test_unreachable_storage_deny_or_warn(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    port = free_port()  # nothing listens there
    configmaps = {"cm": {"data": {"models.config": models_config("m", "s3://bucket/m")}}}
    dep = deployment(s3_endpoint=f"127.0.0.1:{port}", configmap="cm")
    env = {"WEBHOOK_ALLOWED_S3_ENDPOINTS": f"http://127.0.0.1:{port}"}
    response = (
        _app(env, configmaps).test_client().post("/validate?timeout=3s", json=build_review(dep)).get_json()
    )
    status = response["response"]["status"]
    assert response["response"]["allowed"] is False and status["code"] == 503
    assert status["message"].startswith('savedmodel: cannot verify model "m" at s3://bucket/m: ')
    warn = _app(env | {"WEBHOOK_ON_UNVERIFIABLE": "warn"}, configmaps).test_client()
    response = warn.post("/validate?timeout=3s", json=build_review(dep)).get_json()["response"]
    assert response["allowed"] is True
    assert response["warnings"][0].startswith('savedmodel: cannot verify model "m" at s3://bucket/m: ')
    assert response["auditAnnotations"]["unverified"].startswith('savedmodel: cannot verify model "m"')


def test_an_exception_in_a_check_is_the_internal_error_row(monkeypatch, caplog):
    from webhook.checks import gpu_image

    def broken(*args, **kwargs):
        raise KeyError("bug")

    monkeypatch.setattr(gpu_image, "check", broken)
    dep = deployment(s3_endpoint="127.0.0.1:1")
    response = _app().test_client().post("/validate", json=build_review(dep, uid="u"))
    assert response.status_code == 200
    assert response.get_json()["response"] == {
        "uid": "u",
        "allowed": False,
        "status": {
            "code": 500,
            "message": (
                "tfserving-webhook: internal error while checking this Deployment (see the webhook "
                "log); retry, and "
                "report it if it persists"
            ),
        },
    }
    assert "KeyError" in caplog.text
    warn = _app({"WEBHOOK_ON_UNVERIFIABLE": "warn"}).test_client()
    assert warn.post("/validate", json=build_review(dep)).get_json()["response"]["allowed"] is True


def test_not_create_or_update_and_no_tf_serving_container(client):
    dep = deployment(s3_endpoint="127.0.0.1:1")
    for operation in ("DELETE", "CONNECT"):
        assert (
            client.post("/validate", json=build_review(dep, operation=operation)).get_json()["response"][
                "allowed"
            ]
            is True
        )
    nginx = with_container(dep, image="nginx:1.27")
    assert client.post("/validate", json=build_review(nginx)).get_json()["response"]["allowed"] is True


def test_label_on_a_version_the_policy_does_not_load():
    configmaps = {
        "cm": {
            "data": {
                "models.config": models_config(
                    "m", "s3://b/m", "specific {\n versions: 123\n }", {"stable": 124}
                )
            }
        }
    }
    dep = deployment(s3_endpoint="127.0.0.1:1", configmap="cm")
    app = _app({"WEBHOOK_ALLOWED_S3_ENDPOINTS": "http://127.0.0.1:1"}, configmaps)
    response = app.test_client().post("/validate", json=build_review(dep)).get_json()["response"]
    assert response["status"]["message"] == (
        'savedmodel: model "m" labels version 124 as "stable" but its policy loads only 123; '
        "add 124 to specific "
        "versions"
    )


@pytest.mark.s3
def test_fifty_identical_concurrent_cold_admissions_make_one_s3_check(s3_server, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    base = upload_model(s3_server.client(), s3_bucket, "m", ("00000123",))
    configmaps = {"cm": {"data": {"models.config": models_config("half_plus_two", base)}}}
    app = _app({"WEBHOOK_ALLOWED_S3_ENDPOINTS": s3_server.url}, configmaps)
    dep = deployment(s3_endpoint=s3_server.host_port, configmap="cm")
    barrier = threading.Barrier(50)
    results = []

    def admit():
        local = app.test_client()
        barrier.wait()
        results.append(local.post("/validate", json=build_review(dep, uid=str(uuid.uuid4()))).get_json())

    threads = [threading.Thread(target=admit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["response"]["allowed"] for r in results] == [True] * 50
    metrics = app.extensions["tfs_webhook"]["metrics"]
    assert metrics.s3_checks._value.get() == 1
    start = time.monotonic()
    app.test_client().post("/validate", json=build_review(dep))
    assert metrics.s3_checks._value.get() == 1  # warm: a cache hit
    assert time.monotonic() - start < 30
