from __future__ import annotations

from generator.yamlsource import MAX_BYTES, MAX_DEPTH, parse


def messages(text):
    document, problems = parse(text)
    assert document is None
    return [p.format("models.yaml") for p in problems]


def test_plain_data_with_positions():
    document, problems = parse(b"a:\n  - b: 1\n    c: 'x'\n")
    assert problems == []
    assert document.data == {"a": [{"b": 1, "c": "x"}]}
    assert document.position(("a", 0, "c")) == (3, 8)
    assert document.key_position(("a", 0, "c")) == (3, 5)
    assert document.position(("a", 0, "missing")) == (2, 5)


def test_alias_bomb_is_refused_without_expanding():
    bomb = "a: &a [x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    lines = messages(bomb.encode())
    assert lines[0] == "models.yaml:1:4: $.a: YAML anchor &a is not allowed (plain data only)"
    assert "models.yaml:2:8: $.b[0]: YAML alias *a is not allowed (plain data only)" in lines


def test_tags_merge_keys_and_duplicate_keys_are_refused():
    lines = messages(b"a: !!python/name:os.system x\nb: !custom 1\n<<: {c: 1}\nd: 1\nd: 2\n")
    assert lines == [
        "models.yaml:1:4: $.a: YAML tag tag:yaml.org,2002:python/name:os.system is not allowed"
        " (plain data only)",
        "models.yaml:2:4: $.b: YAML tag !custom is not allowed (plain data only)",
        'models.yaml:3:1: $["<<"]: YAML merge keys (<<) are not allowed (plain data only)',
        "models.yaml:5:1: $.d: duplicate key 'd' (first at line 4)",
    ]


def test_size_depth_encoding_and_emptiness():
    assert messages(b"#" * (MAX_BYTES + 1))[0].endswith(f"larger than the {MAX_BYTES}-byte limit")
    assert messages(b"[" * (MAX_DEPTH + 5))[0].endswith(f"nested deeper than {MAX_DEPTH} levels")
    assert messages(b"a: \xff\n") == ["models.yaml:1:1: $: not UTF-8 text (invalid start byte at byte 3)"]
    assert messages(b"# only a comment\n") == ["models.yaml:1:1: $: the file is empty"]
    assert messages(b"a: 1\n---\nb: 2\n")[0].startswith("models.yaml:2:1: $: invalid YAML:")


def test_dates_and_binary_stay_text():
    document, problems = parse(b"a: 2024-01-01\nb: 0x10\nc: ~\n")
    assert problems == []
    assert document.data == {"a": "2024-01-01", "b": 16, "c": None}
