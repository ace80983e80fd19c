"""The Python package's publisher (`package-events-bus`'s
`EventBridgePublisher`) publishing the events the Rust publish benchmark
wrote, the way its users must, timed. Prints one JSON line: seconds and the
AWS calls made (counted with boto3's own event hooks).

    python scripts/bench-publish-python.py publish BUS events.json   # publisher.publish(event) per event
    python scripts/bench-publish-python.py batch10 BUS events.json   # publisher.publish_batch(chunk) per 10 events

`publish` is the package's API for an event: every call does a
DescribeEventBus, then a PutEvents of that one event. `publish_batch` sends
all it is given in one PutEvents and does not chunk (11 events fail), so a
user chunks by 10 by hand. Both are synchronous (boto3). The endpoint comes
from AWS_CLIENT_URL / AWS_REGION_NAME (the package's own variables).
"""
import json
import os
import sys
import time
from collections import Counter
from datetime import datetime
from uuid import UUID

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))

from events_bus.aws.event_bridge_publisher import EventBridgePublisher  # noqa: E402
from interop import CompanyCreated  # noqa: E402


def main(mode, bus, path):
    with open(path) as f:
        raw = json.load(f)
    events = [
        CompanyCreated(
            company_id=UUID(e["company_id"]),
            company_name=e["company_name"],
            country_id=UUID(e["country_id"]),
            event_id=e["id"],
            occurred_at=datetime.fromisoformat(e["occurred_on"]),
        )
        for e in raw
    ]
    publisher = EventBridgePublisher(bus_name=bus, source="testclean.api")
    calls = Counter()
    publisher.client.meta.events.register(
        "before-send.events.*",
        lambda request, **kwargs: calls.update([request.headers["X-Amz-Target"].decode().split(".")[-1]]),
    )
    start = time.perf_counter()
    if mode == "publish":
        for event in events:
            publisher.publish(event)
    elif mode == "batch10":
        for i in range(0, len(events), 10):
            publisher.publish_batch(events[i:i + 10])
    else:
        sys.exit(f"unknown mode {mode}")
    seconds = time.perf_counter() - start
    # `publish` swallows a failure into its failover: none may be there.
    assert not publisher.failover.events, f"{len(publisher.failover.events)} events failed over"
    print(json.dumps({"seconds": seconds, "calls": calls}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
