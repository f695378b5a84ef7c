"""Version labels (`version_labels { key: "stable" value: 123 }`): when TF Serving accepts them.

TF Serving refuses to assign a label to a version it has not loaded (unless started with
--allow_version_labels_for_unavailable_models), and then rejects the whole model config. So a label is only
right when the version policy keeps its version loaded:
- `specific`: the version must be one of the listed ones — decidable from the policy alone;
- `latest` (one version): the label is right only while its version is the newest; the next upload breaks it;
- `latest: N` and `all`: right when the version is among those loaded, which only storage can tell.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from rulebook.policy import VersionPolicy


class LabelIssue(enum.Enum):
    NOT_SERVED = "not-served"  # the specific policy does not list the version: an error
    UNTIL_NEXT_UPLOAD = "until-next-upload"  # latest (one version): an error, it breaks on the next upload
    DEPENDS_ON_STORAGE = "depends-on-storage"  # latest:N / all: a warning, only storage can tell

    @property
    def is_error(self) -> bool:
        return self is not LabelIssue.DEPENDS_ON_STORAGE


@dataclass(frozen=True, slots=True)
class LabelFinding:
    label: str
    version: int
    issue: LabelIssue


def label_findings(policy: VersionPolicy, labels: Iterable[tuple[str, int]]) -> list[LabelFinding]:
    """What the policy alone says about each label (nothing for a label a specific policy serves)."""
    findings = []
    for label, version in labels:
        if policy.kind == "specific":
            if version not in policy.versions:
                findings.append(LabelFinding(label, version, LabelIssue.NOT_SERVED))
        elif policy.kind == "latest" and policy.count == 1:
            findings.append(LabelFinding(label, version, LabelIssue.UNTIL_NEXT_UPLOAD))
        else:
            findings.append(LabelFinding(label, version, LabelIssue.DEPENDS_ON_STORAGE))
    return findings


def labels_not_loaded(labels: Iterable[tuple[str, int]], loaded: Iterable[int]) -> list[tuple[str, int]]:
    """The labels whose version is not among the versions TF Serving loads (it would refuse them)."""
    present = set(loaded)
    return [(label, version) for label, version in labels if version not in present]
