use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company_with_a_resource_name_so_long_that_the_whole_event_name_no_longer_fits_in_an_eventbridge_detail_type",
    action = "created"
)]
struct CompanyCreated;

fn main() {}
