"""``python -m x0_client.codegen [--check]``: rewrite, or check, ``_operations.py``."""

from __future__ import annotations

import argparse
import sys

from x0_client.codegen import TARGET, render


def main() -> int:
    """Write the generated methods; with ``--check``, exit 1 if the file is stale."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say whether it is stale")
    arguments = parser.parse_args()
    source = render()
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
    if arguments.check:
        if current != source:
            sys.stderr.write(f"{TARGET} is stale: run python -m x0_client.codegen\n")
            return 1
        return 0
    if current != source:
        TARGET.write_text(source, encoding="utf-8")
        sys.stderr.write(f"wrote {TARGET}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
