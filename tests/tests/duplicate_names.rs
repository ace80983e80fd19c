//! Two types claiming one event name are rejected when the bus is built,
//! with both type names in the message. (A test binary of its own: the
//! duplicate would fail every other bus of the binary.)

use events_core::{BusError, DomainEvent, EventBus};

mod billing {
    #[derive(events_core::DomainEvent)]
    #[event(
        company = "acme",
        service = "shop",
        version = 1,
        resource = "invoice",
        action = "paid"
    )]
    pub struct InvoicePaid {
        pub amount: u64,
    }
}

mod accounting {
    #[derive(events_core::DomainEvent)]
    #[event(
        company = "acme",
        service = "shop",
        version = 1,
        resource = "invoice",
        action = "paid"
    )]
    pub struct InvoiceSettled {
        pub cents: u64,
    }
}

#[test]
fn two_types_with_one_name_fail_the_build_of_the_bus() {
    assert_eq!(
        billing::InvoicePaid::EVENT_NAME,
        accounting::InvoiceSettled::EVENT_NAME
    );
    let err = EventBus::builder().in_memory_store().build().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, BusError::DuplicateEventName(_)), "{text}");
    assert!(text.contains("acme.shop.1.event.invoice.paid"), "{text}");
    assert!(
        text.contains("duplicate_names::billing::InvoicePaid"),
        "{text}"
    );
    assert!(
        text.contains("duplicate_names::accounting::InvoiceSettled"),
        "{text}"
    );
}
