"""`tfs-gitops publish`, `tfs-gitops sync`, `tfs-gitops watch`: model delivery from the command line.

Exit codes as `verify`: 0 done/valid, 1 refused or invalid, 3 storage failure (cannot verify), 2 usage.
boto3 and prometheus_client are imported only when a command runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from rulebook.sync import DEFAULT_INTERVAL_SECONDS, HTTP_PORT
from tfs_gitops.cli.options import output_option
from tfs_gitops.cli.verify import (
    EXIT_CANNOT_VERIFY,
    EXIT_INVALID,
    EXIT_VALID,
    PolicyType,
    _base_path,
    endpoint_url_option,
)

DEFAULT_JOBS = 10  # as boto3's upload_file/download_file


def _settings(endpoint_url: str | None):
    from savedmodel import S3Settings

    return S3Settings.from_env(os.environ, endpoint_url=endpoint_url)


def _store(endpoint_url: str | None, jobs: int):
    from delivery.transfer import transfer_store

    settings = _settings(endpoint_url)
    try:
        return transfer_store(settings, jobs=jobs)
    except ValueError as exc:
        raise click.UsageError(f"cannot use the S3 endpoint {settings.endpoint_url!r}: {exc}") from None


def _s3_options(func):
    func = endpoint_url_option(func)
    func = click.option(
        "--jobs",
        type=click.IntRange(1, 64),
        default=DEFAULT_JOBS,
        show_default=True,
        help="Requests in flight at once.",
    )(func)
    func = click.option(
        "--signature", metavar="NAME", help="Signature that must exist, e.g. serving_default."
    )(func)
    return click.option(
        "--tag",
        "tags",
        multiple=True,
        metavar="TAG",
        help="MetaGraph tag set to load (repeatable; default: serve).",
    )(func)


def _tags(tags: tuple[str, ...]) -> frozenset[str]:
    from savedmodel import DEFAULT_TAGS

    return frozenset(tags) if tags else DEFAULT_TAGS


def _stamp(message: str) -> None:
    click.echo(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {message}")


# -- publish ----------------------------------------------------------------------------------------------


@click.command()
@click.argument("local_dir", type=click.Path(path_type=Path), metavar="LOCAL_DIR")
@click.argument("base_path", callback=_base_path, metavar="s3://BUCKET/PREFIX")
@click.option(
    "--version", "version", type=click.IntRange(min=0), help="Version number (default: highest + 1)."
)
@click.option("--dry-run", is_flag=True, help="Check and plan, write nothing.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal, off in CI)."
)
@_s3_options
@output_option()
def publish(
    local_dir, base_path, version, dry_run, progress, endpoint_url, jobs, signature, tags, output_format
):
    """Upload the SavedModel in LOCAL_DIR as a new version under s3://BUCKET/PREFIX, atomically for readers.

    LOCAL_DIR is one version directory (it holds saved_model.pb). It is checked against the SavedModel
    contract first; the version is the highest existing + 1 unless --version is given, zero-padded like
    the existing ones, and never overwritten. Every file goes up as a multipart upload to its final key
    (no listing shows it until it is completed); once every part has landed the uploads are completed,
    saved_model.pb last, each checked, and the version verified.
    Exit 0 published, 1 refused (invalid model, version exists), 3 storage failure, 2 usage.
    """
    from delivery.publish import Publisher, PublishFailed, PublishRefused

    quiet = output_format == "json"
    say = (lambda _m: None) if quiet else click.echo
    show_bar = progress if progress is not None else (sys.stderr.isatty() and not os.environ.get("CI"))
    bar = _ProgressBar() if show_bar and not dry_run else None
    publisher = Publisher(
        _store(endpoint_url, jobs), jobs=jobs, notify=say, on_bytes=bar.update if bar else None
    )
    ctx = click.get_current_context()
    try:
        plan = publisher.plan(local_dir, base_path, version, signature=signature, tags=_tags(tags))
    except PublishRefused as exc:
        _publish_refused(exc, output_format)
        ctx.exit(EXIT_INVALID)
    except PublishFailed as exc:
        _publish_failed(exc, output_format)
        ctx.exit(EXIT_CANNOT_VERIFY)
    _describe_plan(plan, say)
    if dry_run:
        say(f"dry run: would publish {plan.version_url} ({len(plan.files)} files, {plan.bytes:,} bytes)")
        if quiet:
            click.echo(json.dumps({"published": False, "dry_run": True, **_plan_json(plan)}, indent=2))
        ctx.exit(EXIT_VALID)
    if bar is not None:
        bar.start(plan.bytes)
    try:
        result = publisher.publish(plan)
    except PublishRefused as exc:
        _publish_refused(exc, output_format)
        ctx.exit(EXIT_INVALID)
    except PublishFailed as exc:
        _publish_failed(exc, output_format)
        ctx.exit(EXIT_CANNOT_VERIFY)
    finally:
        if bar is not None:
            bar.finish()
    rate = plan.bytes / result.seconds / 1024 / 1024 if result.seconds > 0 else 0.0
    speed = f", {rate:.1f} MiB/s" if plan.bytes >= 1024 * 1024 else ""
    say(f"published {plan.version_url} ({plan.bytes:,} bytes in {result.seconds:.1f} s{speed})")
    if quiet:
        click.echo(
            json.dumps(
                {
                    "published": True,
                    "dry_run": False,
                    "seconds": round(result.seconds, 3),
                    **_plan_json(plan),
                    "verify": result.report.to_json(),
                },
                indent=2,
            )
        )
    ctx.exit(EXIT_VALID)


def _describe_plan(plan, say) -> None:
    graphs = plan.local_report.meta_graphs
    signatures = sorted({s.key for g in graphs for s in g.signatures if not s.key.startswith("__")})
    say(
        f"checked {plan.local_dir}: a valid SavedModel ({len(plan.files)} files, {plan.bytes:,} bytes; "
        f"signatures: {', '.join(signatures) or 'none'})"
    )
    highest = f"highest existing: {plan.existing[0]}" if plan.existing else "no version there yet"
    say(f"version {plan.number} → {plan.version_url} ({highest})")


def _plan_json(plan) -> dict:
    return {
        "local_dir": str(plan.local_dir),
        "version": plan.number,
        "path": plan.version_url,
        "files": [{"path": f.path, "size": f.size} for f in plan.files],
        "bytes": plan.bytes,
    }


def _publish_refused(exc, output_format: str) -> None:
    if output_format == "json":
        click.echo(json.dumps({"published": False, "refused": exc.reasons}, indent=2))
        return
    click.echo("refused, nothing was written:", err=True)
    for reason in exc.reasons:
        click.echo(f"  {reason}", err=True)


def _publish_failed(exc, output_format: str) -> None:
    if output_format == "json":
        click.echo(
            json.dumps(
                {
                    "published": False,
                    "error": exc.message,
                    "error_kind": exc.kind,
                    "leftovers": list(exc.leftovers),
                },
                indent=2,
            )
        )
        return
    click.echo(f"publish failed ({exc.kind}): {exc.message}", err=True)
    if exc.leftovers:
        click.echo(f"  could not clean up (remove by hand): {', '.join(exc.leftovers)}", err=True)
    else:
        click.echo("  nothing is left behind: no version directory was created", err=True)


class _ProgressBar:
    """click's progress bar on stderr, fed from the transfer threads (the callback holds a lock)."""

    def __init__(self) -> None:
        self._bar = None

    def start(self, total: int) -> None:
        self._bar = click.progressbar(
            length=max(total, 1), label="uploading", file=sys.stderr, show_pos=False
        )
        self._bar.__enter__()

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


