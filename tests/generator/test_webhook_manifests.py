"""The webhook's own manifests: content, the certificate chain, the admission match, and strict schemas.

Built-in kinds are validated against kubernetes-validate's bundled strict schemas (no unknown fields);
cert-manager kinds against the upstream CRD openAPIV3Schema in schemas/upstream/cert-manager/, made strict.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from hypothesis import given
from hypothesis import settings as settings_profile
from hypothesis import strategies as st
from referencing import Registry, Resource

from generator.webhook_manifests import (
    WEBHOOK_NAME,
    WebhookSettings,
    argocd_ignore_differences,
    match_expression,
    render_webhook,
)
from rulebook.images import is_tfserving_image

ROOT = Path(__file__).resolve().parents[2]
CERT_MANAGER_CRDS = ROOT / "schemas" / "upstream" / "cert-manager"
K8S_VERSION = kubernetes_validate.latest_version()

VARIANTS = {
    "defaults": WebhookSettings(environment="prod"),
    "endpoints": WebhookSettings(
        environment="staging",
        namespace="tfs-webhook-staging",
        allowed_s3_endpoints=(
            "http://rgw.storage.svc:7480",
            "https://s3.eu-west-1.amazonaws.com",
            "http://10.20.30.40:9000",
            "http://minio",
        ),
        default_s3_endpoint="http://rgw.storage.svc:7480",
        tfserving_images=("tensorflow/serving", "registry.example.com:5000/ml/tf-serving"),
        api_server_cidrs=("172.18.0.0/16",),
    ),
    "warn": WebhookSettings(
        environment="dev", failure_policy="Ignore", on_unverifiable="warn", replicas=1, timeout_seconds=2
    ),
}


def by_kind(objects: dict[str, dict]) -> dict[str, dict]:
    kinds: dict[str, dict] = {}
    for document in objects.values():
        key = document["kind"]
        if key in ("Issuer", "Certificate"):
            key = f"{key}/{document['metadata']['name']}"
        kinds[key] = document
    return kinds


@pytest.fixture(params=sorted(VARIANTS))
def settings(request) -> WebhookSettings:
    return VARIANTS[request.param]


# --- strict schemas


def _strict(schema: dict) -> dict:
    """CRD structural schema → JSON schema that also rejects unknown fields (like kubeconform -strict)."""
    schema = copy.deepcopy(schema)

    def visit(node: dict) -> None:
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for child in node.get("properties", {}).values():
            visit(child)
        if isinstance(node.get("items"), dict):
            visit(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            visit(node["additionalProperties"])

    visit(schema)
    return schema


def _crd_schemas() -> dict[str, dict]:
    schemas = {}
    for path in sorted(CERT_MANAGER_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schemas[f"{api_version}/{crd['spec']['names']['kind']}"] = _strict(
                version["schema"]["openAPIV3Schema"]
            )
    return schemas


CRD_SCHEMAS = _crd_schemas()


def _object_meta_validator() -> jsonschema.Draft202012Validator:
    strict_dir = (
        Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
    )
    definitions = json.loads((strict_dir / "_definitions.json").read_text())
    registry = Resource.from_contents(definitions) @ Registry()
    ref = {"$ref": f"{definitions['$id']}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    return jsonschema.Draft202012Validator(ref, registry=registry)


OBJECT_META = _object_meta_validator()


def validate_strictly(document: dict) -> None:
    key = f"{document['apiVersion']}/{document['kind']}"
    if document["apiVersion"].startswith("cert-manager.io/"):
        jsonschema.Draft202012Validator(CRD_SCHEMAS[key]).validate(document)
        OBJECT_META.validate(document["metadata"])
    else:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_the_upstream_crds_cover_every_cert_manager_kind_rendered():
    assert {"cert-manager.io/v1/Issuer", "cert-manager.io/v1/Certificate"} <= set(CRD_SCHEMAS)


def test_every_object_is_valid_against_strict_schemas(settings):
    for name, document in render_webhook(settings).items():
        try:
            validate_strictly(document)
        except jsonschema.ValidationError as exc:  # name the file in the failure
            pytest.fail(f"{name}: {exc.message} at {list(exc.absolute_path)}")


def test_strict_validation_rejects_an_unknown_field():
    objects = render_webhook(VARIANTS["defaults"])
    deployment = copy.deepcopy(objects["deployment.yaml"])
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(jsonschema.ValidationError):
        validate_strictly(deployment)
    certificate = copy.deepcopy(objects["certificate-serving.yaml"])
    certificate["spec"]["dnsName"] = ["typo"]
    with pytest.raises(jsonschema.ValidationError):
        validate_strictly(certificate)
    issuer = copy.deepcopy(objects["issuer-ca.yaml"])
    issuer["metadata"]["lables"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate_strictly(issuer)


def test_the_output_is_plain_data_and_pure(settings):
    first = render_webhook(settings)
    assert first == render_webhook(settings)
    assert yaml.safe_load(yaml.safe_dump(first)) == first
    json.dumps(first)


def test_file_names():
    assert sorted(render_webhook(VARIANTS["defaults"])) == [
        "certificate-ca.yaml",
        "certificate-serving.yaml",
        "clusterrole.yaml",
        "clusterrolebinding.yaml",
        "deployment.yaml",
        "issuer-ca.yaml",
        "issuer-selfsigned.yaml",
        "namespace.yaml",
        "networkpolicy.yaml",
        "poddisruptionbudget.yaml",
        "service.yaml",
        "serviceaccount.yaml",
        "validatingwebhookconfiguration.yaml",
    ]


# --- workload


def test_deployment_is_highly_available_and_restricted(settings):
    kinds = by_kind(render_webhook(settings))
    deployment = kinds["Deployment"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["metadata"]["namespace"] == settings.namespace
    assert spec["replicas"] == settings.replicas
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert anti["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    # Pod Security Standard "restricted"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
    assert context["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}} in pod["volumes"]
    assert all("hostPath" not in volume for volume in pod["volumes"])
    assert not pod.get("hostNetwork") and "privileged" not in context
    # TLS on 8443, probes over HTTPS
    assert container["command"] == ["tfs-gitops"]
    assert container["args"] == [
        "webhook",
        "serve",
        "--bind",
        "0.0.0.0:8443",
        "--certfile",
        "/tls/tls.crt",
        "--keyfile",
        "/tls/tls.key",
    ]
    assert container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8443, "scheme": "HTTPS"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8443, "scheme": "HTTPS"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_namespace_enforces_the_restricted_pod_security_standard(settings):
    namespace = by_kind(render_webhook(settings))["Namespace"]
    assert namespace["metadata"]["name"] == settings.namespace
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_service_pdb_and_service_account(settings):
    kinds = by_kind(render_webhook(settings))
    selector = kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert kinds["Service"]["spec"]["selector"] == selector
    assert kinds["Service"]["spec"]["ports"] == [
        {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
    ]
    assert kinds["PodDisruptionBudget"]["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": selector},
    }
    assert (
        kinds["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"]
        == kinds["ServiceAccount"]["metadata"]["name"]
    )
    template_labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= template_labels.items()


def test_rbac_grants_get_on_configmaps_only(settings):
    kinds = by_kind(render_webhook(settings))
    assert kinds["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
    ]
    binding = kinds["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == kinds["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": kinds["ServiceAccount"]["metadata"]["name"],
            "namespace": settings.namespace,
        }
    ]


def test_cluster_scoped_names_include_the_environment():
    a = by_kind(render_webhook(WebhookSettings(environment="prod", namespace="tfs-webhook-prod")))
    b = by_kind(render_webhook(WebhookSettings(environment="staging", namespace="tfs-webhook-staging")))
    for kind in ("ValidatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding"):
        assert a[kind]["metadata"]["name"] == "tfs-webhook-prod"
        assert b[kind]["metadata"]["name"] == "tfs-webhook-staging"
        assert "namespace" not in a[kind]["metadata"]


# --- certificates


def test_certificate_chain_and_ca_injection(settings):
    kinds = by_kind(render_webhook(settings))
    ns = settings.namespace
    selfsigned = kinds["Issuer/tfs-webhook-selfsigned"]
    ca_certificate = kinds["Certificate/tfs-webhook-ca"]
    ca_issuer = kinds["Issuer/tfs-webhook-ca"]
    serving = kinds["Certificate/tfs-webhook-serving"]
    assert selfsigned["spec"] == {"selfSigned": {}}
    assert ca_certificate["spec"]["isCA"] is True
    assert ca_certificate["spec"]["issuerRef"]["name"] == selfsigned["metadata"]["name"]
    assert ca_issuer["spec"] == {"ca": {"secretName": ca_certificate["spec"]["secretName"]}}
    assert serving["spec"]["issuerRef"] == {
        "group": "cert-manager.io",
        "kind": "Issuer",
        "name": "tfs-webhook-ca",
    }
    assert serving["spec"]["dnsNames"] == [
        "tfs-webhook",
        f"tfs-webhook.{ns}",
        f"tfs-webhook.{ns}.svc",
        f"tfs-webhook.{ns}.svc.cluster.local",
    ]
    assert "server auth" in serving["spec"]["usages"]
    assert "isCA" not in serving["spec"]
    service = kinds["Service"]["metadata"]["name"]
    assert service == "tfs-webhook"
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == serving["spec"]["secretName"]
    vwc = kinds["ValidatingWebhookConfiguration"]
    assert vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{ns}/tfs-webhook-serving"
    assert all(document["metadata"]["namespace"] == ns for key, document in kinds.items() if "/" in key)


# --- admission registration


def test_validating_webhook_configuration(settings):
    vwc = by_kind(render_webhook(settings))["ValidatingWebhookConfiguration"]
    (webhook,) = vwc["webhooks"]
    assert webhook["name"] == WEBHOOK_NAME
    assert webhook["sideEffects"] == "None"
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["matchPolicy"] == "Equivalent"
    assert webhook["timeoutSeconds"] == settings.timeout_seconds
    assert webhook["failurePolicy"] == settings.failure_policy
    assert webhook["clientConfig"] == {
        "service": {"name": "tfs-webhook", "namespace": settings.namespace, "path": "/validate", "port": 443}
    }
    assert "caBundle" not in webhook["clientConfig"]  # injected by cert-manager, ignored by Argo CD
    assert webhook["rules"] == [
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["deployments"],
            "scope": "Namespaced",
        }
    ]
    assert webhook["namespaceSelector"] == {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": sorted({"kube-system", settings.namespace, "argocd"}),
            }
        ]
    }
    assert 1 <= len(webhook["matchConditions"]) <= 64
    assert webhook["matchConditions"][0]["expression"] == match_expression(settings.tfserving_images)


def test_argocd_namespace_is_excluded():
    vwc = by_kind(render_webhook(WebhookSettings(environment="prod", argocd_namespace="gitops")))
    values = vwc["ValidatingWebhookConfiguration"]["webhooks"][0]["namespaceSelector"]["matchExpressions"][0][
        "values"
    ]
    assert values == ["gitops", "kube-system", "tfs-webhook"]


def test_argocd_ignores_the_injected_ca_bundle():
    assert argocd_ignore_differences() == [
        {
            "group": "admissionregistration.k8s.io",
            "kind": "ValidatingWebhookConfiguration",
            "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"],
        }
    ]


# --- matchConditions (CEL)


def tfserving_deployment(*images: str | None) -> dict:
    """The generator's TF Serving Deployment shape (deploy contract), with the given container images."""
    containers = []
    for index, image in enumerate(images):
        container = {
            "name": "tfserving" if index == 0 else f"sidecar-{index}",
            "args": [
                "--port=8500",
                "--rest_api_port=8501",
                "--model_config_file=/etc/tfserving/models.config",
            ],
            "env": [
                {"name": "S3_ENDPOINT", "value": "rgw.storage.svc:7480"},
                {"name": "S3_USE_HTTPS", "value": "0"},
            ],
        }
        if image is not None:
            container["image"] = image
        containers.append(container)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "half-plus-two",
            "namespace": "models",
            "labels": {"app.kubernetes.io/name": "tfserving"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": containers}},
        },
    }


