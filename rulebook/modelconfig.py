"""TF Serving's ModelServerConfig text proto (the --model_config_file): rendered and parsed here, once.

`render_model_server_config` writes what the generator ships; `parse_model_server_config` reads what a
Deployment's ConfigMap holds, without protobuf: the text format (comments, `field: value`, `field { ... }` or
`field: < ... >`, optional `,`/`;` separators, `[a, b]` lists, concatenated strings) into nested field lists,
then `model_config_list { config { ... } ... }` into ModelEntry values with their version policy and labels.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from rulebook.policy import VersionPolicy

MAX_DEPTH = 32
MAX_TEXT = 1024 * 1024

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)[fF]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}<>:,;\[\]])
""",
    re.VERBOSE,
)
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "?": "?",
}


class ModelConfigError(ValueError):
    """The text is not a ModelServerConfig TF Serving would accept."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    base_path: str
    platform: str = "tensorflow"
    policy: VersionPolicy = VersionPolicy("latest")
    labels: tuple[tuple[str, int], ...] = ()


# --- rendering ---------------------------------------------------------------------------------------------


def render_model_server_config(entries: Iterable[ModelEntry]) -> str:
    """The ModelServerConfig text proto TF Serving reads with --model_config_file."""
    lines = ["model_config_list {"]
    for entry in entries:
        lines += [
            "  config {",
            f"    name: {quote(entry.name)}",
            f"    base_path: {quote(entry.base_path)}",
            f"    model_platform: {quote(entry.platform)}",
            "    model_version_policy {",
            *_render_policy(entry.policy),
            "    }",
        ]
        for label, version in entry.labels:
            lines += [
                "    version_labels {",
                f"      key: {quote(label)}",
                f"      value: {version}",
                "    }",
            ]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _render_policy(policy: VersionPolicy) -> list[str]:
    if policy.kind == "all":
        return ["      all {", "      }"]
    if policy.kind == "specific":
        return ["      specific {", *(f"        versions: {v}" for v in policy.versions), "      }"]
    return ["      latest {", f"        num_versions: {policy.count}", "      }"]


def quote(value: str) -> str:
    """A text-format string literal: C escapes, non-ASCII kept as UTF-8 (what protobuf's printer does)."""
    out = []
    for ch in value:
        if ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_QUOTE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "'": "\\'"}


# --- text format -------------------------------------------------------------------------------------------

Field = tuple[str, object]  # (name, str | int | float | bool-ish ident | list[Field])


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            line = text.count("\n", 0, pos) + 1
            raise ModelConfigError(f"line {line}: unexpected character {text[pos]!r}")
        if match.lastgroup != "ws":
            out.append((match.lastgroup, match.group(), text.count("\n", 0, pos) + 1))
        pos = match.end()
    return out


def _unquote(token: str) -> str:
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1 :]).group()
            out.append(chr(int(digits, 8)))
            i += 1 + len(digits)
        elif nxt == "x" and re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :]):
            digits = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :]).group()
            out.append(chr(int(digits, 16)))
            i += 2 + len(digits)
        else:
            raise ModelConfigError(f"unknown escape \\{nxt} in string {token}")
    return "".join(out)


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise ModelConfigError("unexpected end of text")
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, text, line = self.take()
        if text != value or kind != "punct":
            raise ModelConfigError(f"line {line}: expected {value!r}, found {text!r}")

    def message(self, close: str | None, depth: int) -> list[Field]:
        if depth > MAX_DEPTH:
            raise ModelConfigError(f"nesting deeper than {MAX_DEPTH}")
        fields: list[Field] = []
        while True:
            tok = self.peek()
            if tok is None:
                if close is not None:
                    raise ModelConfigError(f"unexpected end of text: missing {close!r}")
                return fields
            kind, text, line = tok
            if kind == "punct" and text == close:
                self.i += 1
                return fields
            if kind != "ident":
                raise ModelConfigError(f"line {line}: expected a field name, found {text!r}")
            self.i += 1
            fields.extend((text, value) for value in self.field_values(depth, line, text))
            nxt = self.peek()
            if nxt is not None and nxt[0] == "punct" and nxt[1] in ",;":
                self.i += 1

    def field_values(self, depth: int, line: int, name: str) -> list[object]:
        tok = self.peek()
        if tok is None:
            raise ModelConfigError(f"line {line}: field {name} has no value")
        colon = tok[0] == "punct" and tok[1] == ":"
        if colon:
            self.i += 1
            tok = self.peek()
            if tok is None:
                raise ModelConfigError(f"line {line}: field {name} has no value")
        if tok[0] == "punct" and tok[1] in "{<":
            self.i += 1
            return [self.message("}" if tok[1] == "{" else ">", depth + 1)]
        if not colon:
            raise ModelConfigError(f"line {tok[2]}: expected ':' or '{{' after {name}")
        if tok[0] == "punct" and tok[1] == "[":
            self.i += 1
            return self.list_values(depth)
        return [self.scalar()]

    def list_values(self, depth: int) -> list[object]:
        values: list[object] = []
        while True:
            tok = self.peek()
            if tok is not None and tok[0] == "punct" and tok[1] == "]":
                self.i += 1
                return values
            if tok is not None and tok[0] == "punct" and tok[1] in "{<":
                self.i += 1
                values.append(self.message("}" if tok[1] == "{" else ">", depth + 1))
            else:
                values.append(self.scalar())
            tok = self.peek()
            if tok is not None and tok[0] == "punct" and tok[1] == ",":
                self.i += 1

    def scalar(self) -> object:
        kind, text, line = self.take()
        if kind == "string":
            parts = [_unquote(text)]
            while (tok := self.peek()) is not None and tok[0] == "string":
                parts.append(_unquote(self.take()[1]))
            return "".join(parts)
        if kind == "number":
            cleaned = text.rstrip("fF") if not text.lower().startswith(("0x", "-0x", "+0x")) else text
            try:
                return (
                    int(cleaned, 0)
                    if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|\d+)", cleaned)
                    else float(cleaned)
                )
            except ValueError:
                raise ModelConfigError(f"line {line}: bad number {text!r}") from None
        if kind == "ident":
            return text
        raise ModelConfigError(f"line {line}: expected a value, found {text!r}")


