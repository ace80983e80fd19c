use events_core::DomainEvent;

#[derive(DomainEvent, Debug, PartialEq)]
#[event(company = "acme", service = "ops", version = 3, resource = "cache", action = "reset")]
struct CacheReset;

#[derive(DomainEvent, Debug, PartialEq)]
#[event(company = "acme", service = "ops", version = 3, resource = "cache", action = "flushed")]
struct CacheFlushed {}

fn main() {
    assert!(CacheReset.to_dict().unwrap().is_empty());
    assert_eq!(CacheReset::from_dict(&Default::default()).unwrap(), CacheReset);
    assert_eq!(CacheFlushed::from_dict(&Default::default()).unwrap(), CacheFlushed {});
}
