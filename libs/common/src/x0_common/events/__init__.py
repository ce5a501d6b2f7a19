"""Message models shared by producers and consumers.

One module per domain (``crypto``, ``rag``, ``telemetry``); ``envelope`` holds the
parts every message has: the reply shape and the header names.
"""

from x0_common.events.envelope import ErrorBody, Headers, Reply

__all__ = ["ErrorBody", "Headers", "Reply"]
