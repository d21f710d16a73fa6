"""When each host is read: a pure schedule over the polling cycle (see :mod:`.schedule`)."""

from corral.engines.polling.schedule import (
    host_fingerprint,
    is_overdue,
    next_due,
    phases,
)

__all__ = ["host_fingerprint", "is_overdue", "next_due", "phases"]
