//! [`EventBusBuilder`]: configuration, handlers, store and publisher, checked
//! when the bus is built.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::{BusError, EventBus, Inner};
use crate::config::{BusConfig, Mode};
use crate::event::DomainEvent;
use crate::handler::{discovered_handlers, Handler, HandlerEntry};
use crate::publisher::{provider, Publisher};
use crate::registry::{event_types, EventTypes};
use crate::store::{EventStore, MemoryStore, SqliteOptions, SqliteStore};

/// Where the bus keeps events.
enum StoreChoice {
    /// The SQLite store at the configured path.
    FromConfig,
    /// The store given.
    Custom(Arc<dyn EventStore>),
    /// No store at all.
    None,
}

/// Builds an [`EventBus`]: start from the environment with
/// [`EventBus::builder_from_env`], or from the built-in defaults with
/// [`EventBus::builder`].
pub struct EventBusBuilder {
    config: BusConfig,
    discover: bool,
    explicit: Vec<HandlerEntry>,
    store: StoreChoice,
    store_options: Option<SqliteOptions>,
    publisher: Option<Arc<dyn Publisher>>,
    dispatch_in_process: Option<bool>,
    max_permanent_failures: u32,
    accepted_as_stored: bool,
}

impl EventBusBuilder {
    /// A builder starting from `config`, discovery on, the configured store.
    pub(super) fn new(config: BusConfig) -> Self {
        EventBusBuilder {
            config,
            discover: true,
            explicit: Vec::new(),
            store: StoreChoice::FromConfig,
            store_options: None,
            publisher: None,
            dispatch_in_process: None,
            max_permanent_failures: 3,
            accepted_as_stored: false,
        }
    }

    /// Replaces the whole configuration (e.g. with [`BusConfig::from_env`]).
    pub fn config(mut self, config: BusConfig) -> Self {
        self.config = config;
        self
    }

