from __future__ import annotations

from rulebook.labels import LabelIssue, label_findings, labels_not_loaded
from rulebook.policy import VersionPolicy


def issues(policy, labels):
    return [(f.label, f.version, f.issue) for f in label_findings(policy, labels)]


def test_specific_policy_decides_alone():
    policy = VersionPolicy("specific", versions=(123, 124))
    assert issues(policy, [("stable", 123)]) == []
    assert issues(policy, [("stable", 41)]) == [("stable", 41, LabelIssue.NOT_SERVED)]
    assert LabelIssue.NOT_SERVED.is_error


def test_latest_one_version_is_an_error_until_next_upload():
    assert issues(VersionPolicy("latest"), [("stable", 41)]) == [("stable", 41, LabelIssue.UNTIL_NEXT_UPLOAD)]
    assert LabelIssue.UNTIL_NEXT_UPLOAD.is_error


def test_latest_n_and_all_depend_on_storage():
    for policy in (VersionPolicy("latest", count=2), VersionPolicy("all")):
        assert issues(policy, [("canary", 7)]) == [("canary", 7, LabelIssue.DEPENDS_ON_STORAGE)]
    assert not LabelIssue.DEPENDS_ON_STORAGE.is_error


def test_labels_against_what_is_loaded():
    assert labels_not_loaded([("stable", 1), ("canary", 2)], [2, 3]) == [("stable", 1)]
