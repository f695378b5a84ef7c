"""The rendered difference: the Kubernetes objects Argo CD applies, per environment, before and after.

`kubectl kustomize overlays/<env>` of 1,000 models takes minutes (kustomize slows down with the number of
resources in one build), so the trees are compared file by file first and only the parts whose files changed
are built, on each side:
- a directory unit (`<env>/<model>/`, `<env>/_webhook/`) changes with its files, or with the shared
  `base/` and `components/`; changed ones are built with kubectl kustomize, BATCH of them per build
  (a kustomization listing them, as `<env>/kustomization.yaml` lists them all);
- a file unit (an Application in `<env>/_argocd/`, `<env>/app-of-apps.yaml`) is its own documents.
This equals building the whole environment because `<env>/kustomization.yaml` and
`<env>/_argocd/kustomization.yaml` only list resources (tests/preview/test_objects.py holds it to that).
Objects are compared as data and shown as unified diffs of their YAML; a generated name whose hash suffix
changed (a ConfigMap from configMapGenerator) is shown as one changed object.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass

import yaml

from generator import validation
from generator.render import ARGOCD_DIR
from generator.render.kubernetes import kustomization
from generator.render.yamltext import dump_plain
from preview.changes import ADDED, CHANGED, REMOVED, ObjectChange

BATCH = 16  # units per kustomize build: fewer builds, while one build stays far from kustomize's slow sizes
KUSTOMIZATION = "kustomization.yaml"
BATCH_DIR = "_preview-batch-{}"  # '_' never starts a model name
_GENERATED_SUFFIX = re.compile(r"-[a-z0-9]{10}$")  # kustomize's content hash on generated names
_GENERATED_KINDS = ("ConfigMap", "Secret")


@dataclass(frozen=True, order=True)
class Unit:
    environment: str
    path: str  # "prod/half-plus-two" (a directory) or "prod/_argocd/half-plus-two.yaml" (a file)
    directory: bool
    target: str  # what Argo CD applies it as: "prod", "prod/_argocd", "prod/app-of-apps.yaml"


@dataclass(frozen=True)
class Side:
    """One side's rendered tree and where its Argo CD Applications say it lives."""

    files: dict[str, str]
    out_dir: str  # argocd.path, e.g. "overlays"


@dataclass(frozen=True)
class Comparison:
    objects: dict[str, list[ObjectChange]]  # environment → changes
    errors: dict[str, list[str]]  # environment → builds that failed
    built: int  # kustomize builds run (both sides)


def compare(
    base: Side | None, head: Side, environments: list[str], *, kubectl: str = "kubectl"
) -> Comparison:
    base_units = _units(base.files if base else {}, environments)
    head_units = _units(head.files, environments)
    shared_changed = _shared(base.files if base else {}, environments) != _shared(head.files, environments)
    changed = sorted(
        unit
        for unit in base_units.keys() | head_units.keys()
        if base_units.get(unit) != head_units.get(unit) or (unit.directory and shared_changed)
    )
    errors: dict[str, list[str]] = defaultdict(list)
    sides = [
        ("base", base, [unit for unit in changed if unit in base_units]),
        ("head", head, [unit for unit in changed if unit in head_units]),
    ]
    (before, after), built = _build(sides, environments, kubectl, errors)
    objects: dict[str, list[ObjectChange]] = defaultdict(list)
    targets = sorted({(unit.environment, unit.target) for unit in changed}, key=_target_rank)
    for environment, target in targets:
        old = before.get(target, {})
        new = after.get(target, {})
        shown = (
            f"{base.out_dir if base else head.out_dir}/{target}",
            f"{head.out_dir}/{target}",
        )
        objects[environment] += _object_changes(old, new, shown)
    return Comparison(dict(objects), dict(errors), built)


def _units(files: dict[str, str], environments: list[str]) -> dict[Unit, dict[str, str]]:
    """Each unit's files (path → text); the environments' own kustomization.yaml files belong to none."""
    units: dict[Unit, dict[str, str]] = defaultdict(dict)
    known = set(environments)
    for path, text in files.items():
        parts = path.split("/")
        environment = parts[0]
        if environment not in known or _lists_resources(parts):
            continue
        if len(parts) == 2:
            unit = Unit(environment, path, False, path)
        elif parts[1] == ARGOCD_DIR:
            unit = Unit(environment, path, False, f"{environment}/{ARGOCD_DIR}")
        else:
            unit = Unit(environment, f"{environment}/{parts[1]}", True, environment)
        units[unit][path] = text
    return units


def _lists_resources(parts: list[str]) -> bool:
    """`<env>/kustomization.yaml`, `<env>/_argocd/kustomization.yaml`: they only list the units."""
    return parts[-1] == KUSTOMIZATION and (len(parts) == 2 or parts[1] == ARGOCD_DIR)


def _shared(files: dict[str, str], environments: list[str]) -> dict[str, str]:
    known = set(environments)
    return {path: text for path, text in files.items() if path.split("/", 1)[0] not in known}


