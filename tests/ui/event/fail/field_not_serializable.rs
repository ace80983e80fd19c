use events_core::DomainEvent;

struct Money(u64);

#[derive(serde::Serialize)]
struct Reference(String);

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "invoice", action = "paid")]
struct InvoicePaid {
    amount: Money,
    reference: Reference,
    history: Vec<Money>,
    note: Option<String>,
}

fn main() {}
