use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[derive(Debug)]
pub struct MailError;

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mail error")
    }
}

impl std::error::Error for MailError {}

#[handler]
async fn by_ref_envelope(event: &Event<CompanyCreated>) {
    let _ = (event.id(), event.occurred_on(), &event.name);
}

#[handler]
async fn by_ref_event(event: &CompanyCreated) {
    let _ = &event.name;
}

#[handler]
async fn by_value_envelope(event: Event<CompanyCreated>) {
    let _ = event.into_payload();
}

#[handler]
async fn by_value_event(CompanyCreated { name }: CompanyCreated) {
    let _ = name;
}

#[handler]
async fn returns_std_error(_event: &CompanyCreated) -> Result<(), MailError> {
    Ok(())
}

#[handler]
async fn returns_io_error(_event: &CompanyCreated) -> std::io::Result<()> {
    Ok(())
}

#[handler]
pub(crate) async fn returns_boxed_error(_event: &CompanyCreated) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

#[handler]
async fn returns_string_error(_event: &CompanyCreated) -> Result<(), String> {
    Err("no".to_owned())
}

mod nested {
    use super::CompanyCreated;

    #[events_core::handler]
    pub async fn in_a_module(_event: &events_core::Event<CompanyCreated>) {}
}

fn main() {
    let names: Vec<&str> = events_core::handler::discovered_handlers().map(|h| h.name()).collect();
    for expected in ["by_ref_envelope", "by_ref_event", "by_value_envelope", "by_value_event", "returns_std_error",
        "returns_io_error", "returns_boxed_error", "returns_string_error", "nested::in_a_module"] {
        assert!(names.iter().any(|n| n.ends_with(expected)), "{expected} missing from {names:?}");
    }
    let _ = nested::in_a_module;
}
