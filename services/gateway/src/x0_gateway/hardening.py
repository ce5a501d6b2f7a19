"""Response headers every answer carries, and the ones a route asks for.

Security headers (OWASP's REST and HTTP-headers cheat sheets):

- ``X-Content-Type-Options: nosniff`` — a browser never guesses JSON as HTML;
- ``Referrer-Policy: no-referrer``;
- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'`` — no page frames the
  API or ``/docs`` (clickjacking); API answers also get ``default-src 'none'``, while
  ``/docs`` keeps the scripts Swagger UI loads;
- ``Cache-Control: no-store`` unless the route set its own: answers hold keys and
  tenants' data, which no shared cache may keep.

A dependency adds headers to whatever response its route ends with (a returned one,
or an error's problem document) by :func:`add_response_headers`; the middleware
sends them: the RateLimit fields travel this way.
"""

from __future__ import annotations

from fastapi import Request
from starlette.types import Message, Receive, Scope, Send

from x0_gateway.asgi import HttpMiddleware

_STATE_KEY = "x0_response_headers"
_DOCS_PATHS = ("/docs", "/redoc")
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_CSP = (b"content-security-policy", b"frame-ancestors 'none'")
_NO_STORE = (b"cache-control", b"no-store")


def add_response_headers(request: Request, headers: list[tuple[bytes, bytes]]) -> None:
    """Send ``headers`` with the response to ``request``, whatever it turns out to be."""
    state = request.scope.setdefault("state", {})
    state.setdefault(_STATE_KEY, []).extend(headers)


class SecurityHeadersMiddleware(HttpMiddleware):
    """Adds the security headers and the headers routes asked for to every response."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        docs = scope["path"].startswith(_DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in _COMMON if header[0] not in present]
                if b"content-security-policy" not in present:
                    headers.append(_DOCS_CSP if docs else _API_CSP)
                if b"cache-control" not in present:
                    headers.append(_NO_STORE)
                headers += scope.get("state", {}).get(_STATE_KEY, [])
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
