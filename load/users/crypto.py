"""Key-exchange clients: stateless KEM calls and managed-key use, as a node's agent does.

Each user generates X-Wing and ML-KEM-768 key pairs, encapsulates to its own public
keys and decapsulates what it got (checking the shared secret matches), and uses two
managed keys it creates at start under unique names (again before their next use when
that failed): an X-Wing key to encrypt and
decrypt (checking the plaintext comes back) and an ML-DSA-65 key to sign. It deletes
its managed keys when it stops.
"""

from __future__ import annotations

import itertools
import os

from locust import task

from load.users.base import RUN_ID, X0User, b64

KEM_ALGORITHMS = ("X-Wing", "ML-KEM-768")
SIGNATURE_KEY_TYPE = "ML-DSA-65"
MESSAGE_BYTES = 256
_numbers = itertools.count(1)


class KeyExchangeClient(X0User):
    """A key-exchange client (class ``key_exchange``)."""

    caller_class = "key_exchange"

    def prepare(self) -> None:
        number = next(_numbers)
        self.kem_key = f"load-{RUN_ID}-{number}-kem"
        self.signing_key = f"load-{RUN_ID}-{number}-sig"
        # Per algorithm: (public key, secret key), and the latest encapsulation
        # (secret key, ciphertext, shared secret) to decapsulate.
        self.pairs: dict[str, tuple[str, str]] = {}
        self.encapsulated: dict[str, tuple[str, str, str]] = {}
        self.sealed: tuple[str, str] | None = None  # (ciphertext, plaintext)
        self.key_types = {self.kem_key: "X-Wing", self.signing_key: SIGNATURE_KEY_TYPE}
        self.created: set[str] = set()
        for name in self.key_types:
            self.has_key(name)
        for algorithm in KEM_ALGORITHMS:
            self.keypair(algorithm)
            self.encapsulate(algorithm)
        self.encrypt()

    def has_key(self, name: str) -> bool:
        """True once the managed key exists: created now, or found by a read (a create
        that failed, e.g. 504 while a crypto worker restarted, may have been applied)."""
        if name in self.created:
            return True
        key_type = self.key_types[name]
        body = {"name": name, "type": key_type, "deletion_allowed": True}
        if (
            self.call("create_key", variant=key_type, body=body) is not None
            or self.call("read_key", path={"name": name}) is not None
        ):
            self.created.add(name)
        return name in self.created

    def teardown(self) -> None:
        for name in (self.kem_key, self.signing_key):
            self.call("delete_key", path={"name": name})

    # -- stateless KEM ------------------------------------------------------------------

    def keypair(self, algorithm: str) -> None:
        answer = self.call("kem_keypair", variant=algorithm, body={"algorithm": algorithm})
        if answer is not None:
            self.pairs[algorithm] = (answer["public_key"], answer["secret_key"])

    def encapsulate(self, algorithm: str) -> None:
        if algorithm not in self.pairs:
            self.keypair(algorithm)
            return
        public_key, secret_key = self.pairs[algorithm]
        answer = self.call(
            "kem_encapsulate",
            variant=algorithm,
            body={"algorithm": algorithm, "public_key": public_key},
        )
        if answer is not None:
            self.encapsulated[algorithm] = (
                secret_key,
                answer["ciphertext"],
                answer["shared_secret"],
            )

    def decapsulate(self, algorithm: str) -> None:
        if algorithm not in self.encapsulated:
            self.encapsulate(algorithm)
            return
        secret_key, ciphertext, shared_secret = self.encapsulated[algorithm]
        self.call(
            "kem_decapsulate",
            variant=algorithm,
            body={"algorithm": algorithm, "secret_key": secret_key, "ciphertext": ciphertext},
            check=lambda a: (
                None
                if a.get("shared_secret") == shared_secret
                else "shared secret differs from the encapsulated one"
            ),
        )

    @task(1)
    def keypair_xwing(self) -> None:
        self.keypair("X-Wing")

    @task(1)
    def keypair_mlkem(self) -> None:
        self.keypair("ML-KEM-768")

    @task(2)
    def encapsulate_xwing(self) -> None:
        self.encapsulate("X-Wing")

    @task(2)
    def encapsulate_mlkem(self) -> None:
        self.encapsulate("ML-KEM-768")

    @task(2)
    def decapsulate_xwing(self) -> None:
        self.decapsulate("X-Wing")

    @task(2)
    def decapsulate_mlkem(self) -> None:
        self.decapsulate("ML-KEM-768")

    # -- managed keys -------------------------------------------------------------------

    @task(2)
    def encrypt(self) -> None:
        if not self.has_key(self.kem_key):
            return
        plaintext = b64(os.urandom(MESSAGE_BYTES))
        answer = self.call(
            "key_encrypt", path={"name": self.kem_key}, body={"plaintext": plaintext}
        )
        if answer is not None:
            self.sealed = (answer["ciphertext"], plaintext)

    @task(2)
    def decrypt(self) -> None:
        if self.sealed is None:
            self.encrypt()
            return
        ciphertext, plaintext = self.sealed
        self.call(
            "key_decrypt",
            path={"name": self.kem_key},
            body={"ciphertext": ciphertext},
            check=lambda a: None if a.get("plaintext") == plaintext else "plaintext differs",
        )

    @task(2)
    def sign(self) -> None:
        if not self.has_key(self.signing_key):
            return
        self.call(
            "key_sign",
            path={"name": self.signing_key},
            body={"message": b64(os.urandom(MESSAGE_BYTES))},
        )
