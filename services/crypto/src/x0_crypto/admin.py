"""Operators' commands of the crypto worker: ``python -m x0_crypto <command>``.

    python -m x0_crypto kek-status [--tenant ID]
    python -m x0_crypto rewrap-kek [--batch-size 500] [--max-batches N] [--tenant ID]
        [--metrics-file PATH]

Both read the worker's settings (``X0_POSTGRES__*``, ``X0_CRYPTO_KEK(_FILE)``,
``X0_CRYPTO_PREVIOUS_KEKS(_FILE)``) and apply its migrations first. ``rewrap-kek``
re-wraps every stored key version not under the current KEK (see
:mod:`x0_crypto.adapters.kekrewrap`); it is safe to run while workers serve, to
interrupt and to run again. Output is JSON with KEK ids, never key bytes; the exit
status is 1 when versions are left that no configured KEK opens.
``--metrics-file`` writes the run's metrics in the Prometheus text format (for the
node exporter's textfile collector or a Pushgateway).
"""

# A command-line tool: its output is for the person (or script) that ran it.
# ruff: noqa: T201

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import write_to_textfile

from x0_common.metrics import new_registry
from x0_common.postgres import create_pool, migrate
from x0_crypto.adapters.kekrewrap import KekRewrap
from x0_crypto.app import MIGRATIONS
from x0_crypto.metrics import CryptoMetrics
from x0_crypto.settings import CryptoSettings

COMMANDS = ("kek-status", "rewrap-kek")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="python -m x0_crypto", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    status = commands.add_parser("kek-status", help="configured KEK ids; versions left")
    rewrap = commands.add_parser("rewrap-kek", help="re-wrap stored keys under the current KEK")
    for command in (status, rewrap):
        command.add_argument("--tenant", default=None, help="one tenant only (default: all)")
    rewrap.add_argument("--batch-size", type=int, default=500, help="versions per transaction")
    rewrap.add_argument("--max-batches", type=int, default=None, help="stop after N batches")
    rewrap.add_argument("--metrics-file", type=Path, default=None)
    return top


async def run(arguments: argparse.Namespace, settings: CryptoSettings) -> tuple[int, str]:
    """Carry out one command; the exit status and what to print."""
    registry = new_registry()
    metrics = CryptoMetrics(registry)
    pool = await create_pool(settings.common.postgres)
    try:
        await migrate(pool, "crypto", MIGRATIONS)
        keyring = settings.keyring()
        job = KekRewrap(pool, keyring, metrics, tenant=arguments.tenant)
        if arguments.command == "kek-status":
            answer = {
                "current_kek_id": keyring.current_id.hex(),
                "configured_kek_ids": keyring.ids(),
                "remaining": await job.remaining(),
            }
            return 0, json.dumps(answer)
        report = await job.run(batch_size=arguments.batch_size, max_batches=arguments.max_batches)
        if arguments.metrics_file is not None:
            write_to_textfile(str(arguments.metrics_file), registry)
        return (1 if report.failed else 0), json.dumps(dataclasses.asdict(report))
    finally:
        await pool.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m x0_crypto <command>``."""
    arguments = parser().parse_args(argv)
    status, output = asyncio.run(run(arguments, CryptoSettings()))
    print(output)
    return status