MATCHES = [
    (("tensorflow/serving:2.6.2",), True),
    (("tensorflow/serving:2.6.2-gpu",), True),
    (("tensorflow/serving",), True),
    (("docker.io/tensorflow/serving:2.14.1",), True),
    (("index.docker.io/tensorflow/serving:latest",), True),
    (("tensorflow/serving@sha256:" + "a" * 64,), True),
    (("tensorflow/serving:2.6.2@sha256:" + "b" * 64,), True),
    (("mirror.example.com:5000/tensorflow/serving:2.6.2",), True),
    (("nginx:1.27", "tensorflow/serving:2.6.2"), True),
    (("nginx:1.27",), False),
    (("tensorflow/serving-extra:1",), False),
    (("tensorflow/servingx",), False),
    (("xtensorflow/serving:1",), False),
    (("tensorflow/tensorflow:2.6.2",), False),
    (("TensorFlow/Serving:2.6.2",), True),  # the webhook lower-cases repositories too
    ((None,), False),
    ((None, "tensorflow/serving:2.6.2"), True),
]


@pytest.mark.parametrize(("images", "expected"), MATCHES)
def test_match_condition_selects_tfserving_deployments(images, expected):
    celpy = pytest.importorskip("celpy")
    environment = celpy.Environment()
    program = environment.program(environment.compile(match_expression(("tensorflow/serving",))))
    result = program.evaluate({"object": celpy.json_to_cel(tfserving_deployment(*images))})
    assert bool(result) is expected


