//! A program whose discovery finds no handler gets a loud warning naming the
//! likely cause. (This test binary defines events but no `#[handler]`.)

use std::io::Write;
use std::sync::{Arc, Mutex};

use events_core::{DomainEvent, EventBus};

#[derive(DomainEvent)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "order",
    action = "placed"
)]
struct OrderPlaced;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn discovery_that_finds_nothing_warns_about_unlinked_crates() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let bus = tracing::subscriber::with_default(subscriber, || {
        EventBus::builder().in_memory_store().build()
    });
    assert!(bus.unwrap().handlers_of(OrderPlaced::EVENT_NAME).is_empty());
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("found no #[handler]"), "{log}");
    assert!(log.contains("use my_handlers as _;"), "{log}");

    // Turning discovery off on purpose is not worth a warning.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        EventBus::builder()
            .in_memory_store()
            .discover(false)
            .build()
    })
    .unwrap();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!log.contains("WARN"), "{log}");
}
