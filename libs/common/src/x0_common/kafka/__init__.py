"""Kafka request/reply on the x0 message contract.

- :class:`Requester` (gateway side) publishes a request and awaits its reply.
- :class:`Responder` (worker side) runs typed handlers on FastStream and replies.
"""

from x0_common.kafka.requester import Requester
from x0_common.kafka.responder import RequestContext, Responder

__all__ = ["RequestContext", "Requester", "Responder"]
