//! Aggregates record the events of what happened to them.

use events_core::Recorder;
use uuid::Uuid;

use super::events::CompanyCreated;

/// A company, with the events it recorded since it was last published.
#[derive(Debug, Clone)]
pub struct CompanyAggregate {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its country.
    pub country_id: Uuid,
    events: Recorder,
}

impl CompanyAggregate {
    /// Creates a company and records `CompanyCreated`.
    pub fn create(name: &str, country_id: Uuid) -> Self {
        let id = Uuid::new_v4();
        let mut company = CompanyAggregate {
            id,
            name: name.to_owned(),
            country_id,
            events: Recorder::new(),
        };
        company.events.record(CompanyCreated {
            company_id: id,
            company_name: name.to_owned(),
            country_id,
        });
        company
    }

    /// A company loaded from storage: no events recorded.
    pub fn restore(id: Uuid, name: String, country_id: Uuid) -> Self {
        CompanyAggregate {
            id,
            name,
            country_id,
            events: Recorder::new(),
        }
    }

    /// The events recorded and not yet published.
    pub fn events(&self) -> &Recorder {
        &self.events
    }

    /// The recorder, for publishing (which clears what it delivered).
    pub fn events_mut(&mut self) -> &mut Recorder {
        &mut self.events
    }
}
