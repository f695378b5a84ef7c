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
# `tfs-gitops publish` uploads under BASE/.tfs-publish-<version>-<random>/ before copying into BASE/<version>/
PUBLISH_STAGING_PREFIX = ".tfs-publish-"
DEFAULT_INTERVAL_SECONDS = 30


@dataclass(frozen=True, slots=True)
class SyncSpec:
    source: str  # s3://bucket/prefix: the model's base path in S3
    dest: str  # the local base path TF Serving reads (--model_base_path / models.config base_path)
    policy: VersionPolicy
    interval: int = DEFAULT_INTERVAL_SECONDS
    once: bool = False

    def args(self) -> list[str]:
        """The container's args (its command is [PROGRAM])."""
        args = [SUBCOMMAND, self.source, self.dest, "--policy", str(self.policy)]
        if self.once:
            args.append("--once")
        else:
            args += ["--interval", str(self.interval)]
        return args

    @classmethod
    def parse(cls, argv: list[str]) -> SyncSpec | None:
        """A sync container's spec from its command + args; None when it does not run `tfs-gitops sync`.
        ValueError when it does but the line is malformed."""
        if not argv or posixpath.basename(argv[0]) != PROGRAM or SUBCOMMAND not in argv[1:2]:
            return None
        positional: list[str] = []
        options: dict[str, str] = {}
        once = False
        rest = argv[2:]
        i = 0
        while i < len(rest):
            item = rest[i]
            i += 1
            if item == "--once":
                once = True
            elif item.startswith("--"):
                name, eq, value = item[2:].partition("=")
                if not eq:
                    if i >= len(rest):
                        raise ValueError(f"--{name} needs a value")
                    value = rest[i]
                    i += 1
                options[name] = value
            else:
                positional.append(item)
        if len(positional) != 2:
            raise ValueError("expected SOURCE (s3://bucket/prefix) and DEST (a local directory)")
        policy = VersionPolicy.parse(options.get("policy", "latest"))
        interval = options.get("interval", str(DEFAULT_INTERVAL_SECONDS))
        if not interval.isdigit():
            raise ValueError(f"--interval must be a whole number of seconds, not {interval!r}")
        return cls(positional[0], positional[1], policy, int(interval), once)
