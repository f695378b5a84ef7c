"""A problem found in the catalogue, reported as `FILE:LINE:COL: $.json.path: message`."""

from __future__ import annotations

from dataclasses import dataclass

Path = tuple[str | int, ...]


def json_path(path: Path) -> str:
    text = "$"
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.replace("_", "").replace("-", "").isalnum() and not part[:1].isdigit():
            text += f".{part}"
        else:
            text += "[" + _quote(part) + "]"
    return text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    column: int
    path: str
    message: str
    severity: str = ERROR  # a WARNING does not make the catalogue invalid

    def format(self, source: str) -> str:
        marker = "warning: " if self.severity == WARNING else ""
        return f"{source}:{self.line}:{self.column}: {self.path}: {marker}{self.message}"

    def as_dict(self, source: str) -> dict:
        """The structured form (JSON output), so CI can annotate the line of a pull request."""
        return {
            "file": source,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "severity": self.severity,
            "message": self.message,
            "text": self.format(source),
        }


class CatalogueError(Exception):
    """The catalogue is invalid; `problems` holds every problem found, sorted by position."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = sorted(set(problems))
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [problem.format(self.source) for problem in self.problems]

    def as_dicts(self) -> list[dict]:
        return [problem.as_dict(self.source) for problem in self.problems]
