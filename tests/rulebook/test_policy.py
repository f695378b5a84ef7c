import pytest

from rulebook.policy import VersionPolicy, parse_version_name


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("00000123", 123),
        ("1", 1),
        ("0", 0),
        ("01", 1),
        (" 7 ", 7),
        ("-0", 0),
        ("9223372036854775807", 2**63 - 1),
        ("-1", None),
        ("+1", None),
        ("1.5", None),
        ("v1", None),
        ("10.tmp", None),
        ("latest", None),
        ("", None),
        ("9223372036854775808", None),
        ("1 2", None),
        ("0x10", None),
        ("１２", None),
    ],
)
def test_version_names_parse_like_tf_serving(name, number):
    assert parse_version_name(name) == number


@pytest.mark.parametrize("text", ["latest", "latest:3", "all", "specific:1,2", "specific:7"])
def test_policy_text_round_trips(text):
    assert str(VersionPolicy.parse(text)) == text


def test_policy_parse_normalises():
    assert VersionPolicy.parse(" Latest:1 ") == VersionPolicy("latest")
    assert VersionPolicy.parse("specific: 2, 1,2") == VersionPolicy("specific", versions=(1, 2))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "newest",
        "latest:0",
        "latest:x",
        "latest:-1",
        "all:2",
        "specific",
        "specific:",
        "specific:a,b",
        "specific:-1",
    ],
)
def test_bad_policy_text_is_a_value_error(text):
    with pytest.raises(ValueError):
        VersionPolicy.parse(text)


def test_selection_matches_tf_serving():
    available = [3, 124, 123, 7]
    assert VersionPolicy("latest").select(available) == (124,)
    assert VersionPolicy("latest", count=2).select(available) == (124, 123)
    assert VersionPolicy("latest", count=9).select(available) == (124, 123, 7, 3)
    assert VersionPolicy("all").select(available) == (124, 123, 7, 3)
    specific = VersionPolicy("specific", versions=(3, 5))
    assert specific.select(available) == (3,)
    assert specific.missing(available) == (5,)
    assert VersionPolicy("latest").select([]) == ()
    assert VersionPolicy("latest", count=0).count == 1  # TF Serving: max(num_versions, 1)
    assert VersionPolicy("specific").select(available) == ()
