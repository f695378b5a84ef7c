"""`tfs-gitops promote MODEL --env ENV --version N`: pin a version in one environment (a promotion or a
rollback) as a one-line change of models.yaml, verified in S3 first, then regenerate the tree.

Exit codes: 0 promoted, 1 refused (the version does not verify; nothing written), 2 usage (unknown model or
environment, a version label left behind, --skip-verify in CI without --i-know-ci), 3 cannot verify (storage
unreachable, access denied, ...; nothing written).

--skip-verify is for when S3 cannot be reached from where the change is made. It never passes silently: a
loud warning on stderr, an `UNVERIFIED` comment on the pinned line of models.yaml (the pull request shows it;
the next verified promotion of that environment removes it), and in CI (`CI` set, as every CI system does)
it is refused unless --i-know-ci is given too.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path

import click

from tfs_gitops.cli.catalogue import OUT_DIR_OPTION, UNMANAGED_HINT, _resolve_out_dir
from tfs_gitops.cli.options import catalogue_option, load_catalogue, output_option
from tfs_gitops.cli.verify import EXIT_BY_VERDICT, EXIT_INVALID, _endpoint_url

WARNING = (
    "WARNING: --skip-verify: version {version} of {model} was NOT checked in S3. Nothing proves it is a "
    "complete SavedModel, and TF Serving loads whatever is there. models.yaml marks the line UNVERIFIED; "
    "run `tfs-gitops verify` (or promote again without --skip-verify) before merging."
)


def in_ci(env=os.environ) -> bool:
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@click.command()
@click.argument("model")
@click.option("--env", "environment", required=True, metavar="ENV", help="The environment to pin it in.")
@click.option("--version", "version", required=True, type=click.IntRange(min=0), help="The version to pin.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="NAME",
    help="Point this version label at VERSION too (repeatable); required for a label that would be left "
    "on a version the pin no longer serves.",
)
@click.option(
    "--skip-verify", is_flag=True, help="Do not check the version in S3 (loudly; marked in models.yaml)."
)
@click.option("--i-know-ci", is_flag=True, help="Allow --skip-verify where CI is set.")
@click.option("--dry-run", is_flag=True, help="Show the change and verify it; write nothing.")
@click.option(
    "--endpoint-url",
    metavar="URL",
    callback=_endpoint_url,
    help="S3 endpoint to verify against instead of the catalogue's (e.g. through a tunnel).",
)
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True, help="Seconds to verify."
)
@catalogue_option()
@OUT_DIR_OPTION
@output_option()
def promote(
    model, environment, version, labels, skip_verify, i_know_ci, dry_run, endpoint_url, timeout,
    catalogue_path, out_dir, output_format,
):  # fmt: skip
    """Pin MODEL to VERSION in one environment: edit models.yaml in place (comments and formatting kept),
    verify the version in S3, regenerate the tree. A promotion or a rollback is then a one-line PR."""
    from generator import loader
    from generator.problems import CatalogueError
    from generator.promote import PromoteError, Promotion, deployment_of, promote_text

    if skip_verify and in_ci() and not i_know_ci:
        raise click.UsageError(
            "--skip-verify is refused in CI (CI is set): a promotion made by automation must be verified. "
            "Give S3 access to the job, or add --i-know-ci if a person has decided otherwise."
        )
    catalogue = load_catalogue(catalogue_path, output_format)
    promotion = Promotion(model, environment, version, tuple(dict.fromkeys(labels)), verified=not skip_verify)
    before = catalogue_path.read_text(encoding="utf-8")
    try:
        after = promote_text(before, catalogue, promotion)
        promoted = loader.loads(after, str(catalogue_path), source_name=catalogue_path.name)
    except PromoteError as exc:
        raise click.UsageError(str(exc)) from None
    except CatalogueError as exc:  # the edit made the catalogue invalid: a bug, or a rule we did not foresee
        lines = "\n".join(exc.lines())
        raise click.ClickException(f"the promoted catalogue would be invalid:\n{lines}") from None
    deployment = deployment_of(promoted, promotion)
    report = None
    if skip_verify:
        click.secho(WARNING.format(version=version, model=model), fg="red", bold=True, err=True)
    else:
        report = _verify(deployment, endpoint_url, timeout)
        code = EXIT_BY_VERDICT[report.verdict.value]
        if code != 0:
            _refused(report, promotion, catalogue_path, output_format, code)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{catalogue_path.name}",
            f"b/{catalogue_path.name}",
        )
    )
    result = None if dry_run else _write(promoted, after, catalogue_path, out_dir)
    _report(output_format, promotion, report, diff, result, catalogue_path, dry_run)


def _verify(deployment, endpoint_url, timeout):
    from savedmodel import S3Settings, SavedModelChecker, deadline_in
    from tfs_gitops.cli.verify import storage_settings

    settings = storage_settings(S3Settings.from_env(os.environ), deployment.settings.storage, endpoint_url)
    try:
        checker = SavedModelChecker(settings)
    except ValueError as exc:
        raise click.UsageError(f"cannot use the S3 endpoint {settings.endpoint_url!r}: {exc}") from None
    return checker.verify(
        deployment.model.base_path, deployment.settings.version_policy, deadline=deadline_in(timeout)
    )


def _refused(report, promotion, catalogue_path: Path, output_format: str, code: int) -> None:
    from savedmodel import render_verify_text

    why = "does not verify" if code == EXIT_INVALID else "cannot be verified"
    if output_format == "json":
        click.echo(json.dumps({"promoted": False, "verify": report.to_json()}, indent=2))
    else:
        for line in render_verify_text(report):
            click.echo(line, err=True)
    click.echo(
        f"refused: version {promotion.version} of {promotion.model} {why}; {catalogue_path} is unchanged",
        err=True,
    )
    sys.exit(code)


def _write(catalogue, text: str, catalogue_path: Path, out_dir: Path | None):
    from generator import render, tree

    catalogue, out_dir = _resolve_out_dir(catalogue, catalogue_path, out_dir)
    try:
        tree.create({catalogue_path.name: text}, catalogue_path.parent, overwrite=True)
        return out_dir, tree.write(render.render(catalogue), out_dir)
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename or out_dir}: {exc.strerror or exc}") from None


def _report(output_format, promotion, report, diff, result, catalogue_path, dry_run) -> None:
    from savedmodel import render_verify_text

    if output_format == "json":
        data = {
            "promoted": not dry_run,
            "model": promotion.model,
            "environment": promotion.environment,
            "version": promotion.version,
            "labels": list(promotion.labels),
            "verified": report is not None,
            "verify": report.to_json() if report is not None else None,
            "diff": diff,
        }
        if result is not None:
            out_dir, written = result
            data |= {"outDir": str(out_dir), "written": written.written, "deleted": written.deleted}
        click.echo(json.dumps(data, indent=2))
        return
    for line in render_verify_text(report) if report is not None else ():
        click.echo(line)
    click.echo(diff or f"{catalogue_path}: already pins version {promotion.version} there", nl=not diff)
    if result is None:
        click.echo(f"dry run: {catalogue_path} and the tree are unchanged")
        return
    out_dir, written = result
    for path in written.written:
        click.echo(f"wrote    {out_dir / path}")
    for path in written.deleted:
        click.echo(f"deleted  {out_dir / path}")
    for path in written.unmanaged:
        click.echo(f"warning: {out_dir / path} is {UNMANAGED_HINT}", err=True)
    counts = f"{len(written.written)} written, {len(written.deleted)} deleted"
    click.echo(
        f"promoted {promotion.model} to version {promotion.version} in {promotion.environment}: "
        f"{catalogue_path} and {out_dir} updated ({counts})"
    )
