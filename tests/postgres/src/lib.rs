//! A throwaway PostgreSQL server for the workspace's tests.
//!
//! [`PgServer::start`] finds the machine's server binaries
//! (`/usr/lib/postgresql/*/bin`, installing Debian's `postgresql` package
//! through `scripts/postgres install` if they are absent), runs `initdb` into
//! a folder under the target directory (`target/postgres-tests/`), starts
//! `postgres` on a free `127.0.0.1` port (TCP only, no Unix socket) as a
//! non-root user (`postgres`, else `nobody`, when the tests run as root), and
//! stops it by PID when dropped, removing its folder. Durability settings are
//! PostgreSQL's defaults: a committed transaction survives [`PgServer::kill`].
//!
//! Each test takes a fresh database with [`PgServer::database`] (`CREATE
//! DATABASE`), on its own server or on the test binary's [`shared`] one.
//! The crash tests use their own server: [`PgServer::kill`] (SIGKILL of the
//! server's whole process group, as a crash) and [`PgServer::restart`] (crash
//! recovery on the same port and data).
//!
//! A server that cannot be found, installed or started is a test failure (a
//! panic with the reason and the server's log), never a skipped test.
//!
//! ```no_run
//! let server = events_pg_tests::PgServer::start();
//! let db = server.database(); // a fresh, empty database
//! // ... connect to `db.url` with sqlx ...
//! assert_eq!(server.query(&db.name, "SELECT 1"), "1");
//! ```

mod server;
mod system;

pub use server::{shared, Database, PgServer};
pub use system::{bin_dir, workspace_root};
