//! The README's `main`, as a user writes it (`main() -> Result<(), Box<dyn
//! Error>>`), so a test can see what a person sees when start-up fails.

use events_core::{handler, DomainEvent, Event, EventBus};

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
pub struct CompanyCreated {
    pub company_name: String,
}

#[handler]
async fn send_welcome_email(event: &Event<CompanyCreated>) {
    println!("welcome, {}", event.company_name);
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = EventBus::from_env().await?;
    bus.publish(CompanyCreated {
        company_name: "Acme".into(),
    })
    .await?;
    Ok(())
}
