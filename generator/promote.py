"""`tfs-gitops promote`: pin one model to one version in one environment by editing models.yaml in place.

The edit is the smallest one that makes `models[].environments.<env>.versionPolicy` `{specific: [N]}` (and,
when asked, moves version labels to N), written at the most specific layer so no other environment changes.
Everything else of the file stays as it was, comments and formatting included: the text is edited through a
ruamel.yaml round trip, which must reproduce the untouched file byte for byte first (otherwise nothing is
edited and the user is told what to change by hand). A version labelled elsewhere would leave a label
pointing at a version the pin no longer serves: refused unless the label is moved too.

Pure: text in, text out; generator.tree writes it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from generator.catalogue import Catalogue, Deployment

UNVERIFIED_MARK = "# UNVERIFIED: promoted with --skip-verify"


class PromoteError(ValueError):
    """The promotion cannot be made as asked (unknown model or environment, a label left behind, ...)."""


@dataclass(frozen=True)
class Promotion:
    model: str
    environment: str
    version: int
    labels: tuple[str, ...] = ()  # labels to point at `version` (moved, or added)
    verified: bool = True  # False: marked UNVERIFIED in models.yaml, where the pull request shows it


def deployment_of(catalogue: Catalogue, promotion: Promotion) -> Deployment:
    models = {model.name for model in catalogue.models}
    if promotion.model not in models:
        known = ", ".join(sorted(models))
        raise PromoteError(f"no model {promotion.model!r} in the catalogue (models: {known})")
    environments = [environment.name for environment in catalogue.environments]
    if promotion.environment not in environments:
        known = ", ".join(environments)
        raise PromoteError(f"no environment {promotion.environment!r} in the catalogue ({known})")
    for deployment in catalogue.deployments_in(promotion.environment):
        if deployment.model.name == promotion.model:
            return deployment
    raise PromoteError(
        f"model {promotion.model!r} is not served in {promotion.environment!r} (enabled: false there); "
        "enable it first"
    )


def new_labels(deployment: Deployment, promotion: Promotion) -> dict[str, int]:
    """The environment's version labels after the promotion; PromoteError for one left pointing elsewhere."""
    labels = dict(deployment.settings.version_labels)
    labels.update({label: promotion.version for label in promotion.labels})
    behind = {label: version for label, version in labels.items() if version != promotion.version}
    if behind:
        described = ", ".join(f"{label!r} points at version {version}" for label, version in behind.items())
        moves = " ".join(f"--label {label}" for label in behind)
        raise PromoteError(
            f"{described}, which {{specific: [{promotion.version}]}} would no longer serve in "
            f"{promotion.environment} (TF Serving refuses such a label): move it with {moves}, or remove "
            "it from models.yaml first"
        )
    return labels


def promote_text(text: str, catalogue: Catalogue, promotion: Promotion) -> str:
    """models.yaml with the promotion applied; PromoteError when it cannot be made."""
    deployment = deployment_of(catalogue, promotion)
    labels = new_labels(deployment, promotion)
    yaml = _round_trip(text)
    data = yaml.load(text)
    if _dump(yaml, data) != text:
        raise PromoteError(
            "models.yaml cannot be edited without reformatting it (its indentation is not uniform); set "
            f"models[{promotion.model}].environments.{promotion.environment}.versionPolicy to "
            f"{{specific: [{promotion.version}]}} by hand"
        )
    model = next(m for m in data["models"] if m.get("name") == promotion.model)
    environments = model.get("environments")
    entry = environments.get(promotion.environment) if environments is not None else None
    fresh = entry is None
    entry = CommentedMap() if fresh else entry
    _set_policy(entry, promotion.version)
    if "versionLabels" in entry:
        _update_flow_map(entry["versionLabels"], labels)
    elif dict(deployment.settings.version_labels) != labels:
        _append(entry, "versionLabels", _flow_map(labels))
    if fresh and environments is None:  # built whole, then attached: trailing comments move below it
        environments = CommentedMap({promotion.environment: entry})
        _append(model, "environments", environments)
    elif fresh:
        _append(environments, promotion.environment, entry)
    _mark(*_pinned_line(model, environments, promotion.environment), verified=promotion.verified)
    return _dump(yaml, data)


def _round_trip(text: str) -> YAML:
    _, sequence_indent, mapping_indent = load_yaml_guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line
    offset = max(sequence_indent - 2, 0)
    yaml.indent(mapping=mapping_indent or 2, sequence=sequence_indent or 2, offset=offset)
    return yaml


