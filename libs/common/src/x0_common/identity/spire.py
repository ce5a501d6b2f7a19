"""The SPIRE source of a workload's identity: its X.509-SVID and trust bundle from the
SPIFFE Workload API, through py-spiffe's ``X509Source``.

    source = SpireSource()                  # SPIFFE_ENDPOINT_SOCKET names the agent
    context = client_context(source)        # x0_common.identity: one code path after this

The ``X509Source`` keeps one stream open to the agent and receives every new SVID (the
agent rotates them at half their life) and bundle; each update bumps :meth:`version`,
so the identity watcher loads it into the same ``ssl.SSLContext`` objects and new
connections present the new certificate, without a restart. When the agent goes away
(a restart), py-spiffe reconnects with backoff and the last SVID stays in use until the
new agent answers with a fresh one.

:func:`workload_source` picks this source when ``SPIFFE_ENDPOINT_SOCKET`` is set and the
file source (cert-manager style) otherwise. Which SVID a process gets is decided by the
agent's workload attestor (docs/security.md, "Workload identity: SPIRE").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from spiffe import SpiffeId, X509Source

from x0_common.identity import TlsMaterial, TlsMaterialSource, source_from_settings

if TYPE_CHECKING:
    from spiffe import X509Svid

    from x0_common.settings import TlsSettings

__all__ = ["ENDPOINT_VARIABLE", "SpireSource", "workload_source"]

# The SPIFFE standard's variable: where the Workload API listens (unix:///path).
ENDPOINT_VARIABLE = "SPIFFE_ENDPOINT_SOCKET"
# How long a starting workload waits for its first SVID before it fails.
DEFAULT_TIMEOUT_SECONDS = 30.0


def _picker(spiffe_id: str) -> Callable[[list[X509Svid]], X509Svid]:
    wanted = SpiffeId(spiffe_id)

    def pick(svids: list[X509Svid]) -> X509Svid:
        for svid in svids:
            if svid.spiffe_id == wanted:
                return svid
        msg = f"the agent issued no SVID for {spiffe_id}"
        raise LookupError(msg)

    return pick


class SpireSource:
    """The workload's X.509-SVID, its key and its trust domain's bundle, as PEM.

    ``socket`` defaults to ``SPIFFE_ENDPOINT_SOCKET``. ``spiffe_id`` picks one SVID when
    the agent issues several to this process; unset, the agent's default (the first).
    Construction waits up to ``timeout`` seconds for the first SVID and raises
    ``spiffe.workloadapi.errors.X509SourceError`` when none comes: a workload that has
    no identity must not start.
    """

    def __init__(
        self,
        socket: str | None = None,
        *,
        spiffe_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._updates = 0
        self._lock = threading.Lock()
        self._source = X509Source(
            socket_path=socket,
            timeout_in_seconds=timeout,
            svid_picker=None if spiffe_id is None else _picker(spiffe_id),
        )
        self._source.subscribe_for_updates(self._updated)

    def _updated(self) -> None:
        with self._lock:
            self._updates += 1

    def version(self) -> Hashable:
        """Counts the updates the agent sent (a new SVID or a new bundle)."""
        with self._lock:
            return self._updates

    def svid(self) -> X509Svid:
        """The current SVID (its SPIFFE ID, chain and key)."""
        return self._source.get_x509_context().default_svid

    def load(self) -> TlsMaterial:
        """The current SVID's chain and key, and the bundle of its trust domain, taken
        from one snapshot (never a certificate of one update with a key of another)."""
        context = self._source.get_x509_context()
        svid = context.default_svid
        bundle = context.x509_bundle_set.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
        if bundle is None:
            msg = f"the agent sent no bundle for {svid.spiffe_id.trust_domain}"
            raise ValueError(msg)
        return TlsMaterial(
            cert_chain=b"".join(cert.public_bytes(Encoding.PEM) for cert in svid.cert_chain),
            key=svid.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
            bundle=b"".join(
                cert.public_bytes(Encoding.PEM)
                # Sorted, so the same bundle is always the same bytes.
                for cert in sorted(bundle.x509_authorities, key=lambda c: c.serial_number)
            ),
        )

    def close(self) -> None:
        """Closes the stream to the agent; the source serves nothing afterwards."""
        self._source.close()


_sources: dict[tuple[str, str | None], SpireSource] = {}
_sources_lock = threading.Lock()


def workload_source(settings: TlsSettings, *, spiffe_id: str | None = None) -> TlsMaterialSource:
    """This process's identity: from SPIRE when ``SPIFFE_ENDPOINT_SOCKET`` is set, else
    from the files ``settings`` names. One SPIRE source per socket and SPIFFE ID, so
    every context of the process follows the same stream."""
    socket = os.environ.get(ENDPOINT_VARIABLE)
    if not socket:
        return source_from_settings(settings)
    with _sources_lock:
        found = _sources.get((socket, spiffe_id))
        if found is None:
            found = _sources[(socket, spiffe_id)] = SpireSource(socket, spiffe_id=spiffe_id)
        return found
