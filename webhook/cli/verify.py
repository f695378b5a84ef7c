"""`tfs-gitops verify` and `tfs-gitops inspect`: SavedModel checks over S3 from the command line.

Exit codes: 0 valid, 1 invalid, 3 cannot verify (storage unreachable, access denied, throttled, timed out),
2 usage (bad options, unreadable catalogue). Text output names every reason per version; `--output json`
adds the transfer statistics (requests, bytes).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import click

from savedmodel import (
    DEFAULT_TAGS,
    ModelReport,
    S3Path,
    S3Settings,
    SavedModelChecker,
    Verdict,
    VersionPolicy,
    deadline_in,
    render_inspect_text,
    render_verify_text,
)

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_CANNOT_VERIFY = 0, 1, 2, 3
_EXIT = {Verdict.VALID: EXIT_VALID, Verdict.INVALID: EXIT_INVALID, Verdict.CANNOT_VERIFY: EXIT_CANNOT_VERIFY}


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


def _common_options(func):
    func = click.option(
        "--endpoint-url",
        metavar="URL",
        help="S3 endpoint (overrides S3_ENDPOINT/S3_USE_HTTPS), e.g. http://127.0.0.1:8333",
    )(func)
    func = click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=60.0,
        show_default=True,
        help="Seconds allowed per model, retries included.",
    )(func)
    func = click.option(
        "--tag",
        "tags",
        multiple=True,
        metavar="TAG",
        help="MetaGraph tag set to load (repeatable; default: serve).",
    )(func)
    func = click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)(
        func
    )
    return func


def _checker(endpoint_url: str | None, settings: S3Settings | None = None) -> SavedModelChecker:
    settings = settings or S3Settings.from_env(os.environ, endpoint_url=endpoint_url)
    try:
        return SavedModelChecker(settings)
    except ValueError as exc:
        raise click.UsageError(f"cannot use the S3 endpoint {settings.endpoint_url!r}: {exc}") from None


def _emit(output: str, lines: list[str], data) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        for line in lines:
            click.echo(line)


def _exit_code(verdicts) -> int:
    verdicts = list(verdicts)
    if Verdict.INVALID in verdicts:
        return EXIT_INVALID  # a definite finding outranks "could not tell"
    if Verdict.CANNOT_VERIFY in verdicts:
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
@click.option(
    "--catalogue",
    "catalogue_path",
    default="models.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Catalogue used when no path is given.",
)
@_common_options
def verify(base_path, policy, signature, catalogue_path, endpoint_url, timeout, tags, output):
    """Prove the versions TF Serving will load from BASE_PATH are complete SavedModels.

    Without BASE_PATH, verify every (environment, model) of the catalogue with its version policy.
    Exit 0 valid, 1 invalid, 3 cannot verify, 2 usage.
    """
    tag_set = frozenset(tags) if tags else DEFAULT_TAGS
    if base_path is None:
        ctx = click.get_current_context()
        ctx.exit(_verify_catalogue(catalogue_path, policy, signature, endpoint_url, timeout, tag_set, output))
    report = _checker(endpoint_url).verify(
        base_path,
        policy or VersionPolicy("latest"),
        signature=signature,
        tags=tag_set,
        deadline=deadline_in(timeout),
    )
    _emit(output, render_verify_text(report), report.to_json())
    click.get_current_context().exit(_EXIT[report.verdict])


@dataclass(frozen=True)
class _Target:
    environment: str
    model: str
    base_path: str
    policy: VersionPolicy
    signature: str | None
    settings: S3Settings


def _catalogue_targets(
    path: str, endpoint_url: str | None, policy: VersionPolicy | None, signature: str | None
) -> list[_Target]:
    try:
        from generator.loader import load
        from generator.problems import CatalogueError
    except ImportError as exc:  # the generator package is not installed
        raise click.UsageError(
            f"verifying the catalogue needs the generator package ({exc}); pass an s3:// path instead"
        ) from None
    try:
        catalogue = load(path)
    except OSError as exc:
        raise click.UsageError(
            f"cannot read the catalogue {path}: {exc.strerror or exc}; pass an s3:// path or --catalogue FILE"
        ) from None
    except CatalogueError as exc:
        problems = getattr(exc, "problems", [])
        details = "\n".join(p.format(path) for p in problems) or str(exc)
        raise click.UsageError(f"the catalogue {path} is invalid:\n{details}") from None
    targets = []
    for deployment in catalogue.deployments:
        storage = deployment.settings.storage
        env_settings = S3Settings.from_env(os.environ)
        settings = S3Settings(
            endpoint_url=endpoint_url or storage.endpoint,
            region=storage.region,
            verify_ssl=storage.verify_ssl,
            access_key=env_settings.access_key,
            secret_key=env_settings.secret_key,
            session_token=env_settings.session_token,
        )
        targets.append(
            _Target(
                deployment.environment.name,
                deployment.model.name,
                deployment.model.base_path,
                policy or deployment.settings.version_policy,
                signature or getattr(deployment.model, "signature", None),
                settings,
            )
        )
    return targets


def _verify_catalogue(path, policy, signature, endpoint_url, timeout, tags, output) -> int:
    targets = _catalogue_targets(path, endpoint_url, policy, signature)
    checkers: dict[S3Settings, SavedModelChecker] = {}
    done: dict[tuple, ModelReport] = {}  # environments often share a model and its policy
    results: list[tuple[_Target, ModelReport]] = []
    for target in targets:
        key = (target.settings, target.base_path, target.policy, target.signature)
        if key in done:
            results.append((target, done[key]))
            continue
        checker = checkers.setdefault(target.settings, _checker(None, target.settings))
        try:
            report = checker.verify(
                target.base_path,
                target.policy,
                signature=target.signature,
                tags=tags,
                deadline=deadline_in(timeout),
            )
        except ValueError as exc:
            raise click.UsageError(f"{target.environment}/{target.model}: {exc}") from None
        done[key] = report
        results.append((target, report))
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
def inspect(base_path, version, signature, endpoint_url, timeout, tags, output):
    """Show versions, tags, signatures (inputs/outputs, dtypes, shapes), files and bytes read, from S3.

    Like `saved_model_cli show`, without TensorFlow and without downloading the model.
    """
    tag_set = frozenset(tags) if tags else DEFAULT_TAGS
    report = _checker(endpoint_url).inspect(
        base_path, version=version, signature=signature, tags=tag_set, deadline=deadline_in(timeout)
    )
    _emit(output, render_inspect_text(report), report.to_json())
    click.get_current_context().exit(_EXIT[report.verdict])


COMMANDS = [verify, inspect]
