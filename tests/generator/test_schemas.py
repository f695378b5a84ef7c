"""models.schema.json is a documented 2020-12 schema; schemas/crds/ is what the upstream CRDs produce."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parents[2]


def _crd_script():
    spec = importlib.util.spec_from_file_location("crd_schemas", REPO / "scripts" / "crd_schemas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _walk(schema, path="$"):
    if isinstance(schema, dict):
        yield path, schema
        for key, value in schema.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _walk(value, f"{path}[{index}]")


def test_catalogue_schema_is_strict_and_documented():
    schema = json.loads((REPO / "schemas" / "models.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for path, node in _walk(schema):
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
        for name, prop in (
            node.get("properties", {}).items() if isinstance(node.get("properties"), dict) else ()
        ):
            described = "description" in prop or "$ref" in prop
            assert described, f"{path}.properties.{name} has no description"
    for name, definition in schema["$defs"].items():
        if "$ref" not in definition and definition.get("type") != "object":
            assert "description" in definition or "title" in definition, name


def test_example_names_the_schema_for_editors():
    assert (
        (REPO / "models.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=schemas/models.schema.json")
    )


def test_crd_schemas_are_up_to_date():
    assert _crd_script().main(["--check"]) == 0


def test_crd_conversion_is_strict_and_records_its_source():
    script = _crd_script()
    converted = script.strict(
        {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}},
                "free": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"b": {}},
                },
                "port": {"x-kubernetes-int-or-string": True},
            },
        }
    )
    assert converted["additionalProperties"] is False
    assert converted["properties"]["spec"]["additionalProperties"] is False
    assert converted["properties"]["spec"]["properties"]["a"]["type"] == ["string", "null"]
    assert "additionalProperties" not in converted["properties"]["free"]
    assert converted["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    application = json.loads((REPO / "generator/data/crds/argoproj.io/application_v1alpha1.json").read_text())
    source = application["x-tfs-gitops-source"]
    assert source["file"] == "schemas/upstream/argo-cd/application-crd.yaml"
    assert source["upstream"]["commit"] == "37ee0097cf851bc2dd7665fc081bbce61a7e836e"
    assert source["version"] == "v1alpha1"
    assert application["properties"]["kind"]["enum"] == ["Application"]
