"""Build every environment with `kubectl kustomize`; validate each object strictly (unknown fields fail).

kubeconform is used when it is on PATH (it fetches the upstream Kubernetes schemas); otherwise validation runs
in-process against the strict schemas bundled with the `kubernetes-validate` package, for one fixed Kubernetes
version (the `validate` extra: `pip install 'tfserving-gitops[validate]'`). Custom resources (Argo CD
Applications, cert-manager objects) are checked against the package's CRD schemas (generator/data/crds/,
produced from the upstream CRDs by scripts/crd_schemas.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource

from generator import resources
from generator import tree as disk
from generator.problems import json_path

KUBERNETES_VERSION = "1.33.0"
BUILD_WORKERS = 4  # kubectl kustomize processes at once


class ToolMissing(Exception):
    """A program validation needs is not installed."""


@dataclass(frozen=True, order=True)
class Finding:
    target: str  # the kustomization directory or file that produced the object
    resource: str  # Kind namespace/name
    path: str  # JSON path inside the object
    message: str

    def format(self) -> str:
        return f"{self.target}: {self.resource}: {self.path}: {self.message}"


@dataclass
class Report:
    validator: str
    kubernetes_version: str
    targets: list[str] = field(default_factory=list)
    objects: int = 0
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "validator": self.validator,
            "kubernetesVersion": self.kubernetes_version,
            "targets": self.targets,
            "objects": self.objects,
            "findings": [asdict(finding) for finding in self.findings],
        }


def targets_for(environments: list[str]) -> list[str]:
    """What Argo CD applies, per environment: its workloads, its Applications, its app-of-apps."""
    targets = []
    for env in environments:
        targets += [env, f"{env}/_argocd", f"{env}/app-of-apps.yaml"]
    return targets


def find_kubectl(kubectl: str = "kubectl") -> str:
    path = shutil.which(kubectl)
    if path is None:
        raise ToolMissing(f"{kubectl} not found on PATH (install kubectl, e.g. `make install`)")
    return path


@dataclass(frozen=True)
class Built:
    """What one target produced: YAML text, or why it could not be built."""

    target: str
    text: str = ""
    error: str | None = None


def build_targets(
    files: dict[str, str], targets: list[str], *, kubectl: str = "kubectl", workers: int = BUILD_WORKERS
) -> list[Built]:
    """Write `files` (a rendered tree, or the part of one the targets need) to a temporary directory and
    build each target there: `kubectl kustomize` for a directory, the file's own text for a file.

    Raises ToolMissing when kubectl is not on PATH; a failing build is reported in its Built, not raised."""
    kubectl_path = find_kubectl(kubectl)
    with tempfile.TemporaryDirectory(prefix="tfs-gitops-build-") as temporary:
        root = Path(temporary)
        disk.write(files, root)
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets)))) as pool:
            return list(pool.map(lambda target: _build(kubectl_path, root, target), targets))


def validate_tree(
    files: dict[str, str], environments: list[str], *, use: str = "auto", kubectl: str = "kubectl"
) -> Report:
    """Write `files` (a rendered overlays tree) to a temporary directory, build and validate it."""
    find_kubectl(kubectl)
    kubeconform = shutil.which("kubeconform") if use in ("auto", "kubeconform") else None
    if use == "kubeconform" and kubeconform is None:
        raise ToolMissing("kubeconform not found on PATH")
    if kubeconform is None and not _builtin_available():
        raise ToolMissing(
            "no schema validator: put kubeconform on PATH, or install the built-in one with "
            "`pip install 'tfserving-gitops[validate]'`"
        )
    report = Report("kubeconform" if kubeconform else "builtin", KUBERNETES_VERSION)
    for built in build_targets(files, targets_for(environments), kubectl=kubectl):
        report.targets.append(built.target)
        objects, error = _documents(built)
        if error:
            report.findings.append(Finding(built.target, "-", "$", error))
            continue
        report.objects += len(objects)
        if kubeconform:
            report.findings += _kubeconform(kubeconform, built.target, objects)
        else:
            for document in objects:
                report.findings += validate_object(built.target, document)
    report.findings.sort()
    return report


def _build(kubectl: str, root: Path, target: str) -> Built:
    path = root / target
    if path.is_file():
        return Built(target, path.read_text(encoding="utf-8"))
    completed = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False, timeout=300
    )
    if completed.returncode != 0:
        message = completed.stderr.strip().replace(str(root) + "/", "") or "kubectl kustomize failed"
        return Built(target, error=f"kubectl kustomize failed: {message}")
    return Built(target, completed.stdout)


def _documents(built: Built) -> tuple[list[dict], str | None]:
    if built.error:
        return [], built.error
    try:
        return [doc for doc in yaml.safe_load_all(built.text) if doc is not None], None
    except yaml.YAMLError as exc:
        return [], f"output is not YAML: {exc}"


def _describe(document: dict) -> str:
    metadata = document.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = metadata.get("name", "?")
    return f"{document.get('kind', '?')} {namespace + '/' if namespace else ''}{name}"


def validate_object(target: str, document: object) -> list[Finding]:
    if not isinstance(document, dict) or "apiVersion" not in document or "kind" not in document:
        return [Finding(target, "-", "$", "not a Kubernetes object (apiVersion and kind are required)")]
    resource = _describe(document)
    validator = schema_validator(str(document["apiVersion"]), str(document["kind"]))
    if validator is None:
        return [Finding(target, resource, "$", f"no schema for {document['apiVersion']} {document['kind']}")]
    findings = []
    for error in validator.iter_errors(document):
        findings.append(Finding(target, resource, json_path(tuple(error.absolute_path)), _message(error)))
    return findings


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {})
        extras = sorted(key for key in error.instance if key not in allowed)
        return f"unknown field{'s' if len(extras) > 1 else ''}: {', '.join(extras)}"
    return error.message if len(error.message) < 300 else error.message[:297] + "..."


def _builtin_available() -> bool:
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def _kubernetes_schema_dir() -> Path:
    import kubernetes_validate

    return (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / f"v{KUBERNETES_VERSION}-local-strict"
    )


@cache
def _registry() -> Registry:
    definitions = json.loads((_kubernetes_schema_dir() / "_definitions.json").read_text(encoding="utf-8"))
    return Resource.from_contents(definitions) @ Registry()


def _kubernetes_schema_file(api_version: str, kind: str) -> Path | None:
    group, _, version = api_version.rpartition("/")
    short_group = group.split(".")[0]
    name = f"{kind.lower()}-{short_group}-{version}.json" if group else f"{kind.lower()}-{version}.json"
    path = _kubernetes_schema_dir() / name
    return path if path.is_file() else None


@cache
def schema_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """Compiled once per kind: building a validator per object costs about 20 times more."""
    group, _, version = api_version.rpartition("/")
    schema = resources.crd_schema(group, kind, version) if group else None
    if schema is None:
        path = _kubernetes_schema_file(api_version, kind)
        if path is None:
            return None
        schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def _kubeconform(program: str, target: str, objects: list[dict]) -> list[Finding]:
    stream = "".join("---\n" + yaml.safe_dump(document, sort_keys=False) for document in objects)
    with resources.crd_schema_dir() as crds:
        return _run_kubeconform(program, target, stream, f"{crds}/{resources.CRD_NAME_TEMPLATE}")


def _run_kubeconform(program: str, target: str, stream: str, crd_location: str) -> list[Finding]:
    command = [
        program,
        "-strict",
        "-output",
        "json",
        "-kubernetes-version",
        KUBERNETES_VERSION,
        "-schema-location",
        "default",
        "-schema-location",
        crd_location,
        "-",
    ]
    completed = subprocess.run(
        command, input=stream, capture_output=True, text=True, check=False, timeout=300
    )
    try:
        results = json.loads(completed.stdout or "{}").get("resources", [])
    except json.JSONDecodeError:
        return [
            Finding(target, "-", "$", f"kubeconform failed: {completed.stderr.strip() or completed.stdout}")
        ]
    findings = []
    for result in results:
        if result.get("status") in ("statusValid", "statusSkipped"):
            continue
        resource = f"{result.get('kind', '?')} {result.get('name', '?')}"
        errors = result.get("validationErrors") or [{"path": "", "msg": result.get("msg", "invalid")}]
        for error in errors:
            path = json_path(tuple(_pointer_parts(error.get("path") or "")))
            findings.append(Finding(target, resource, path, error.get("msg", "")))
    return findings


def _pointer_parts(pointer: str) -> list[str | int]:
    """A JSON pointer (/spec/containers/0) as path parts (spec, containers, 0)."""
    parts: list[str | int] = []
    for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        parts.append(int(part) if part.isdigit() else part)
    return parts
