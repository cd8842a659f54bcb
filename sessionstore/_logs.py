"""Log lines as JSON objects, one per line, for log pipelines that parse fields.

``sessionstore serve --log-format json`` installs this formatter. A request line carries
``method``, ``route``, ``path``, ``status`` and ``duration_ms`` as fields; the path is the
request's own, without its query string. Nothing sessionstore logs holds a token or a key.

Nothing a client sends reaches a log line unbounded: the method is one of a fixed few or
``other``, the status an HTTP status or ``other``, and the path ``logged_path``: printable
ASCII, at most ``MAX_PATH`` characters.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# The extra fields a record may carry into its JSON object (AccessLog sets them).
FIELDS = ("method", "route", "path", "status", "duration_ms", "client")
MAX_PATH = 200
_CLIPPED = "..."


def logged_path(raw: bytes) -> str:
    """A request's path as a log line holds it: still percent-encoded, every other byte that is
    not printable ASCII encoded too (so no control character, line break or bidi override
    reaches the log), and cut to ``MAX_PATH`` characters, ``...`` marking a cut."""
    text = "".join(chr(byte) if 0x21 <= byte <= 0x7E else f"%{byte:02X}" for byte in raw[:MAX_PATH])
    if len(text) > MAX_PATH or len(raw) > MAX_PATH:
        text = text[: MAX_PATH - len(_CLIPPED)] + _CLIPPED
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


def configure(level: str, log_format: str) -> None:
    """The process's logging: ``text`` (a readable line) or ``json`` (one object per line)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