@pytest.mark.parametrize(("images", "expected"), MATCHES)
def test_match_condition_sends_everything_the_webhook_would_check(images, expected):
    celpy = pytest.importorskip("celpy")
    environment = celpy.Environment()
    program = environment.program(environment.compile(match_expression(("tensorflow/serving",))))
    sent = bool(program.evaluate({"object": celpy.json_to_cel(tfserving_deployment(*images))}))
    checked = any(image and is_tfserving_image(image, ("tensorflow/serving",)) for image in images)
    assert sent or not checked


def test_match_condition_with_several_repositories():
    celpy = pytest.importorskip("celpy")
    environment = celpy.Environment()
    expression = match_expression(VARIANTS["endpoints"].tfserving_images)
    program = environment.program(environment.compile(expression))
    for image, expected in [
        ("registry.example.com:5000/ml/tf-serving:2.6.2", True),
        ("registryXexample.com:5000/ml/tf-serving:2.6.2", False),  # '.' is literal, not "any character"
        ("tensorflow/serving:2.6.2", True),
        ("ml/tf-serving:2.6.2", False),
    ]:
        result = program.evaluate({"object": celpy.json_to_cel(tfserving_deployment(image))})
        assert bool(result) is expected, image


def test_match_condition_uses_only_api_server_cel_and_plain_re2():
    expression = match_expression(("tensorflow/serving", "registry.example.com/x/serving"))
    assert set(re.findall(r"\.?([A-Za-z_]+)\(", expression)) == {"exists", "has", "matches"}
    pattern = re.search(r"matches\('([^']*)'\)", expression).group(1)
    assert "\\" not in pattern  # no escapes to get wrong between YAML, CEL strings and RE2
    assert not re.search(r"\(\?[=!<]|\\[0-9]", pattern)  # RE2 has no lookaround or backreferences


