//! The company example's tests, written with the test kit
//! (`events_core::testing`), as the seed guide's tests read: the event, its
//! wire form, publishing, the use case, the handlers, async mode and the
//! process-wide bus.

use std::sync::{Arc, Mutex};
use std::time::Duration;

// Linking the crate makes its handlers discoverable.
use company_notifications as _;
use events_core::bus::Delivery;
use events_core::testing::{
    assert_handlers_succeeded, assert_wire_golden, fixed_event, run_handler, run_handlers,
    scope_event_bus, Expect, RecordingBus, Scenario,
};
use events_core::{
    get_event_bus, DomainEvent, Event, Handler, HandlerResult, HandlerStatus, PublishError,
};
use events_examples::application::{
    CompanyRepository, CreateCompanyDto, CreateCompanyError, CreateCompanyUseCase, RepositoryError,
};
use events_examples::domain::aggregates::CompanyAggregate;
use events_examples::domain::events::{CompanyCreated, CompanyCreatedV2};
use events_examples::infrastructure::repository::InMemoryCompanyRepository;
use uuid::Uuid;

const COMPANY_ID: Uuid = Uuid::from_u128(0x123e4567_e89b_12d3_a456_426614174000);
const COUNTRY_ID: Uuid = Uuid::from_u128(0x123e4567_e89b_12d3_a456_426614174001);

fn company_created(name: &str) -> CompanyCreated {
    CompanyCreated {
        company_id: COMPANY_ID,
        company_name: name.to_owned(),
        country_id: COUNTRY_ID,
    }
}

fn create_company(bus: &RecordingBus) -> CreateCompanyUseCase {
    CreateCompanyUseCase::new(
        Arc::new(InMemoryCompanyRepository::default()),
        bus.event_bus(),
    )
}

fn dto(name: &str) -> CreateCompanyDto {
    CreateCompanyDto {
        name: name.to_owned(),
        country_id: COUNTRY_ID,
    }
}

// ------------------------------------------------------------ the event

/// The seed's `test_company_created_event`.
#[test]
fn company_created_event() {
    let event = company_created("Test Company");

    assert_eq!(
        CompanyCreated::EVENT_NAME,
        "testclean.api.1.event.company.created"
    );
    assert_eq!(event.company_name, "Test Company");

    let data = event.to_dict().unwrap();
    assert_eq!(data["company_id"], "123e4567-e89b-12d3-a456-426614174000");
}

/// What EventBridge and Python consumers receive: a changed field fails
/// here with a diff (`EVENTS_UPDATE_GOLDEN=1 cargo test` after a change you
/// mean).
#[test]
fn company_created_wire_form() {
    let event = fixed_event(company_created("Test Company"));
    assert_wire_golden("tests/golden/company_created.json", &event);
}

// ----------------------------------------------------------- publishing

/// The seed's `test_publish_event`, without `reset_event_bus()`: the bus is
/// the test's own.
#[tokio::test]
async fn publish_event() {
    let bus = RecordingBus::new();
    bus.publish(company_created("Test Company")).await.unwrap();
    bus.assert_published::<CompanyCreated>(|e| e.company_name == "Test Company");
}

// ------------------------------------------------------------- use cases

#[tokio::test]
async fn create_company_publishes_company_created_and_every_handler_succeeds() {
    let bus = RecordingBus::new();
    let company = Scenario::new(&bus)
        .expect_event(|e: &Event<CompanyCreated>| e.company_name == "Acme")
        .expect_handler("send_welcome_email", Expect::Succeeded)
        .expect_handler("CreateDefaultSettings", Expect::Succeeded)
        .expect_handler("log_company_created", Expect::Succeeded)
        .when(create_company(&bus).execute(dto("Acme")))
        .await
        .unwrap();
    bus.assert_published::<CompanyCreated>(|e| e.company_id == company.id);
}

