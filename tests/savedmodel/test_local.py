"""The contract over a local directory is the contract over S3: the same files give the same reasons."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from savedmodel import SavedModelChecker, Verdict, VersionPolicy, check_local_version, verify_local
from tests.savedmodel.conftest import HALF_PLUS_TWO, MODELS, model_files

GOOD = model_files(HALF_PLUS_TWO)

VARIANTS = {
    "valid": lambda f: None,
    "missing-index": lambda f: f.pop("variables/variables.index"),
    "missing-shard": lambda f: f.pop("variables/variables.data-00000-of-00001"),
    "missing-pb": lambda f: f.pop("saved_model.pb"),
    "empty-pb": lambda f: f.update({"saved_model.pb": b""}),
    "truncated-pb": lambda f: f.update({"saved_model.pb": GOOD["saved_model.pb"][:5000]}),
    "random-pb": lambda f: f.update({"saved_model.pb": random.Random(1).randbytes(3000)}),
    "empty-index": lambda f: f.update({"variables/variables.index": b""}),
    "shards-disagree": lambda f: f.update({"variables/variables.data-00001-of-00003": b"x"}),
    "legacy-export": lambda f: (f.clear(), f.update(model_files(MODELS / "bad_half_plus_two/00000123"))),
    "only-assets": lambda f: [f.pop(k) for k in list(f) if not k.startswith("assets/")],
}


def write(root: Path, files: dict[str, bytes]) -> Path:
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return root


@pytest.mark.s3
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_local_and_s3_give_the_same_reasons(
    checker: SavedModelChecker, s3_bucket, put_version, tmp_path, variant
):
    files = dict(GOOD)
    VARIANTS[variant](files)
    put_version("model/00000123", files)
    s3 = checker.check_version(f"s3://{s3_bucket}/model", "00000123", signature="serving_default")
    local = check_local_version(write(tmp_path / "00000123", files), signature="serving_default")
    assert (local.number, local.name, local.valid, local.reasons) == (
        s3.number,
        s3.name,
        s3.valid,
        s3.reasons,
    )
    assert [(e.path, e.size) for e in local.files] == [(e.path, e.size) for e in s3.files]
    assert local.meta_graphs == s3.meta_graphs
    assert local.valid == (variant == "valid")


def test_a_local_base_path_is_verified_like_one_in_s3(tmp_path):
    write(tmp_path / "m" / "00000123", GOOD)
    write(tmp_path / "m" / "00000124", {"saved_model.pb": GOOD["saved_model.pb"]})
    (tmp_path / "m" / ".tfs-sync-00000125-abc").mkdir()
    report = verify_local(tmp_path / "m", VersionPolicy("latest"))
    assert report.verdict is Verdict.INVALID
    assert report.ignored == (".tfs-sync-00000125-abc/",)
    assert report.selected[0].reasons[0].startswith("variables/variables.index is missing")
    assert verify_local(tmp_path / "m", VersionPolicy("specific", versions=(123,))).ok


def test_an_empty_directory_is_a_marker(tmp_path):
    (tmp_path / "00000001" / "variables").mkdir(parents=True)
    report = check_local_version(tmp_path / "00000001")
    assert [e.path for e in report.files] == ["variables/"]
    assert report.reasons == (
        "the directory holds only a folder marker: an empty version that TF Serving would select and fail to "
        "load",
    )
