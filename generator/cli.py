"""The `tfs-gitops` command: thin click commands over the library (exit 0 clean, 1 findings, 2 usage).

Generator commands live here; verify/inspect and `webhook ...` are registered from webhook.cli.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tfserving-gitops")
def main() -> None:
    """GitOps for TensorFlow Serving on Kubernetes, models in S3-compatible storage."""


def _register_webhook_commands() -> None:
    try:
        from webhook.cli import register
    except ImportError:  # webhook commands not built yet
        return
    register(main)


_register_webhook_commands()
