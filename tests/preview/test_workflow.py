"""The pull-request preview workflow, read as data: its trigger, its one write permission, its pinned actions,
the history it fetches, and the marker it looks for being the one the Markdown reporter writes."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from preview.reporters import MARKER

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "preview.yml"


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_runs_on_pull_requests_touching_the_catalogue():
    triggers = load()[True]  # YAML 1.1 reads the key `on` as True
    assert triggers == {"pull_request": {"paths": ["models.yaml"]}}


def test_write_permission_on_the_commenting_job_only():
    workflow = load()
    assert workflow["permissions"] == {"contents": "read"}
    assert {name: job.get("permissions") for name, job in workflow["jobs"].items()} == {
        "preview": {"contents": "read", "pull-requests": "write"}
    }


def test_actions_pinned_and_history_fetched():
    steps = load()["jobs"]["preview"]["steps"]
    uses = [step["uses"] for step in steps if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", ref) for ref in uses)
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}


def test_verifies_unless_a_fork_and_finds_its_comment_by_the_marker():
    steps = {
        step.get("name", step.get("uses", step.get("run"))): step
        for step in load()["jobs"]["preview"]["steps"]
    }
    diff = steps["tfs-gitops diff"]["run"]
    assert "--merge-base --output markdown" in diff and "--verify" in diff and "--note" in diff
    assert 'if [ "$FORK" = true ]' in diff
    comment = steps["Create or update the comment"]
    assert comment["if"] == "env.FORK != 'true'"
    assert f"marker='{MARKER}'" in comment["run"]
    assert steps["Fail on invalid or unverifiable versions, or when no preview could be made"]["run"] == (
        'exit "${{ steps.diff.outputs.exit }}"'
    )