# --- NetworkPolicy


def test_network_policy_defaults_allow_api_server_ingress_dns_and_api_egress():
    policy = by_kind(render_webhook(VARIANTS["defaults"]))["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8443}]}]
    assert policy["egress"] == [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]},
    ]


def test_network_policy_s3_egress_is_derived_from_the_allow_list():
    policy = by_kind(render_webhook(VARIANTS["endpoints"]))["NetworkPolicy"]["spec"]
    api = [{"ipBlock": {"cidr": "172.18.0.0/16"}}]
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8443}], "from": api}]
    any_but_link_local = [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}},
        {"ipBlock": {"cidr": "::/0", "except": ["fe80::/10"]}},
    ]
    assert policy["egress"][1] == {
        "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}],
        "to": api,
    }
    assert policy["egress"][2:] == [
        {"to": [{"ipBlock": {"cidr": "10.20.30.40/32"}}], "ports": [{"protocol": "TCP", "port": 9000}]},
        {
            "to": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tfs-webhook-staging"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 80}],
        },
        {
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "storage"}}}],
            "ports": [{"protocol": "TCP", "port": 7480}],
        },
        {"to": any_but_link_local, "ports": [{"protocol": "TCP", "port": 443}]},
    ]


# --- the process's configuration


def container_env(settings: WebhookSettings) -> dict[str, str]:
    (container,) = by_kind(render_webhook(settings))["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            assert item["valueFrom"]["secretKeyRef"] == {
                "name": settings.s3_credentials_secret,
                "key": item["name"],
            }
            env[item["name"]] = "from-secret"
    return env


