"""One requester process firing concurrent echo requests, for replica tests.

``python -m x0_common.testing.load --topic T --replica r1 --count 1000`` prints
one JSON line: how many replies came back right, wrong or not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from x0_common.errors import X0Error
from x0_common.kafka.requester import Requester
from x0_common.metrics import RequesterMetrics, new_registry
from x0_common.settings import CommonSettings
from x0_common.testing.echo import ECHO_TYPE, EchoRequest


async def _main(topic: str, replica: str, count: int, timeout: float) -> dict[str, object]:
    settings = CommonSettings()
    registry = new_registry()
    requester = Requester(
        settings.kafka,
        reply_topic=f"{topic}.replies.{replica}",
        metrics=RequesterMetrics(registry, "load"),
    )
    await requester.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    # Wait for the go signal so that every replica's requests overlap in time.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started = time.monotonic()

    async def one(index: int) -> str:
        text = f"{replica}:{index}"
        try:
            result = await requester.request(
                topic, ECHO_TYPE, EchoRequest(text=text), timeout=timeout
            )
        except X0Error as error:
            return f"error:{error.code}"
        return "ok" if result["text"] == text else "wrong"

    outcomes = await asyncio.gather(*(one(index) for index in range(count)))
    elapsed = time.monotonic() - started
    unmatched = sum(
        registry.get_sample_value(
            "x0_requester_unmatched_replies_total", {"service": "load", "reason": reason}
        )
        or 0
        for reason in ("late", "unknown")
    )
    await requester.stop()
    return {
        "replica": replica,
        "ok": outcomes.count("ok"),
        "wrong": outcomes.count("wrong"),
        "errors": [o for o in outcomes if o.startswith("error:")],
        "unmatched_replies": unmatched,
        "seconds": round(elapsed, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--replica", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=60.0)
    arguments = parser.parse_args()
    summary = asyncio.run(
        _main(arguments.topic, arguments.replica, arguments.count, arguments.timeout)
    )
    sys.stdout.write(json.dumps(summary) + "\n")
