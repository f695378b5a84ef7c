"""`tfs-gitops diff`: what a change of the catalogue does to each environment, for a pull request's reviewers.

Exit codes: 0 done (no changes, or changes without --exit-code); 1 changes with --exit-code, or --verify found
an invalid version; 3 --verify could not verify (and found nothing invalid); 2 usage, or no preview (unknown
revision, a side's catalogue unreadable or invalid, kubectl missing, a build failing).
"""

from __future__ import annotations

from pathlib import Path

import click

from preview.reporters import GITHUB_COMMENT_LIMIT, MARKDOWN_MAX_CHARS
from tfs_gitops.cli.catalogue import OUT_DIR_OPTION
from tfs_gitops.cli.options import catalogue_option, output_option
from tfs_gitops.cli.verify import (
    EXIT_CANNOT_VERIFY,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    catalogue_targets,
    endpoint_url_option,
    max_connections_option,
    timeout_option,
    verify_targets,
)

EXIT_CHANGES = 1


@click.command()
@click.option(
    "--base",
    metavar="REF",
    help="Revision to compare with (default: the merge base of HEAD and the default branch: origin/HEAD, "
    "else main, else master).",
)
@click.option(
    "--merge-base",
    "use_merge_base",
    is_flag=True,
    help="Compare with the merge base of --base and HEAD (or --head), as `git diff --merge-base` does.",
)
@click.option("--head", metavar="REF", help="Revision to preview (default: the working tree).")
@catalogue_option()
@OUT_DIR_OPTION
@output_option("text", "markdown", "json")
@click.option(
    "--verify",
    "verify_s3",
    is_flag=True,
    help="Check in S3 the versions TF Serving will load wherever the change introduces or moves a version "
    "reference (credentials as for `tfs-gitops verify`).",
)
@endpoint_url_option
@timeout_option
@max_connections_option
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are changes, like `git diff --exit-code`.")
@click.option(
    "--max-chars",
    type=click.IntRange(2_000, GITHUB_COMMENT_LIMIT),
    default=MARKDOWN_MAX_CHARS,
    show_default=True,
    help="Markdown only: cap on the comment's length; object diffs past it are counted, not shown.",
)
@click.option("--note", metavar="TEXT", help="A line added to the report, e.g. why S3 was not verified.")
def diff(
    base,
    use_merge_base,
    head,
    catalogue_path: Path,
    out_dir,
    output_format,
    verify_s3,
    endpoint_url,
    timeout,
    max_connections,
    exit_code,
    max_chars,
    note,
):
    """Show what the catalogue's change does to each environment: models added, removed, enabled, disabled,
    settings changed, then the rendered objects that differ (kubectl kustomize, object by object).

    Reads the base with git (nothing is checked out) and compares it with the working tree, or --head.
    """
    from generator.validation import ToolMissing
    from preview.changes import CANNOT_VERIFY, INVALID, PreviewError
    from preview.reporters import reporter

    ctx = click.get_current_context()
    report = reporter(output_format, max_chars=max_chars)
    try:
        preview, head_catalogue = _preview(catalogue_path, base, use_merge_base, head, out_dir)
    except ToolMissing as exc:
        _fail(report, str(catalogue_path), PreviewError(str(exc)), output_format)
    except PreviewError as exc:
        _fail(report, str(catalogue_path), exc, output_format)
    if output_format == "text":
        for warning in preview.warnings:
            click.echo(warning, err=True)
    if note:
        preview = _with_note(preview, note)
    if verify_s3:
        preview = _verified(preview, head_catalogue, endpoint_url, timeout, max_connections)
    click.echo(report.render(preview), nl=False)
    if any(env.errors for env in preview.environments):
        ctx.exit(EXIT_USAGE)
    if preview.verdict == INVALID:
        ctx.exit(EXIT_INVALID)
    if preview.verdict == CANNOT_VERIFY:
        ctx.exit(EXIT_CANNOT_VERIFY)
    ctx.exit(EXIT_CHANGES if exit_code and preview.changed else EXIT_VALID)


def _preview(catalogue_path: Path, base: str | None, use_merge_base: bool, head: str | None, out_dir):
    from preview import compose, gitsource
    from preview.changes import PreviewError, Revision

    location = gitsource.locate(catalogue_path)
    if base is None:
        base_revision = gitsource.merge_base(location, gitsource.default_branch(location))
    elif use_merge_base:
        base_revision = gitsource.merge_base(location, base, head or "HEAD")
    else:
        base_revision = gitsource.resolve(location, base)
    base_side = compose.load(
        gitsource.read(location, base_revision),
        base_revision,
        "base",
        shown=f"{_name(base_revision)}:{location.path}",
        catalogue_path=catalogue_path,
        out_dir=out_dir,
    )
    if head:
        head_revision = gitsource.resolve(location, head)
        text = gitsource.read(location, head_revision)
        shown = f"{_name(head_revision)}:{location.path}"
    else:
        head_revision = Revision()  # the working tree
        try:
            text = catalogue_path.read_bytes()
        except FileNotFoundError:
            text = None
        except OSError as exc:
            raise PreviewError(f"cannot read {catalogue_path}: {exc.strerror or exc}") from None
        shown = str(catalogue_path)
    head_side = compose.load(
        text, head_revision, "head", shown=shown, catalogue_path=catalogue_path, out_dir=out_dir
    )
    return compose.make(location.path, base_side, head_side), head_side.catalogue


def _name(revision) -> str:
    """How git would name the revision: the ref as given, or the merge base's commit."""
    return revision.commit[:12] if revision.merge_base_with else revision.ref


def _fail(report, catalogue: str, error, output_format: str):
    click.echo(report.render_error(catalogue, error), nl=False, err=output_format == "text")
    click.get_current_context().exit(EXIT_USAGE)


def _with_note(preview, note: str):
    import dataclasses

    return dataclasses.replace(preview, notes=(*preview.notes, note))


def _verified(preview, catalogue, endpoint_url, timeout, max_connections):
    from preview.verification import from_report, to_verify, with_verifications
    from savedmodel import DEFAULT_TAGS

    wanted = set(to_verify(preview))
    deployments = [d for d in catalogue.deployments if (d.environment.name, d.model.name) in wanted]
    targets = catalogue_targets(deployments, endpoint_url)
    reports = verify_targets(targets, tags=DEFAULT_TAGS, timeout=timeout, max_connections=max_connections)
    results = {
        (target.environment, target.model): from_report(target.model, report)
        for target, report in zip(targets, reports, strict=True)
    }
    return with_verifications(preview, results)
