"""`make demo`: the origin's story end to end, on an embedded S3 server (SeaweedFS on loopback).

1. The generator: models.yaml → overlays/ (into .demo/overlays), check, validate.
2. The SavedModel checks: upload half_plus_two 00000123 where the catalogue says, verify and inspect it;
   a partial 00000124 → invalid, naming what is missing; completed → valid.
3. The admission webhook (served by gunicorn over TLS) decides on the rendered Deployment: admitted; a
   partial 00000124 appears → denied, as kubectl shows it; 00000124 completed → admitted; a GPU image
   without a GPU → denied.
4. A pull request promotes prod to 124 (complete in S3): `tfs-gitops diff --verify`, as text and as the PR
   comment's Markdown; another promotes to a partial 125: the preview says invalid before anything merges.
Run from the repository root with the venv's bin/ on PATH (the Makefile does both).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.gitrepo import GitRepo  # noqa: E402
from devtools.s3server import S3Endpoint, SeaweedFS  # noqa: E402
from scripts.demo_webhook import WebhookStory, without_gpu_but_gpu_image  # noqa: E402

WORK = ROOT / ".demo"
MODEL_SRC = ROOT / "tests/testdata/savedmodels/saved_model_half_plus_two_cpu/00000123"
BUCKET = "models"
PREFIX = "tfserving/half_plus_two"  # the catalogue's basePath for half-plus-two
BASE_PATH = f"s3://{BUCKET}/{PREFIX}"


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(args: list[str], env: dict[str, str] | None = None, expect: tuple[int, ...] = (0,),
        show_lines: int | None = None) -> subprocess.CompletedProcess:
    print(f"$ {shlex.join(args)}", flush=True)
    proc = subprocess.run(args, cwd=ROOT, env=env, text=True, capture_output=True)
    output = (proc.stdout + proc.stderr).rstrip("\n")
    lines = output.splitlines()
    if show_lines is not None and len(lines) > show_lines:
        lines = lines[:show_lines] + [f"... ({len(lines) - show_lines} more lines)"]
    if lines:
        print("\n".join(lines))
    print(f"(exit {proc.returncode})", flush=True)
    if proc.returncode not in expect:
        raise SystemExit(f"demo: {args[0]} {args[1]} exited {proc.returncode}, expected {expect}")
    return proc


def upload_version(endpoint: S3Endpoint, version: str, only: tuple[str, ...] | None = None) -> None:
    client = endpoint.client()
    for path in sorted(p for p in MODEL_SRC.rglob("*") if p.is_file()):
        relative = path.relative_to(MODEL_SRC).as_posix()
        if only is not None and relative not in only:
            continue
        key = f"{PREFIX}/{version}/{relative}"
        client.upload_file(str(path), BUCKET, key)
        print(f"  uploaded s3://{BUCKET}/{key} ({path.stat().st_size} bytes)")


def demo_generator(env: dict[str, str]) -> Path:
    heading("1. models.yaml → Kustomize overlays + Argo CD Applications")
    out = WORK / "overlays"
    run(["tfs-gitops", "generate", "-c", "models.yaml", "--out-dir", str(out)], env)
    run(["tfs-gitops", "generate", "-c", "models.yaml", "--out-dir", str(out)], env)  # unchanged re-run
    run(["tfs-gitops", "check", "-c", "models.yaml", "--out-dir", str(out)], env)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    print(f"\n{len(files)} files under {out.relative_to(ROOT)}/, e.g.:")
    for name in [f for f in files if f.startswith(("base/", "components/", "dev/half-plus-two/"))][:14]:
        print(f"  {name}")
    run(["kubectl", "kustomize", str(out / "dev" / "half-plus-two")], env, show_lines=40)
    run(["tfs-gitops", "validate", "-c", "models.yaml"], env)
    return out


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"demo: expected {what}")


def demo_story(endpoint: S3Endpoint, env: dict[str, str], overlays: Path) -> None:
    heading("2. The origin's model in S3: half_plus_two 00000123")
    endpoint.client().create_bucket(Bucket=BUCKET)
    upload_version(endpoint, "00000123")
    run(["tfs-gitops", "verify", BASE_PATH, "--signature", "serving_default"], env)
    run(["tfs-gitops", "inspect", BASE_PATH], env, show_lines=24)

    story = WebhookStory(endpoint, overlays / "dev" / "half-plus-two", WORK / "webhook")
    try:
        heading("3. Argo CD syncs overlays/dev/half-plus-two (policy: all versions): the webhook decides")
        expect(story.apply(), "the complete model to be admitted")

        heading("4. A new version is being uploaded: 00000124 holds only saved_model.pb so far")
        upload_version(endpoint, "00000124", only=("saved_model.pb",))
        run(["tfs-gitops", "verify", BASE_PATH], env, expect=(1,))
        expect(not story.apply(what="the same Deployment, re-synced"), "the partial version to be denied")

        heading("5. The upload of 00000124 completes")
        upload_version(endpoint, "00000124", only=("variables/variables.index",
                                                   "variables/variables.data-00000-of-00001",
                                                   "assets/foo.txt"))
        run(["tfs-gitops", "verify", BASE_PATH, "--policy", "all"], env)
        expect(story.apply(), "the completed model to be admitted")

        heading("6. Someone switches to the GPU image but forgets the GPU")
        expect(not story.apply(without_gpu_but_gpu_image(story.deployment), "GPU image, no GPU"),
               "a GPU image without a GPU to be denied")
    finally:
        story.close()


def promoted(catalogue: str, version: int) -> str:
    """The catalogue with prod's half-plus-two pinned (and labelled stable) at `version`."""
    pinned = catalogue.replace("{specific: [123]}", f"{{specific: [{version}]}}")
    return pinned.replace("{stable: 123}", f"{{stable: {version}}}")


def demo_pr_preview(endpoint: S3Endpoint, env: dict[str, str]) -> None:
    heading("7. A pull request promotes prod to 124: what the reviewer sees (tfs-gitops diff --verify)")
    repo = GitRepo(WORK / "pr")
    catalogue = (ROOT / "models.yaml").read_text(encoding="utf-8")
    repo.commit({"models.yaml": catalogue}, "the catalogue")
    repo.branch("promote-124")
    repo.commit({"models.yaml": promoted(catalogue, 124)}, "prod: half_plus_two 124")
    models = str(repo.path / "models.yaml")
    run(["git", "-C", str(repo.path), "diff", "main", "--", "models.yaml"], env)
    preview = ["tfs-gitops", "diff", "-c", models, "--verify", "--endpoint-url", endpoint.url]
    run(preview, env)
    run([*preview, "-o", "markdown"], env, show_lines=16)

    heading("8. Another pull request promotes prod to 125, whose upload is still partial")
    upload_version(endpoint, "00000125", only=("saved_model.pb",))
    repo.checkout("main")
    repo.branch("promote-125")
    repo.commit({"models.yaml": promoted(catalogue, 125)}, "prod: half_plus_two 125")
    result = run(preview, env, expect=(1,), show_lines=8)
    expect("INVALID" in result.stdout, "the preview to find 125 invalid")


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    with SeaweedFS(workdir=WORK / "s3") as endpoint:
        print(f"Embedded S3 (SeaweedFS) at {endpoint.url}")
        env = dict(os.environ, **endpoint.env())
        overlays = demo_generator(env)
        demo_story(endpoint, env, overlays)
        demo_pr_preview(endpoint, env)
    heading("Done: generated, checked, validated; verified in S3; admitted, denied, admitted, denied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
