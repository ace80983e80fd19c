"""The Python package's HTTP dispatcher (`EventHTTPDispatcher.dispatch_async`,
what its FastAPI route awaits) on the body the Rust consume benchmark
wrote, with one registered no-op async handler. Prints ns per body: the median and the
fastest of 5 runs of N bodies (the fastest compares with the Rust
benchmark's interleaved best chunk).

    python scripts/bench-consume-python.py target/consume-bench-body.json [N]
"""
import asyncio
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))

from events_bus.core.runtime.event_register import EventHandlerRegistry  # noqa: E402
from events_bus.http import EventHTTPDispatcher  # noqa: E402
from interop import CompanyCreated, CompanyCreatedHandler  # noqa: E402


async def main(path, n):
    body = open(path).read()
    EventHandlerRegistry.register_handler(CompanyCreated.EVENT_NAME, CompanyCreatedHandler())
    dispatcher = EventHTTPDispatcher()
    for _ in range(1000):  # warm up
        await dispatcher.dispatch_async(body)
    runs = []
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(n):
            await dispatcher.dispatch_async(body)
        runs.append((time.perf_counter_ns() - start) / n)
    print(f"{statistics.median(runs):.0f} {min(runs):.0f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20000))