def test_environment_is_accepted_by_the_webhook_config_parser(settings):
    config_module = pytest.importorskip("webhook.config")
    env = container_env(settings)
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "from-secret"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    config = config_module.WebhookConfig.from_env(env)
    assert config.webhook_name == WEBHOOK_NAME
    assert config.on_unverifiable == settings.on_unverifiable
    assert config.tfserving_images == settings.tfserving_images
    assert len(config.allowed_s3_endpoints.endpoints) == len(settings.allowed_s3_endpoints)
    if settings.default_s3_endpoint:
        assert config.default_s3_endpoint.url == "http://rgw.storage.svc:7480"


def test_container_command_line_is_accepted_by_the_cli():
    from click.testing import CliRunner

    from tfs_gitops.cli import main

    (container,) = by_kind(render_webhook(VARIANTS["defaults"]))["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ]
    # --help is eager: it succeeds only if every option before it parsed.
    result = CliRunner().invoke(main, [*container["args"], "--help"])
    assert result.exit_code == 0, result.output


# --- settings that cannot work


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"failure_policy": "Ignore"}, "failurePolicy 'Ignore' contradicts onUnverifiable 'deny'"),
        ({"on_unverifiable": "warn"}, "failurePolicy 'Fail' contradicts onUnverifiable 'warn'"),
        ({"on_unverifiable": "maybe"}, "onUnverifiable must be 'deny' or 'warn'"),
        ({"timeout_seconds": 0}, "timeoutSeconds must be an integer from 1 to 30"),
        ({"timeout_seconds": 31}, "timeoutSeconds must be an integer from 1 to 30"),
        ({"replicas": 0}, "replicas must be an integer ≥ 1"),
        ({"environment": "Prod_1"}, "environment 'Prod_1' must be a DNS-1123 label"),
        ({"environment": "prod\n"}, "environment 'prod\\n' must be a DNS-1123 label"),
        ({"aws_region": "us-east-1\n"}, "is not a region name"),
        ({"namespace": ""}, "namespace '' must be a DNS-1123 label"),
        ({"tfserving_images": ()}, "at least one image repository"),
        ({"tfserving_images": ("tensorflow/serving'||true",)}, "is not a valid image repository name"),
        ({"allowed_s3_endpoints": ("ftp://x",)}, "must start with http:// or https://"),
        ({"allowed_s3_endpoints": ("http://169.254.169.254",)}, "metadata"),
        ({"allowed_s3_endpoints": "http://a:1"}, "must be a list of URLs"),
        ({"default_s3_endpoint": "http://elsewhere:9000"}, "is not in allowedS3Endpoints"),
        ({"api_server_cidrs": ("10.0.0.1/8",)}, "is not a network like"),
        ({"image": "has space:1"}, "without spaces"),
    ],
)
def test_bad_settings_raise_a_clear_value_error(changes, message):
    fields = {"environment": "prod", **changes}
    with pytest.raises(ValueError, match=re.escape(message)):
        render_webhook(WebhookSettings(**fields))


# --- the kind e2e's cases, checked locally against the real webhook app and S3 server
#
# .github/workflows/e2e-kind.yml applies tests/testdata/webhook_e2e/cases/*.yaml with kubectl and compares
# kubectl's output with the .expected files. Here the same cases go through the webhook app configured from
# the rendered Deployment's environment, against the session's S3 server, so the expectations are known good.

E2E = ROOT / "tests" / "testdata" / "webhook_e2e"
HALF_PLUS_TWO = ROOT / "tests" / "testdata" / "savedmodels" / "saved_model_half_plus_two_2_versions"
HALF_PLUS_TWO = HALF_PLUS_TWO / "00000123"


def e2e_cases() -> list[Path]:
    return sorted((E2E / "cases").glob("*.yaml"))


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def upload_e2e_models(client, bucket: str) -> None:
    """As the workflow: half_plus_two 00000123; partial/half_plus_two 00000123 and a partial 00000124."""
    files = sorted(p for p in HALF_PLUS_TWO.rglob("*") if p.is_file())
    for model in ("half_plus_two", "partial/half_plus_two"):
        for path in files:
            key = f"{model}/00000123/{path.relative_to(HALF_PLUS_TWO).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    body = (HALF_PLUS_TWO / "saved_model.pb").read_bytes()
    client.put_object(Bucket=bucket, Key="partial/half_plus_two/00000124/saved_model.pb", Body=body)


