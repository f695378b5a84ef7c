"""`make demo`: the origin's story end to end, on an embedded S3 server (SeaweedFS on loopback).

1. The generator: models.yaml → overlays/ (into .demo/overlays), check, validate.
2. The SavedModel checks: upload half_plus_two 00000123 where the catalogue says, verify and inspect it.
3. A Kubernetes API server (kube-apiserver + etcd from e2e/cluster, when built: see scripts/demo_webhook.py)
   with the generated webhook configuration, the webhook served by gunicorn over TLS; the catalogue generated
   again with its storage endpoint at the embedded S3.
4. Argo CD's sync of dev (`kubectl apply -k`): admitted. 5. A partial 00000124 → staging's first sync is
   denied, as kubectl prints it. 6. 00000124 completed → staging admitted. 7. A GPU image without a GPU →
   denied.
8. A pull request made with `tfs-gitops promote` pins prod to 124 (complete in S3): `tfs-gitops diff
   --verify`, as text and as the PR comment's Markdown. 9. promote refuses a partial 125; forced with
   --skip-verify, the preview says invalid before anything merges.
Without the binaries, steps 4-7 show the webhook's own answers to AdmissionReviews the demo builds, and say
so.
10.-11. Model delivery: `tfs-gitops publish` (a new version, a refused invalid model, a refused overwrite),
   and the sync sidecar picking up a version uploaded file by file while inotify checks that the directory TF
   Serving reads never shows it incomplete.
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
from scripts import demo_webhook  # noqa: E402
from scripts.demo_delivery import demo_delivery  # noqa: E402

WORK = ROOT / ".demo"
MODEL_SRC = ROOT / "tests/testdata/savedmodels/saved_model_half_plus_two_cpu/00000123"
BUCKET = "models"
PREFIX = "tfserving/half_plus_two"  # the catalogue's basePath for half-plus-two
BASE_PATH = f"s3://{BUCKET}/{PREFIX}"
CATALOGUE_ENDPOINT = "endpoint: http://rgw.storage.svc:7480"


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


def cluster_overlays(endpoint: S3Endpoint, env: dict[str, str]) -> Path:
    """The catalogue as the demo cluster sees it: its storage endpoint is the embedded S3 server."""
    text = (ROOT / "models.yaml").read_text()
    if text.count(CATALOGUE_ENDPOINT) != 1:
        raise SystemExit(f"demo: models.yaml no longer has {CATALOGUE_ENDPOINT!r} once")
    catalogue = WORK / "cluster" / "models.yaml"
    catalogue.parent.mkdir(parents=True, exist_ok=True)
    catalogue.write_text(text.replace(CATALOGUE_ENDPOINT, f"endpoint: {endpoint.url}"))
    print(f"{catalogue.relative_to(ROOT)}: models.yaml with storage.endpoint {endpoint.url} "
          "(the embedded S3 server stands in for rgw.storage.svc:7480)")
    out = WORK / "cluster" / "overlays"
    generate = ["tfs-gitops", "generate", "-c", str(catalogue.relative_to(ROOT))]
    run([*generate, "--out-dir", str(out.relative_to(ROOT))], env, show_lines=3)
    return out


def demo_story(endpoint: S3Endpoint, env: dict[str, str]) -> bool:
    heading("2. The origin's model in S3: half_plus_two 00000123")
    endpoint.client().create_bucket(Bucket=BUCKET)
    upload_version(endpoint, "00000123")
    run(["tfs-gitops", "verify", BASE_PATH, "--signature", "serving_default"], env)
    run(["tfs-gitops", "inspect", BASE_PATH], env, show_lines=24)

    heading("3. The admission webhook, behind a real Kubernetes API server when one is built")
    overlays = cluster_overlays(endpoint, env)
    story = demo_webhook.story(endpoint, overlays, WORK / "cluster")
    try:
        heading("4. Argo CD syncs overlays/dev/half-plus-two (policy: all versions)")
        story.create_namespace("dev")
        expect(story.sync("dev"), "the complete model to be admitted")

        heading("5. A new version is being uploaded: 00000124 holds only saved_model.pb so far")
        upload_version(endpoint, "00000124", only=("saved_model.pb",))
        run(["tfs-gitops", "verify", BASE_PATH], env, expect=(1,))
        print("staging (policy latest: it would load 124) is synced for the first time. (dev's Deployment "
              "does not change, so there is nothing to admit there: the webhook decides on Deployments; CI's "
              "`tfs-gitops verify` is what checks an upload.)")
        story.create_namespace("staging")
        expect(not story.sync("staging"), "the partial version to be denied")

        heading("6. The upload of 00000124 completes; Argo CD retries the staging sync")
        upload_version(endpoint, "00000124", only=("variables/variables.index",
                                                   "variables/variables.data-00000-of-00001",
                                                   "assets/foo.txt"))
        run(["tfs-gitops", "verify", BASE_PATH, "--policy", "all"], env)
        expect(story.sync("staging"), "the completed model to be admitted")

        heading("7. Someone switches dev to the GPU image but forgets the GPU")
        expect(not story.switch_to_gpu_image("dev"), "a GPU image without a GPU to be denied")
    finally:
        story.close()
    return story.real_api


def demo_pr_preview(endpoint: S3Endpoint, env: dict[str, str]) -> None:
    heading("8. A pull request promotes prod to 124: tfs-gitops promote, then what the reviewer sees")
    repo = GitRepo(WORK / "pr")
    models = str(repo.path / "models.yaml")
    repo.write({"models.yaml": (ROOT / "models.yaml").read_text(encoding="utf-8")})
    run(["tfs-gitops", "generate", "-c", models], env, show_lines=1)
    repo.commit({}, "the catalogue and its tree")
    promote = ["tfs-gitops", "promote", "half-plus-two", "--env", "prod", "-c", models,
               "--endpoint-url", endpoint.url]
    repo.branch("promote-124")
    run([*promote, "--version", "124", "--label", "stable"], env, show_lines=12)
    repo.commit({}, "prod: half_plus_two 124")
    run(["git", "-C", str(repo.path), "diff", "main", "--", "models.yaml"], env)
    preview = ["tfs-gitops", "diff", "-c", models, "--verify", "--endpoint-url", endpoint.url]
    run(preview, env)
    run([*preview, "-o", "markdown"], env, show_lines=16)

    heading("9. Another pull request promotes prod to 125, whose upload is still partial")
    upload_version(endpoint, "00000125", only=("saved_model.pb",))
    repo.checkout("main")
    repo.branch("promote-125")
    run([*promote, "--version", "125", "--label", "stable"], env, expect=(1,), show_lines=8)
    print("Someone forces it (--skip-verify: loud, and marked in models.yaml); the preview still catches it:")
    run([*promote, "--version", "125", "--label", "stable", "--skip-verify"], env, show_lines=6)
    repo.commit({}, "prod: half_plus_two 125")
    result = run(preview, env, expect=(1,), show_lines=8)
    expect("INVALID" in result.stdout, "the preview to find 125 invalid")


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    with SeaweedFS(workdir=WORK / "s3") as endpoint:
        print(f"Embedded S3 (SeaweedFS) at {endpoint.url}")
        env = dict(os.environ, **endpoint.env())
        demo_generator(env)
        real_api = demo_story(endpoint, env)
        demo_pr_preview(endpoint, env)
        demo_delivery(endpoint, env, run, heading, WORK, MODEL_SRC, ROOT)
    if real_api:
        heading("Done: generated, checked, validated; verified in S3; admitted, denied, admitted, denied by "
                "a real kube-apiserver calling the webhook; previewed two PRs; published, refused, synced "
                "without a partial version")
    else:
        heading("Done: generated, checked, validated; verified in S3; the webhook's answers (no API server: "
                "`make e2e` or TFS_DEMO_BUILD=1 make demo builds one); previewed two PRs; published, "
                "refused, synced without a partial version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
