"""`tfs-gitops verify` and `tfs-gitops inspect`: SavedModel checks over S3 from the command line.

Exit codes: 0 valid, 1 invalid, 3 cannot verify (storage unreachable, access denied, throttled, timed out),
2 usage (bad options, unreadable catalogue). Text output names every reason per version; `-o json` adds the
transfer statistics (requests, bytes). The S3 library (boto3) is imported only when a command runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click

from rulebook.policy import VersionPolicy
from rulebook.s3 import S3Path
from tfs_gitops.cli.options import catalogue_option, output_option

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_CANNOT_VERIFY = 0, 1, 2, 3
MAX_CONNECTIONS = 16  # models checked at once by default (each holds one S3 connection)
EXIT_BY_VERDICT = {"valid": EXIT_VALID, "invalid": EXIT_INVALID, "cannot-verify": EXIT_CANNOT_VERIFY}


class PolicyType(click.ParamType):
    name = "policy"

    def convert(self, value, param, ctx):
        if isinstance(value, VersionPolicy):
            return value
        try:
            return VersionPolicy.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _base_path(ctx, param, value):
    if value is None:
        return None
    try:
        S3Path.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _endpoint_url(ctx, param, value):
    if value is None:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(
            f"cannot use the S3 endpoint {value!r}: it has no scheme; write http://HOST:PORT (plain HTTP, "
            "like S3_USE_HTTPS=0) or https://HOST[:PORT]"
        )
    return value.strip()


def max_connections_option(func):
    return click.option(
        "--max-connections",
        type=click.IntRange(1, 256),
        default=MAX_CONNECTIONS,
        show_default=True,
        help="Models checked at once (each holds one S3 connection) when verifying a catalogue.",
    )(func)


endpoint_url_option = click.option(
    "--endpoint-url",
    metavar="URL",
    callback=_endpoint_url,
    help="S3 endpoint (overrides S3_ENDPOINT/S3_USE_HTTPS), e.g. http://127.0.0.1:8333",
)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds allowed per model, retries included.",
)


def _common_options(func):
    func = endpoint_url_option(func)
    func = timeout_option(func)
    func = click.option(
        "--tag",
        "tags",
        multiple=True,
        metavar="TAG",
        help="MetaGraph tag set to load (repeatable; default: serve).",
    )(func)
    return output_option()(func)


def _checker(endpoint_url: str | None, settings=None):
    from savedmodel import S3Settings, SavedModelChecker

    settings = settings or S3Settings.from_env(os.environ, endpoint_url=endpoint_url)
    try:
        return SavedModelChecker(settings)
    except ValueError as exc:
        raise click.UsageError(f"cannot use the S3 endpoint {settings.endpoint_url!r}: {exc}") from None


def _tags(tags: tuple[str, ...]) -> frozenset[str]:
    from savedmodel import DEFAULT_TAGS

    return frozenset(tags) if tags else DEFAULT_TAGS


def _emit(output: str, lines: list[str], data) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        for line in lines:
            click.echo(line)


def _exit_code(verdicts) -> int:
    verdicts = {getattr(verdict, "value", verdict) for verdict in verdicts}
    if "invalid" in verdicts:
        return EXIT_INVALID  # a definite finding outranks "could not tell"
    if "cannot-verify" in verdicts:
        return EXIT_CANNOT_VERIFY
    return EXIT_VALID


@click.command()
@click.argument("base_path", required=False, callback=_base_path, metavar="[s3://BUCKET/PREFIX]")
@click.option(
    "--policy",
    type=PolicyType(),
    default=None,
    help="latest | latest:N | all | specific:V1,V2 (default: latest, or the catalogue's policy).",
)
@click.option("--signature", metavar="NAME", help="Signature that must exist, e.g. serving_default.")
@catalogue_option("Catalogue verified when no path is given.")
@max_connections_option
@_common_options
def verify(
    base_path, policy, signature, catalogue_path, max_connections, endpoint_url, timeout, tags, output_format
):
    """Prove the versions TF Serving will load from BASE_PATH are complete SavedModels.

    Without BASE_PATH, verify every (environment, model) of the catalogue with its version policy, and
    that its version labels name versions that will be loaded. Exit 0 valid, 1 invalid, 3 cannot verify,
    2 usage.
    """
    from savedmodel import deadline_in, render_verify_text

    ctx = click.get_current_context()
    if base_path is None:
        ctx.exit(
            _verify_catalogue(
                catalogue_path,
                policy,
                signature,
                endpoint_url,
                timeout,
                _tags(tags),
                output_format,
                max_connections,
            )
        )
    report = _checker(endpoint_url).verify(
        base_path,
        policy or VersionPolicy("latest"),
        signature=signature,
        tags=_tags(tags),
        deadline=deadline_in(timeout),
    )
    _emit(output_format, render_verify_text(report), report.to_json())
    ctx.exit(EXIT_BY_VERDICT[report.verdict.value])


@dataclass(frozen=True)
class Target:
    """One (environment, model) of the catalogue to verify."""

    environment: str
    model: str
    check: object  # savedmodel.batch.Check


def catalogue_targets(
    deployments, endpoint_url: str | None, policy: VersionPolicy | None = None, signature: str | None = None
) -> list[Target]:
    """What to verify for these deployments: each one's storage (or `endpoint_url`), policy and labels."""
    from savedmodel import S3Settings
    from savedmodel.batch import Check

    credentials = S3Settings.from_env(os.environ)
    targets = []
    for deployment in deployments:
        settings = storage_settings(credentials, deployment.settings.storage, endpoint_url)
        label = f"{deployment.environment.name}/{deployment.model.name}"
        check = Check(
            label,
            deployment.model.base_path,
            policy or deployment.settings.version_policy,
            settings,
            signature,
            () if policy else deployment.settings.version_labels,
        )
        targets.append(Target(deployment.environment.name, deployment.model.name, check))
    return targets


