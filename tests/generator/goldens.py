"""Golden-file helpers: compare against tests/testdata/generator/, or rewrite it with UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "generator"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def assert_text(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"missing golden {path}; run with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"{path} differs; inspect, then UPDATE_GOLDEN=1"


def assert_tree(directory: Path, files: dict[str, str]) -> None:
    if UPDATE:
        shutil.rmtree(directory, ignore_errors=True)
        for relative, text in files.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return
    on_disk = {
        path.relative_to(directory).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    assert sorted(on_disk) == sorted(files), "file list differs; inspect, then UPDATE_GOLDEN=1"
    for relative, text in files.items():
        assert text == on_disk[relative], f"{directory / relative} differs; inspect, then UPDATE_GOLDEN=1"
