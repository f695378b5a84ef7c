"""The validity contract against the real S3 server, on real SavedModels and broken variants of them."""

from __future__ import annotations

import random

import pytest

from devtools.synthetic import pad_graph_def
from savedmodel import SavedModelChecker, Verdict, VersionPolicy
from tests.savedmodel.conftest import HALF_PLUS_TWO, MODELS, model_files

pytestmark = pytest.mark.s3

LATEST = VersionPolicy("latest")
ALL = VersionPolicy("all")
GOOD = model_files(HALF_PLUS_TWO)


def reasons_of(report, number):
    return next(v for v in report.versions if v.number == number).reasons


def verify(checker, bucket, prefix="model", policy=LATEST, **kwargs):
    return checker.verify(f"s3://{bucket}/{prefix}", policy, **kwargs)


@pytest.mark.parametrize(
    ("model", "number"),
    [
        ("saved_model_half_plus_two_cpu", 123),
        ("saved_model_half_plus_two_gpu", 123),
        ("saved_model_half_plus_two_mkl", 123),
        ("saved_model_half_plus_two_tf2_cpu", 123),
        ("matrix_half_plus_two", 1),
    ],
)
def test_real_models_are_valid(checker, s3_bucket, put, model, number):
    root = MODELS / model
    put({f"m/{p.relative_to(root)}": p.read_bytes() for p in root.rglob("*") if p.is_file()})
    report = verify(checker, s3_bucket, "m", signature="serving_default")
    assert report.verdict is Verdict.VALID, report.to_json()
    assert [v.number for v in report.selected] == [number]
    assert report.selected[0].meta_graphs[0].tags == ("serve",)
    # one base listing, one version listing, one ranged GET (these models fit in the first window)
    assert report.stats.requests == 3


def test_two_versions_and_the_policies(checker, s3_bucket, put):
    root = MODELS / "saved_model_half_plus_two_2_versions"
    put({f"m/{p.relative_to(root)}": p.read_bytes() for p in root.rglob("*") if p.is_file()})
    latest = verify(checker, s3_bucket, "m")
    assert [(v.number, v.selected, v.checked) for v in latest.versions] == [
        (124, True, True),
        (123, False, False),
    ]
    assert latest.versions[1].valid and not latest.versions[1].reasons  # unchecked: no reason known
    assert verify(checker, s3_bucket, "m", VersionPolicy("latest", count=2)).verdict is Verdict.VALID
    assert len(verify(checker, s3_bucket, "m", ALL).selected) == 2
    specific = verify(checker, s3_bucket, "m", VersionPolicy("specific", versions=(123,)))
    assert specific.verdict is Verdict.VALID and [v.number for v in specific.selected] == [123]


def test_counter_is_valid_unless_serving_default_is_required(checker, s3_bucket, put_version):
    put_version("m/00000123", model_files(MODELS / "saved_model_counter/00000123"))
    assert verify(checker, s3_bucket, "m").verdict is Verdict.VALID
    report = verify(checker, s3_bucket, "m", signature="serving_default")
    assert report.verdict is Verdict.INVALID
    assert reasons_of(report, 123) == (
        "has no signature 'serving_default' "
        "(it has: get_counter, incr_counter_by, incr_counter, reset_counter)",
    )


def test_other_tag_sets_are_configurable(checker, s3_bucket, put_version):
    put_version("model/00000123", GOOD)
    report = verify(checker, s3_bucket, tags=frozenset({"serve", "gpu"}))
    assert reasons_of(report, 123) == ("has no MetaGraph tagged {gpu, serve} (found: {serve})",)


def test_legacy_export_and_tflite_are_not_savedmodels(checker, s3_bucket, put_version):
    put_version("bad/00000123", model_files(MODELS / "bad_half_plus_two/00000123"))
    put_version("lite/00000123", model_files(MODELS / "saved_model_half_plus_two_tflite/00000123"))
    assert "legacy Saver/SessionBundle export" in reasons_of(verify(checker, s3_bucket, "bad"), 123)[0]
    assert "TensorFlow Lite" in reasons_of(verify(checker, s3_bucket, "lite"), 123)[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda f: f.pop("variables/variables.index"),
            "variables/variables.index is missing: the variables cannot be restored (a partial upload?)",
        ),
        (
            lambda f: f.pop("variables/variables.data-00000-of-00001"),
            "no variables/variables.data-NNNNN-of-MMMMM shard is present (a partial upload?)",
        ),
        (lambda f: f.pop("saved_model.pb"), "saved_model.pb is missing"),
        (
            lambda f: f.update({"saved_model.pb": b""}),
            "saved_model.pb is empty (0 bytes): an upload that has not finished?",
        ),
        (
            lambda f: f.update({"saved_model.pb": GOOD["saved_model.pb"][:5000]}),
            "saved_model.pb is truncated or corrupt: SavedModel: field 2 at offset 2 declares",
        ),
        (
            lambda f: f.update({"saved_model.pb": random.Random(1).randbytes(3000)}),
            "saved_model.pb is truncated or corrupt",
        ),
        (lambda f: f.update({"variables/variables.index": b""}), "variables/variables.index is empty"),
    ],
    ids=[
        "missing-index",
        "missing-shard",
        "missing-pb",
        "empty-pb",
        "truncated-pb",
        "random-pb",
        "empty-index",
    ],
)
def test_broken_variants_are_invalid(checker, s3_bucket, put_version, change, expected):
    files = dict(GOOD)
    change(files)
    put_version("model/00000123", files)
    report = verify(checker, s3_bucket)
    assert report.verdict is Verdict.INVALID
    assert any(r.startswith(expected) for r in reasons_of(report, 123)), reasons_of(report, 123)


