"""Reporters on hand-made previews: the Markdown size cap, what it keeps first, and quoting."""

from __future__ import annotations

import json
import re

import pytest

from preview.changes import (
    ADDED,
    CHANGED,
    INVALID,
    VALID,
    EnvironmentPreview,
    FieldChange,
    ModelChange,
    ObjectChange,
    Preview,
    Revision,
    Verification,
)
from preview.reporters import GITHUB_COMMENT_LIMIT, MARKER, MarkdownReporter, reporter


def big_object(env: str, index: int) -> ObjectChange:
    lines = [f"--- overlays/{env}: ConfigMap ns/c{index}", f"+++ overlays/{env}: ConfigMap ns/c{index}"]
    lines += (
        ["@@ -1,400 +1,400 @@"] + [f"-  line {n}" for n in range(200)] + [f"+  line {n}!" for n in range(200)]
    )
    return ObjectChange(f"overlays/{env}", "ConfigMap", "ns", f"c{index}", CHANGED, tuple(lines))


def preview_of(objects_per_env: int, *, invalid: bool = False) -> Preview:
    environments = []
    for env in ("dev", "staging", "prod"):
        models = tuple(
            ModelChange(f"m{i}", CHANGED, (FieldChange("replicas", "1", "2"),))
            for i in range(objects_per_env)
        )
        checks = (
            Verification("m0", "s3://b/m0", "latest", INVALID, (), ("version 2 (2): missing variables",)),
        )
        environments.append(
            EnvironmentPreview(
                env,
                CHANGED,
                models=models,
                objects=tuple(big_object(env, i) for i in range(objects_per_env)),
                verifications=checks if invalid and env == "prod" else (),
            )
        )
    return Preview(
        "models.yaml", Revision("main", "0" * 40), Revision(), tuple(environments), verified=invalid
    )


@pytest.mark.parametrize("cap", [2_000, 20_000, GITHUB_COMMENT_LIMIT])
def test_markdown_is_capped_with_a_count_of_what_was_left_out(cap: int):
    text = MarkdownReporter(cap).render(preview_of(40))
    assert len(text) <= cap
    assert text.startswith(MARKER + "\n")
    assert text.count("<details>") == text.count("</details>") == 3
    assert text.count("```diff") == text.count("\n```\n")
    left_out = re.search(r"\*\*Truncated, (\d+) more objects", text)
    assert left_out, text[-500:]
    shown = text.count("\n--- overlays/")
    assert shown + int(left_out.group(1)) == 120
    # what is shown is a prefix, in order
    names = re.findall(r"\n--- overlays/(\w+): ConfigMap ns/c(\d+)", text)
    assert names == [(env, str(i)) for env in ("dev", "staging", "prod") for i in range(40)][: len(names)]


def test_failed_s3_verdicts_survive_the_cap():
    text = MarkdownReporter(2_000).render(preview_of(40, invalid=True))
    assert len(text) <= 2_000
    assert "- S3 `m0`: ❌ invalid: `s3://b/m0` (`latest`)\n  - version 2 (2): missing variables" in text
    assert "<details open><summary><b>prod</b>" in text


def test_small_previews_are_not_truncated():
    text = MarkdownReporter().render(preview_of(1))
    assert "Truncated" not in text
    assert text.count("\n--- overlays/") == 3


def test_markdown_quotes_what_it_did_not_write():
    change = ObjectChange("overlays/dev", "ConfigMap", "ns", "x", ADDED, ("--- /dev/null", "+```"))
    reason = "version 1 (1): <b>*not*</b> a_model [x](y)"
    preview = Preview(
        "models.yaml",
        Revision("main", "1" * 40),
        Revision(),
        (
            EnvironmentPreview(
                "dev",
                CHANGED,
                models=(ModelChange("m", CHANGED, (FieldChange("image", "a`b", "c"),)),),
                objects=(change,),
                verifications=(Verification("m", "s3://b/m", "latest", INVALID, (), (reason,)),),
            ),
        ),
        verified=True,
    )
    text = MarkdownReporter().render(preview)
    assert "````diff\n--- /dev/null\n+```\n````" in text
    assert "image `` a`b `` → `c`" in text
    assert r"  - version 1 (1): &lt;b&gt;\*not\*&lt;/b&gt; a\_model \[x\](y)" in text


def test_json_and_text_are_complete():
    preview = preview_of(40)
    data = json.loads(reporter("json").render(preview))
    assert sum(len(env["objects"]) for env in data["environments"]) == 120
    text = reporter("text").render(preview)
    assert text.count("\n--- overlays/") == 120
    assert text.endswith("3 of 3 environments changed (dev, staging, prod)\n")


def test_verdicts_in_text():
    preview = preview_of(1, invalid=True)
    text = reporter("text").render(preview)
    assert "S3 m0: INVALID: s3://b/m0 (latest)\n    version 2 (2): missing variables\n" in text
    assert text.endswith("; S3: INVALID\n")
    valid = Verification("m0", "s3://b/m0", "specific:1,2", VALID, (2, 1))
    env = EnvironmentPreview("prod", CHANGED, verifications=(valid,))
    ok = Preview("models.yaml", Revision("main", "0" * 40), Revision(), (env,), verified=True)
    assert "S3 m0: valid: s3://b/m0 (specific:1,2) loads versions 2, 1\n" in reporter("text").render(ok)


def test_webhook_lines():
    def text(*fields: FieldChange) -> str:
        env = EnvironmentPreview("prod", CHANGED, webhook=fields)
        preview = Preview("models.yaml", Revision("main", "0" * 40), Revision(), (env,))
        return reporter("text").render(preview).splitlines()[3]

    assert text(FieldChange("webhook", None, "enabled")) == "~ webhook enabled"
    assert text(FieldChange("webhook", "enabled", None)) == "~ webhook disabled"
    assert (
        text(
            FieldChange("webhook.failurePolicy", "Fail", "Ignore"),
            FieldChange("webhook.onUnverifiable", "deny", "warn"),
        )
        == "~ webhook: failurePolicy Fail → Ignore; onUnverifiable deny → warn"
    )
