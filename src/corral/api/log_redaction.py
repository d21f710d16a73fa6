"""Keeping the owner's answer-page token out of the API's logs.

The link ``/reclaim/respond/<token>`` is the only authorization of the owner's
answer, so a logged request path would leak it: this filter rewrites every
record of the loggers that may name a path. A reverse proxy in front of Corral
keeps its own access log: redact the path there too.
"""

from __future__ import annotations

import logging
import re

TOKEN_PATH = re.compile(r"(/reclaim/respond/)[^\s\"'?#/]+")


def redact(text: str) -> str:
    """The text with every answer-page token replaced: a path in a log line is not a secret."""
    return TOKEN_PATH.sub(r"\1<token>", text)


class RedactTokenPaths(logging.Filter):
    """Rewrites a log record so no /reclaim/respond/<token> path reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


LOGGERS = (
    "uvicorn.access",
    "uvicorn.error",
    "corral.api.app",
    "corral.api.routes.respond_page",
)


def redact_token_paths() -> None:
    """Install the filter on the loggers that may name a request path (once each)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokenPaths) for f in logger.filters):
            logger.addFilter(RedactTokenPaths())


__all__ = ["LOGGERS", "TOKEN_PATH", "RedactTokenPaths", "redact", "redact_token_paths"]