# -- sync and watch -----------------------------------------------------------------------------------------


def _listen(ctx, param, value):
    if value is None or value.lower() in ("", "off", "none"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT (or :PORT, or off), not {value!r}")
    return (host or "0.0.0.0", int(port))


def _loop_options(func):
    func = click.option(
        "--listen",
        default=f":{HTTP_PORT}",
        show_default=True,
        callback=_listen,
        metavar="HOST:PORT",
        help="Serve /healthz, /readyz, /metrics here ('off': no HTTP server).",
    )(func)
    func = click.option("--once", is_flag=True, help="One pass, then exit (an init container).")(func)
    func = click.option(
        "--interval",
        type=click.FloatRange(min=0.1),
        default=float(DEFAULT_INTERVAL_SECONDS),
        show_default=True,
        help="Seconds between passes over S3.",
    )(func)
    return click.option("--model", "model_name", metavar="NAME", help="The metrics' model label.")(func)


@click.command()
@click.argument("source", callback=_base_path, metavar="s3://BUCKET/PREFIX")
@click.argument("dest", required=False, type=click.Path(file_okay=False, path_type=Path), metavar="DEST")
@click.option(
    "--policy",
    type=PolicyType(),
    default="latest",
    show_default=True,
    help="latest | latest:N | all | specific:V1,V2",
)
@click.option(
    "--no-copy", is_flag=True, help="Only check what TF Serving will load next (= tfs-gitops watch)."
)
@click.option(
    "--prune-after",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Remove a version this long after the policy dropped it (default: the interval; give TF Serving's "
    "--file_system_poll_wait_seconds or more).",
)
@_loop_options
@_s3_options
def sync(
    source,
    dest,
    policy,
    no_copy,
    prune_after,
    model_name,
    interval,
    once,
    listen,
    endpoint_url,
    jobs,
    signature,
    tags,
):
    """Mirror the versions POLICY selects from s3://BUCKET/PREFIX into DEST, each only once it is complete.

    Every version is downloaded into a hidden directory in DEST, checked (sizes, ETags, the SavedModel
    contract), fsynced and renamed into place: TF Serving never sees a partial version. When the newest
    version is invalid the previous valid one stays. With --once: one pass (an init container), exit 0
    when every selected version is in place. Without: a loop, with /healthz, /readyz and /metrics.
    """
    from delivery.sync import ModelSpec

    if dest is None and not no_copy:
        raise click.UsageError("DEST is required (or --no-copy, to only check)")
    name = model_name or (dest.name if dest is not None else _model_name(source))
    spec = ModelSpec(name, source, policy, None if no_copy else dest)
    prune = interval if prune_after is None else prune_after
    _run([spec], lambda: None, interval, once, listen, endpoint_url, jobs, signature, tags, prune)


@click.command()
@click.argument("source", required=False, callback=_base_path, metavar="[s3://BUCKET/PREFIX]")
@click.option(
    "--policy",
    type=PolicyType(),
    default="latest",
    show_default=True,
    help="With SOURCE: latest | latest:N | all | specific:V1,V2",
)
@click.option(
    "--model-config-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="TF Serving's models.config: watch every model in it (re-read when it changes).",
)
@_loop_options
@_s3_options
def watch(
    source, policy, model_config_file, model_name, interval, once, listen, endpoint_url, jobs, signature, tags
):
    """Check, every interval, that what TF Serving will load next from S3 is a valid SavedModel.

    Nothing is copied: this is the sidecar's loop for native mode (TF Serving reads S3 itself), where no
    admission review sees an upload. Exports the same metrics as `sync`; tfs_model_next_load_valid is 0
    while the version TF Serving would load is invalid (a partial upload). Models come from
    --model-config-file (name, base_path, version policy) or SOURCE with --policy.
    """
    from delivery.sync import ModelSpec

    if (source is None) == (model_config_file is None):
        raise click.UsageError("give either SOURCE or --model-config-file FILE")
    if source is not None:
        specs = [ModelSpec(model_name or _model_name(source), source, policy)]
        _run(specs, lambda: None, interval, once, listen, endpoint_url, jobs, signature, tags, 0.0)
        return
    reader = _ConfigReader(model_config_file)
    specs = reader.read(first=True)
    _run(specs, reader.changed, interval, once, listen, endpoint_url, jobs, signature, tags, 0.0)


def _model_name(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1] or source


class _ConfigReader:
    """models.config → model specs; re-read when its text changes (a ConfigMap update). A broken new text
    keeps the models of the last good one, and says why."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._text: str | None = None

    def read(self, first: bool = False):
        from delivery.sync import ModelSpec
        from rulebook.modelconfig import ModelConfigError, parse_model_server_config

        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            if first:
                raise click.BadParameter(
                    f"cannot read {self.path}: {exc.strerror or exc}", param_hint="'--model-config-file'"
                ) from None
            _stamp(f"cannot re-read {self.path}: {exc.strerror or exc}; keeping the models I have")
            return None
        if text == self._text:
            return None
        try:
            entries = parse_model_server_config(text)
        except ModelConfigError as exc:
            if first:
                raise click.BadParameter(f"{self.path}: {exc}", param_hint="'--model-config-file'") from None
            _stamp(f"{self.path} changed but is invalid ({exc}); keeping the models I have")
            self._text = text
            return None
        self._text = text
        specs = []
        for entry in entries:
            if not entry.base_path.startswith("s3://"):
                _stamp(f"{entry.name}: base_path {entry.base_path} is not in S3; not watched")
                continue
            specs.append(ModelSpec(entry.name, entry.base_path, entry.policy))
        return specs

    def changed(self):
        return self.read()


def _run(
    specs, refresh_specs, interval, once, listen, endpoint_url, jobs, signature, tags, prune_after
) -> None:
    from delivery.metrics import DeliveryMetrics, StatusServer
    from delivery.sync import ModelSync, SyncLoop

    ctx = click.get_current_context()
    store = _store(endpoint_url, jobs)
    copying = any(spec.dest is not None for spec in specs)
    metrics = DeliveryMetrics(sync=copying)
    made: dict = {}

    def make(spec):
        if spec not in made:
            made[spec] = ModelSync(
                spec,
                store,
                jobs=jobs,
                prune_after=prune_after,
                tags=_tags(tags),
                signature=signature,
                notify=lambda m, msg: _stamp(f"{m}: {msg}"),
                on_bytes=metrics.count_bytes,
            )
        return made[spec]

    def on_state(state) -> None:
        metrics.update(state)
        _stamp(_state_line(state))

    try:
        syncs = [make(spec) for spec in specs]
    except OSError as exc:
        raise click.UsageError(f"cannot prepare the destination: {exc}") from None
    if once:
        states = [sync.run_pass() for sync in syncs]
        for state in states:
            on_state(state)
        ctx.exit(_once_exit(states, copying))

    def refresh():
        new_specs = refresh_specs()
        if new_specs is None:
            return None
        for gone in {s.model for s in made} - {s.model for s in new_specs}:
            metrics.forget(gone)
        _stamp(f"models: {', '.join(s.model for s in new_specs) or 'none'}")
        return [make(spec) for spec in new_specs]

    loop = SyncLoop(syncs, interval, on_state=on_state, refresh=refresh)
    server = None
    if listen is not None:
        try:
            server = StatusServer(listen, metrics, loop.ready, lambda: not loop.stopping.is_set()).start()
        except OSError as exc:
            raise click.UsageError(
                f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror or exc}"
            ) from None
        host, port = server.address
        _stamp(f"serving /healthz /readyz /metrics on {host}:{port}")
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: loop.stop())
    try:
        loop.run()
    finally:
        if server is not None:
            server.stop()
    _stamp("stopped")


def _state_line(state) -> str:
    if not state.ok:
        return f"{state.model}: pass failed ({state.error_kind}): {state.error}; keeping what is in place"
    parts = [
        f"newest in S3 {state.newest if state.newest is not None else 'none'}",
        f"selected {_versions(state.desired)}",
    ]
    if state.invalid:
        parts.append(f"invalid {_versions(state.invalid)}")
    if state.present is not None:
        parts.append(f"in place {_versions(state.present)}")
        parts.append("ready" if state.ready else "NOT READY")
    else:
        parts.append("next load valid" if state.next_load_valid else "NEXT LOAD INVALID")
    return f"{state.model}: " + ", ".join(parts)


def _versions(numbers) -> str:
    return "[" + ", ".join(str(n) for n in numbers) + "]"


def _once_exit(states, copying: bool) -> int:
    if any(not s.ok for s in states):
        return EXIT_CANNOT_VERIFY
    if copying:
        return EXIT_VALID if all(s.ready for s in states) else EXIT_INVALID
    return EXIT_VALID if all(s.next_load_valid for s in states) else EXIT_INVALID
