"""Workload identity from the real SPIRE that the stack runs (deploy/local-stack/spire.sh).

- Every identity's process gets exactly its SVID: ``spiffe://x0.local/<name>``, subject
  CN ``<name>.x0.local``, issued by the stack's CA; a process no entry selects gets none.
- Rotation without restart: a workload serving TLS with ``server_context(SpireSource())``
  presents a new certificate once the agent rotates its short-lived SVID (20 s here),
  in the same process, to new connections.
- An agent restart breaks no running workload: it keeps serving with the SVID it holds
  and then presents the one the new agent issues.

SPIRE missing is a failure, never a skip: ``make test`` starts it (stack.sh up).
"""

from __future__ import annotations

import os
import secrets
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from spiffe.workloadapi.errors import X509SourceError

from x0_common.identity.spire import SpireSource

REPO_ROOT = Path(__file__).resolve().parents[2]
SPIRE_SH = REPO_ROOT / "deploy" / "local-stack" / "spire.sh"
TRUST_DOMAIN = "x0.local"
IDENTITIES = ("gateway", "crypto", "rag", "telemetry", "kafka", "ops")

pytestmark = [pytest.mark.integration, pytest.mark.security]


def spire(*arguments: str, timeout: float = 60) -> str:
    """spire.sh on this test run's stack (X0_STACK_DIR, set by test-stack.sh)."""
    done = subprocess.run(
        [str(SPIRE_SH), *arguments], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"spire.sh {' '.join(arguments)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def endpoint() -> str:
    """The agent's Workload API; fails the tests when SPIRE does not run."""
    status = subprocess.run(
        [str(SPIRE_SH), "status"], capture_output=True, text=True, timeout=30, check=False
    )
    if status.returncode != 0:
        pytest.fail(
            "SPIRE is not running on this stack (stack.sh up starts it; X0_STACK_DIR="
            f"{os.environ.get('X0_STACK_DIR')}):\n{status.stdout}{status.stderr}"
        )
    for line in spire("env", "ops").splitlines():
        if line.startswith("export SPIFFE_ENDPOINT_SOCKET="):
            return line.split("=", 1)[1]
    pytest.fail("spire.sh env printed no SPIFFE_ENDPOINT_SOCKET")


@pytest.fixture(scope="module")
def authority() -> x509.Certificate:
    """The trust domain's CA, from the server."""
    return x509.load_pem_x509_certificate(spire("server", "bundle", "show").encode())


def common_name(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


FETCH = textwrap.dedent(
    """
    import sys
    from cryptography.hazmat.primitives.serialization import Encoding
    from x0_common.identity.spire import SpireSource

    svid = SpireSource(timeout=30).svid()
    sys.stdout.write(b"".join(c.public_bytes(Encoding.PEM) for c in svid.cert_chain).decode())
    """
)


@pytest.mark.parametrize("name", IDENTITIES)
def test_each_workload_gets_its_own_svid(
    endpoint: str, authority: x509.Certificate, name: str
) -> None:
    # Run as workload <name> (its group), the process asks the Workload API itself.
    pem = spire("exec", name, sys.executable, "-c", FETCH)
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    uris = leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [f"spiffe://{TRUST_DOMAIN}/{name}"]
    # The first DNS name is the subject CN: the principal Kafka and PostgreSQL map.
    assert common_name(leaf) == f"{name}.{TRUST_DOMAIN}"
    leaf.verify_directly_issued_by(authority)


def test_a_process_no_entry_selects_gets_no_svid(endpoint: str) -> None:
    # This test process runs in no x0-* group: the agent attests it and issues nothing.
    with pytest.raises(X509SourceError):
        SpireSource(endpoint, timeout=3)


# ------------------------------------------------------------- rotation ----


@dataclass
class Workload:
    """A TLS server whose identity is SpireSource + x0_common.identity.server_context."""

    process: subprocess.Popen[str]
    port: int
    client: ssl.SSLContext
    hostname: str

    def certificate(self) -> x509.Certificate:
        """The certificate a new connection is shown."""
        with (
            ssl_connection(self.port) as raw,
            self.client.wrap_socket(raw, server_hostname=self.hostname) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            assert tls.recv(2) == b"ok"
        return x509.load_der_x509_certificate(der)


def ssl_connection(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


SERVER = textwrap.dedent(
    """
    import socket, ssl, sys
    from x0_common.identity import server_context
    from x0_common.identity.spire import SpireSource

    context = server_context(SpireSource(timeout=30))
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        connection, _ = listener.accept()
        try:
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError):
            pass
    """
)


@pytest.fixture
def workload_with(endpoint: str, tmp_path: Path) -> Iterator[Callable[[int], Workload]]:
    """Starts workloads under entries of their own (a group no real process has)."""
    started: list[tuple[subprocess.Popen[str], str]] = []
    # A client identity minted by the server: the workload asks for one (mutual TLS).
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    spire(
        "server", "x509", "mint",
        "-spiffeID", f"spiffe://{TRUST_DOMAIN}/test/client",
        "-ttl", "1h", "-write", str(client_dir),
    )  # fmt: skip
    client = ssl.create_default_context(cafile=client_dir / "bundle.pem")
    client.load_cert_chain(client_dir / "svid.pem", client_dir / "key.pem")

    def start(ttl: int) -> Workload:
        gid = 3_000_000 + secrets.randbelow(1_000_000)
        entry = f"x0-test-{gid}"
        hostname = f"workload-{gid}.{TRUST_DOMAIN}"
        spire(
            "server", "entry", "create",
            "-entryID", entry,
            "-parentID", f"spiffe://{TRUST_DOMAIN}/host/local",
            "-spiffeID", f"spiffe://{TRUST_DOMAIN}/test/workload-{gid}",
            "-selector", f"unix:uid:{os.getuid()}",
            "-selector", f"unix:gid:{gid}",
            "-dns", hostname,
            "-x509SVIDTTL", str(ttl),
        )  # fmt: skip
        process = subprocess.Popen(
            ["setpriv", "--regid", str(gid), "--clear-groups", "--", sys.executable, "-c", SERVER],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "SPIFFE_ENDPOINT_SOCKET": endpoint},
        )
        started.append((process, entry))
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip().isdigit(), f"the workload did not start (exit {process.poll()})"
        return Workload(process, int(line), client, hostname)

    yield start
    for process, entry in started:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        subprocess.run(
            [str(SPIRE_SH), "server", "entry", "delete", "-entryID", entry],
            capture_output=True,
            check=False,
        )


def wait_for_new_certificate(
    workload: Workload, old: x509.Certificate, seconds: float
) -> x509.Certificate:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current = workload.certificate()
        if current.serial_number != old.serial_number:
            return current
        time.sleep(0.5)
    pytest.fail(f"the workload still presents serial {old.serial_number} after {seconds}s")


@pytest.mark.timeout(180)
def test_a_short_lived_svid_rotates_without_a_restart(
    workload_with: Callable[[int], Workload],
) -> None:
    ttl = 20
    workload = workload_with(ttl)
    first = workload.certificate()
    # Valid for the entry's TTL from now (SPIRE backdates not-before by 10 s for skew).
    assert (first.not_valid_after_utc - datetime.now(UTC)).total_seconds() <= ttl
    # The agent renews at half the life (~10 s), the watcher polls every 2 s; the bound
    # leaves room for a loaded machine but not for a certificate that never changes.
    second = wait_for_new_certificate(workload, first, 2 * ttl)
    assert second.not_valid_after_utc > first.not_valid_after_utc
    third = wait_for_new_certificate(workload, second, 2 * ttl)
    assert third.not_valid_after_utc > second.not_valid_after_utc
    # The same process throughout: rotated in place, not restarted.
    assert workload.process.poll() is None
    assert common_name(third) == workload.hostname


@pytest.mark.timeout(180)
def test_an_agent_restart_breaks_no_running_workload(
    workload_with: Callable[[int], Workload],
) -> None:
    workload = workload_with(3600)
    before = workload.certificate()
    failures: list[BaseException] = []
    served = 0
    stop = threading.Event()

    def traffic() -> None:
        nonlocal served
        while not stop.is_set():
            try:
                workload.certificate()
                served += 1
            except (OSError, ssl.SSLError, AssertionError) as error:
                failures.append(error)
            time.sleep(0.1)

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        spire("restart-agent")
        # The new agent issues a new SVID (an hour-long one would not rotate yet).
        after = wait_for_new_certificate(workload, before, 60)
    finally:
        stop.set()
        thread.join()
    assert not failures, failures[:3]
    assert served > 10
    assert workload.process.poll() is None
    assert common_name(after) == workload.hostname


@pytest.mark.parametrize("name", ["kafka", "ops"])
def test_the_file_identities_hold_their_svid(
    endpoint: str, authority: x509.Certificate, name: str
) -> None:
    # The broker and Kafka's Java tools read PEM files: the writer keeps them current.
    folder = Path(os.environ["X0_STACK_DIR"]) / "spire" / "identity" / name
    chain = x509.load_pem_x509_certificates((folder / "cert.pem").read_bytes())
    leaf = chain[0]
    assert common_name(leaf) == f"{name}.{TRUST_DOMAIN}"
    leaf.verify_directly_issued_by(authority)
    key = serialization.load_pem_private_key((folder / "key.pem").read_bytes(), password=None)
    assert key.public_key() == leaf.public_key()
    bundle = x509.load_pem_x509_certificates((folder / "bundle.pem").read_bytes())
    assert authority in bundle
    for file in ("cert.pem", "key.pem", "bundle.pem"):
        assert (folder / file).stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
