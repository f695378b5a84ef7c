"""Units: model config parser, endpoint rules, cache, configuration, messages."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from devtools.admission import kubectl_denial
from rulebook.modelconfig import ModelConfigError, parse_model_server_config, parse_text
from rulebook.policy import VersionPolicy as Policy
from rulebook.s3 import Endpoint, EndpointError, normalize, workload_endpoint
from webhook.cache import TTLCache
from webhook.config import AllowList, ConfigError, WebhookConfig
from webhook.messages import one_line, warning

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "admission"


# --- modelconfig -------------------------------------------------------------------------------------------


def test_text_format_variants():
    text = """# comment
    model_config_list: < config: { name: 'a' base_path: "s3://b/" "a", model_platform: "tensorflow"; }
                         config { name: "b\\x41" base_path: "s3://b/b" model_version_policy { specific {
                           versions: [1, 2] } } } >"""
    models = parse_model_server_config(text)
    assert [(m.name, m.base_path, m.policy) for m in models] == [
        ("a", "s3://b/a", Policy("latest")),
        ("bA", "s3://b/b", Policy("specific", versions=(1, 2))),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("improperly formatted file", "line 1: expected ':' or '{' after improperly"),
        ("model_config_list {", "unexpected end of text: missing '}'"),
        ('model_config_list { config { name: "a" } }', "config 'a' has no base_path"),
        ('model_config_list { config { base_path: "x" } }', "a config has no name"),
        (
            'model_config_list { config { name: "a" base_path: "x" } config { name: "a" base_path: "y" } }',
            "model name 'a' appears more than once",
        ),
        (
            'model_config_list { config { name: "a" base_path: "x" model_version_policy { latest '
            "{} all {} } } }",
            "config 'a': model_version_policy must hold exactly one of latest, all, specific",
        ),
        (
            'model_config_list { config { name: "a" base_path: "x" model_version_policy { specific {} } } }',
            "config 'a': specific {} needs one or more non-negative integer versions",
        ),
        (
            'model_config_list { config { name: "a" base_path: "x" bogus: 1 } }',
            "unknown field 'bogus' in config",
        ),
        ("custom_model_config { }", "custom_model_config is not supported by the webhook"),
        (
            'model_config_list { config { name: "a" base_path: "x" version_labels { key: "s" '
            'value: "x" } } }',
            "config 'a': version_labels needs a string key and an integer value",
        ),
        ("a {" * 40 + "}" * 40, "nesting deeper than 32"),
        ('x: "\\q"', 'unknown escape \\q in string "\\q"'),
    ],
)
def test_model_config_errors(text, error):
    with pytest.raises(ModelConfigError) as info:
        parse_model_server_config(text)
    assert str(info.value) == error


def test_latest_zero_means_one_and_empty_config():
    text = 'model_config_list { config { name: "a" base_path: "x" model_version_policy { latest { } } } }'
    assert parse_model_server_config(text)[0].policy == Policy("latest", count=1)
    assert parse_model_server_config("") == ()
    assert parse_text("a: 1 b: -2.5 c: true d: 0x10") == [("a", 1), ("b", -2.5), ("c", "true"), ("d", 16)]


# --- endpoints ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://RGW.storage.svc:7480", Endpoint("http", "rgw.storage.svc", 7480)),
        ("https://s3.example.com", Endpoint("https", "s3.example.com", 443)),
        ("http://s3.example.com./", Endpoint("http", "s3.example.com", 80)),
        ("http://[2001:db8::1]:9000", Endpoint("http", "2001:db8::1", 9000)),
    ],
)
def test_normalize(url, expected):
    assert normalize(url) == expected


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://x", "must start with http:// or https://"),
        ("http://u:p@x", "must not contain credentials"),
        ("http://x/path", "must not have a path"),
        ("http://x?q=1", "must not have a path"),
        ("http://169.254.169.254", "is a cloud metadata address"),
        ("http://[fd00:ec2::254]", "is a cloud metadata address"),
        ("http://169.254.1.1:80", "is a link-local address"),
        ("http://0.0.0.0:80", "not a unicast address"),
        ("http://metadata.google.internal", "is a cloud metadata host"),
        ("http://x:99999", "is not a valid URL"),
        ("http://", "has no host"),
    ],
)
def test_forbidden_or_malformed_endpoints(url, error):
    with pytest.raises(EndpointError, match=error.replace("?", "\\?")):
        normalize(url)


def test_allow_list_matches_normalized_exactly():
    allowed = AllowList.parse(["http://rgw.storage.svc:7480", "https://s3.example.com"])
    assert allowed.match("http://RGW.storage.svc:7480/").url == "http://rgw.storage.svc:7480"
    assert allowed.match("https://s3.example.com:443").url == "https://s3.example.com:443"
    for url in ("http://s3.example.com", "https://rgw.storage.svc:7480", "http://rgw.storage.svc:7481"):
        with pytest.raises(EndpointError, match="is not on the webhook's allow-list"):
            allowed.match(url)
    assert workload_endpoint({"S3_ENDPOINT": "h:1", "S3_USE_HTTPS": "0"}) == "http://h:1"
    assert workload_endpoint({"S3_ENDPOINT": "h:1"}) == "https://h:1"
    assert workload_endpoint({}) is None


# --- cache -------------------------------------------------------------------------------------------------


def _ttls(positive: float, negative: float, is_positive=lambda value: value == "good"):
    return lambda value: positive if is_positive(value) else negative


def test_ttl_negative_ttl_and_single_flight():
    now = [0.0]
    cache = TTLCache("t", ttl_for=_ttls(60, 10), clock=lambda: now[0])

    def get(key, value):
        return cache.get_or_compute(key, lambda deadline: value, deadline=now[0] + 5)

    assert get("a", "good") == ("good", "miss")
    assert get("a", "other") == ("good", "hit")
    assert get("b", "bad") == ("bad", "miss")
    now[0] = 11
    assert get("b", "bad2") == ("bad2", "miss")  # negative expired
    assert get("a", "other") == ("good", "hit")
    now[0] = 61
    assert get("a", "other") == ("other", "miss")

    calls = []
    gate = threading.Event()

    def slow(deadline):
        calls.append(1)
        gate.wait(5)
        return "good"

    cache = TTLCache("t", ttl_for=_ttls(60, 10))
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                cache.get_or_compute("k", slow, deadline=time.monotonic() + 30)[1]
            )
        )
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert sorted(results) == ["miss"] + ["shared"] * 19


def test_errors_reach_every_waiter_and_are_not_cached():
    cache = TTLCache("t", ttl_for=_ttls(60, 10, bool))
    with pytest.raises(RuntimeError):
        cache.get_or_compute(
            "k", lambda deadline: (_ for _ in ()).throw(RuntimeError("x")), deadline=time.monotonic() + 5
        )
    assert cache.get_or_compute("k", lambda deadline: 1, deadline=time.monotonic() + 5) == (1, "miss")


# --- config ------------------------------------------------------------------------------------------------


def test_config_from_env():
    config = WebhookConfig.from_env(
        {
            "WEBHOOK_ALLOWED_S3_ENDPOINTS": "http://rgw.storage.svc:7480, https://s3.example.com",
            "WEBHOOK_DEFAULT_S3_ENDPOINT": "http://rgw.storage.svc:7480",
            "WEBHOOK_ON_UNVERIFIABLE": "warn",
            "WEBHOOK_ON_UNRESOLVED": "WARN",
            "WEBHOOK_ON_UNKNOWN_VARIANT": "deny",
            "WEBHOOK_TFSERVING_IMAGES": "tensorflow/serving,registry.local/tfs",
            "WEBHOOK_GPU_TAG_MARKER": "cuda",
            "WEBHOOK_CACHE_TTL_SECONDS": "30",
            "WEBHOOK_NEGATIVE_CACHE_TTL_SECONDS": "5",
            "AWS_REGION": "eu-west-1",
            "WEBHOOK_NAME": "x.example.com",
        }
    )
    assert [e.url for e in config.allowed_s3_endpoints.endpoints] == [
        "http://rgw.storage.svc:7480",
        "https://s3.example.com:443",
    ]
    assert config.default_s3_endpoint == Endpoint("http", "rgw.storage.svc", 7480)
    assert (config.on_unverifiable, config.on_unresolved, config.on_unknown_variant) == (
        "warn",
        "warn",
        "deny",
    )
    assert config.tfserving_images == ("tensorflow/serving", "registry.local/tfs")
    assert (config.gpu_tag_marker, config.cache_ttl_seconds, config.negative_cache_ttl_seconds) == (
        "cuda",
        30,
        5,
    )
    assert (config.aws_region, config.webhook_name) == ("eu-west-1", "x.example.com")
    defaults = WebhookConfig.from_env({})
    assert (defaults.on_unverifiable, defaults.cache_ttl_seconds, defaults.negative_cache_ttl_seconds) == (
        "deny",
        60,
        10,
    )
    assert defaults.allowed_s3_endpoints.endpoints == ()


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"WEBHOOK_ALLOWED_S3_ENDPOINTS": "http://169.254.169.254"}, "is a cloud metadata address"),
        ({"WEBHOOK_DEFAULT_S3_ENDPOINT": "http://a:1"}, "is not in WEBHOOK_ALLOWED_S3_ENDPOINTS"),
        ({"WEBHOOK_ON_UNVERIFIABLE": "allow"}, "must be 'deny' or 'warn'"),
        ({"WEBHOOK_CACHE_TTL_SECONDS": "soon"}, "must be a number of seconds"),
        ({"WEBHOOK_GPU_TAG_MARKER": " "}, "must not be empty"),
    ],
)
def test_config_errors(env, error):
    with pytest.raises(ConfigError, match=error):
        WebhookConfig.from_env(env)


# --- messages ----------------------------------------------------------------------------------------------


def test_messages_are_one_line_and_bounded():
    assert one_line("a\n\tb\x00c  d") == "a b c d"
    assert len(one_line("x" * 500)) == 300 and one_line("x" * 500).endswith("…")
    assert len(warning("y" * 500)) == 120
    assert kubectl_denial("w.example.com", "m") == (
        'Error from server: error when creating "STDIN": admission webhook "w.example.com" '
        "denied the request: m"
    )


def test_build_review_carries_the_dry_run_option_as_the_api_server_does():
    # What a real kube-apiserver sends for `kubectl apply --dry-run=server` (tests/e2e/test_review_contract)
    from devtools.admission import build_review

    deployment = {"metadata": {"name": "d", "namespace": "n"}}
    dry = build_review(deployment, dry_run=True)["request"]
    assert dry["dryRun"] is True
    assert dry["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "dryRun": ["All"]}
    update = build_review(deployment, operation="UPDATE", old=deployment)["request"]
    assert update["dryRun"] is False
    assert update["options"] == {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}


# --- the decision cache key ---------------------------------------------------------------------------------


def test_the_decision_key_covers_the_whole_pod_spec_and_only_what_decides():
    import copy
    import json

    from devtools.admission import build_review
    from tests.webhook.deployments import deployment
    from webhook.admission import parse_review
    from webhook.decide import _decision_key, _same_serving

    config = WebhookConfig()

    def key_of(request) -> bytes | None:
        return _decision_key(request, _same_serving(request, config))

    def key(deployment_: dict, **options) -> bytes | None:
        return key_of(parse_review(json.dumps(build_review(deployment_, **options)).encode()))

    base = deployment(s3_endpoint="127.0.0.1:8333")
    relabelled = copy.deepcopy(base)
    relabelled["metadata"]["labels"] = {"team": "other"}
    relabelled["metadata"]["resourceVersion"] = "42"
    relabelled["spec"]["replicas"] = 7
    assert key(base) == key(relabelled)  # nothing a verdict is made from changed: a hit

    sidecar = copy.deepcopy(base)
    sidecar["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "envoy:1"})
    volume = copy.deepcopy(base)
    volume["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = "elsewhere"
    keys = {key(base), key(sidecar), key(volume), key(base, namespace="other")}
    keys.add(key(base, operation="UPDATE", old=base))  # unchanged serving fields: the S3 check is skipped
    assert None not in keys and len(keys) == 5

    spaced = json.dumps(build_review(base), indent=1).encode()  # the same spec, sent another way: a miss
    assert key_of(parse_review(spaced)) not in (None, key(base))

    def same(new: dict, old: dict) -> bool:
        review = build_review(new, operation="UPDATE", old=old)
        return _same_serving(parse_review(json.dumps(review).encode()), config)

    assert same(base, base)  # the pod spec byte for byte as before: same without building either object
    assert same(sidecar, base)  # another container changed: the serving fields did not
    assert not same(volume, base)  # the serving container's ConfigMap volume changed
    assert not same(base, {"metadata": {"name": "x"}})  # an old object without a pod spec

    for where in ("template", "spec"):
        malformed = copy.deepcopy(base)
        malformed["spec"]["template"] = "not an object" if where == "template" else {"spec": ["x"]}
        assert key(malformed) is None  # never cached: decided (denied) each time
