"""DirWatch checks after every change, and catches a version written in place (the negative control for the
sync tests, which assert it never fires)."""

from __future__ import annotations

import time

from devtools.dirwatch import DirWatch


def wait_for(condition, bound: float = 30.0) -> None:
    deadline = time.monotonic() + bound
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_every_change_is_checked_and_violations_are_kept(tmp_path):
    seen = []

    def check(path):
        seen.append(path.name)
        version = tmp_path / "1"
        if (version / "saved_model.pb").exists():
            assert (version / "variables.index").exists(), "saved_model.pb without variables.index"

    with DirWatch(tmp_path, check) as watch:
        (tmp_path / "1").mkdir()
        wait_for(lambda: "1" in seen)  # watched inside from now on
        (tmp_path / "1" / "saved_model.pb").write_bytes(b"x")  # written in place: the violation
        wait_for(lambda: "saved_model.pb" in seen)  # a download takes time; this one waits to be seen
        (tmp_path / "1" / "variables.index").write_bytes(b"y")
        wait_for(lambda: "variables.index" in seen)
    assert "saved_model.pb" in seen and "variables.index" in seen
    assert watch.failures, "the in-place write must be caught"
    assert "saved_model.pb without variables.index" in str(watch.failures[0])


def test_a_directory_renamed_in_is_watched_inside(tmp_path):
    staging = tmp_path / ".staging"
    staging.mkdir()
    seen = []
    with DirWatch(tmp_path, lambda path: seen.append(path.name)):
        staging.rename(tmp_path / "2")
        wait_for(lambda: "2" in seen)
        (tmp_path / "2" / "late").write_bytes(b"z")
        wait_for(lambda: "late" in seen)
    assert "late" in seen
