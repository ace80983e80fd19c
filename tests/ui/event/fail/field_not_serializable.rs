use events_core::DomainEvent;

struct Money(u64);

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "invoice", action = "paid")]
struct InvoicePaid {
    amount: Money,
}

fn main() {}