def parse_text(text: str) -> list[Field]:
    """Parse protobuf text format into nested [(name, value)] lists."""
    if len(text) > MAX_TEXT:
        raise ModelConfigError(f"larger than {MAX_TEXT} characters")
    return _Parser(text).message(None, 0)


# --- ModelServerConfig -------------------------------------------------------------------------------------

_CONFIG_FIELDS = {
    "name",
    "base_path",
    "model_platform",
    "model_type",
    "model_version_policy",
    "version_labels",
    "logging_config",
}


@functools.lru_cache(maxsize=256)  # immutable result; the same ConfigMap text arrives with every admission
def parse_model_server_config(text: str) -> tuple[ModelEntry, ...]:
    """The models a ModelServerConfig text proto makes TF Serving load; ModelConfigError if it would
    not start."""
    fields = parse_text(text)
    lists = _messages(fields, "model_config_list")
    for name, _ in fields:
        if name == "custom_model_config":
            raise ModelConfigError("custom_model_config is not supported by the webhook")
        if name != "model_config_list":
            raise ModelConfigError(f"unknown field {name!r} in ModelServerConfig")
    if len(lists) > 1:
        raise ModelConfigError("model_config_list appears more than once")
    entries = [_entry(config) for cfg_list in lists for config in _messages(cfg_list, "config", strict=True)]
    names = [entry.name for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ModelConfigError(f"model name {duplicates[0]!r} appears more than once")
    return tuple(entries)


def _messages(fields: list[Field], name: str, *, strict: bool = False) -> list[list[Field]]:
    out = []
    for key, value in fields:
        if key != name:
            if strict:
                raise ModelConfigError(f"unknown field {key!r} in model_config_list")
            continue
        if not isinstance(value, list):
            raise ModelConfigError(f"{name} must be a message, not {value!r}")
        out.append(value)
    return out


def _single(fields: list[Field], name: str, where: str) -> object | None:
    values = [value for key, value in fields if key == name]
    if len(values) > 1:
        raise ModelConfigError(f"{name} appears more than once in {where}")
    return values[0] if values else None


def _entry(config: list[Field]) -> ModelEntry:
    for key, _ in config:
        if key not in _CONFIG_FIELDS:
            raise ModelConfigError(f"unknown field {key!r} in config")
    name = _single(config, "name", "config")
    where = f"config {name!r}" if isinstance(name, str) else "config"
    base_path = _single(config, "base_path", where)
    platform = _single(config, "model_platform", where) or "tensorflow"
    if not isinstance(name, str) or not name:
        raise ModelConfigError("a config has no name")
    if not isinstance(base_path, str) or not base_path:
        raise ModelConfigError(f"{where} has no base_path")
    if not isinstance(platform, str):
        raise ModelConfigError(f"{where}: model_platform must be a string")
    policy_fields = _single(config, "model_version_policy", where)
    policy = _policy(policy_fields, where) if policy_fields is not None else VersionPolicy("latest")
    labels = tuple(_label(entry, where) for key, entry in config if key == "version_labels")
    label_names = [label for label, _ in labels]
    if len(set(label_names)) != len(label_names):
        raise ModelConfigError(f"{where}: a version label appears more than once")
    return ModelEntry(name=name, base_path=base_path, platform=platform, policy=policy, labels=labels)


def _policy(fields: object, where: str) -> VersionPolicy:
    if not isinstance(fields, list) or len(fields) != 1 or not isinstance(fields[0][1], list):
        raise ModelConfigError(
            f"{where}: model_version_policy must hold exactly one of latest, all, specific"
        )
    kind, body = fields[0]
    if kind == "all":
        if body:
            raise ModelConfigError(f"{where}: all {{}} takes no fields")
        return VersionPolicy("all")
    if kind == "latest":
        count = _single(body, "num_versions", where)
        if count is not None and not isinstance(count, int):
            raise ModelConfigError(f"{where}: num_versions must be an integer")
        if any(key != "num_versions" for key, _ in body):
            raise ModelConfigError(f"{where}: latest {{}} takes only num_versions")
        return VersionPolicy("latest", count=max(count or 1, 1))  # TF Serving serves at least one
    if kind == "specific":
        versions = [value for key, value in body if key == "versions"]
        if any(key != "versions" for key, _ in body):
            raise ModelConfigError(f"{where}: specific {{}} takes only versions")
        if not versions or not all(isinstance(v, int) and v >= 0 for v in versions):
            raise ModelConfigError(f"{where}: specific {{}} needs one or more non-negative integer versions")
        return VersionPolicy("specific", versions=tuple(sorted(set(versions))))
    raise ModelConfigError(f"{where}: unknown version policy {kind!r}")


def _label(entry: object, where: str) -> tuple[str, int]:
    if not isinstance(entry, list):
        raise ModelConfigError(f"{where}: version_labels must be {{ key: ... value: ... }}")
    key = _single(entry, "key", where)
    value = _single(entry, "value", where)
    if not isinstance(key, str) or not key or not isinstance(value, int) or isinstance(value, bool):
        raise ModelConfigError(f"{where}: version_labels needs a string key and an integer value")
    return key, value
