"""Which deployments a change makes TF Serving load differently, and their S3 verdicts as preview data.

The checks themselves run in savedmodel.batch (the caller builds them: credentials are its business).
"""

from __future__ import annotations

import dataclasses

from preview.changes import CANNOT_VERIFY, INVALID, Preview, Verification
from preview.semantic import loads_differently


def to_verify(preview: Preview) -> list[tuple[str, str]]:
    """(environment, model) of every deployment whose loaded versions, or their location, change."""
    return [
        (env.name, change.model)
        for env in preview.environments
        for change in env.models
        if loads_differently(change)
    ]


def from_report(model: str, report) -> Verification:
    """A savedmodel.ModelReport (labels already checked) as preview data."""
    verdict = report.verdict.value
    reasons: list[str] = []
    if verdict == CANNOT_VERIFY:
        reasons.append(report.error or "cannot verify")
    elif verdict == INVALID:
        for version in report.selected:
            reasons += [f"version {version.number} ({version.name}): {reason}" for reason in version.reasons]
        reasons += report.problems
    return Verification(
        model, report.base_path, str(report.policy), verdict, tuple(report.loaded_versions()), tuple(reasons)
    )


def with_verifications(preview: Preview, results: dict[tuple[str, str], Verification]) -> Preview:
    environments = tuple(
        dataclasses.replace(
            env,
            verifications=tuple(
                results[(env.name, change.model)]
                for change in env.models
                if (env.name, change.model) in results
            ),
        )
        for env in preview.environments
    )
    return dataclasses.replace(preview, environments=environments, verified=True)
