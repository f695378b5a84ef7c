"""What a TF Serving container will read: its models (name, base path, version policy) and S3 environment.

Derived exactly as the container will see it: Kubernetes `$(VAR)` expansion in command/args, the official
image's entrypoint (`--model_name=${MODEL_NAME} --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME}` before the
args), `--flag=value` and `--flag value`, the last occurrence winning, and `--model_config_file` read from the
ConfigMap volume it is mounted from (through the Kubernetes API: `get` on configmaps only).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import posixpath
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rulebook.images import is_tfserving_image
from rulebook.modelconfig import ModelConfigError, ModelEntry, parse_model_server_config
from rulebook.policy import VersionPolicy
from rulebook.server import ENTRYPOINT, ENTRYPOINT_DEFAULTS, MODEL_FLAGS, MODEL_SERVER, Flag
from webhook.limits import (
    MAX_ARGS,
    MAX_CONTAINERS,
    MAX_ENV_ENTRIES,
    MAX_EXPANDED_CHARS,
    MAX_EXPANDED_TOTAL_CHARS,
    MAX_IMAGE_CHARS,
    MAX_PATH_CHARS,
    MAX_VOLUMES,
)

_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class Malformed(ValueError):
    """The Deployment object is not shaped like an apps/v1 Deployment."""


class TooLarge(Malformed):
    """A value or a count is past a bound of webhook.limits: no Deployment TF Serving could run."""


class OutOfTime(RuntimeError):
    """The request's deadline passed while the Deployment was being read."""


class ConfigMapError(RuntimeError):
    """A ConfigMap could not be read (API unreachable, forbidden, timed out)."""


# (namespace, name, deadline) -> {"data": {...}, "binaryData": {...}} or None when it does not exist.
ConfigMapReader = Callable[[str, str, float], Mapping | None]


@dataclass(frozen=True)
class ServedModel:
    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy("latest")
    labels: tuple[tuple[str, int], ...] = ()
    source: str = "args"


