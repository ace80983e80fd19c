//! The harness itself: a server starts as a non-root user, hands out fresh databases, and survives SIGKILL with its commits.

use events_pg_tests::{shared, PgServer};

#[test]
fn databases_are_fresh_and_separate() {
    let server = shared();
    let a = server.database();
    let b = server.database();
    assert_ne!(a.name, b.name);
    server.query(&a.name, "CREATE TABLE t (n int)");
    server.query(&a.name, "INSERT INTO t VALUES (1)");
    assert_eq!(server.query(&a.name, "SELECT count(*) FROM t"), "1");
    assert_eq!(
        server.query(
            &b.name,
            "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
        ),
        "0"
    );
    assert_eq!(a.url, server.url(&a.name));
    assert!(a.url.starts_with("postgres://postgres@127.0.0.1:"));
}

#[test]
fn runs_with_durable_defaults_and_tcp_only() {
    let server = shared();
    assert_eq!(server.query("postgres", "SHOW fsync"), "on");
    assert_eq!(server.query("postgres", "SHOW synchronous_commit"), "on");
    assert_eq!(
        server.query("postgres", "SHOW listen_addresses"),
        "127.0.0.1"
    );
    assert_eq!(server.query("postgres", "SHOW unix_socket_directories"), "");
    let pid = server.pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        !uid.split_whitespace().skip(1).any(|u| u == "0"),
        "the server runs as root: {uid}"
    );
}

#[test]
fn a_commit_survives_sigkill_and_restart() {
    let mut server = PgServer::start();
    let db = server.database();
    server.query(&db.name, "CREATE TABLE t (n int)");
    server.query(&db.name, "INSERT INTO t SELECT generate_series(1, 100)");
    let port = server.port();
    let old = server.pid().unwrap();
    server.kill();
    assert!(server.pid().is_none());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    server.restart();
    assert_eq!(server.port(), port);
    assert_ne!(server.pid().unwrap(), old);
    assert_eq!(server.query(&db.name, "SELECT sum(n) FROM t"), "5050");
    let log = std::fs::read_to_string(server.log()).unwrap();
    assert!(log.contains("not properly shut down"), "{log}");
}

#[test]
fn stop_and_drop_stop_the_server_by_pid() {
    let mut server = PgServer::start();
    let pid = server.pid().unwrap();
    let log = server.log();
    server.stop();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            // A reaped PID disappears; a zombie would show state Z.
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .map(|s| s.contains("State:\tZ"))
                .unwrap_or(true)
        }
    );
    server.restart();
    let pid = server.pid().unwrap();
    drop(server);
    assert!(!std::path::Path::new(&format!("/proc/{pid}/status")).exists());
    // The watchdog removes the folder in the background: bounded polling.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while log.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!log.exists(), "the server's folder is removed after drop");
}
