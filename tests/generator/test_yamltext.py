"""The serializer writes YAML that PyYAML reads back unchanged, for every rendered document and edge cases."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import loader, render
from generator.render.yamltext import dump_plain
from tests.generator.goldens import TESTDATA

EDGE_CASES = [
    {
        "a": "true",
        "b": "yes",
        "c": "no",
        "d": "on",
        "e": "null",
        "f": "~",
        "g": "",
        "h": "1",
        "i": "0o17",
        "j": "1_000",
        "k": "2.6.2",
        "l": "1e3",
        "m": "-",
        "n": "y",
        "o": "a: b",
        "p": "a #b",
        "q": "#x",
        "r": "*x",
        "s": "&x",
        "t": "!x",
        "u": "'q'",
        "v": '"q"',
        "w": "[x]",
        "x": "{x}",
        "y": "x:",
        "z": " lead",
        "aa": "trail ",
        "ab": "tab\tin",
        "ac": "ünïcode",
        "ad": "2024-01-01",
        "ae": "0x1F",
        "af": ".inf",
        "ag": "=",
        "ah": "<<",
        "ai": "%x",
        "aj": "@x",
        "ak": "`x",
        "al": "|",
        "am": ">",
        "an": "?",
        "ao": ",x",
        "ap": "12:30:00",
        "aq": "+1",
        "ar": ".5",
        "as": "ok value",
        "at": "path/to:thing",
        "au": "sha256:ab",
        "av": "10s",
    },
    {
        "multi": "line one\nline two\n",
        "no-final-newline": "a\nb",
        "blank-lines": "a\n\nb\n",
        "lead": " a\nb\n",
        "double": "a\n\n",
        "trailing-space": "a \nb\n",
    },
    {
        "nested": {
            "list": [{"a": 1, "b": [1, 2, {"c": None}]}, [1, [2]], [], {}],
            "empty": {},
            "none": None,
            "bools": [True, False],
            "float": 1.5,
            "neg": -3,
        }
    },
    [{"x": "1"}, "plain", 0],
]


@pytest.mark.parametrize("document", EDGE_CASES)
def test_round_trip_of_edge_cases(document):
    assert yaml.safe_load(dump_plain(document)) == document


CATALOGUES = [
    TESTDATA / "catalogues" / name / "models.yaml"
    for name in sorted(p.name for p in (TESTDATA / "catalogues").iterdir())
]
CATALOGUES.append(TESTDATA.parent.parent.parent / "models.yaml")


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parent.name)
def test_round_trip_of_rendered_documents(path):
    catalogue = loader.load(path)
    for path, text in render.render(catalogue).items():  # includes the webhook's documents when enabled
        if path.endswith(".yaml"):
            parsed = yaml.safe_load(text)
            assert dump_plain(parsed) == text.split("\n", 1)[1], path


def test_number_like_and_boolean_words_are_quoted():
    text = dump_plain({"port": "8501", "flag": "true", "version": "2.6.2", "octal": "0o17", "y": "y"})
    assert text == 'port: "8501"\nflag: "true"\nversion: "2.6.2"\noctal: "0o17"\n"y": "y"\n'


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20),
    st.sampled_from(["true", "no", "~", "1.0", "0o7", "a: b", "- x", "#", "x\ny\n", "", " ", "@", "2.6.2"]),
)
_keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
_documents = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _documents, max_size=5))
def test_round_trip_property(document):
    assert yaml.safe_load(dump_plain(document)) == document