def test_every_missing_shard_is_named(checker, s3_bucket, put_version):
    files = {k: v for k, v in GOOD.items() if not k.startswith("variables/variables.data")}
    for i in (0, 1, 2, 4, 5, 6):
        files[f"variables/variables.data-{i:05d}-of-00007"] = b"x"
    files["variables/variables.data-00000-of-00002"] = b"x"
    put_version("model/11", files)
    assert reasons_of(verify(checker, s3_bucket), 11) == (
        "the variable shards disagree on their count (of-00002, of-00007): "
        "files of different exports are mixed",
        "variables/variables.data-00001-of-00002 is missing (a partial upload?)",
        "variables/variables.data-00003-of-00007 is missing (a partial upload?)",
    )


def test_partial_newest_version_fails_latest_but_not_specific(checker, s3_bucket, put_version):
    put_version("model/00000123", GOOD)
    put_version("model/00000124", {"saved_model.pb": GOOD["saved_model.pb"]})  # variables not uploaded yet
    report = verify(checker, s3_bucket)
    assert report.verdict is Verdict.INVALID
    assert [v.number for v in report.selected] == [124]
    assert reasons_of(report, 124)[0].startswith("variables/variables.index is missing")
    pinned = verify(checker, s3_bucket, policy=VersionPolicy("specific", versions=(123,)))
    assert pinned.verdict is Verdict.VALID


def test_non_numeric_names_are_ignored_and_reported(checker, s3_bucket, put_version, put):
    put_version("model/00000123", GOOD)
    put_version("model/v1", GOOD)
    put_version("model/10.tmp", GOOD)
    put({"model/latest": b"123", "model/README.md": b"hi"})
    report = verify(checker, s3_bucket)
    assert report.verdict is Verdict.VALID
    assert report.ignored == ("10.tmp/", "README.md", "latest", "v1/")
    assert [v.number for v in report.versions] == [123]


def test_folder_markers(checker, s3_bucket, put_version, put):
    put({"model/": b"", "model/00000123/": b"", "model/00000123/variables/": b""})
    put_version("model/00000123", GOOD)
    assert verify(checker, s3_bucket).verdict is Verdict.VALID  # markers are not files
    put({"model/00000200/": b""})  # a console "create folder" for the next version, nothing uploaded yet
    report = verify(checker, s3_bucket)
    assert report.verdict is Verdict.INVALID
    assert [v.number for v in report.selected] == [200]
    assert reasons_of(report, 200) == (
        "the directory holds only a folder marker: an empty version that TF Serving would select and fail to "
        "load",
    )


def test_marker_only_base_path_has_no_version(checker, s3_bucket, put):
    put({"model/": b""})
    report = verify(checker, s3_bucket)
    assert report.verdict is Verdict.INVALID
    assert report.problems == (f"no version found: s3://{s3_bucket}/model/ is missing or empty",)


def test_one_and_zero_one_collide(checker, s3_bucket, put_version):
    put_version("model/1", GOOD)
    put_version("model/01", GOOD)
    report = verify(checker, s3_bucket)
    assert report.verdict is Verdict.INVALID
    assert report.problems == (
        "directories '01', '1' are all version 1; TF Serving loads '1' for it "
        "(and both under the 'all' policy): "
        "remove the others",
    )
    assert report.selected[0].name == "1" and report.selected[0].valid
    put_version("model/2", GOOD)  # the collision no longer concerns the selected version: a note only
    later = verify(checker, s3_bucket)
    assert later.verdict is Verdict.VALID and later.warnings


def test_specific_version_missing(checker, s3_bucket, put_version):
    put_version("model/00000123", GOOD)
    report = verify(checker, s3_bucket, policy=VersionPolicy("specific", versions=(7, 123)))
    assert report.verdict is Verdict.INVALID
    assert report.problems == (
        f"version 7 is not in s3://{s3_bucket}/model/ but the policy (specific:7,123) asks for it",
    )