def storage_settings(credentials, storage, endpoint_url: str | None):
    """S3Settings for a catalogue storage: its endpoint (unless --endpoint-url), region and TLS
    verification, with the credentials of the environment."""
    return dataclasses.replace(
        credentials,
        endpoint_url=endpoint_url or storage.endpoint,
        region=storage.region,
        verify_ssl=storage.verify_ssl,
    )


def verify_targets(targets: list[Target], *, tags, timeout: float, max_connections: int) -> list:
    """ModelReports in target order, progress on stderr when it is a terminal (never in CI logs)."""
    from savedmodel.batch import verify_all

    show = TerminalProgress() if sys.stderr.isatty() else None
    try:
        return verify_all(
            [target.check for target in targets],
            tags=tags,
            timeout=timeout,
            max_connections=max_connections,
            progress=show,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        if show is not None:
            show.clear()


class TerminalProgress:
    """`verifying 120/1000 models in S3` rewritten in place on stderr."""

    def __init__(self) -> None:
        self.width = 0

    def __call__(self, done: int, total: int) -> None:
        text = f"verifying {done}/{total} models in S3"
        self.width = max(self.width, len(text))
        click.echo(f"\r{text}", nl=False, err=True)

    def clear(self) -> None:
        if self.width:
            click.echo("\r" + " " * self.width + "\r", nl=False, err=True)


def _catalogue_deployments(path: Path):
    from generator.loader import load
    from generator.problems import CatalogueError

    try:
        return load(path).deployments
    except OSError as exc:
        raise click.UsageError(
            f"cannot read the catalogue {path}: {exc.strerror or exc}; pass an s3:// path or -c FILE"
        ) from None
    except CatalogueError as exc:
        raise click.UsageError(f"the catalogue {path} is invalid:\n" + "\n".join(exc.lines())) from None


def _verify_catalogue(path, policy, signature, endpoint_url, timeout, tags, output, max_connections) -> int:
    from savedmodel import Verdict, render_verify_text

    targets = catalogue_targets(_catalogue_deployments(path), endpoint_url, policy, signature)
    reports = verify_targets(targets, tags=tags, timeout=timeout, max_connections=max_connections)
    results = list(zip(targets, reports, strict=True))
    code = _exit_code(report.verdict for _, report in results)
    lines: list[str] = []
    for target, report in results:
        lines += render_verify_text(report, label=f"{target.environment}/{target.model} ({report.base_path})")
    if not results:
        lines.append(f"{path}: no (environment, model) pair to verify")
    summary = {verdict: sum(1 for _, r in results if r.verdict is verdict) for verdict in Verdict}
    lines.append(
        f"{len(results)} checked: {summary[Verdict.VALID]} valid, {summary[Verdict.INVALID]} invalid, "
        f"{summary[Verdict.CANNOT_VERIFY]} cannot verify"
    )
    data = {
        "verdict": {EXIT_VALID: "valid", EXIT_INVALID: "invalid", EXIT_CANNOT_VERIFY: "cannot-verify"}[code],
        "results": [{"environment": t.environment, "model": t.model, **r.to_json()} for t, r in results],
    }
    _emit(output, lines, data)
    return code


@click.command()
@click.argument("base_path", callback=_base_path, metavar="s3://BUCKET/PREFIX")
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=0),
    default=None,
    help="Only this version (default: every version).",
)
@click.option("--signature", metavar="NAME", help="Signature that must exist, e.g. serving_default.")
@_common_options
def inspect(base_path, version, signature, endpoint_url, timeout, tags, output_format):
    """Show versions, tags, signatures (inputs/outputs, dtypes, shapes), files and bytes read, from S3.

    Like `saved_model_cli show`, without TensorFlow and without downloading the model.
    """
    from savedmodel import deadline_in, render_inspect_text

    report = _checker(endpoint_url).inspect(
        base_path, version=version, signature=signature, tags=_tags(tags), deadline=deadline_in(timeout)
    )
    _emit(output_format, render_inspect_text(report), report.to_json())
    click.get_current_context().exit(EXIT_BY_VERDICT[report.verdict.value])
