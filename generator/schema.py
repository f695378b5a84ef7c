"""First pass: the catalogue against schemas/models.schema.json, one clear message per problem."""

from __future__ import annotations

import json
from functools import cache

import jsonschema
from jsonschema.exceptions import ValidationError

from generator import resources
from generator.problems import Problem, json_path
from generator.yamlsource import Document

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _strict_integer(checker, instance) -> bool:
    # YAML 1.0 and true must not pass as integers (JSON Schema would accept 1.0).
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(resources.catalogue_schema_text())
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer)
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    return cls(schema)


def check(document: Document) -> list[Problem]:
    problems: list[Problem] = []
    for error in validator().iter_errors(document.data):
        problems.extend(_describe(error, document))
    return problems


def _describe(error: ValidationError, document: Document) -> list[Problem]:
    path = tuple(error.absolute_path)
    instance = error.instance
    kind = error.validator
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extras = [key for key in instance if key not in error.schema.get("properties", {})]
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return [
            Problem(*document.key_position((*path, key)), json_path((*path, key)), f"unknown key{hint}")
            for key in extras
        ]
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [Problem(*document.position(path), json_path(path), f"missing required key {missing!r}")]
    if "propertyNames" in error.schema_path and isinstance(instance, str):
        key_path = (*path, instance)
        return [
            Problem(*document.key_position(key_path), json_path(key_path), f"invalid key: {_message(error)}")
        ]
    if kind in ("anyOf", "oneOf"):
        deepest = _deepest_branch(error)
        if deepest:
            return [problem for sub in deepest for problem in _describe(sub, document)]
        title = error.schema.get("title")
        expected = f"must be one of {title}" if title else "does not match any allowed form"
        return [Problem(*document.position(path), json_path(path), f"{expected}, got {_show(instance)}")]
    return [Problem(*document.position(path), json_path(path), _message(error))]


def _deepest_branch(error: ValidationError) -> list[ValidationError]:
    """The errors of the alternative the value was most likely meant to be, if one can be told apart."""
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        by_branch.setdefault(sub.schema_path[0], []).append(sub)
    if isinstance(error.instance, dict):
        # A mapping holding all the required keys of exactly one alternative is meant to be that one.
        branches = error.schema.get(error.validator, [])
        meant = [
            index
            for index, branch in enumerate(branches)
            if branch.get("required") and all(key in error.instance for key in branch["required"])
        ]
        if len(meant) == 1 and meant[0] in by_branch:
            return by_branch[meant[0]]
    best, best_depth = [], len(error.absolute_path)
    for errors in by_branch.values():
        depth = max(len(sub.absolute_path) for sub in errors)
        type_mismatch = any(
            sub.validator in ("type", "enum", "required")
            and len(sub.absolute_path) == len(error.absolute_path)
            for sub in errors
        )
        if depth > best_depth and not type_mismatch:
            best, best_depth = errors, depth
    if not best:
        # A mapping with exactly the right key but a bad value: report that value.
        for errors in by_branch.values():
            if all(
                sub.validator not in ("type", "enum", "required", "additionalProperties") for sub in errors
            ):
                return errors
    return best


def _message(error: ValidationError) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        names = [value] if isinstance(value, str) else value
        return f"expected {' or '.join(_TYPE_NAMES.get(name, name) for name in names)}, got {_show(instance)}"
    if kind == "enum":
        return f"must be one of {', '.join(json.dumps(item) for item in value)}, got {_show(instance)}"
    if kind == "const":
        return f"must be {json.dumps(value)}, got {_show(instance)}"
    if kind == "pattern":
        description = error.schema.get("description")
        if description and description[:1].islower():
            return f"{_show(instance)} is not valid: expected {description}"
        return f"{_show(instance)} does not match {value}"
    if kind in ("minimum", "maximum"):
        return f"must be {'at least' if kind == 'minimum' else 'at most'} {value}, got {_show(instance)}"
    if kind == "maxLength":
        return f"must be at most {value} characters long, got {len(instance)}"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters long"
    if kind == "minItems":
        return "must not be empty" if value == 1 else f"must have at least {value} items"
    if kind == "uniqueItems":
        return "must not contain duplicates"
    return error.message


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