def admission_review(deployment: dict, uid: str) -> dict:
    gvk = {"group": "apps", "version": "v1", "kind": "Deployment"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestKind": gvk,
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": deployment["metadata"]["name"],
            "namespace": deployment["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": deployment,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def test_every_e2e_case_has_an_expectation():
    assert [p.stem for p in e2e_cases()] == sorted(p.stem for p in (E2E / "cases").glob("*.expected"))
    assert (E2E / "cases" / "01-good.expected").read_text().strip() == "admitted"


@pytest.mark.s3
def test_e2e_cases_get_the_expected_verdicts(s3_server, s3_bucket, s3_env):
    app_module = pytest.importorskip("webhook.app")
    config_module = pytest.importorskip("webhook.config")
    messages = pytest.importorskip("webhook.messages")
    upload_e2e_models(s3_server.client(), s3_bucket)
    values = {"BUCKET": s3_bucket, "S3_ENDPOINT": s3_server.host_port, "S3_URL": s3_server.url.rstrip("/")}
    settings = WebhookSettings(environment="e2e", allowed_s3_endpoints=(values["S3_URL"],))
    env = container_env(settings) | {k: s3_env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    config = config_module.WebhookConfig.from_env(env)
    configmaps = {}
    for document in yaml.safe_load_all(fill((E2E / "models.yaml").read_text(), values)):
        if document["kind"] == "ConfigMap":
            key = (document["metadata"]["namespace"], document["metadata"]["name"])
            configmaps[key] = {"data": document["data"], "binaryData": {}}
    app = app_module.create_app(config, read_configmap=lambda ns, name, deadline: configmaps.get((ns, name)))
    client = app.test_client()
    for number, case in enumerate(e2e_cases()):
        deployment = yaml.safe_load(fill(case.read_text(), values))
        uid = f"00000000-0000-0000-0000-{number:012d}"
        answer = client.post("/validate?timeout=5s", json=admission_review(deployment, uid))
        assert answer.status_code == 200, case.name
        response = answer.get_json()["response"]
        assert response["uid"] == uid
        expected = fill(case.with_suffix(".expected").read_text().strip(), values)
        # The kind run's bucket is short enough for every message to fit; the fixture's bucket name is longer,
        # so clip the expectation the way the webhook clips messages.
        expected = messages.one_line(expected)
        actual = "admitted" if response["allowed"] else response["status"]["message"]
        assert actual == expected, f"{case.name}: update {case.with_suffix('.expected').name} if this changed"
        if response["allowed"]:
            assert not response.get("warnings"), "kubectl would print these before 'created'"


# --- the image and the workflow agree with the manifests


def test_dockerfile_runs_the_same_command_as_a_numeric_non_root_user():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    instructions = {
        line.split()[0]: line.split(None, 1)[1] for line in final_stage if line and line[0].isupper()
    }
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", instructions["USER"])
    (container,) = by_kind(render_webhook(VARIANTS["defaults"]))["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert json.loads(instructions["ENTRYPOINT"]) == container["command"]
    assert json.loads(instructions["CMD"]) == container["args"]
    assert (
        instructions["USER"]
        == f"{container['securityContext']['runAsUser']}:{container['securityContext']['runAsGroup']}"
    )
    assert lines[0].startswith("#") and any(line.startswith("FROM python:3.11-slim") for line in lines)


def test_e2e_workflow_is_pinned_read_only_and_uses_the_rendered_names():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e-kind.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    steps = workflow["jobs"]["kind"]["steps"]
    for step in steps:
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    assert workflow["env"]["WEBHOOK_NAME"] == WEBHOOK_NAME
    assert workflow["env"]["E2E_DIR"] == E2E.relative_to(ROOT).as_posix()
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert "validatingwebhookconfiguration tfs-webhook-e2e" in scripts
    assert "deployment/tfs-webhook" in scripts
    assert HALF_PLUS_TWO.relative_to(ROOT).as_posix() in scripts


def test_e2e_expectations_fit_unclipped_in_the_kind_run():
    env = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e-kind.yml").read_text())["env"]
    values = {"BUCKET": env["BUCKET"], "S3_ENDPOINT": env["S3_HOSTPORT"], "S3_URL": env["S3_URL"]}
    for expected in sorted((E2E / "cases").glob("*.expected")):
        message = fill(expected.read_text().strip(), values)
        assert "@" not in message and "\n" not in message, expected.name
        assert len(message) <= 300, f"{expected.name}: the webhook would clip this message in the kind run"


# --- the generator's own TF Serving Deployments are sent to the webhook


def generated_model_overlays() -> list[Path]:
    return sorted(
        path.parent
        for path in (ROOT / "overlays").glob("*/*/kustomization.yaml")
        if not path.parent.name.startswith("_") and path.parent.parent.name not in ("base", "components")
    )


@pytest.mark.kubectl
def test_generated_tfserving_deployments_match_the_webhook():
    celpy = pytest.importorskip("celpy")
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    overlays = generated_model_overlays()
    if not overlays:
        pytest.skip("no generated overlays/<env>/<model> in this checkout")
    environment = celpy.Environment()
    program = environment.program(environment.compile(match_expression(("tensorflow/serving",))))
    seen = 0
    for overlay in overlays:
        command = ["kubectl", "kustomize", str(overlay)]
        built = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert built.returncode == 0, built.stderr
        for document in yaml.safe_load_all(built.stdout):
            if document and document.get("kind") == "Deployment":
                seen += 1
                sent = program.evaluate({"object": celpy.json_to_cel(document)})
                assert bool(sent), f"{overlay.relative_to(ROOT)}: the matchCondition would skip it"
                namespace = document["metadata"].get("namespace", "default")
                assert namespace not in {"kube-system", "tfs-webhook", "argocd"}, overlay
    assert seen


# --- properties


_LABELS = st.from_regex(r"\A[a-z]([-a-z0-9]{0,10}[a-z0-9])?\Z")
_HOSTS = st.one_of(
    st.ip_addresses(v=4).filter(lambda a: not (a.is_link_local or a.is_unspecified or a.is_multicast)).map(
        str
    ),
    st.builds(lambda s, n: f"{s}.{n}.svc", _LABELS, _LABELS),
    st.builds(lambda a, b: f"{a}.{b}.example", _LABELS, _LABELS),
    _LABELS,
)
_URLS = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}" + (f":{port}" if port else ""),
    st.sampled_from(["http", "https"]),
    _HOSTS,
    st.one_of(st.none(), st.integers(1, 65535)),
)
_VALID_SETTINGS = st.builds(
    lambda env, ns, urls, policy, replicas, timeout: WebhookSettings(
        environment=env,
        namespace=ns,
        allowed_s3_endpoints=tuple(urls),
        default_s3_endpoint=urls[0] if urls else None,
        failure_policy=policy[0],
        on_unverifiable=policy[1],
        replicas=replicas,
        timeout_seconds=timeout,
    ),
    _LABELS,
    _LABELS,
    st.lists(_URLS, max_size=4),
    st.sampled_from([("Fail", "deny"), ("Ignore", "warn")]),
    st.integers(1, 7),
    st.integers(1, 30),
)


@settings_profile(max_examples=25, deadline=None)
@given(_VALID_SETTINGS)
def test_any_valid_settings_render_strictly_valid_objects(webhook_settings):
    objects = render_webhook(webhook_settings)
    for document in objects.values():
        validate_strictly(document)
    policy = objects["networkpolicy.yaml"]["spec"]
    ports = {e.port for e in _normalized(webhook_settings.allowed_s3_endpoints)}
    assert {rule["ports"][0]["port"] for rule in policy["egress"][2:]} == ports


def _normalized(urls):
    from rulebook.s3 import normalize

    return [normalize(url) for url in urls]


@settings_profile(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "environment": st.text(max_size=12),
            "namespace": st.text(max_size=12),
            "image": st.text(max_size=12),
            "replicas": st.one_of(st.integers(-2, 5), st.booleans(), st.text(max_size=2)),
            "timeout_seconds": st.one_of(st.integers(-2, 40), st.floats(allow_nan=True), st.none()),
            "failure_policy": st.sampled_from(["Fail", "Ignore", "fail", ""]),
            "on_unverifiable": st.sampled_from(["deny", "warn", "allow", ""]),
            "allowed_s3_endpoints": st.lists(st.text(max_size=20), max_size=3).map(tuple),
            "default_s3_endpoint": st.one_of(st.none(), st.text(max_size=20)),
            "tfserving_images": st.lists(st.text(max_size=12), max_size=2).map(tuple),
            "api_server_cidrs": st.lists(st.text(max_size=12), max_size=2).map(tuple),
        },
    )
)
def test_any_settings_render_or_raise_value_error(fields):
    try:
        render_webhook(WebhookSettings(**{"environment": "prod", **fields}))
    except ValueError as exc:
        assert str(exc).startswith("webhook "), str(exc)
        assert "\n" not in str(exc)
