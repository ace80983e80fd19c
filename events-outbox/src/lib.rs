//! The transactional outbox on PostgreSQL (SPEC §10): events written in the
//! caller's own transaction and relayed to an `EventBus`.