#[tokio::test]
async fn a_company_without_a_name_is_created_but_gets_no_welcome_email() {
    let bus = RecordingBus::new();
    // Every handler that runs is expected: the others still succeed.
    Scenario::new(&bus)
        .expect_any::<CompanyCreated>()
        .expect_handler("send_welcome_email", Expect::failed_with("no one to greet"))
        .expect_handler("CreateDefaultSettings", Expect::Succeeded)
        .expect_handler("log_company_created", Expect::Succeeded)
        .when(create_company(&bus).execute(dto(" ")))
        .await
        .unwrap();
}

/// A repository whose database is down.
struct DatabaseDown;

impl CompanyRepository for DatabaseDown {
    fn save(&self, _company: &CompanyAggregate) -> Result<(), RepositoryError> {
        Err(RepositoryError("connection refused".to_owned()))
    }
    fn find(&self, _id: Uuid) -> Option<CompanyAggregate> {
        None
    }
}

/// The seed's rule: don't publish events if the transaction fails.
#[tokio::test]
async fn nothing_is_published_when_the_save_fails() {
    let bus = RecordingBus::new();
    let use_case = CreateCompanyUseCase::new(Arc::new(DatabaseDown), bus.event_bus());
    let result = Scenario::new(&bus)
        .when(use_case.execute(dto("Acme")))
        .await;
    assert!(matches!(result, Err(CreateCompanyError::Repository(_))));
}

/// EventBridge is down: the company is still created, and its event waits in
/// the failover store until the remote is back.
#[tokio::test]
async fn when_eventbridge_is_down_the_event_waits_for_replay() {
    let bus = RecordingBus::new();
    bus.refuse_next(1, PublishError::retryable("InternalFailure", "unavailable"));
    let company = create_company(&bus).execute(dto("Acme")).await.unwrap();
    assert!(matches!(
        company.published[0].delivery(),
        Delivery::FailedOver { .. }
    ));
    bus.assert_not_published::<CompanyCreated>();

    bus.publish_from_failover(10).await.unwrap();
    bus.assert_published::<CompanyCreated>(|e| e.company_id == company.id);
}

/// The seed's factories take the process-wide bus (`get_event_bus`); scoped,
/// it is this test's bus and no other test's, in the tasks the test spawns
/// too, on every worker of a multi-thread runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_case_built_from_the_process_wide_bus() {
    let bus = RecordingBus::new();
    let _scope = scope_event_bus(&bus);
    let create = |name: &'static str| async move {
        let use_case = CreateCompanyUseCase::new(
            Arc::new(InMemoryCompanyRepository::default()),
            get_event_bus().await.unwrap(),
        );
        use_case.execute(dto(name)).await.unwrap();
    };
    create("Acme").await;
    let spawned: Vec<_> = ["Initech", "Globex"]
        .into_iter()
        .map(|name| tokio::spawn(create(name)))
        .collect();
    for task in spawned {
        task.await.unwrap();
    }
    for name in ["Acme", "Initech", "Globex"] {
        bus.assert_published::<CompanyCreated>(|e| e.company_name == name);
    }
}

// -------------------------------------------------------------- handlers

#[tokio::test]
async fn every_handler_of_company_created_succeeds() {
    assert_handlers_succeeded(&run_handlers(company_created("Acme")).await);
}

/// A handler registered with its dependencies runs with the discovered
/// ones: `bus.run_handlers` runs all of the bus's handlers of the event.
#[tokio::test]
async fn the_handlers_of_a_bus_include_the_registered_ones() {
    let welcomed = Welcomed::default();
    let bus = RecordingBus::builder()
        .register_handler(welcomed.clone())
        .build()
        .unwrap();
    let event = company_created("Acme");
    let outcomes = bus.run_handlers(event.clone()).await;
    assert_handlers_succeeded(&outcomes);
    assert_eq!(outcomes.len(), run_handlers(event).await.len() + 1);
    assert_eq!(*welcomed.0.lock().unwrap(), [COMPANY_ID]);
}

#[tokio::test]
async fn the_welcome_email_needs_a_company_name() {
    let outcome = run_handler("send_welcome_email", company_created("  ")).await;
    assert_eq!(
        outcome.status,
        HandlerStatus::Failed("mail error: a company without a name has no one to greet".into())
    );
}

