import contextlib
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.synthetic import pad_graph_def
from savedmodel.pbwire import (
    BytesSource,
    RangedSource,
    WireError,
    read_saved_model,
    read_saved_model_text,
)
from tests.savedmodel.conftest import HALF_PLUS_TWO, MODELS

ALL_PBS = sorted(MODELS.glob("*/*/saved_model.pb"))


def read(data: bytes):
    return read_saved_model(BytesSource(data))


@pytest.mark.parametrize("path", ALL_PBS, ids=lambda p: p.parent.parent.name)
def test_real_models_decode_with_serve_tag(path):
    info = read(path.read_bytes())
    assert info.schema_version == 1
    assert [m.tags for m in info.meta_graphs] == [("serve",)]
    assert info.meta_graphs[0].signatures


def test_signatures_match_tf_servings_own_metadata():
    expected = json.loads((MODELS / "half_plus_two_model_metadata.json").read_text())
    expected = expected["metadata"]["signature_def"]["signature_def"]
    graph = read((HALF_PLUS_TWO / "saved_model.pb").read_bytes()).meta_graphs[0]
    assert graph.has_saver
    assert graph.tensorflow_version == "1.14.0"
    assert {s.key for s in graph.signatures} == set(expected)
    for sig in graph.signatures:
        want = expected[sig.key]
        assert sig.method_name == want["method_name"]
        for ours, theirs in ((sig.inputs, want["inputs"]), (sig.outputs, want["outputs"])):
            assert {k for k, _ in ours} == set(theirs)
            for key, spec in ours:
                shape = theirs[key]["tensor_shape"]
                assert spec.name == theirs[key]["name"]
                assert spec.dtype == theirs[key]["dtype"]
                if shape.get("unknown_rank"):
                    assert spec.shape is None
                else:
                    assert spec.shape == tuple(int(d["size"]) for d in shape.get("dim", []))


def test_counter_has_no_serving_default_and_matrix_has_no_saver():
    counter = read((MODELS / "saved_model_counter/00000123/saved_model.pb").read_bytes()).meta_graphs[0]
    assert counter.signature("serving_default") is None
    assert counter.signature("incr_counter_by") is not None
    matrix = read((MODELS / "matrix_half_plus_two/1/saved_model.pb").read_bytes()).meta_graphs[0]
    assert not matrix.has_saver


def test_every_truncation_is_detected():
    data = (MODELS / "matrix_half_plus_two/1/saved_model.pb").read_bytes()
    for cut in range(len(data)):
        with pytest.raises(WireError):
            read(data[:cut])


def test_truncation_of_a_big_model_is_reported_with_the_declared_length():
    data = (HALF_PLUS_TWO / "saved_model.pb").read_bytes()
    with pytest.raises(WireError, match="declares .* bytes but only .* remain"):
        read(data[: len(data) // 2])


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_not_a_savedmodel(seed):
    data = random.Random(seed).randbytes(4096)
    with pytest.raises(WireError):
        read(data)


def test_empty_and_legacy_meta_graph_files_are_rejected():
    with pytest.raises(WireError, match="empty"):
        read(b"")
    # export.meta is a bare MetaGraphDef: its field 2 (graph_def) is not a MetaGraph with tags
    legacy = (MODELS / "bad_half_plus_two/00000123/export.meta").read_bytes()
    try:
        info = read(legacy)
    except WireError:
        return
    assert all("serve" not in m.tags for m in info.meta_graphs)


def test_ranged_reads_skip_a_24_mb_graph_def():
    small = (HALF_PLUS_TWO / "saved_model.pb").read_bytes()
    big = pad_graph_def(small, 24 * 1024 * 1024 - len(small))
    fetched = []

    def fetch(start, end):
        fetched.append((start, end))
        return big[start:end]

    info = read_saved_model(RangedSource(fetch, len(big)))
    assert {s.key for s in info.meta_graphs[0].signatures} == {
        s.key for s in read(small).meta_graphs[0].signatures
    }
    assert info.meta_graphs[0].graph_def_bytes > 24_000_000
    assert len(fetched) == 2
    assert sum(end - start for start, end in fetched) < 256 * 1024


def test_text_format_is_read_lightly():
    text = """saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" tags: "gpu" }
  graph_def { node { name: "x" } }
  saver_def { filename_tensor_name: "save/Const:0" }
  signature_def { key: "serving_default" value { method_name: "tensorflow/serving/predict" } }
}
"""
    info = read_saved_model_text(text)
    graph = info.meta_graphs[0]
    assert graph.tag_set == {"serve", "gpu"}
    assert graph.has_saver
    assert graph.signature("serving_default") is not None
    with pytest.raises(WireError):
        read_saved_model_text("not a model")


SMALL_PB = (MODELS / "matrix_half_plus_two/1/saved_model.pb").read_bytes()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SMALL_PB) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_bytes_fail_only_with_wire_error(edits):
    data = bytearray(SMALL_PB)
    for offset, value in edits:
        data[offset] = value
    with contextlib.suppress(WireError):
        read(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_fail_only_with_wire_error(data):
    with contextlib.suppress(WireError):
        read(data)
