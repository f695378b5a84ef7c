"""The checks, one module each, cheap local ones first. Each returns a CheckResult (the verdict), never raises
for a finding; an exception from a check is a bug and becomes the "internal error" row of the contract."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from webhook.messages import one_line, warning


class Outcome(enum.Enum):
    PASS = "pass"
    FAIL = "fail"  # the Deployment is broken: deny
    UNDECIDED = "undecided"  # cannot be told or verified: the configured choice (deny or warn) decides


@dataclass(frozen=True)
class CheckResult:
    check: str
    outcome: Outcome
    message: str = ""
    warnings: tuple[str, ...] = ()
    # For UNDECIDED: which setting decides ("on_unverifiable", "on_unresolved", "on_unknown_variant").
    choice: str = ""
    s3_requests: int = 0
    details: dict = field(default_factory=dict, compare=False)
    # Undecided only for now (out of time, a busy check pool): the decision made from it is not cached.
    transient: bool = False

    @classmethod
    def passed(cls, check: str, warnings: tuple[str, ...] = ()) -> CheckResult:
        return cls(check, Outcome.PASS, warnings=tuple(warning(w) for w in warnings))

    @classmethod
    def failed(cls, check: str, message: str) -> CheckResult:
        return cls(check, Outcome.FAIL, one_line(f"{check}: {message}"))

    @classmethod
    def undecided(cls, check: str, message: str, choice: str, transient: bool = False) -> CheckResult:
        message = one_line(f"{check}: {message}")
        return cls(check, Outcome.UNDECIDED, message, choice=choice, transient=transient)
