"""What bounds a caller: rate limits, idempotency, concurrency, connection deadlines.

- :mod:`.policy` — the rate class of a contract row and the quotas per class;
- :mod:`.gcra` and :mod:`.ratelimit` — per credential and per tenant, in Redis;
- :mod:`.idempotency` — ``Idempotency-Key`` on the rows that create or mutate;
- :mod:`.concurrency` — 503 past a number of requests served at once;
- :mod:`.connections` — header and body deadlines of the HTTP server itself.

Routes get the first two from :func:`x0_gateway.routing.add_route`; the app gets the
rest from :func:`x0_gateway.limits.install.install_limits`.
"""
