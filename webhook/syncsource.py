"""The sync containers of a Deployment (storage.mode sync), and which local model directory each one fills.

In sync mode TF Serving reads a local base path that `tfs-gitops sync SOURCE DEST --policy POLICY` fills
from S3 (an init container with `--once`, and a sidecar; rulebook.sync.SyncSpec is the command line). A
container runs it when its command is `tfs-gitops` (any directory) and its first argument `sync`, in
`containers` or `initContainers`, after Kubernetes `$(VAR)` expansion.

A sync container *fills* a TF Serving container's base path when both see the same directory: DEST and the
base path resolve to the same volume and the same path inside it (through the longest mount path and its
`subPath`; mount paths may differ between the two containers).
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from rulebook.sync import SyncSpec
from webhook.extract import (
    ExpansionBudget,
    Malformed,
    ServingContainer,
    TooLarge,
    container_env,
    expand,
    pod_spec,
    strings,
)
from webhook.limits import MAX_ARGS, MAX_CONTAINERS

_KINDS = ("initContainers", "containers")
_FIELDS = ("name", "image", "command", "args", "env", "envFrom", "volumeMounts")


class InvalidSyncLine(ValueError):
    """A container runs `tfs-gitops sync` with a command line it would refuse, or one we cannot read."""

    def __init__(self, container: str, reason: str):
        super().__init__(f'container "{container}" runs tfs-gitops sync, but {reason}')
        self.container = container
        self.reason = reason


@dataclass(frozen=True)
class SyncSource:
    """One sync container: what it copies where, and the S3 environment it reads with."""

    name: str
    init: bool
    spec: SyncSpec
    env: Mapping[str, str]  # literal values only
    indirect_env: frozenset[str]  # set via valueFrom (unknown to us)
    env_from: bool
    fills: tuple[str, str] | None  # (volume, directory inside it) of DEST; None: not on a volume


def sync_sources(deployment: object) -> tuple[SyncSource, ...]:
    """Every sync container of the Deployment; Malformed for a broken object, InvalidSyncLine for a sync
    command line that cannot work or cannot be read."""
    spec = pod_spec(deployment)
    found = []
    for kind in _KINDS:
        for index, container in enumerate(_containers(spec, kind)):
            name = container.get("name") if isinstance(container.get("name"), str) else f"#{index}"
            source = _source(container, name, kind == "initContainers", spec)
            if source is not None:
                found.append(source)
    return tuple(found)


def attach(
    container: ServingContainer, deployment: object, sources: tuple[SyncSource, ...]
) -> ServingContainer:
    """The TF Serving container with `synced`: each of its local base paths → the sync containers filling
    it (absent when none does)."""
    if not sources:
        return container
    spec = pod_spec(deployment)
    raw = next((c for c in _containers(spec, "containers") if c.get("name") == container.name), None)
    if raw is None:
        return container
    synced = {}
    for model in container.models:
        if model.base_path.startswith("s3://"):
            continue
        where = _on_volume(raw, model.base_path, spec)
        filling = tuple(source for source in sources if where is not None and source.fills == where)
        if filling:
            synced[model.base_path] = filling
    return dataclasses.replace(container, synced=synced)


def sync_fields(deployment: object) -> object:
    """What of the sync containers decides a verdict (for the decision cache and UPDATE reuse)."""
    try:
        spec = pod_spec(deployment)
        return [
            [container.get(key) for key in _FIELDS]
            for kind in _KINDS
            for container in _containers(spec, kind)
            if _runs_sync(container)
        ]
    except Malformed:
        return None


def _containers(spec: dict, kind: str) -> list[dict]:
    items = spec.get(kind)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise Malformed(f"spec.template.spec.{kind} must be a list of objects")
    if len(items) > MAX_CONTAINERS:
        raise TooLarge(f"spec.template.spec.{kind} has {len(items)} entries, more than {MAX_CONTAINERS}")
    return items


def _runs_sync(container: dict) -> bool:
    command = container.get("command")
    args = container.get("args")
    argv = (command if isinstance(command, list) else []) + (args if isinstance(args, list) else [])
    try:
        return SyncSpec.parse([str(item) for item in argv]) is not None
    except ValueError:
        return True  # a malformed sync line is still a sync container


def _source(container: dict, name: str, init: bool, spec: dict) -> SyncSource | None:
    if not _runs_sync(container):
        return None
    where = f"container {name!r}"
    budget = ExpansionBudget(where)  # the bounds TF Serving containers get (webhook.limits)
    env, indirect = container_env(container, where, budget)
    command = strings(container.get("command"), f"{where}.command", MAX_ARGS)
    args = strings(container.get("args"), f"{where}.args", MAX_ARGS - len(command))
    argv = []
    for item in command + args:
        text, unknown = expand(item, env, indirect, budget, "an argument")
        if unknown:
            raise InvalidSyncLine(
                name,
                f"its command line uses $({sorted(unknown)[0]}) from a Secret or "
                "ConfigMap; write the source and destination literally",
            )
        argv.append(text)
    try:
        parsed = SyncSpec.parse(argv)
    except ValueError as exc:
        raise InvalidSyncLine(name, f"its command line is malformed: {exc}") from None
    if parsed is None:  # `$(VAR)` expansion turned it into something else
        return None
    if not posixpath.isabs(parsed.dest):
        raise InvalidSyncLine(name, f"its destination {parsed.dest!r} is not an absolute path")
    if parsed.endpoint_url:  # --endpoint-url wins over S3_ENDPOINT/S3_USE_HTTPS: check where it reads
        env = {**env, "S3_ENDPOINT": parsed.endpoint_url}
        indirect = indirect - {"S3_ENDPOINT"}
    return SyncSource(
        name=name,
        init=init,
        spec=parsed,
        env=env,
        indirect_env=indirect,
        env_from=bool(container.get("envFrom")),
        fills=_on_volume(container, parsed.dest, spec),
    )


def _on_volume(container: dict, path: str, spec: dict) -> tuple[str, str] | None:
    """(volume name, normalised path inside the volume) where `path` lives for this container."""
    path = posixpath.normpath(path)
    best: tuple[str, dict] | None = None
    mounts = container.get("volumeMounts")
    for mount in mounts if isinstance(mounts, list) else []:
        mount_path = mount.get("mountPath") if isinstance(mount, dict) else None
        if not isinstance(mount_path, str) or not mount_path.startswith("/"):
            continue
        root = posixpath.normpath(mount_path)
        inside = path == root or path.startswith(root.rstrip("/") + "/")
        if inside and (best is None or len(root) > len(best[0])):
            best = (root, mount)
    if best is None:
        return None
    root, mount = best
    if mount.get("subPathExpr"):
        return None
    relative = posixpath.relpath(path, root)
    sub_path = mount.get("subPath") if isinstance(mount.get("subPath"), str) else ""
    inside = posixpath.normpath(posixpath.join(sub_path, relative))
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    if not any(isinstance(v, dict) and v.get("name") == mount.get("name") for v in volumes):
        return None
    return str(mount.get("name")), inside
