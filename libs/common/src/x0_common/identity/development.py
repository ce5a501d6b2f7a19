"""The development PKI: a CA (the trust bundle) and one certificate per workload.

``make up`` and the test stack run it (``deploy/local-stack/stack.sh``) where SPIRE does
not issue the identities. Each identity ``<name>`` gets, under the given folder::

    <name>/cert.pem    the certificate: CN=<name>.x0.local, URI SAN spiffe://x0.local/<name>
    <name>/key.pem     its private key (P-256, PKCS#8, mode 0600)
    <name>/bundle.pem  the trust bundle: the x0.local CA

the layout cert-manager writes (``X0_TLS__CERT_FILE`` and the others name the files).
The broker's certificate also names 127.0.0.1 and localhost, the addresses clients dial.
A second CA, ``other-domain/``, issues the same names from another trust domain: what
a refusal test presents. Existing files are kept while they are valid for another day;
``--rotate NAME`` re-issues one identity (a rotation test).

    python -m x0_common.identity.development <folder> [NAME...] [--rotate NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "x0.local"
OTHER_DOMAIN = "other.example"
#: The identities the local stack issues: the broker, the four services, ops tooling
#: (topics, ACLs, tests: a Kafka super user), the lag scaler and upstream producers.
IDENTITIES = (
    "kafka",
    "ops",
    "gateway",
    "crypto",
    "rag",
    "telemetry",
    "keda",
    "producer-default",
    "producer-acme",
)
CERT_LIFETIME = dt.timedelta(days=30)
CA_LIFETIME = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=1)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Writes atomically (a reader never sees half a file) with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.chmod(temporary, mode)
    temporary.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _valid(cert_file: Path) -> bool:
    if not cert_file.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE


class Authority:
    """A CA of one trust domain, kept as ``ca.pem`` and ``ca-key.pem`` in ``folder``."""

    def __init__(self, folder: Path, domain: str) -> None:
        self.folder = folder
        self.domain = domain
        cert_file, key_file = folder / "ca.pem", folder / "ca-key.pem"
        if _valid(cert_file) and key_file.exists():
            self.cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), None)
            assert isinstance(loaded, ec.EllipticCurvePrivateKey)
            self.key = loaded
            return
        self.key = _key()
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{domain} development CA")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.NameConstraints(
                    permitted_subtrees=[
                        x509.UniformResourceIdentifier(domain),
                        x509.DNSName(domain),
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
                    ],
                    excluded_subtrees=None,
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        _write(key_file, _key_pem(self.key), 0o600)
        _write(cert_file, self.cert.public_bytes(serialization.Encoding.PEM), 0o644)

    @property
    def bundle(self) -> bytes:
        """The CA certificate, PEM: what peers trust."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, name: str, folder: Path, *, force: bool = False) -> bool:
        """Writes ``folder``/{cert,key,bundle}.pem for ``name``; False when kept."""
        if not force and _valid(folder / "cert.pem") and (folder / "key.pem").exists():
            return False
        key = _key()
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(f"spiffe://{self.domain}/{name}"),
            x509.DNSName(f"{name}.{self.domain}"),
        ]
        if name == "kafka":
            # The addresses clients dial: the hostname check passes on them.
            names += [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.{self.domain}")])
            )
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CERT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        # Key first: a reader that sees the new certificate finds its key already there
        # (x0_common.identity also retries a pair caught half-way).
        _write(folder / "key.pem", _key_pem(key), 0o600)
        _write(folder / "bundle.pem", self.bundle, 0o644)
        _write(folder / "cert.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return True


def make(folder: Path, names: Sequence[str] = IDENTITIES, *, rotate: Sequence[str] = ()) -> None:
    """The CA and every identity in ``folder``, and the other domain's under
    ``folder``/other-domain; only what is missing, expiring, or named in ``rotate``."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    authority = Authority(folder / "ca", TRUST_DOMAIN)
    for name in names:
        authority.issue(name, folder / name, force=name in rotate)
    other = Authority(folder / "other-domain" / "ca", OTHER_DOMAIN)
    for name in ("ops", "gateway"):
        other.issue(name, folder / "other-domain" / name)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: make the development PKI in a folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("names", nargs="*", default=list(IDENTITIES))
    parser.add_argument("--rotate", action="append", default=[])
    args = parser.parse_args(argv)
    make(args.folder, args.names, rotate=args.rotate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
