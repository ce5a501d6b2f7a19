"""x0_common.identity: files to TLS contexts, mutual TLS, and rotation without restart.

A real TLS server and client on the loopback, with certificates of the development PKI
(x0_common.identity.development): what is checked is what the peer presented.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from x0_common.identity import FileSource, client_context, reload_now, server_context
from x0_common.identity.development import make
from x0_common.settings import CommonSettings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("identity")
    make(folder, ["kafka", "gateway", "crypto"])
    return folder


def _source(folder: Path) -> FileSource:
    return FileSource(folder / "cert.pem", folder / "key.pem", folder / "bundle.pem")


async def _peer_serial(port: int, context: ssl.SSLContext) -> int:
    """Connects, returns the serial number of the server's certificate."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        await reader.readexactly(1)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def server(pki: Path) -> AsyncIterator[tuple[int, list[str]]]:
    """A TLS server as ``kafka`` that records each client's certificate CN."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("ssl_object").getpeercert()
        subject = dict(item for part in peer["subject"] for item in part)
        seen.append(subject["commonName"])
        writer.write(b"!")
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(
        handle, "127.0.0.1", 0, ssl=server_context(_source(pki / "kafka"))
    )
    async with listening:
        yield listening.sockets[0].getsockname()[1], seen


def _serial(file: Path) -> int:
    return x509.load_pem_x509_certificate(file.read_bytes()).serial_number


async def test_mutual_tls_both_sides_see_each_others_identity(
    pki: Path, server: tuple[int, list[str]]
) -> None:
    port, seen = server
    serial = await _peer_serial(port, client_context(_source(pki / "gateway")))
    assert serial == _serial(pki / "kafka" / "cert.pem")
    assert seen == ["gateway.x0.local"]


async def test_a_client_without_a_certificate_is_refused(
    pki: Path, server: tuple[int, list[str]]
) -> None:
    port, seen = server
    bare = ssl.create_default_context(cafile=pki / "ca" / "ca.pem")
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await _peer_serial(port, bare)
    assert seen == []


async def test_a_rotated_certificate_is_used_by_the_same_context(
    pki: Path, server: tuple[int, list[str]]
) -> None:
    """Rotation without restart: the server's context object is reloaded in place."""
    port, _seen = server
    client = client_context(_source(pki / "crypto"))
    before = await _peer_serial(port, client)
    make(pki, ["kafka"], rotate=["kafka"])
    reload_now()
    after = await _peer_serial(port, client)
    assert before != after
    assert after == _serial(pki / "kafka" / "cert.pem")


def test_the_workload_identity_is_kafkas_unless_kafka_has_its_own(
    pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, file in (("CERT", "cert"), ("KEY", "key"), ("BUNDLE", "bundle")):
        monkeypatch.setenv(f"X0_TLS__{name}_FILE", str(pki / "gateway" / f"{file}.pem"))
    settings = CommonSettings()
    assert settings.kafka.protocol == "SSL"
    assert settings.kafka.tls is not None
    assert settings.kafka.tls.cert_file == pki / "gateway" / "cert.pem"
