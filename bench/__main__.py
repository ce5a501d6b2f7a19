"""``python -m bench [--only SECTION]``: run benchmarks, print a table, save JSON."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable

from bench import crypto, kafka, kafka_tls, limits, rag, rag_ingest, rag_memory, telemetry
from bench.report import RESULTS, Record, print_table, save
from x0_common.settings import CommonSettings

# Thread counts are set on purpose: numpy's BLAS and torch would fight over 2 cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

SECTIONS: dict[str, Callable[[CommonSettings], Awaitable[list[Record]]]] = {
    "kafka": lambda settings: kafka.run(settings.kafka),
    "kafka_tls": kafka_tls.run,
    "crypto": crypto.run,
    "rag": rag.run,
    "rag_memory": rag_memory.run,
    "rag_ingest": rag_ingest.run,
    "telemetry": telemetry.run,
    "limits": limits.run,
}


async def main(only: str | None) -> None:
    """Run the chosen sections in order."""
    settings = CommonSettings()
    for section, run in SECTIONS.items():
        if only and section != only:
            continue
        print(f"== {section} ==", flush=True)
        records = await run(settings)
        print_table(records)
        save(section, records)
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(SECTIONS))
    asyncio.run(main(parser.parse_args().only))
