"""The `tfs-gitops` command. Each command's module is imported only when that command runs (or its help is
shown), and command modules import their heavy dependencies (boto3, Flask, gunicorn) inside the command:
`tfs-gitops generate` and `--help` stay quick and need only what the generator needs.

Conventions, as in kubectl: `-o/--output` is the output format (text, json, …) on every command; `-c` names
the catalogue wherever one is read; exit 0 clean, 1 findings, 2 usage (verify: 3 cannot verify).
"""

from __future__ import annotations

import importlib

import click

from tfs_gitops import DISTRIBUTION

# name → "module:attribute"; the order is the order of `tfs-gitops --help`.
COMMANDS = {
    "init": "tfs_gitops.cli.catalogue:init",
    "schema": "tfs_gitops.cli.catalogue:schema",
    "generate": "tfs_gitops.cli.catalogue:generate",
    "check": "tfs_gitops.cli.catalogue:check",
    "validate": "tfs_gitops.cli.catalogue:validate",
    "diff": "tfs_gitops.cli.diff:diff",
    "verify": "tfs_gitops.cli.verify:verify",
    "inspect": "tfs_gitops.cli.verify:inspect",
    "promote": "tfs_gitops.cli.promote:promote",
    "publish": "tfs_gitops.cli.delivery:publish",
    "sync": "tfs_gitops.cli.delivery:sync",
    "watch": "tfs_gitops.cli.delivery:watch",
    "webhook": "tfs_gitops.cli.webhook:webhook_group",
}


class LazyGroup(click.Group):
    """Commands named in COMMANDS, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name=DISTRIBUTION, prog_name="tfs-gitops")
def main() -> None:
    """GitOps for TensorFlow Serving on Kubernetes, models in S3-compatible storage."""
