use events_core::DomainEvent;

struct Connection;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "invoice", action = "paid")]
struct InvoicePaid {
    amount: u64,
    #[event(skip)]
    connection: Connection,
}

fn main() {}