@dataclass(frozen=True)
class ServingContainer:
    name: str
    image: str
    models: tuple[ServedModel, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # literal values only
    indirect_env: frozenset[str] = frozenset()  # set via valueFrom (unknown to us)
    env_from: bool = False
    limits: Mapping[str, object] = field(default_factory=dict)
    requests: Mapping[str, object] = field(default_factory=dict)
    unresolved: tuple[str, ...] = ()  # why we cannot tell what it loads
    transient: bool = False  # unresolved for now only (the Kubernetes API did not answer in time)
    # storage.mode sync: local base path → the sync containers filling it (webhook.syncsource.attach)
    synced: Mapping[str, tuple] = field(default_factory=dict)


# --- pod spec helpers --------------------------------------------------------------------------------------


def _dict(value: object, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{where} must be an object")
    return value


def _list(value: object, where: str, limit: int | None = None) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{where} must be a list")
    if limit is not None and len(value) > limit:
        raise TooLarge(f"{where} has {len(value)} entries; the webhook evaluates at most {limit}")
    return value


def strings(value: object, where: str, limit: int | None = None) -> list[str]:
    """A list of strings (at most `limit`); Malformed/TooLarge otherwise."""
    return _strings(value, where, limit)


def _strings(value: object, where: str, limit: int | None = None) -> list[str]:
    items = _list(value, where, limit)
    if not all(isinstance(item, str) for item in items):
        raise Malformed(f"{where} must be a list of strings")
    return items


def _str(value: object, where: str) -> str:
    """A string field ("" when absent); Malformed naming the field for any other type."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Malformed(f"{where} must be a string")
    return value


def pod_spec(deployment: object) -> dict:
    obj = _dict(deployment, "object")
    spec = _dict(
        _dict(_dict(obj.get("spec"), "spec").get("template"), "spec.template").get("spec"),
        "spec.template.spec",
    )
    return spec


def containers(deployment: object) -> list[dict]:
    where = "spec.template.spec.containers"
    items = _list(pod_spec(deployment).get("containers"), where, MAX_CONTAINERS)
    if not all(isinstance(item, dict) for item in items):
        raise Malformed("every container must be an object")
    return items


def serving_fields(deployment: object, repositories: tuple[str, ...]) -> object:
    """What decides the serving verdict (for UPDATE reuse): the TF Serving containers and the volumes."""
    try:
        spec = pod_spec(deployment)
        chosen = [c for c in containers(deployment) if _is_serving(c.get("image"), repositories)]
        keys = ("name", "image", "command", "args", "env", "envFrom", "volumeMounts", "resources")
        return [[c.get(k) for k in keys] for c in chosen], spec.get("volumes")
    except Malformed:
        return None


def _is_serving(image: object, repositories: tuple[str, ...]) -> bool:
    # As strict as serving_containers: the decision key must cover whatever can decide the verdict.
    image = _str(image, "a container image")
    if len(image) > MAX_IMAGE_CHARS:
        raise TooLarge(f"an image reference is {len(image)} characters")
    return bool(image) and _is_tfserving_image(image, repositories)


# The warm path asks this for every admission; at most 1,024 entries of at most MAX_IMAGE_CHARS each.
_is_tfserving_image = functools.lru_cache(maxsize=1024)(is_tfserving_image)


# --- env and args ------------------------------------------------------------------------------------------


class ExpansionBudget:
    """What $(VAR) expansion may still produce for one container (webhook.limits): checked before each
    substitution, so a chain of doubling references stops at the bound instead of at gigabytes."""

    def __init__(self, where: str, total: int = MAX_EXPANDED_TOTAL_CHARS, each: int = MAX_EXPANDED_CHARS):
        self.where = where
        self.left = total
        self.each = each

    def spend(self, what: str, size: int, literal: int) -> None:
        grown = size - literal
        if grown > 0 and size > self.each:
            raise TooLarge(
                f"{self.where} {what} expands to more than {self.each} characters through $(VAR) "
                "references; no model path or flag can be that long"
            )
        self.left -= max(grown, 0)
        if self.left < 0:
            raise TooLarge(
                f"{self.where}: $(VAR) references expand to more than {MAX_EXPANDED_TOTAL_CHARS} characters "
                "in all; no Deployment TF Serving could run needs that"
            )


def _container_env(
    container: dict, where: str, budget: ExpansionBudget
) -> tuple[dict[str, str], frozenset[str]]:
    literal: dict[str, str] = {}
    indirect: set[str] = set()
    for item in _list(container.get("env"), f"{where}.env", MAX_ENV_ENTRIES):
        item = _dict(item, f"{where}.env[]")
        name = item.get("name")
        if not isinstance(name, str):
            raise Malformed(f"{where}.env[].name must be a string")
        if "valueFrom" in item and item["valueFrom"] is not None:
            literal.pop(name, None)
            indirect.add(name)
            continue
        value = item.get("value", "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise Malformed(f"{where}.env[{name[:64]!r}].value must be a string")
        # Kubernetes expands $(VAR) in env values too, from variables defined earlier in the list.
        value, _ = expand(value, literal, frozenset(indirect), budget, f"env {name[:64]!r}")
        literal[name] = value
        indirect.discard(name)
    return literal, frozenset(indirect)


def container_env(
    container: dict, where: str, budget: ExpansionBudget | None = None
) -> tuple[dict[str, str], frozenset[str]]:
    """A container's literal env values (`$(VAR)` expanded, within the budget) and the names set indirectly
    (valueFrom)."""
    return _container_env(container, where, budget or ExpansionBudget(where))


def expand(
    text: str,
    env: Mapping[str, str],
    indirect: frozenset[str],
    budget: ExpansionBudget | None = None,
    what: str = "a value",
) -> tuple[str, set[str]]:
    """Kubernetes `$(VAR)` expansion (`$$` escapes); also returns referenced variables we cannot know.
    With a budget, TooLarge before the result would pass it."""
    unknown: set[str] = set()
    if "$" not in text:
        return text, unknown
    size = len(text)

    def substitute(match: re.Match) -> str:
        nonlocal size
        name = match.group(1)
        if name is None:
            size -= 1
            return "$"
        if name in env:
            value = env[name]
            size += len(value) - len(match.group(0))
            if budget is not None and size > budget.each:
                budget.spend(what, size, len(text))
            return value
        if name in indirect:
            unknown.add(name)
        return match.group(0)

    result = _VAR_REF.sub(substitute, text)
    if budget is not None:
        budget.spend(what, len(result), len(text))
    return result, unknown


def parse_flags(argv: list[str]) -> dict[str, str]:
    """The value flags TF Serving reads (`--f=v`, `-f=v`, `--f v`, `-f v`); the last occurrence wins."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in MODEL_FLAGS:
            continue
        if not eq:
            if i >= len(argv) or argv[i].startswith("-"):
                continue  # a value flag without a value: TF Serving rejects it, we ignore it
            value = argv[i]
            i += 1
        flags[name] = value
    return flags


def _entrypoint_argv(
    command: list[str], args: list[str], env: Mapping[str, str]
) -> tuple[list[str] | None, str]:
    """argv as tensorflow_model_server receives it, or (None, reason)."""
    if not command or posixpath.basename(command[0]) == ENTRYPOINT:
        # /usr/bin/tf_serving_entrypoint.sh of the official image: the shell expands ${VAR} at run time.
        model_name = env.get("MODEL_NAME", ENTRYPOINT_DEFAULTS["MODEL_NAME"])
        base = env.get("MODEL_BASE_PATH", ENTRYPOINT_DEFAULTS["MODEL_BASE_PATH"])
        implicit = [f"--{Flag.MODEL_NAME}={model_name}", f"--{Flag.MODEL_BASE_PATH}={base}/{model_name}"]
        return implicit + command[1:] + args, "MODEL_BASE_PATH/MODEL_NAME"
    if posixpath.basename(command[0]) == MODEL_SERVER:
        return command[1:] + args, "args"
    return None, f"command {command[0]!r} is not {MODEL_SERVER} or {ENTRYPOINT}"


# --- the model config file ---------------------------------------------------------------------------------


def _config_source(path: str, container: dict, spec: dict, where: str) -> tuple[str | None, str | None, str]:
    """(configmap name, key, reason): where the file at `path` comes from."""
    best = None
    for mount in _list(container.get("volumeMounts"), f"{where}.volumeMounts", MAX_VOLUMES):
        mount = _dict(mount, f"{where}.volumeMounts[]")
        mount_path = _str(mount.get("mountPath"), f"{where}.volumeMounts[].mountPath")
        _str(mount.get("name"), f"{where}.volumeMounts[].name")
        _str(mount.get("subPath"), f"{where}.volumeMounts[].subPath")
        _str(mount.get("subPathExpr"), f"{where}.volumeMounts[].subPathExpr")
        if not mount_path or len(mount_path) > MAX_PATH_CHARS:
            continue
        root = mount_path.rstrip("/") or "/"
        inside = path == root or path.startswith(root.rstrip("/") + "/")
        if inside and (best is None or len(root) > len(best[0])):
            best = (root, mount)
    if best is None:
        return None, None, f"{path} is not on a mounted volume"
    root, mount = best
    if mount.get("subPathExpr"):
        return None, None, f"{path} is mounted with subPathExpr"
    rel = posixpath.relpath(path, root) if path != root else ""
    sub_path = mount.get("subPath") or ""
    rel = posixpath.normpath(posixpath.join(sub_path, rel)) if sub_path else rel
    volume = next(
        (
            v
            for v in _list(spec.get("volumes"), "spec.template.spec.volumes", MAX_VOLUMES)
            if isinstance(v, dict) and v.get("name") == mount.get("name")
        ),
        None,
    )
    if volume is None:
        return None, None, f"volume {mount.get('name')!r} is not defined"
    sources = []
    if isinstance(volume.get("configMap"), dict):
        sources.append(volume["configMap"])
    elif isinstance(volume.get("projected"), dict):
        sources = [
            s["configMap"]
            for s in _list(volume["projected"].get("sources"), "projected.sources")
            if isinstance(s, dict) and isinstance(s.get("configMap"), dict)
        ]
    if not sources:
        return None, None, f"{path} is on volume {mount.get('name')!r}, which is not a ConfigMap"
    for source in sources:
        name = source.get("name")
        items = _list(source.get("items"), f"volume {mount.get('name')!r} configMap.items", MAX_VOLUMES)
        if items:
            key = next((i.get("key") for i in items if isinstance(i, dict) and i.get("path") == rel), None)
        else:
            key = rel if rel and "/" not in rel else None
        if isinstance(name, str) and isinstance(key, str):
            return name, key, ""
    return None, None, f"{path} is not a key of the ConfigMap mounted at {root}"


def _configmap_text(configmap: Mapping, key: str) -> str | None:
    data = configmap.get("data") or {}
    if isinstance(data, Mapping) and isinstance(data.get(key), str):
        return data[key]
    binary = configmap.get("binaryData") or {}
    if isinstance(binary, Mapping) and isinstance(binary.get(key), str):
        try:
            return base64.b64decode(binary[key], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


# --- the whole container -----------------------------------------------------------------------------------


def serving_containers(
    deployment: object,
    namespace: str,
    repositories: tuple[str, ...],
    read_configmap: ConfigMapReader | None,
    deadline: float,
) -> list[ServingContainer]:
    """Every TF Serving container of the Deployment with what it will load; Malformed for a broken object."""
    spec = pod_spec(deployment)
    out = []
    for index, container in enumerate(containers(deployment)):
        if time.monotonic() >= deadline:
            raise OutOfTime("out of time while reading the Deployment")
        image = _str(container.get("image"), f"container #{index} image")
        if len(image) > MAX_IMAGE_CHARS:
            raise TooLarge(
                f"container #{index} image is {len(image)} characters; no image reference is longer "
                f"than {MAX_IMAGE_CHARS}"
            )
        if not image or not _is_tfserving_image(image, repositories):
            continue
        name = _str(container.get("name"), f"container #{index} name")[:253] or f"#{index}"
        out.append(_serving_container(container, name, image, spec, namespace, read_configmap, deadline))
    return out


def _serving_container(
    container: dict,
    name: str,
    image: str,
    spec: dict,
    namespace: str,
    read_configmap: ConfigMapReader | None,
    deadline: float,
) -> ServingContainer:
    where = f"container {name!r}"
    budget = ExpansionBudget(where)
    env, indirect = _container_env(container, where, budget)
    resources = _dict(container.get("resources"), f"{where}.resources")
    base = ServingContainer(
        name=name,
        image=image,
        env=env,
        indirect_env=indirect,
        env_from=bool(_list(container.get("envFrom"), f"{where}.envFrom")),
        limits=_dict(resources.get("limits"), f"{where}.resources.limits"),
        requests=_dict(resources.get("requests"), f"{where}.resources.requests"),
    )
    command = _strings(container.get("command"), f"{where}.command", MAX_ARGS)
    args = _strings(container.get("args"), f"{where}.args", MAX_ARGS - len(command))
    unknown: set[str] = set()
    expanded = []
    for index, item in enumerate(command + args):
        what = f"args[{index - len(command)}]" if index >= len(command) else f"command[{index}]"
        text, refs = expand(item, env, indirect, budget, what)
        expanded.append(text)
        unknown |= refs
    command, args = expanded[: len(command)], expanded[len(command) :]
    argv, source = _entrypoint_argv(command, args, env)
    if argv is None:
        return _replace(base, unresolved=(source,))
    flags = parse_flags(argv)
    for flag, value in flags.items():
        if any(f"$({var})" in value for var in unknown):
            return _replace(base, unresolved=(f"--{flag} uses a variable set from a Secret or ConfigMap",))
    if source != "args" and "model_config_file" not in flags:
        if {"MODEL_NAME", "MODEL_BASE_PATH"} & indirect:
            return _replace(
                base, unresolved=("MODEL_NAME/MODEL_BASE_PATH are set from a Secret or ConfigMap",)
            )
        if base.env_from and not {"MODEL_NAME", "MODEL_BASE_PATH"} <= env.keys():
            return _replace(base, unresolved=("envFrom may set MODEL_NAME/MODEL_BASE_PATH",))
    for flag in ("model_config_file", "model_base_path"):
        if len(flags.get(flag, "")) > MAX_PATH_CHARS:
            raise TooLarge(
                f"{where} --{flag} is {len(flags[flag])} characters; no path is longer than {MAX_PATH_CHARS}"
            )
    if "model_config_file" in flags:
        models, problem, transient = _models_from_file(
            flags["model_config_file"], container, spec, namespace, read_configmap, deadline, where
        )
        return _replace(base, models=models, unresolved=(problem,) if problem else (), transient=transient)
    if not flags.get("model_base_path"):
        return _replace(base, unresolved=("it sets neither --model_base_path nor --model_config_file",))
    model = ServedModel(
        name=flags.get("model_name") or "default",
        base_path=flags["model_base_path"],
        source="--model_base_path" if source == "args" else source,
    )
    return _replace(base, models=(model,))


def _models_from_file(
    path: str,
    container: dict,
    spec: dict,
    namespace: str,
    read_configmap: ConfigMapReader | None,
    deadline: float,
    where: str,
) -> tuple[tuple[ServedModel, ...], str, bool]:
    """(models, why they cannot be told, whether that is transient)."""
    configmap_name, key, reason = _config_source(path, container, spec, where)
    if configmap_name is None:
        return (), f"--model_config_file {reason}", False
    origin = f"ConfigMap {namespace}/{configmap_name} key {key}"
    if read_configmap is None:
        return (), f"cannot read {origin}: no Kubernetes API access", False
    if time.monotonic() >= deadline:
        return (), f"cannot read {origin}: out of time", True
    try:
        configmap = read_configmap(namespace, configmap_name, deadline)
    except ConfigMapError as exc:
        return (), f"cannot read {origin}: {exc}", True
    if configmap is None:
        return (), f"ConfigMap {namespace}/{configmap_name} (--model_config_file) does not exist", False
    text = _configmap_text(configmap, key)
    if text is None:
        return (), f"ConfigMap {namespace}/{configmap_name} has no key {key} (--model_config_file)", False
    try:
        entries = parse_model_server_config(text)
    except ModelConfigError as exc:
        raise InvalidModelConfig(origin, str(exc)) from None
    if not entries:
        raise InvalidModelConfig(origin, "it lists no models")
    return tuple(_served(entry, origin) for entry in entries), "", False


class InvalidModelConfig(ValueError):
    """The model config file exists but TF Serving would refuse it (a finding, not an unresolved case)."""

    def __init__(self, origin: str, reason: str):
        super().__init__(f"{origin}: {reason}")
        self.origin = origin
        self.reason = reason


def _served(entry: ModelEntry, origin: str) -> ServedModel:
    return ServedModel(
        name=entry.name, base_path=entry.base_path, policy=entry.policy, labels=entry.labels, source=origin
    )


def _replace(container: ServingContainer, **changes) -> ServingContainer:
    return dataclasses.replace(container, **changes)


# --- the Kubernetes API ------------------------------------------------------------------------------------


class KubernetesConfigMaps:
    """Reads ConfigMaps with the `kubernetes` client (in-cluster config, else KUBECONFIG); get only."""

    def __init__(self, api_client=None):
        from kubernetes import client

        self._api = client.CoreV1Api(api_client) if api_client is not None else client.CoreV1Api()

    @classmethod
    def from_environment(cls) -> KubernetesConfigMaps | None:
        """None when neither in-cluster credentials nor a kubeconfig exist (local use)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            try:
                config.load_kube_config(client_configuration=configuration)
            except (config.ConfigException, FileNotFoundError, OSError, TypeError, ValueError):
                return None
        configuration.retries = 0
        return cls(client.ApiClient(configuration))

    def __call__(self, namespace: str, name: str, deadline: float) -> Mapping | None:
        from kubernetes.client.exceptions import ApiException

        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            raise ConfigMapError("out of time")
        try:
            result = self._api.read_namespaced_config_map(
                name, namespace, _preload_content=False, _request_timeout=(min(remaining, 2.0), remaining)
            )
            body = json.loads(result.data)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ConfigMapError(f"the API server answered {exc.status} {exc.reason}") from None
        except (OSError, ValueError) as exc:
            raise ConfigMapError(type(exc).__name__) from None
        except Exception as exc:  # noqa: BLE001 - urllib3 timeouts/protocol errors are not OSError subclasses
            raise ConfigMapError(type(exc).__name__) from None
        if not isinstance(body, dict):
            raise ConfigMapError("the API server returned something that is not a ConfigMap")
        return {"data": body.get("data") or {}, "binaryData": body.get("binaryData") or {}}
