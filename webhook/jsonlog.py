"""Log lines as JSON objects, one per line: values a caller sent (a uid, a name, an exception message) are
escaped inside JSON strings, so no input can start a line of its own or pass for another field."""

from __future__ import annotations

import json
import logging
import time

from webhook.limits import MAX_QUOTED_SCAN_CHARS

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": _bounded(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                plain = isinstance(value, bool | int | float) or value is None
                entry[key] = value if plain else _bounded(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


def _bounded(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_QUOTED_SCAN_CHARS else text[:MAX_QUOTED_SCAN_CHARS] + "…"


def configure(level: int = logging.INFO) -> None:
    """The root logger writes JSON lines to stderr (the webhook's own lines; gunicorn keeps its format)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
