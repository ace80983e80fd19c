//! Notification handlers of the company example, in a crate of their own.
//!
//! Nothing in `main` lists them: linking this crate is enough
//! (`use company_notifications as _;`), and the bus discovers them.

use events_core::{handler, Event};
use events_examples::domain::events::CompanyCreated;

/// An error of the mail service.
#[derive(Debug)]
pub struct MailError(pub String);

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mail error: {}", self.0)
    }
}

impl std::error::Error for MailError {}

/// Sends the welcome email of a new company.
#[handler]
pub async fn send_welcome_email(event: &Event<CompanyCreated>) -> Result<(), MailError> {
    if event.company_name.trim().is_empty() {
        return Err(MailError(
            "a company without a name has no one to greet".to_owned(),
        ));
    }
    tracing::info!(company_id = %event.company_id, "welcome email sent");
    Ok(())
}
