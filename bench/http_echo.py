"""The HTTP half of the single-op baseline: an echo on the gateway's own HTTP server.

``python -m bench.http_echo`` (port in ``X0_BENCH_HTTP_ECHO_PORT``) serves a bare ASGI
app with the gateway's uvicorn configuration (``x0_gateway.limits.connections.
server_config``: the same protocol class, event loop, deadlines and limits that
``python -m x0_gateway`` runs). ``POST`` answers its body back as JSON; ``GET
/health/ready`` answers 200. No routing, validation, authentication, tracing,
metrics or Kafka: what a request costs the server and the bench's own client alone.
"""

from __future__ import annotations

import os
from typing import Any

import uvicorn

from x0_gateway.limits.connections import ConnectionSettings, server_config

Scope = dict[str, Any]
Message = dict[str, Any]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    """Echo a POST's body; 200 with an empty JSON object for anything else."""
    if scope["type"] == "lifespan":
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] != "POST":
        body = b"{}"
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    """Serve until stopped."""
    port = int(os.environ["X0_BENCH_HTTP_ECHO_PORT"])
    config = server_config(app, "127.0.0.1", port, ConnectionSettings())
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
