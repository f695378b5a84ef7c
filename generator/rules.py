"""Second pass: the rules a JSON schema cannot express.

`check_structure` reads the raw data defensively (it also runs when the schema pass found problems);
`check_deployment` looks at the resolved settings of one model in one environment.
"""

from __future__ import annotations

from generator.catalogue import Settings
from generator.problems import ERROR, WARNING, Path, Problem, json_path
from generator.yamlsource import Document
from rulebook.images import LAST_STOCK_WITH_S3, STOCK_TFSERVING, ImageRef, S3Support
from rulebook.labels import LabelIssue, label_findings
from rulebook.names import WEBHOOK_APP
from rulebook.s3 import bucket_problem

RESERVED_ENVIRONMENT_NAMES = frozenset({"base", "components"})
RESERVED_MODEL_NAMES = frozenset({WEBHOOK_APP})


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

    def report(setting: tuple[str, ...], message: str, severity: str = ERROR, key: str | None = None) -> None:
        path = origins.get(setting) or origins.get(setting[:1]) or ()
        if key is not None:  # a key of the mapping that setting holds (it was written there)
            path = (*path, key)
        problems.append(Problem(*document.position(path), json_path(path), message, severity))

    image_origin = json_path(origins[("image",)]) if ("image",) in origins else "the default image"
    refusal = s3_refusal(settings.image)
    if refusal:
        report(("image",), refusal)
    gpu_problem = _gpu_problem(settings, image_origin)
    if gpu_problem:
        report(("resources", "gpu") if settings.resources.gpu else ("image",), gpu_problem)
    for finding in label_findings(settings.version_policy, settings.version_labels):
        severity = ERROR if finding.issue.is_error else WARNING
        report(("versionLabels",), _label_message(finding, settings), severity, key=finding.label)
    scaling = settings.autoscaling
    if scaling.enabled and scaling.min_replicas > scaling.max_replicas:
        report(
            ("autoscaling", "minReplicas"),
            f"minReplicas {scaling.min_replicas} is above maxReplicas {scaling.max_replicas}",
        )
    return problems


def s3_refusal(reference: str) -> str | None:
    """Why this image cannot serve s3:// model paths, or None when it can (custom images are trusted)."""
    image = ImageRef.parse(reference)
    support = image.s3_support()
    if support is S3Support.YES:
        return None
    if image.tag is None:
        what = "pinned by digest only, so its version cannot be told" if image.digest else "no version tag"
    elif support is S3Support.UNKNOWN:
        what = f"tag {image.tag!r} names no version"
    else:
        what = f"tag {image.tag!r}"
    return (
        f"{reference} cannot read s3:// model paths: stock {STOCK_TFSERVING} images from 2.7 on have no "
        f"S3 filesystem ({what}); either pin a 2.6.x tag such as {STOCK_TFSERVING}:2.6.2 (2.6.2-gpu for "
        f"GPU models; {LAST_STOCK_WITH_S3} is the last), or use an image built with an S3 filesystem under "
        f"another repository name (custom images are trusted to read s3://)"
    )


def _gpu_problem(settings: Settings, image_origin: str) -> str | None:
    image = ImageRef.parse(settings.image)
    gpu_image = image.is_gpu()
    if gpu_image is None:
        return (
            f"cannot tell whether {settings.image} is a GPU image: it is pinned by "
            f"digest only; pin it as {image.name}:TAG@DIGEST"
        )
    if settings.resources.gpu and not gpu_image:
        return (
            f"a GPU model needs a GPU image (a tag containing 'gpu'), "
            f"got {settings.image} (from {image_origin})"
        )
    if gpu_image and not settings.resources.gpu:
        return (
            f"{settings.image} is a GPU image but the model has no GPU: set resources.gpu to 1 or more, "
            f"or use the CPU image {image.with_variant(gpu=False)}"
        )
    return None


def _label_message(finding, settings: Settings) -> str:
    policy = settings.version_policy
    if finding.issue is LabelIssue.NOT_SERVED:
        return (
            f"label {finding.label!r} points at version {finding.version}, which the "
            f"specific version policy {list(policy.versions)} does not serve"
        )
    if finding.issue is LabelIssue.DEPENDS_ON_STORAGE:
        return (
            f"label {finding.label!r} points at version {finding.version}: TF Serving accepts it only while "
            f"the {policy} policy loads that version, which depends on what S3 holds; "
            f"`tfs-gitops verify` checks it"
        )
    return (
        f"label {finding.label!r} points at version {finding.version}, but the latest policy loads one "
        f"version: the label is right only until the next upload, then TF Serving refuses the config; "
        f"pin versions with versionPolicy {{specific: [{finding.version}]}}"
    )