def _dump(yaml: YAML, data) -> str:
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def _append(parent: CommentedMap, key: str, value) -> None:
    """Append key: value; comment lines that followed the last entry (they introduce what comes next in
    the file) move below the new one."""
    trailing = _take_trailing(parent) if parent else None
    parent[key] = value
    if trailing:
        _give_trailing(parent, trailing)


def _flow_seq(items: list) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _flow_map(items: dict) -> CommentedMap:
    mapping = CommentedMap(items)
    mapping.fa.set_flow_style()
    return mapping


def _set_policy(entry: CommentedMap, version: int) -> None:
    policy = entry.get("versionPolicy")
    if isinstance(policy, CommentedMap) and isinstance(policy.get("specific"), CommentedSeq):
        versions = policy["specific"]
        del versions[:]
        versions.append(version)  # in place: its flow or block style and comments stay
        for key in [k for k in policy if k != "specific"]:
            del policy[key]
    elif "versionPolicy" in entry:
        entry["versionPolicy"] = _flow_map({"specific": _flow_seq([version])})
    else:
        _append(entry, "versionPolicy", _flow_map({"specific": _flow_seq([version])}))


def _update_flow_map(mapping: CommentedMap, values: dict[str, int]) -> None:
    for key in [k for k in mapping if k not in values]:
        del mapping[key]
    for key, value in values.items():
        mapping[key] = value


def _pinned_line(
    model: CommentedMap, environments: CommentedMap, environment: str
) -> tuple[CommentedMap, str]:
    """The block mapping and key whose line holds the pinned policy (a flow mapping is one line: its
    comment goes after it)."""
    entry = environments[environment]
    if not entry.fa.flow_style():
        return entry, "versionPolicy"
    if not environments.fa.flow_style():
        return environments, environment
    return model, "environments"


def _mark(holder: CommentedMap, key: str, *, verified: bool) -> None:
    """The UNVERIFIED comment on the pinned line: added for --skip-verify, removed by a verified promotion;
    the line's own comment stays after it."""
    token = _eol_token(holder, key)
    value = holder[key]
    # ruamel may also hand the line's comment to the value itself (a collection at the end of the file, a
    # block value): edit both alike, or the old text comes back.
    twin = value.ca.comment if isinstance(value, (CommentedMap, CommentedSeq)) else None
    twin_token = twin[0] if twin and token is not None and twin[0] is not None else None
    if twin_token is not None and twin_token.value != token.value:
        twin_token = None
    own, _, rest = (token.value if token is not None else "\n").partition("\n")
    own = own.strip()
    if own.startswith(UNVERIFIED_MARK):
        own = own[len(UNVERIFIED_MARK) :].lstrip(";").strip()
        own = f"# {own}" if own else ""
    if not verified:
        own = f"{UNVERIFIED_MARK}; {own[1:].strip()}" if own else UNVERIFIED_MARK
    if token is not None and token.value.startswith("#") and own:
        token.value = f"{own}\n{rest}"  # same column as before
        if twin_token is not None:
            twin_token.value = token.value
    elif token is not None and not own:
        if rest:
            token.value = f"\n{rest}"
        else:
            del holder.ca.items[key]
        if twin_token is not None:
            twin[0] = None
    elif own:
        if token is not None:
            del holder.ca.items[key]
        holder.yaml_add_eol_comment(f"{own}\n{rest}" if rest else own, key)


def _eol_token(mapping: CommentedMap, key: str) -> CommentToken | None:
    comments = mapping.ca.items.get(key)
    return comments[2] if comments and len(comments) > 2 else None


def _last_leaf(node: CommentedMap) -> tuple[CommentedMap, object]:
    """The block mapping holding the file's last line under `node`, and its key there."""
    key = list(node)[-1]
    value = node[key]
    if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
        return _last_leaf(value)
    return node, key


def _take_trailing(node: CommentedMap) -> str | None:
    """Remove and return the comment lines after the last line under `node` (not its end-of-line comment)."""
    holder, key = _last_leaf(node)
    token = _eol_token(holder, key)
    if token is None or "\n" not in token.value:
        return None
    own, _, rest = token.value.partition("\n")
    if not rest:
        return None
    token.value = own + "\n"
    return rest


def _give_trailing(node: CommentedMap, trailing: str) -> None:
    holder, key = _last_leaf(node)
    token = _eol_token(holder, key)
    if token is None:
        holder.ca.items.setdefault(key, [None, None, None, None])
        holder.ca.items[key][2] = CommentToken("\n" + trailing, CommentMark(0), None)
    else:
        token.value = token.value.rstrip("\n") + "\n" + trailing