    /// Enables or disables publishing.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.config.enabled = enabled;
        self
    }

    /// Spawns handlers (`true`) instead of awaiting them in `publish`.
    pub fn async_handlers(mut self, async_handlers: bool) -> Self {
        self.config.async_handlers = async_handlers;
        self
    }

    /// The longest one handler call may run before it is cancelled and
    /// counted as a failure (default 60 s, `EVENT_BUS_HANDLER_TIMEOUT`):
    /// in `publish`, in spawned handler work, and for every consumer (SQS,
    /// Lambda, HTTP), whose message is then left for redelivery. A zero
    /// timeout is taken as 1 ms.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.config.handler_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.config.mode = mode;
        self
    }

    /// The mode the bus will be built in.
    pub fn configured_mode(&self) -> Mode {
        self.config.mode
    }

    /// Turns `#[handler]` discovery on (the default) or off.
    pub fn discover(mut self, discover: bool) -> Self {
        self.discover = discover;
        self
    }

    /// Registers a handler built at run time (with its dependencies). Its
    /// name is its type's path. Start from [`EventBus::builder_from_env`] to
    /// keep the `EVENT_BUS_*` configuration.
    pub fn register_handler<E: DomainEvent, H: Handler<E>>(self, handler: H) -> Self {
        self.register_handler_named(std::any::type_name::<H>(), handler)
    }

    /// Registers a handler under an explicit name.
    pub fn register_handler_named<E: DomainEvent, H: Handler<E>>(
        mut self,
        name: impl Into<Cow<'static, str>>,
        handler: H,
    ) -> Self {
        self.explicit
            .push(HandlerEntry::typed::<E, H>(name.into(), handler));
        self
    }

    /// Uses the SQLite store at `path` (the default is `EVENT_BUS_STORE_PATH`).
    pub fn store_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.store_path = path.into();
        self.store = StoreChoice::FromConfig;
        self
    }

    /// Options of the SQLite store opened at the configured path (the
    /// default: [`SqliteOptions::from_env`], which reads the handled-event
    /// retention from `EVENT_BUS_STORE_RETENTION`).
    pub fn store_options(mut self, options: SqliteOptions) -> Self {
        self.store_options = Some(options);
        self
    }

    /// Uses `store` as the local and failover store.
    pub fn store(mut self, store: Arc<dyn EventStore>) -> Self {
        self.store = StoreChoice::Custom(store);
        self
    }

    /// Uses a fresh [`MemoryStore`] (not durable: tests only).
    pub fn in_memory_store(self) -> Self {
        self.store(Arc::new(MemoryStore::new()))
    }

    /// No store at all: events are only dispatched in process, and in
    /// eventbridge mode a failed publish is an error.
    pub fn without_store(mut self) -> Self {
        self.store = StoreChoice::None;
        self
    }

    /// Publishes through `publisher` (such as an `EventBridgePublisher`):
    /// this sets the mode to [`Mode::EventBridge`], overriding
    /// `EVENT_BUS_MODE`, as every code setting overrides the environment.
    /// (To let the environment choose, do not give a publisher: call
    /// [`connect`](Self::connect), which builds the one `EVENT_BUS_MODE`
    /// asks for.) A [`mode(Mode::Local)`](Self::mode) set after this wins:
    /// the publisher is then not used, and `build` logs a warning saying so.
    pub fn publisher(mut self, publisher: Arc<dyn Publisher>) -> Self {
        self.publisher = Some(publisher);
        self.config.mode = Mode::EventBridge;
        self
    }

    /// Whether published events also go to in-process handlers. Default:
    /// yes in local mode; no in eventbridge mode, where consumers (SQS,
    /// Lambda, HTTP) run the handlers.
    pub fn dispatch_in_process(mut self, yes: bool) -> Self {
        self.dispatch_in_process = Some(yes);
        self
    }

    /// The test kit's local mode (`RecordingBus`): an event the publisher
    /// (the recorder) accepted is reported [`Delivery::Stored`], as local
    /// mode reports it.
    ///
    /// [`Delivery::Stored`]: crate::bus::Delivery::Stored
    #[cfg(feature = "testing")]
    pub(crate) fn accepted_as_stored(mut self, yes: bool) -> Self {
        self.accepted_as_stored = yes;
        self
    }

    /// Permanent failures after which a replayed event becomes a dead letter.
    pub fn max_permanent_failures(mut self, attempts: u32) -> Self {
        self.max_permanent_failures = attempts.max(1);
        self
    }

    /// Builds the bus, connecting the publisher of the configured mode from
    /// a linked provider (such as `events-eventbridge`) if none was given.
    ///
    /// # Errors
    ///
    /// [`BusError::NoPublisher`] when the mode is remote and no linked crate
    /// provides its publisher, [`BusError::PublisherSetup`] when the publisher
    /// cannot be set up, and the errors of [`build`](Self::build).
    pub async fn connect(mut self) -> Result<EventBus, BusError> {
        if self.config.mode != Mode::Local && self.publisher.is_none() && self.config.enabled {
            let mode = self.config.mode;
            let provider = provider(mode.as_str()).ok_or(BusError::NoPublisher { mode })?;
            let publisher = (provider.build)(&self.config)
                .await
                .map_err(|source| BusError::PublisherSetup { mode, source })?;
            self.publisher = Some(publisher);
        }
        self.build()
    }

    /// Builds the bus: discovers handlers, checks event names, opens the store.
    ///
    /// # Errors
    ///
    /// [`BusError::DuplicateEventName`] when two linked event types have one
    /// name, [`BusError::DuplicateHandler`] when a handler is registered
    /// twice; in a remote mode without a publisher given,
    /// [`BusError::NotConnected`] when a linked crate provides one (its setup
    /// is async: call [`connect`](Self::connect)) and [`BusError::NoPublisher`]
    /// when none does; [`BusError::Store`] when the store cannot be opened or
    /// `EVENT_BUS_STORE_RETENTION` is not valid.
    pub fn build(self) -> Result<EventBus, BusError> {
        let mut types = EventTypes::discover()?;
        let mut handlers: HashMap<&'static str, Vec<HandlerEntry>> = HashMap::new();
        let discovered = if self.discover {
            let mut found: Vec<_> = discovered_handlers().collect();
            // Link order is not stable across builds; names are.
            found.sort_by_key(|r| r.name());
            found.into_iter().map(|r| r.entry()).collect::<Vec<_>>()
        } else {
            Vec::new()
        };
        let discovered_count = discovered.len();
        for entry in discovered.into_iter().chain(self.explicit) {
            types.insert(
                entry.event_name,
                entry.event_type_name,
                entry.event_type_id,
                None,
            )?;
            let list = handlers.entry(entry.event_name).or_default();
            if list.iter().any(|h| h.name == entry.name) {
                return Err(BusError::DuplicateHandler {
                    handler: entry.name.into_owned(),
                    event: entry.event_name,
                });
            }
            list.push(entry);
        }
        if self.discover && discovered_count == 0 {
            tracing::warn!(
                event_types = types.len(),
                "handler discovery found no #[handler] in this program; if your handlers live in another crate, \
                 make sure it is linked: add `use my_handlers as _;` to main.rs (the linker drops crates nothing references)"
            );
        }
        // Each name's handlers, with those of newer versions it is upcast to.
        log_handlers(&handlers);
        let count: usize = handlers.values().map(Vec::len).sum();
        let routes = super::versions::routes(handlers, &types)?;
        let config = self.config;
        if config.mode != Mode::Local && self.publisher.is_none() && config.enabled {
            let mode = config.mode;
            return Err(match provider(mode.as_str()) {
                // Linked, but setting it up is async: only `connect` can.
                Some(_) => BusError::NotConnected { mode },
                None => BusError::NoPublisher { mode },
            });
        }
        let store: Option<Arc<dyn EventStore>> = match self.store {
            _ if !config.enabled => None,
            StoreChoice::FromConfig => {
                let options = match self.store_options {
                    Some(options) => options,
                    None => SqliteOptions::from_env()?,
                };
                Some(Arc::new(SqliteStore::open_with(
                    &config.store_path,
                    options,
                )?))
            }
            StoreChoice::Custom(store) => Some(store),
            StoreChoice::None => None,
        };
        let publisher = match self.publisher {
            Some(publisher) if config.mode == Mode::Local => {
                tracing::warn!(
                    publisher = publisher.name(),
                    "a publisher was given but the mode is local (`.mode(Mode::Local)` after \
                     `.publisher(..)`): it is not used; events are stored and handled in this process"
                );
                None
            }
            publisher => publisher,
        };
        let dispatch_in_process = self
            .dispatch_in_process
            .unwrap_or(config.mode == Mode::Local);
        tracing::info!(
            mode = %config.mode,
            enabled = config.enabled,
            handlers = count,
            event_types = types.len(),
            "event bus ready"
        );
        let unfinished = store.as_ref().map_or(0, |s| s.unfinished_local_at_open());
        let bus = EventBus {
            inner: Arc::new(Inner {
                handlers: routes,
                store,
                publisher,
                dispatch_in_process,
                accepted_as_stored: self.accepted_as_stored,
                max_permanent_failures: self.max_permanent_failures,
                tasks: TaskTracker::new(),
                config,
            }),
        };
        // Local mode: what an earlier run left unfinished runs now.
        super::recover::start(&bus, unfinished);
        Ok(bus)
    }
}

/// At start-up: how many handlers each event has (info), and which event
/// types linked into the program have none (debug), so a crate of handlers
/// the linker dropped shows even when others were found.
fn log_handlers(handlers: &HashMap<&'static str, Vec<HandlerEntry>>) {
    let mut names: Vec<_> = handlers.iter().collect();
    names.sort_by_key(|(name, _)| **name);
    for (event, list) in names {
        tracing::info!(
            event,
            handlers = list.len(),
            names = %list.iter().map(|h| h.name.as_ref()).collect::<Vec<_>>().join(", "),
            "handlers of event"
        );
    }
    let mut without: Vec<_> = event_types()
        .filter(|ty| !handlers.contains_key(ty.name))
        .collect();
    without.sort_by_key(|ty| ty.name);
    without.dedup_by_key(|ty| ty.name);
    for ty in without {
        tracing::debug!(
            event = ty.name,
            r#type = ty.type_name(),
            "event type has no handler in this program (if its handlers live in another crate, \
             make sure it is linked: `use my_handlers as _;`)"
        );
    }
}
