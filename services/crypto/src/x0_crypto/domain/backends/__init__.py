"""Algorithm implementations, one module per library, behind the Protocols in ``base``.

``liboqs`` is safe to import anywhere: it imports ``oqs`` only after finding the
liboqs shared library.
"""
