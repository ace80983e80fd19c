//! An in-memory company repository (a database in a real service).

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::application::{CompanyRepository, RepositoryError};
use crate::domain::aggregates::CompanyAggregate;

/// Companies kept in a map.
#[derive(Debug, Default)]
pub struct InMemoryCompanyRepository {
    companies: Mutex<HashMap<Uuid, CompanyAggregate>>,
}

impl CompanyRepository for InMemoryCompanyRepository {
    fn save(&self, company: &CompanyAggregate) -> Result<(), RepositoryError> {
        let mut companies = self
            .companies
            .lock()
            .map_err(|_| RepositoryError("repository lock poisoned".to_owned()))?;
        companies.insert(company.id, company.clone());
        Ok(())
    }

    fn find(&self, id: Uuid) -> Option<CompanyAggregate> {
        self.companies.lock().ok()?.get(&id).cloned()
    }
}
