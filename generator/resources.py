"""The package's data files (generator/data/), read with importlib.resources so an installed wheel works as
a checkout does: the catalogue's JSON Schema, the starter catalogue, and the strict CRD schemas."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable

SCHEMA_FILE = "models.schema.json"
STARTER_FILE = "starter.models.yaml"
# kubeconform's naming of CRD schemas; scripts/crd_schemas.py writes files with these names.
CRD_NAME_TEMPLATE = "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"


def _data() -> Traversable:
    return files("generator") / "data"


def catalogue_schema_text() -> str:
    return (_data() / SCHEMA_FILE).read_text(encoding="utf-8")


def starter_catalogue_text() -> str:
    return (_data() / STARTER_FILE).read_text(encoding="utf-8")


def crd_schema(group: str, kind: str, version: str) -> dict | None:
    """The strict schema of a custom resource we render (Argo CD, cert-manager), or None."""
    resource = _data() / "crds" / group / f"{kind.lower()}_{version}.json"
    return json.loads(resource.read_text(encoding="utf-8")) if resource.is_file() else None


def crd_schema_dir() -> AbstractContextManager:
    """A filesystem path to the CRD schemas (for kubeconform's -schema-location), as a context manager."""
    return as_file(_data() / "crds")
