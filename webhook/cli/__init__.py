"""Click commands that live with the webhook package, registered on the `tfs-gitops` group.

verify.py: `verify` and `inspect` (SavedModel checks over S3). serve.py: `webhook serve` and `webhook certs`.
Commands are thin: they parse options, call the library, and report.
"""

from __future__ import annotations

import importlib

import click

_COMMAND_MODULES = ("webhook.cli.verify", "webhook.cli.serve")


def register(group: click.Group) -> None:
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # that part is not built yet
        for command in module.COMMANDS:
            group.add_command(command)
