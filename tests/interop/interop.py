"""The Python side of the interop tests, written as the seed guide writes
events and handlers with `package-events-bus`.

    python interop.py decode   < detail.json   # Rust -> Python
    python interop.py encode   < attrs.json    # Python -> Rust
    python interop.py decode-command < envelope.json   # a Rust command -> Python
    python interop.py encode-command < attrs.json      # a Python command -> Rust
"""
import json
import sys
from datetime import datetime, timezone
from uuid import UUID

from events_bus.core import AsyncHandler, BaseEvent, EventDeserializer, EventJsonSerializer

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class CompanyCreated(BaseEvent):
    """Event triggered when a company is created (as in the seed guide)."""

    EVENT_NAME = "testclean.api.1.event.company.created"

    def __init__(self, company_id, company_name, country_id, event_id=None, occurred_at=None):
        super().__init__(event_name=self.EVENT_NAME, event_id=event_id, occurred_on=occurred_at)
        self.company_id = company_id
        self.company_name = company_name
        self.country_id = country_id

    def to_dict(self):
        return {
            "company_id": str(self.company_id),
            "company_name": self.company_name,
            "country_id": str(self.country_id),
        }

    @classmethod
    def from_dict(cls, event_id, occurred_on, attributes):
        return cls(
            company_id=UUID(attributes["company_id"]),
            company_name=attributes["company_name"],
            country_id=UUID(attributes["country_id"]),
            event_id=event_id,
            occurred_at=occurred_on,
        )


class CompanyCreatedHandler(AsyncHandler):
    async def handle(self, event: CompanyCreated) -> None:
        pass


def micros(dt):
    return (dt - EPOCH) // __import__("datetime").timedelta(microseconds=1)


def decode():
    detail = json.loads(sys.stdin.read())
    # What an SQS queue subscribed to the bus receives: the EventBridge envelope.
    body = json.dumps({"version": "0", "detail-type": detail["type"], "source": "testclean.api", "detail": detail})
    event = EventDeserializer.json_deserializer(body, CompanyCreatedHandler())
    assert isinstance(event, CompanyCreated), type(event)
    print(json.dumps({
        "id": event.event_id,
        "name": event.event_name,
        "occurred_on_micros": micros(event.occurred_on),
        "utc_offset_seconds": event.occurred_on.utcoffset().total_seconds(),
        "attributes": event.to_dict(),
    }))


def encode():
    attrs = json.loads(sys.stdin.read())
    event = CompanyCreated(
        company_id=UUID(attrs["company_id"]),
        company_name=attrs["company_name"],
        country_id=UUID(attrs["country_id"]),
    )
    print(json.dumps({
        "detail": EventJsonSerializer.serialize(event),
        "id": event.event_id,
        "occurred_on_micros": micros(event.occurred_on),
    }))


class SendInvoice(BaseEvent):
    """A command, named as the package names commands: an infinitive action."""

    EVENT_NAME = "acme.billing.1.command.invoice.send"

    def __init__(self, invoice_id, copies, event_id=None, occurred_at=None):
        super().__init__(event_name=self.EVENT_NAME, event_id=event_id, occurred_on=occurred_at)
        self.invoice_id = invoice_id
        self.copies = copies

    def to_dict(self):
        return {"invoice_id": self.invoice_id, "copies": self.copies}

    @classmethod
    def from_dict(cls, event_id, occurred_on, attributes):
        return cls(attributes["invoice_id"], attributes["copies"], event_id=event_id, occurred_at=occurred_on)


class SendInvoiceHandler(AsyncHandler):
    async def handle(self, event: SendInvoice) -> None:
        pass


def decode_command():
    body = sys.stdin.read()
    command = EventDeserializer.json_deserializer(body, SendInvoiceHandler())
    assert isinstance(command, SendInvoice), type(command)
    print(json.dumps({
        "id": command.event_id,
        "name": command.event_name,
        "occurred_on_micros": micros(command.occurred_on),
        "attributes": command.to_dict(),
    }))


def encode_command():
    attrs = json.loads(sys.stdin.read())
    command = SendInvoice(attrs["invoice_id"], attrs["copies"])
    print(json.dumps({
        "detail": EventJsonSerializer.serialize(command),
        "id": command.event_id,
        "name": command.event_name,
        "occurred_on_micros": micros(command.occurred_on),
    }))


if __name__ == "__main__":
    {
        "decode": decode,
        "encode": encode,
        "decode-command": decode_command,
        "encode-command": encode_command,
    }[sys.argv[1]]()
