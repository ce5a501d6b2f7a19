"""A workload's X.509 identity, turned into ``ssl.SSLContext`` objects that follow rotation.

The interface (one code path after loading)::

    TlsMaterialSource            where the identity comes from
        .load() -> TlsMaterial   the current certificate chain, key and trust bundle (PEM)
        .version() -> Hashable   changes whenever load() would return something new;
                                 cheap (a stat, a counter), called every few seconds

    TlsMaterial(cert_chain, key, bundle)   PEM bytes, the leaf certificate first

    Sources:
      FileSource       cert-manager style files (X0_TLS__CERT_FILE, X0_TLS__KEY_FILE,
                       X0_TLS__BUNDLE_FILE): this module
      SPIRE source     the Workload API's X.509-SVID and bundle (py-spiffe X509Source):
                       x0_common.identity.spire, beside this one

    client_context(source) / server_context(source) -> ssl.SSLContext
        one context per source and purpose, both sides verify the peer against the
        bundle (mutual TLS). A watcher thread polls each source's version() and, when
        it changed, loads the new material into the *same* context objects
        (load_cert_chain, load_verify_locations): connections made afterwards present
        the new certificate, without a restart and without the clients knowing.
        A load that fails (a half-written rotation) keeps the old material and is
        retried on the next poll.

Only this module turns material into contexts; a new source implements ``load`` and
``version`` and nothing else. :mod:`x0_common.kafka.clients` takes the client context
for every Kafka connection (``connection_options``).
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
import threading
import weakref
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from x0_common.settings import TlsSettings

__all__ = [
    "FileSource",
    "TlsMaterial",
    "TlsMaterialSource",
    "client_context",
    "server_context",
    "source_from_settings",
]

_log = logging.getLogger("x0.identity")


@dataclass(frozen=True)
class TlsMaterial:
    """A workload's certificate chain (leaf first), private key and trust bundle, PEM."""

    cert_chain: bytes
    key: bytes = b""
    bundle: bytes = b""


class TlsMaterialSource(Protocol):
    """Where a workload's identity comes from (files, the SPIRE Workload API)."""

    def load(self) -> TlsMaterial:
        """The current material; raises when it cannot be read (yet)."""
        ...

    def version(self) -> Hashable:
        """A value that changes whenever :meth:`load` would return new material."""
        ...


@dataclass(frozen=True)
class FileSource:
    """PEM files as cert-manager (or the local stack) writes them: ``cert_file`` holds the
    chain, leaf first; ``key_file`` the private key; ``bundle_file`` the trusted CAs."""

    cert_file: Path
    key_file: Path
    bundle_file: Path

    def load(self) -> TlsMaterial:
        """The three files' contents."""
        return TlsMaterial(
            cert_chain=self.cert_file.read_bytes(),
            key=self.key_file.read_bytes(),
            bundle=self.bundle_file.read_bytes(),
        )

    def version(self) -> Hashable:
        """Modification time, size and inode of each file (a replaced file or symlink
        target counts as a change)."""
        stamps: list[tuple[int, int, int] | None] = []
        for file in (self.cert_file, self.key_file, self.bundle_file):
            try:
                found = file.stat()
            except FileNotFoundError:
                stamps.append(None)
            else:
                stamps.append((found.st_mtime_ns, found.st_size, found.st_ino))
        return tuple(stamps)


def source_from_settings(settings: TlsSettings) -> FileSource:
    """The file source the settings name; raises when a file is not named."""
    missing = [
        f"X0_TLS__{name.upper()}"
        for name in ("cert_file", "key_file", "bundle_file")
        if getattr(settings, name) is None
    ]
    if missing:
        msg = f"no TLS identity: {', '.join(missing)} not set"
        raise ValueError(msg)
    cert, key, bundle = settings.cert_file, settings.key_file, settings.bundle_file
    assert cert is not None
    assert key is not None
    assert bundle is not None
    return FileSource(cert, key, bundle)


def _apply(context: ssl.SSLContext, material: TlsMaterial) -> None:
    """Loads ``material`` into ``context``: the step every source shares.

    ``load_cert_chain`` reads files only, so the chain and key pass through a file in a
    private temporary folder that is removed at once."""
    context.load_verify_locations(cadata=material.bundle.decode("ascii"))
    with tempfile.TemporaryDirectory(prefix="x0-tls-") as folder:
        chain = Path(folder, "chain.pem")
        key = Path(folder, "key.pem")
        for path, data in ((chain, material.cert_chain), (key, material.key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
        context.load_cert_chain(chain, key)


def _new_context(purpose: ssl.Purpose, *, check_hostname: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Mutual: a server asks every client for a certificate from the bundle.
    context.verify_mode = ssl.CERT_REQUIRED
    if purpose is ssl.Purpose.SERVER_AUTH:
        context.check_hostname = check_hostname
    return context


class _Tracked:
    """A source, the version last loaded, and the contexts made from it."""

    def __init__(self, source: TlsMaterialSource) -> None:
        self.source = source
        self.version: Hashable = source.version()
        self.contexts: weakref.WeakSet[ssl.SSLContext] = weakref.WeakSet()


class _Watcher:
    """One daemon thread that reloads every tracked context when its source changes."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._tracked: dict[tuple[TlsMaterialSource, ssl.Purpose, bool], ssl.SSLContext] = {}
        self._sources: dict[TlsMaterialSource, _Tracked] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def context(
        self, source: TlsMaterialSource, purpose: ssl.Purpose, *, check_hostname: bool
    ) -> ssl.SSLContext:
        key = (source, purpose, check_hostname)
        with self._lock:
            found = self._tracked.get(key)
            if found is not None:
                return found
            tracked = self._sources.get(source)
            if tracked is None:
                tracked = self._sources[source] = _Tracked(source)
            context = _new_context(purpose, check_hostname=check_hostname)
            _apply(context, source.load())
            tracked.contexts.add(context)
            self._tracked[key] = context
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="x0-tls-reload", daemon=True)
                self._thread.start()
            return context

    def check(self) -> None:
        """Reloads the contexts of every source whose version changed."""
        with self._lock:
            sources = list(self._sources.values())
        for tracked in sources:
            version = tracked.source.version()
            if version == tracked.version:
                continue
            try:
                material = tracked.source.load()
                for context in list(tracked.contexts):
                    _apply(context, material)
            except (OSError, ssl.SSLError, ValueError) as error:
                # A rotation caught half-way (new cert, old key): the next poll retries.
                _log.warning(
                    "TLS identity changed but could not be loaded yet; keeping the "
                    "previous one: %s",
                    type(error).__name__,
                )
                continue
            tracked.version = version
            _log.info("TLS identity reloaded")

    def _run(self) -> None:
        while True:
            threading.Event().wait(self.interval)
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a watcher that died would stop every rotation
                _log.exception("TLS identity watcher failed a check")


_WATCHER = _Watcher(interval=2.0)


def client_context(source: TlsMaterialSource, *, check_hostname: bool = True) -> ssl.SSLContext:
    """The client-side context of ``source``: presents its certificate, verifies the
    server against its bundle; reloaded in place when the source changes."""
    return _WATCHER.context(source, ssl.Purpose.SERVER_AUTH, check_hostname=check_hostname)


def server_context(source: TlsMaterialSource) -> ssl.SSLContext:
    """The server-side context of ``source``: requires a client certificate from its
    bundle; reloaded in place when the source changes."""
    return _WATCHER.context(source, ssl.Purpose.CLIENT_AUTH, check_hostname=False)


def reload_now() -> None:
    """Checks every source at once instead of at the next poll (tests, a SIGHUP)."""
    _WATCHER.check()
