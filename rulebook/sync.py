"""The sync container, as the generator renders it and the webhook reads it.

In `storage.mode: sync` TF Serving reads a local directory (an emptyDir) that `tfs-gitops sync SOURCE DEST`
fills from S3: as an init container with `--once` (TF Serving starts with a model) and as a sidecar. Its
command line is the contract between the two halves:

    tfs-gitops sync s3://BUCKET/PREFIX /models/NAME --policy POLICY [--interval SECONDS] [--once]

Versions are staged under hidden names TF Serving does not parse as versions (STAGING_PREFIX…) on the same
filesystem, then renamed into place.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from rulebook.policy import VersionPolicy

PROGRAM = "tfs-gitops"
SUBCOMMAND = "sync"
HTTP_PORT = 8510  # /healthz, /readyz, /metrics of the sidecar (and of `tfs-gitops watch`)
STAGING_PREFIX = ".tfs-sync-"  # a name safe_strto64 rejects: TF Serving never treats it as a version
DEFAULT_INTERVAL_SECONDS = 30


# The options `tfs-gitops sync` accepts (tfs_gitops/cli/delivery.py); any other is refused, as the command
# refuses it, so a typo cannot make the webhook check a policy the sidecar does not use.
VALUE_OPTIONS = frozenset(
    {"policy", "interval", "prune-after", "listen", "jobs", "model", "signature", "tag", "endpoint-url"}
)
FLAG_OPTIONS = frozenset({"once"})


@dataclass(frozen=True, slots=True)
class SyncSpec:
    source: str  # s3://bucket/prefix: the model's base path in S3
    dest: str  # the local base path TF Serving reads (--model_base_path / models.config base_path)
    policy: VersionPolicy
    interval: float = DEFAULT_INTERVAL_SECONDS
    once: bool = False
    endpoint_url: str | None = None  # --endpoint-url: read S3 there instead of S3_ENDPOINT/S3_USE_HTTPS

    def args(self) -> list[str]:
        """The container's args (its command is [PROGRAM])."""
        args = [SUBCOMMAND, self.source, self.dest, "--policy", str(self.policy)]
        if self.once:
            args.append("--once")
        else:
            args += ["--interval", f"{self.interval:g}"]
        if self.endpoint_url:
            args += ["--endpoint-url", self.endpoint_url]
        return args

    @classmethod
    def parse(cls, argv: list[str]) -> SyncSpec | None:
        """A sync container's spec from its command + args; None when it does not run `tfs-gitops sync`.
        ValueError when it does but the line is malformed (an option the command would refuse included)."""
        if not argv or posixpath.basename(argv[0]) != PROGRAM or SUBCOMMAND not in argv[1:2]:
            return None
        positional, options, flags = _split(argv[2:])
        if len(positional) != 2:
            raise ValueError("expected SOURCE (s3://bucket/prefix) and DEST (a local directory)")
        policy = VersionPolicy.parse(options.get("policy", "latest"))
        interval = _seconds(options.get("interval", str(DEFAULT_INTERVAL_SECONDS)))
        return cls(
            positional[0], positional[1], policy, interval, "once" in flags, options.get("endpoint-url")
        )


def _split(items: list[str]) -> tuple[list[str], dict[str, str], set[str]]:
    positional: list[str] = []
    options: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if not item.startswith("--"):
            positional.append(item)
            continue
        name, eq, value = item[2:].partition("=")
        if name in FLAG_OPTIONS and not eq:
            flags.add(name)
            continue
        if name == "no-copy":
            raise ValueError("--no-copy fills nothing (it only watches S3)")
        if name not in VALUE_OPTIONS:
            raise ValueError(f"--{name} is not an option of tfs-gitops sync")
        if not eq:
            if i >= len(items):
                raise ValueError(f"--{name} needs a value")
            value = items[i]
            i += 1
        options[name] = value
    return positional, options, flags


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--interval must be a number of seconds, not {text!r}") from None
    if not 0.1 <= value < float("inf"):
        raise ValueError(f"--interval must be at least 0.1 seconds, not {text!r}")
    return value