// ------------------------------------------------------------ async mode

/// A handler with a dependency: it records the companies it welcomed.
#[derive(Clone, Default)]
struct Welcomed(Arc<Mutex<Vec<Uuid>>>);

impl Handler<CompanyCreated> for Welcomed {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        tokio::task::yield_now().await;
        self.0
            .lock()
            .map_err(|_| "lock poisoned")?
            .push(event.company_id);
        Ok(())
    }
}

/// `EVENT_BUS_ASYNC=true`: handlers are spawned, and the test awaits them
/// (`settle`) instead of sleeping.
#[tokio::test]
async fn in_async_mode_handlers_run_after_publish_returns() {
    let welcomed = Welcomed::default();
    let bus = RecordingBus::builder()
        .async_handlers(true)
        .register_handler(welcomed.clone())
        .build()
        .unwrap();

    let company = create_company(&bus).execute(dto("Acme")).await.unwrap();
    assert_eq!(company.published[0].spawned(), 4);
    assert!(welcomed.0.lock().unwrap().is_empty());

    bus.settle(Duration::from_secs(5)).await;
    assert_eq!(*welcomed.0.lock().unwrap(), [company.id]);
}

// ------------------------------------------------------------ v2 of the event

/// A handler of v2 with a dependency: the companies and plans it saw.
#[derive(Clone, Default)]
struct Plans(Arc<Mutex<Vec<(String, CompanyCreatedV2)>>>);

impl Handler<CompanyCreatedV2> for Plans {
    async fn handle(&self, event: &Event<CompanyCreatedV2>) -> HandlerResult {
        let seen = (
            format!(
                "{} {} {}",
                event.id(),
                event.occurred_on().to_rfc3339(),
                event.published_as()
            ),
            event.payload().clone(),
        );
        self.0.lock().map_err(|_| "lock poisoned")?.push(seen);
        Ok(())
    }
}

/// A v1 body, as a producer still on v1 (or Python) sends it, arrives at
/// the v2 handler upcast by `From<CompanyCreated> for CompanyCreatedV2`,
/// with its own id and time, and says it was published as v1.
#[tokio::test]
async fn a_v1_body_arrives_at_the_v2_handler_upcast() {
    let plans = Plans::default();
    let bus = events_core::EventBus::builder()
        .discover(false)
        .in_memory_store()
        .register_handler(plans.clone())
        .build()
        .unwrap();
    let body = events_core::serde_json::json!({
        "version": "0", "id": "eb-1", "detail-type": "testclean.api.1.event.company.created",
        "source": "testclean.api", "account": "1", "time": "2026-03-04T05:06:07Z",
        "region": "eu-west-1", "resources": [],
        "detail": {
            "id": "7d4c2f0e6b9a4e1c8f3a2b1c0d9e8f7a",
            "type": "testclean.api.1.event.company.created",
            "occurred_on": "2026-03-04T05:06:07.123456+00:00",
            "attributes": events_core::serde_json::to_string(&company_created("Acme SL").to_dict().unwrap()).unwrap(),
        },
    });
    let outcomes = bus
        .receive(&body.to_string())
        .unwrap()
        .dispatch()
        .await
        .unwrap()
        .into_vec();
    assert_handlers_succeeded(&outcomes);
    assert_eq!(
        *plans.0.lock().unwrap(),
        [(
            "7d4c2f0e6b9a4e1c8f3a2b1c0d9e8f7a 2026-03-04T05:06:07.123456+00:00 testclean.api.1.event.company.created"
                .to_owned(),
            CompanyCreatedV2 {
                company_id: COMPANY_ID,
                legal_name: "Acme SL".to_owned(),
                country_id: COUNTRY_ID,
                plan: "free".to_owned(),
            }
        )]
    );
    assert_eq!(
        CompanyCreatedV2::EVENT_NAME,
        "testclean.api.2.event.company.created"
    );
}
