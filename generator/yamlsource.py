"""Read YAML that must be plain data: positions kept, anchors/aliases/tags/duplicate keys refused.

The result is ordinary Python data plus a map from each JSON path to its (line, column), 1-based,
so later passes can point at the exact spot of a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from generator.problems import Path, Problem, json_path

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64

_ALIAS_TAG = "tag:tfs-gitops,alias"
_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass
class Document:
    data: object
    positions: dict[Path, tuple[int, int]]
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path) -> tuple[int, int]:
        """Where `path` starts; for a missing path, where its nearest existing parent starts."""
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, (1, 1))

    def key_position(self, path: Path) -> tuple[int, int]:
        return self.key_positions.get(path) or self.position(path)


class _TooDeep(Exception):
    def __init__(self, mark):
        self.mark = mark


class _PlainComposer(Composer):
    """Records anchors, aliases and explicit tags instead of honouring them."""

    def __init__(self):
        self.refused: list[tuple[object, str]] = []  # (mark, message); paths are attached later
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self.get_event()
            self.refused.append(
                (event.start_mark, f"YAML alias *{event.anchor} is not allowed (plain data only)")
            )
            return ScalarNode(_ALIAS_TAG, "", event.start_mark, event.end_mark)
        if event.anchor is not None:
            self.refused.append(
                (event.start_mark, f"YAML anchor &{event.anchor} is not allowed (plain data only)")
            )
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.tag not in (None, "!"):
            self.refused.append((event.start_mark, f"YAML tag {event.tag} is not allowed (plain data only)"))
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooDeep(event.start_mark)
        try:
            # Anchors are refused above; dropping them keeps the composer from resolving aliases.
            event.anchor = None
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Loader(
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _PlainComposer, yaml.resolver.Resolver
):
    def __init__(self, stream):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _PlainComposer.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def _at(mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _hint(exc: yaml.MarkedYAMLError) -> str:
    """What to do about the YAML errors people meet most (tabs, indentation), in the words of the fix."""
    problem = exc.problem or ""
    if "'\\t'" in problem:
        return "; YAML indents with spaces only: replace the tab with spaces"
    if "mapping values are not allowed here" in problem:
        return (
            "; a key is indented deeper than the keys before it, or a value holds an unquoted ': ' "
            "(indent the key like its siblings, or quote the value)"
        )
    if "expected <block end>" in problem or "could not find expected ':'" in problem:
        return (
            "; the indentation is off: keys of one mapping (and '- ' items of one list) must start in the "
            "same column"
        )
    return ""


def parse(text: bytes | str) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML document of plain data. Returns (document, problems); document is None on problems."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            return None, [Problem(1, 1, "$", f"the file is larger than the {MAX_BYTES}-byte limit")]
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, [Problem(1, 1, "$", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except _TooDeep as exc:
        line, col = _at(exc.mark)
        return None, [Problem(line, col, "$", f"nested deeper than {MAX_DEPTH} levels")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _at(mark) if mark else (1, 1)
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        return None, [Problem(line, col, "$", f"invalid YAML: {message}{_hint(exc)}")]
    except yaml.YAMLError as exc:
        return None, [Problem(1, 1, "$", f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    if root is None:
        return None, [Problem(1, 1, "$", "the file is empty")]
    document = Document(None, {})
    problems: list[Problem] = []
    refused = {(mark.line, mark.column): message for mark, message in loader.refused}
    document.data = _build(root, (), document, problems, refused)
    return (None if problems else document), problems


def _build(node: Node, path: Path, document: Document, problems: list[Problem], refused: dict) -> object:
    document.positions[path] = _at(node.start_mark)
    message = refused.get((node.start_mark.line, node.start_mark.column))
    if message:
        problems.append(Problem(*_at(node.start_mark), json_path(path), message))
    if isinstance(node, MappingNode):
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _ALIAS_TAG:
                problems.append(
                    Problem(*_at(key_node.start_mark), json_path(path), "keys must be plain scalars")
                )
                continue
            key = key_node.value
            child = (*path, key)
            if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    Problem(
                        *_at(key_node.start_mark),
                        json_path(child),
                        "YAML merge keys (<<) are not allowed (plain data only)",
                    )
                )
                continue
            if key in result:
                problems.append(
                    Problem(
                        *_at(key_node.start_mark),
                        json_path(child),
                        f"duplicate key {key!r} (first at line {document.key_positions[child][0]})",
                    )
                )
                continue
            document.key_positions[child] = _at(key_node.start_mark)
            result[key] = _build(value_node, child, document, problems, refused)
        return result
    if isinstance(node, SequenceNode):
        return [
            _build(item, (*path, index), document, problems, refused) for index, item in enumerate(node.value)
        ]
    if node.tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary", _ALIAS_TAG):
        return node.value  # plain text; a schema expecting another type reports it
    try:
        return _SCALAR_CONSTRUCTOR.construct_object(node, deep=True)
    except (yaml.constructor.ConstructorError, ValueError):
        return node.value
