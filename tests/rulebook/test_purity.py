"""The rulebook stays pure: the standard library and itself only (no Flask, click, boto3), so every side can
use it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rulebook_imports_only_the_standard_library_and_itself():
    for path in sorted((ROOT / "rulebook").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "rulebook" or top in sys.stdlib_module_names or top == "__future__", (
                    path,
                    name,
                )
