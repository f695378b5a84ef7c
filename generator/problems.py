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


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    column: int
    path: str
    message: str

    def format(self, source: str) -> str:
        return f"{source}:{self.line}:{self.column}: {self.path}: {self.message}"


class CatalogueError(Exception):
    """The catalogue is invalid; `problems` holds every problem found, sorted by position."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = sorted(set(problems))
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [problem.format(self.source) for problem in self.problems]
