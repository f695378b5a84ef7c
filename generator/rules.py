"""Second pass: the rules a JSON schema cannot express.

`check_structure` reads the raw data defensively (it also runs when the schema pass found problems);
`check_deployment` looks at the resolved settings of one model in one environment.
"""

from __future__ import annotations

import ipaddress
import re

from generator.catalogue import Settings
from generator.images import ImageRef, s3_refusal
from generator.problems import Path, Problem, json_path
from generator.yamlsource import Document

RESERVED_ENVIRONMENT_NAMES = frozenset({"base", "components"})
RESERVED_MODEL_NAMES = frozenset({"tfs-webhook"})
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def bucket_problem(bucket: str) -> str | None:
    """Why `bucket` is not a valid S3 bucket name (AWS general purpose bucket naming rules), or None."""
    if not _BUCKET.match(bucket):
        return (
            "3 to 63 characters of lower-case letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "no '..', '.-' or '-.'"
    try:
        ipaddress.IPv4Address(bucket)
        return "must not look like an IP address"
    except ValueError:
        pass
    if bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3")):
        return "must not start with xn-- or sthree- nor end with -s3alias or --ol-s3"
    return None


def _items(value: object) -> list[tuple[int, dict]]:
    return (
        [(index, item) for index, item in enumerate(value) if isinstance(item, dict)]
        if isinstance(value, list)
        else []
    )


def _name(item: dict, key: str = "name") -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def check_structure(document: Document) -> list[Problem]:
    data = document.data if isinstance(document.data, dict) else {}
    problems: list[Problem] = []

    def report(path: Path, message: str) -> None:
        problems.append(Problem(*document.position(path), json_path(path), message))

    environments = _unique_names(document, data.get("environments"), "environments", "environment", report)
    for name, index in environments.items():
        if name in RESERVED_ENVIRONMENT_NAMES:
            report(
                ("environments", index, "name"), f"{name!r} is reserved (overlays/{name}/ holds shared parts)"
            )
    _unique_destinations(document, data, report)
    models = _unique_names(document, data.get("models"), "models", "model", report)
    for name, index in models.items():
        if name in RESERVED_MODEL_NAMES:
            report(
                ("models", index, "name"),
                f"{name!r} is reserved (the webhook's Argo CD Application is <env>.{name})",
            )
    for index, model in _items(data.get("models")):
        base_path = _name(model, "basePath")
        if base_path and base_path.startswith("s3://"):
            bucket = base_path[len("s3://") :].split("/", 1)[0]
            why = bucket_problem(bucket)
            if why:
                report(
                    ("models", index, "basePath"), f"bucket {bucket!r} is not a valid S3 bucket name: {why}"
                )
        per_env = model.get("environments")
        if isinstance(per_env, dict) and environments:
            for env_name in per_env:
                if env_name not in environments:
                    path = ("models", index, "environments", env_name)
                    problems.append(
                        Problem(
                            *document.key_position(path),
                            json_path(path),
                            f"unknown environment {env_name!r} (environments: {', '.join(environments)})",
                        )
                    )
        _check_versions(document, ("models", index), model, report)
        for env_name, entry in per_env.items() if isinstance(per_env, dict) else ():
            if isinstance(entry, dict):
                _check_versions(document, ("models", index, "environments", env_name), entry, report)
    webhook = data.get("webhook")
    if isinstance(webhook, dict) and isinstance(webhook.get("environments"), list) and environments:
        for index, env_name in enumerate(webhook["environments"]):
            if isinstance(env_name, str) and env_name not in environments:
                report(("webhook", "environments", index), f"unknown environment {env_name!r}")
    return problems


def _unique_names(document, entries, key, what, report) -> dict[str, int]:
    seen: dict[str, int] = {}
    for index, entry in _items(entries):
        name = _name(entry)
        if name is None:
            continue
        if name in seen:
            first_line = document.position((key, seen[name], "name"))[0]
            report((key, index, "name"), f"duplicate {what} name {name!r} (first at line {first_line})")
        else:
            seen[name] = index
    return seen


def _unique_destinations(document, data, report) -> None:
    seen: dict[tuple[str, str], str] = {}
    for index, entry in _items(data.get("environments")):
        name = _name(entry)
        if name is None or name in seen.values():
            continue  # a duplicate name is reported on its own
        where = (
            str(entry.get("cluster", "https://kubernetes.default.svc")),
            str(entry.get("namespace", f"tfserving-{name}")),
        )
        if where in seen:
            report(
                ("environments", index),
                f"environment {name!r} deploys to the same cluster and namespace "
                f"as {seen[where]!r}; give it its own namespace",
            )
        else:
            seen[where] = name


def _check_versions(document, path: Path, entry: dict, report) -> None:
    policy = entry.get("versionPolicy")
    if isinstance(policy, dict) and isinstance(policy.get("specific"), list):
        seen = set()
        for index, version in enumerate(policy["specific"]):
            if version in seen:
                report((*path, "versionPolicy", "specific", index), f"version {version} is listed twice")
            seen.add(version) if isinstance(version, int) else None


def check_deployment(
    settings: Settings, origins: dict[tuple[str, ...], Path], document: Document
) -> list[Problem]:
    """Rules on the resolved settings of one model in one environment; reported where the value was set."""
    problems: list[Problem] = []

    def report(setting: tuple[str, ...], message: str) -> None:
        path = origins.get(setting) or origins.get(setting[:1]) or ()
        problems.append(Problem(*document.position(path), json_path(path), message))

    image_origin = json_path(origins[("image",)]) if ("image",) in origins else "the default image"
    refusal = s3_refusal(settings.image)
    if refusal:
        report(("image",), refusal)
    if settings.resources.gpu and not ImageRef.parse(settings.image).is_gpu:
        report(
            ("resources", "gpu"),
            f"a GPU model needs a GPU image (a tag containing 'gpu'), "
            f"got {settings.image} (from {image_origin})",
        )
    policy = settings.version_policy
    if policy.kind == "specific":
        for label, version in settings.version_labels:
            if version not in policy.versions:
                report(
                    ("versionLabels",),
                    f"label {label!r} points at version {version}, which the "
                    f"specific version policy {list(policy.versions)} does not serve",
                )
    scaling = settings.autoscaling
    if scaling.enabled and scaling.min_replicas > scaling.max_replicas:
        report(
            ("autoscaling", "minReplicas"),
            f"minReplicas {scaling.min_replicas} is above maxReplicas {scaling.max_replicas}",
        )
    return problems