def test_empty_or_missing_base_path_and_bucket(checker, s3_bucket, put_version):
    assert verify(checker, s3_bucket, "nothing").problems == (
        f"no version found: s3://{s3_bucket}/nothing/ is missing or empty",
    )
    put_version("model/v1", GOOD)
    report = verify(checker, s3_bucket)
    assert report.verdict is Verdict.INVALID
    assert "TF Serving only loads directories named by a number" in report.problems[0]
    gone = checker.verify(f"s3://{s3_bucket}-missing/model", LATEST)
    assert gone.verdict is Verdict.INVALID
    assert gone.problems == (f"bucket '{s3_bucket}-missing' does not exist",)


def test_numeric_object_instead_of_directory(checker, s3_bucket, put):
    put({"model/5": b"not a directory"})
    report = verify(checker, s3_bucket)
    assert report.verdict is Verdict.INVALID
    assert "is an object, not a directory" in reasons_of(report, 5)[0]


def test_bucket_root_as_base_path(checker, s3_bucket, put_version):
    put_version("00000123", GOOD)
    report = checker.verify(f"s3://{s3_bucket}", LATEST)
    assert report.verdict is Verdict.VALID and report.base_path == f"s3://{s3_bucket}"


def test_malformed_base_path_is_a_value_error(checker):
    for bad in ("models/x", "s3://", "s3:///x", "gs://b/x"):
        with pytest.raises(ValueError):
            checker.verify(bad, LATEST)


def test_pagination_with_small_pages(settings, s3_bucket, put_version, put):
    checker = SavedModelChecker(settings, page_size=2)
    for name in ("1", "2", "3", "v1", "v2"):
        put({f"model/{name}/x": b"x"})
    files = dict(GOOD)
    files.update({f"assets/extra-{i}.txt": b"x" for i in range(5)})
    put_version("model/4", files)
    report = verify(checker, s3_bucket, policy=VersionPolicy("latest", count=1))
    assert [v.number for v in report.versions] == [4, 3, 2, 1]
    assert report.ignored == ("v1/", "v2/")
    assert report.verdict is Verdict.VALID
    assert len(report.selected[0].files) == len(files)
    # 5 children / 2 per page = 3 listing pages; 10 keys / 2 = 5 pages; one GET
    assert report.stats.requests == 3 + 5 + 1


def test_pagination_past_1000_prefixes(checker, s3_bucket, put, put_version):
    put({f"model/{i}/saved_model.pb": b"" for i in range(1000)})
    put_version("model/1000", GOOD)
    report = verify(checker, s3_bucket)
    assert len(report.versions) == 1001
    assert report.verdict is Verdict.VALID
    assert [v.number for v in report.selected] == [1000]


def test_24_mb_saved_model_costs_well_under_256_kib(checker, s3_bucket, put_version):
    files = dict(GOOD)
    files["saved_model.pb"] = pad_graph_def(
        GOOD["saved_model.pb"], 24 * 1024 * 1024 - len(GOOD["saved_model.pb"])
    )
    put_version("model/00000123", files)
    report = verify(checker, s3_bucket, signature="serving_default")
    assert report.verdict is Verdict.VALID
    version = report.selected[0]
    assert version.saved_model_bytes >= 24 * 1024 * 1024
    assert version.stats.requests == 3  # the version listing and two ranged GETs
    assert report.stats.requests == 4
    assert report.stats.bytes_received < 256 * 1024


def test_inspect_shows_signatures_files_and_bytes(checker, s3_bucket, put):
    root = MODELS / "saved_model_half_plus_two_2_versions"
    put({f"m/{p.relative_to(root)}": p.read_bytes() for p in root.rglob("*") if p.is_file()})
    report = checker.inspect(f"s3://{s3_bucket}/m")
    assert [(v.number, v.checked, v.valid) for v in report.versions] == [(124, True, True), (123, True, True)]
    one = checker.inspect(f"s3://{s3_bucket}/m", version=123)
    version = one.selected[0]
    assert version.number == 123 and not one.versions[0].checked
    assert {f.path for f in version.files} >= {"saved_model.pb", "variables/variables.index"}
    serving = version.meta_graphs[0].signature("serving_default")
    assert [(k, s.dtype, s.shape) for k, s in serving.inputs] == [("x", "DT_FLOAT", (-1, 1))]
    assert version.stats.bytes_received >= 9935


PBTXT = """saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" }
  graph_def { node { name: "x" op: "Placeholder" } }
  saver_def { filename_tensor_name: "save/Const:0" }
  signature_def { key: "serving_default" value { method_name: "tensorflow/serving/predict" } }
}
"""


def test_text_savedmodel_is_read(checker, s3_bucket, put_version):
    files = {k: v for k, v in GOOD.items() if k != "saved_model.pb"}
    files["saved_model.pbtxt"] = PBTXT.encode()
    put_version("model/3", files)
    assert verify(checker, s3_bucket, signature="serving_default").verdict is Verdict.VALID
    missing = verify(checker, s3_bucket, signature="predict")
    assert reasons_of(missing, 3) == ("has no signature 'predict' (it has: serving_default)",)
