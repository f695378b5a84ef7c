"""The ModelServerConfig text proto: what the generator renders is what the webhook parses, and TF Serving's
own config files read the same way."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebook.modelconfig import (
    ModelConfigError,
    ModelEntry,
    parse_model_server_config,
    parse_text,
    render_model_server_config,
)
from rulebook.policy import INT64_MAX, VersionPolicy

TFSERVING = Path(__file__).resolve().parents[1] / "testdata" / "tfserving"

policies = st.one_of(
    st.just(VersionPolicy("all")),
    st.integers(1, 10).map(lambda n: VersionPolicy("latest", count=n)),
    st.lists(st.integers(0, INT64_MAX), min_size=1, max_size=4, unique=True).map(
        lambda versions: VersionPolicy("specific", versions=tuple(sorted(versions)))
    ),
)
texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@st.composite
def entries(draw) -> tuple[ModelEntry, ...]:
    names = draw(st.lists(texts, min_size=1, max_size=3, unique=True))
    out = []
    for name in names:
        labels = draw(st.dictionaries(texts, st.integers(0, INT64_MAX), max_size=3))
        out.append(
            ModelEntry(
                name=name,
                base_path=draw(texts),
                policy=draw(policies),
                labels=tuple(labels.items()),
            )
        )
    return tuple(out)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(entries())
def test_render_then_parse_is_the_identity(models):
    assert parse_model_server_config(render_model_server_config(models)) == models


def test_tf_servings_own_config_reads_and_round_trips():
    text = (TFSERVING / "good_model_config.txt").read_text()
    models = parse_model_server_config(text)
    assert [(m.name, m.base_path, m.platform, m.policy) for m in models] == [
        ("half_plus_two", "${TEST_HALF_PLUS_TWO_DIR}", "tensorflow", VersionPolicy("latest")),
        ("half_plus_three", "${TEST_HALF_PLUS_THREE_DIR}", "tensorflow", VersionPolicy("latest")),
    ]
    assert parse_model_server_config(render_model_server_config(models)) == models


def test_tf_servings_bad_config_is_refused():
    with pytest.raises(ModelConfigError, match="expected ':' or '\\{' after improperly"):
        parse_model_server_config((TFSERVING / "bad_model_config.txt").read_text())


def test_rendered_text_is_tf_servings_layout():
    text = render_model_server_config(
        [
            ModelEntry(
                "m", 's3://b/"q"\n', policy=VersionPolicy("specific", versions=(1, 2)), labels=(("s", 2),)
            )
        ]
    )
    assert text == (
        "model_config_list {\n"
        "  config {\n"
        '    name: "m"\n'
        '    base_path: "s3://b/\\"q\\"\\n"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy {\n"
        "      specific {\n"
        "        versions: 1\n"
        "        versions: 2\n"
        "      }\n"
        "    }\n"
        "    version_labels {\n"
        '      key: "s"\n'
        "      value: 2\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


def test_monitoring_config_reads_like_tf_servings():
    from generator.render.tfserving import monitoring_config

    ours = parse_text(monitoring_config())
    theirs = parse_text((TFSERVING / "monitoring_config.txt").read_text())
    assert ours == theirs