def _build(sides: list, environments: list[str], kubectl: str, errors: dict) -> tuple[list[dict], int]:
    """Per side, target → {(kind, namespace, name): object} of the given units, and the builds it took.

    Both sides' builds go to one pool (each side in its own directory, `base/` and `head/`), so a small
    change costs one round of kubectl, not two."""
    found: list[dict[str, dict[tuple, dict]]] = []
    files: dict[str, str] = {}
    targets: list[tuple[int, str, str]] = []  # (side, environment, target)
    for index, (root, side, units) in enumerate(sides):  # root: "base" or "head"
        objects: dict[str, dict[tuple, dict]] = defaultdict(dict)
        found.append(objects)
        if side is None or not units:
            continue
        for unit in units:
            if not unit.directory:
                _collect(objects[unit.target], side.files[unit.path], unit.target, errors, unit.environment)
        directories = [unit for unit in units if unit.directory]
        if directories:
            files.update({f"{root}/{p}": t for p, t in _shared(side.files, environments).items()})
        for batch in _batches(directories):
            environment = batch[0].environment
            target = f"{root}/{environment}/{BATCH_DIR.format(len(targets))}"
            resources = ["../" + unit.path.split("/", 1)[1] for unit in batch]
            files[f"{target}/{KUSTOMIZATION}"] = dump_plain(kustomization(resources=resources))
            for unit in batch:
                prefix = unit.path + "/"
                files.update({f"{root}/{p}": t for p, t in side.files.items() if p.startswith(prefix)})
            targets.append((index, environment, target))
    if targets:
        results = validation.build_targets(files, [target for _, _, target in targets], kubectl=kubectl)
        for (index, environment, _), built in zip(targets, results, strict=True):
            if built.error:
                root = sides[index][0]
                errors[environment].append(f"{root}: {built.error.replace(root + '/', '')}")
            else:
                _collect(found[index][environment], built.text, environment, errors, environment)
    return found, len(targets)


def _batches(units: list[Unit]) -> list[list[Unit]]:
    by_environment: dict[str, list[Unit]] = defaultdict(list)
    for unit in units:
        by_environment[unit.environment].append(unit)
    return [group[i : i + BATCH] for group in by_environment.values() for i in range(0, len(group), BATCH)]


class _Loader(yaml.SafeLoader):
    """Safe YAML without YAML 1.1 timestamps: every scalar kustomize writes as a string stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _collect(into: dict[tuple, dict], text: str, target: str, errors: dict, environment: str) -> None:
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        errors[environment].append(f"{target}: output is not YAML: {exc}")
        return
    for document in documents:
        metadata = document.get("metadata") or {}
        into[(document.get("kind", "?"), metadata.get("namespace"), metadata.get("name", "?"))] = document


def _object_changes(old: dict[tuple, dict], new: dict[tuple, dict], shown: tuple[str, str]) -> list:
    removed = {key for key in old if key not in new}
    added = {key for key in new if key not in old}
    pairs = [(key, key) for key in old.keys() & new.keys() if old[key] != new[key]]
    pairs += _renamed(removed, added)
    renamed = {b for b, _ in pairs} | {a for _, a in pairs}
    pairs += [(key, None) for key in removed - renamed] + [(None, key) for key in added - renamed]
    changes = [_change(before, after, old, new, shown) for before, after in pairs]
    return sorted(changes, key=lambda c: (c.namespace or "", _stem(c.name), c.kind, c.name))


def _renamed(removed: set[tuple], added: set[tuple]) -> list[tuple[tuple, tuple]]:
    """Generated objects whose hash suffix changed, paired when exactly one went and one came."""
    went: dict[tuple, list[tuple]] = defaultdict(list)
    came: dict[tuple, list[tuple]] = defaultdict(list)
    for group, keys in ((went, removed), (came, added)):
        for kind, namespace, name in keys:
            if kind in _GENERATED_KINDS and _GENERATED_SUFFIX.search(name):
                group[(kind, namespace, _stem(name))].append((kind, namespace, name))
    unique = [stem for stem in went if len(went[stem]) == 1 and len(came.get(stem, ())) == 1]
    return [(went[stem][0], came[stem][0]) for stem in unique]


def _change(before, after, old: dict, new: dict, shown: tuple[str, str]) -> ObjectChange:
    key = after or before
    kind, namespace, name = key
    old_text = dump_plain(old[before]).splitlines() if before else []
    new_text = dump_plain(new[after]).splitlines() if after else []
    from_label = f"{shown[0]}: {_describe(before)}" if before else "/dev/null"
    to_label = f"{shown[1]}: {_describe(after)}" if after else "/dev/null"
    diff = tuple(difflib.unified_diff(old_text, new_text, from_label, to_label, lineterm=""))
    change = CHANGED if before and after else (ADDED if after else REMOVED)
    before_name = before[2] if before and after and before[2] != name else None
    target = shown[1 if after else 0]
    return ObjectChange(target, kind, namespace, name, change, diff, before_name)


def _describe(key: tuple) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _stem(name: str) -> str:
    return _GENERATED_SUFFIX.sub("", name)


def _target_rank(item: tuple[str, str]) -> tuple:
    environment, target = item
    return (environment, target != environment, target.endswith(".yaml"), target)
