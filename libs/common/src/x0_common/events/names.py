"""Every name and pattern of the contract, defined once, as types.

Message models, gateway paths and the workers' own tables derive from these
(``typing.get_args`` on a ``Literal`` gives its values), so a name added here is
added everywhere and a name spelt differently anywhere fails type checking.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field, StringConstraints

from x0_common.events.storable import refuse_nul

KemAlgorithm = Literal["ML-KEM-512", "ML-KEM-768", "ML-KEM-1024", "X-Wing"]
SignatureAlgorithm = Literal["ML-DSA-44", "ML-DSA-65", "ML-DSA-87", "Ed25519+ML-DSA-65"]
# A managed key's type is the algorithm it holds.
KeyType = KemAlgorithm | SignatureAlgorithm
AlgorithmKind = Literal["kem", "signature"]

KEY_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
COLLECTION_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
NODE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MESH_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

KeyName = Annotated[str, StringConstraints(pattern=KEY_NAME_PATTERN), Field(examples=["node-a"])]
CollectionName = Annotated[
    str, StringConstraints(pattern=COLLECTION_NAME_PATTERN), Field(examples=["python-docs"])
]
DocumentId = Annotated[
    str, StringConstraints(min_length=1, max_length=256), AfterValidator(refuse_nul)
]
NodeId = Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN), Field(examples=["node-7"])]
MeshId = Annotated[str, StringConstraints(pattern=MESH_ID_PATTERN), Field(examples=["lab"])]
