"""Log lines as JSON, one object per event, for sites that ship logs to a search engine.

Our log messages are already structured: ``"participant joined room=%s
user=%s role=%s"``. :class:`JsonFormatter` turns such a record into::

    {"time": "2026-12-05T00:12:03.120Z", "level": "INFO",
     "logger": "cs3collab.service.room", "event": "participant joined",
     "room": "…", "user": "einstein@cernbox.demo", "site": "cernbox.demo",
     "role": "editor", "message": "participant joined room=… user=… role=editor"}

Fields come from the formatted message's ``key=value`` pairs (a value runs
to the next ``key=``, so an error text with spaces stays whole) and from
``extra={...}`` given to the logging call, which wins. ``site`` is taken
from ``user`` (``username@idp``) when a record names a user but no site.
An exception's traceback goes in ``exc``. Plain text stays the default.
"""

from __future__ import annotations

import datetime
import json
import logging
import re

FIELD = re.compile(r"(?:^|\s)([a-z_][a-z0-9_]*)=(.*?)(?=\s+[a-z_][a-z0-9_]*=|$)", re.S)

# attributes every LogRecord has: anything else on a record came from ``extra``
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_RESERVED = {"time", "level", "logger", "event", "message", "exc"}


def parse_fields(message: str) -> tuple[str, dict[str, str]]:
    """``("participant joined", {"room": ..., "user": ...})`` for a key=value message."""
    matches = list(FIELD.finditer(message))
    if not matches:
        return message.strip(), {}
    event = message[: matches[0].start()].strip().rstrip(":,")
    return event, {m.group(1): m.group(2) for m in matches}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, fields = parse_fields(message)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        fields.update({k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for k, v in extra.items()})
        user = fields.get("user")
        if "site" not in fields and isinstance(user, str) and "@" in user:
            fields["site"] = user.rsplit("@", 1)[1]
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "event": event,
        }
        line.update({k: v for k, v in fields.items() if k not in _RESERVED})
        line["message"] = message
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def use_log_format(kind: str) -> None:
    """Switch the root logger's handlers to ``kind`` (``text`` leaves them as they are)."""
    if kind.lower() != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
