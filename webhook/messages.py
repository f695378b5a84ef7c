"""Message shaping: a denial is one line under MESSAGE_LIMIT characters, a warning under WARNING_LIMIT.

The API server shows a denial as `admission webhook "NAME" denied the request: MESSAGE`, and kubectl prints it
after `Error from server: ...`; so the message must name the check, model, path, version, what is missing
and the fix, in one readable line.
"""

from __future__ import annotations

import re

from webhook.limits import MAX_QUOTED_SCAN_CHARS

MESSAGE_LIMIT = 300
WARNING_LIMIT = 120
_SPACE = re.compile(r"\s+")


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Collapse whitespace (no newlines, tabs or control characters) and cut at `limit` with an ellipsis.
    Only the first MAX_QUOTED_SCAN_CHARS characters are looked at, however long `text` is."""
    head = text[: max(limit, MAX_QUOTED_SCAN_CHARS)]
    flat = _SPACE.sub(" ", "".join(ch if ch.isprintable() else " " for ch in head)).strip()
    if len(flat) <= limit and len(head) == len(text):
        return flat
    return flat[: limit - 1].rstrip() + "…"


def warning(text: str) -> str:
    return one_line(text, WARNING_LIMIT)


def clip(text: str, limit: int) -> str:
    """A value quoted inside a message (a path, an image) cut short so the sentence around it survives."""
    text = one_line(text, MAX_QUOTED_SCAN_CHARS)
    return text if len(text) <= limit else text[: limit - 1] + "…"


