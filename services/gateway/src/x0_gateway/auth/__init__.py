"""Who may call the gateway, and what they may do (docs/security.md).

apikeys.py        what an API key looks like; its HMAC-SHA-256 digest
store.py          tenants and keys in PostgreSQL (schema ``gateway``)
key_verifier.py   API-key verification, cached at most 5 s; last-use bookkeeping
oidc.py           OIDC/JWT bearer tokens against a JWKS (URL or file)
authenticator.py  ``Authorization: Bearer`` -> API key or JWT -> :class:`Caller`
caller.py         :class:`Caller` and the 401 errors
guard.py          the FastAPI dependencies every route uses (401, 403, principal)
"""
