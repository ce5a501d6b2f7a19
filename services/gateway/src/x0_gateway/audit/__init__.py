"""The audit trail: records of every operation on managed keys, collections, tenants
and API keys, and of every refused request (``docs/security.md``, Audit).

- ``settings``   ``X0_GATEWAY_AUDIT__*``: the HMAC key, timeouts, the consumer, retention
- ``policy``     which operations are audited, and the resource each one names
- ``writer``     builds records and publishes them to ``x0.audit`` (acks=all)
- ``trail``      the attempt record written before an audited operation runs (fail closed)
- ``middleware`` the outcome record of every audited or refused request
- ``log``        ``gateway.audit_log`` in PostgreSQL: append, partitions, retention, query
- ``sink``       the consumer that copies ``x0.audit`` into ``gateway.audit_log``
"""
