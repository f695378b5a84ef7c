"""Watch a directory tree with Linux inotify (ctypes, no dependency) and run a check after every change.

The sync tests use it as TF Serving's eye: after each event anywhere under the model's directory they
assert that every version directory TF Serving could see is complete. New subdirectories are watched as
they appear (a directory renamed into place is scanned at once, so nothing inside it goes unchecked).

    with DirWatch(dest, check) as watch:   # check(path_of_event) raises AssertionError on a violation
        ...
    watch.failures  # the AssertionErrors raised, in order
    watch.events    # how many events were checked

The check sees the tree as it is when the event is read, so a state that lasts less than the watcher's
reaction time (well under a millisecond to a few, on a busy machine) can slip by; a version copied file by
file into place lasts as long as its download, which it cannot.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
from collections.abc import Callable
from pathlib import Path

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_ISDIR = 0x40000000
IN_IGNORED = 0x8000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF
_EVENT = struct.Struct("iIII")


class DirWatch:
    def __init__(self, root: Path, check: Callable[[Path], None]) -> None:
        self.root = Path(root)
        self.check = check
        self.failures: list[AssertionError] = []
        self.events = 0
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = -1
        self._dirs: dict[int, Path] = {}
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, name="dirwatch", daemon=True)

    def start(self) -> DirWatch:
        self._fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._watch_tree(self.root)
        self._run_check(self.root)
        self._thread.start()
        return self

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=10)
        for fd in (self._fd, self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)

    def __enter__(self) -> DirWatch:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _watch_tree(self, top: Path) -> None:
        for directory, _, _ in os.walk(top):
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(directory), _MASK)
            if wd >= 0:
                self._dirs[wd] = Path(directory)

    def _run_check(self, path: Path) -> None:
        self.events += 1
        try:
            self.check(path)
        except AssertionError as exc:
            self.failures.append(exc)

    def _loop(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                continue
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                if mask & IN_IGNORED:
                    self._dirs.pop(wd, None)
                    continue
                parent = self._dirs.get(wd)
                if parent is None:
                    continue
                path = parent / os.fsdecode(raw) if raw else parent
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                    self._watch_tree(path)
                self._run_check(path)
