"""Logging for the ``publisher`` command: a human line, or one JSON object per line.

Log calls name what they are about through ``extra=``::

    log.warning("%s to %s: %s", message_id, recipient, detail,
                extra={"recipient": recipient, "message_id": message_id})

The text format shows the message only, as it always has; the JSON format adds those
keys as fields, so a log collector can filter by source, recipient or message id
without parsing the message.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from enum import StrEnum

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
# The ``extra=`` keys copied into a JSON line when a log call passes them.
CONTEXT_FIELDS = ("source", "recipient", "message_id", "item_id")


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and context fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            # RFC 3339 in UTC, to the millisecond.
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii=False: names and subjects in Cyrillic or Arabic stay readable;
        # json.dumps still escapes newlines, so a record stays on one line.
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(*, level: int, log_format: LogFormat) -> None:
    """Set up the root logger once, as :func:`logging.basicConfig` does."""
    handler = logging.StreamHandler()
    if log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
