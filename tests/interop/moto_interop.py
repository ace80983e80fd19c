"""The Python side of the interop tests through moto (EventBridge -> SQS),
with `package-events-bus`'s own publisher and deserializer.

    python moto_interop.py decode-sqs < bodies.json   # SQS bodies Rust published -> Python events
    python moto_interop.py publish BUS SOURCE N        # Python's EventBridgePublisher -> the bus

The endpoint comes from AWS_CLIENT_URL / AWS_REGION_NAME (the package's own
variables), which the test points at moto.
"""
import json
import sys
from uuid import uuid4

from events_bus.aws.event_bridge_publisher import EventBridgePublisher
from events_bus.core import EventDeserializer

from interop import CompanyCreated, CompanyCreatedHandler, micros


def decode_sqs():
    bodies = json.loads(sys.stdin.read())
    out = []
    for body in bodies:
        event = EventDeserializer.json_deserializer(body, CompanyCreatedHandler())
        assert isinstance(event, CompanyCreated), type(event)
        out.append({
            "id": event.event_id,
            "name": event.event_name,
            "occurred_on_micros": micros(event.occurred_on),
            "utc_offset_seconds": event.occurred_on.utcoffset().total_seconds(),
            "attributes": event.to_dict(),
        })
    print(json.dumps(out))


def publish(bus, source, n):
    publisher = EventBridgePublisher(bus_name=bus, source=source)
    out = []
    for i in range(n):
        event = CompanyCreated(
            company_id=uuid4(),
            company_name=f"Python company {i} — Ñandú \"{i}\"",
            country_id=uuid4(),
        )
        publisher.publish(event)
        out.append({
            "id": event.event_id,
            "occurred_on_micros": micros(event.occurred_on),
            "attributes": event.to_dict(),
        })
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "decode-sqs":
        decode_sqs()
    elif sys.argv[1] == "publish":
        publish(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
