"""`tfs-gitops webhook serve` and `tfs-gitops webhook certs` (Flask and gunicorn load only when they run)."""

from __future__ import annotations

import click

from rulebook.names import WEBHOOK_HTTPS_PORT


def require_webhook_extra() -> None:
    """A clear usage error, not a traceback, when the webhook's libraries are not installed."""
    import importlib.util

    needed = ("flask", "gunicorn", "cryptography", "kubernetes")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise click.UsageError(
            f"the webhook needs {', '.join(missing)}: pip install 'tfserving-gitops[webhook]'"
        )


def _bind(ctx, param, value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter("expected HOST:PORT, e.g. 0.0.0.0:8443")
    return value


@click.group("webhook")
def webhook_group() -> None:
    """The validating admission webhook for TF Serving Deployments."""


@webhook_group.command("serve")
@click.option(
    "--bind",
    default=f"127.0.0.1:{WEBHOOK_HTTPS_PORT}",
    show_default=True,
    callback=_bind,
    help="HOST:PORT to listen on.",
)
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="gthread threads (default 64).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="gunicorn worker processes (default 1: one process keeps one cache and single-flight).",
)
def serve(
    bind: str, certfile: str | None, keyfile: str | None, threads: int | None, workers: int | None
) -> None:
    """Serve /validate, /healthz, /readyz and /metrics with gunicorn (TLS 1.2+ when given a certificate;
    plain HTTP without one, for local use only). Configuration comes from WEBHOOK_* environment variables."""
    import os

    from webhook.config import ConfigError, WebhookConfig

    if bool(certfile) != bool(keyfile):
        raise click.UsageError("--certfile and --keyfile go together")
    try:
        config = WebhookConfig.from_env(os.environ)
    except ConfigError as exc:
        raise click.UsageError(f"bad configuration: {exc}") from None
    if config.client_ca_file and not certfile:
        raise click.UsageError("WEBHOOK_CLIENT_CA_FILE needs --certfile and --keyfile")
    if config.client_ca_file and not os.path.isfile(config.client_ca_file):
        raise click.UsageError(f"WEBHOOK_CLIENT_CA_FILE {config.client_ca_file!r} is not a file")
    if not certfile:
        click.echo("warning: no --certfile/--keyfile: serving plain HTTP (local use only)", err=True)
    require_webhook_extra()
    from webhook.server import run

    overrides = {key: value for key, value in (("threads", threads), ("workers", workers)) if value}
    run(bind, certfile, keyfile, **overrides)


@webhook_group.command("certs")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=".webhook-certs",
    show_default=True,
    help="Directory for ca.crt, ca.key, tls.crt, tls.key.",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="DNS name or IP for the certificate (repeatable; default localhost and 127.0.0.1).",
)
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True)
def certs(out_dir: str, hosts: tuple[str, ...], days: int) -> None:
    """Make a local CA and a serving certificate signed by it (in a cluster, cert-manager does this)."""
    require_webhook_extra()
    from webhook.certs import make_certs

    paths = make_certs(out_dir, hosts or ("localhost", "127.0.0.1"), days)
    click.echo(f"CA certificate:      {paths.ca_cert}")
    click.echo(f"serving certificate: {paths.cert}")
    click.echo(f"serving key:         {paths.key}")
    click.echo(f"run: tfs-gitops webhook serve --certfile {paths.cert} --keyfile {paths.key}")
