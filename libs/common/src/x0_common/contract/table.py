"""A domain's operations as one class namespace: ``Crypto.KEM_KEYPAIR`` is a row.

A table is a class whose attributes are :class:`~x0_common.contract.operation.Operation`
rows, so code names an operation by attribute (checked by mypy and by import) and
the table lists itself (:meth:`Table.operations`) without a second list to keep.
"""

from __future__ import annotations

from x0_common.contract.operation import Operation, by_type


class Table:
    """Base of the domain tables; subclasses hold :class:`Operation` attributes."""

    @classmethod
    def operations(cls) -> tuple[Operation, ...]:
        """Every row, in declaration order."""
        return tuple(value for value in vars(cls).values() if isinstance(value, Operation))

    @classmethod
    def by_type(cls) -> dict[str, Operation]:
        """The rows keyed by ``x0-type``."""
        return by_type(cls.operations())
