//! `PgServer`: one throwaway PostgreSQL server (initdb, start, databases, kill, restart, stop).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::system::{allow_traverse, bin_dir, server_user, signal_group, target_dir};

/// How long a (re)started server may take to accept connections on a busy
/// machine before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server on `127.0.0.1`, stopped by PID (and its
/// folder removed) when dropped.
///
/// Connect as the superuser `postgres` without a password (trust
/// authentication, loopback only).
pub struct PgServer {
    dir: PathBuf,
    port: u16,
    settings: Vec<String>,
    child: Option<Child>,
    /// Kills the server and removes `dir` if this process ends without
    /// dropping us (a panic in a static, SIGKILL of the test binary): a
    /// shell reading our end of a pipe until it closes.
    watchdog: Option<(Child, ChildStdin)>,
    databases: AtomicU32,
}

/// A database created by [`PgServer::database`].
#[derive(Debug, Clone)]
pub struct Database {
    /// Its name.
    pub name: String,
    /// `postgres://postgres@127.0.0.1:{port}/{name}`: a `DATABASE_URL`.
    pub url: String,
}

/// The test binary's shared server, started on first use, for tests that
/// need a database but do not kill or restart the server. Each test takes
/// its own [`PgServer::database`]. Stopped when the test binary exits.
pub fn shared() -> &'static PgServer {
    static SHARED: OnceLock<PgServer> = OnceLock::new();
    SHARED.get_or_init(PgServer::start)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

fn as_server_user(command: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = server_user() {
        command.uid(uid).gid(gid);
    }
    command
}

impl PgServer {
    /// Runs `initdb` and starts a server on a free loopback port, with
    /// PostgreSQL's default settings (durability included).
    ///
    /// # Panics
    ///
    /// When the binaries are missing and cannot be installed, or the server
    /// does not start (the panic carries its log): a test failure.
    pub fn start() -> PgServer {
        PgServer::start_with(&[])
    }

    /// [`PgServer::start`] with extra server settings (`-c name=value`).
    ///
    /// # Panics
    ///
    /// As [`PgServer::start`].
    pub fn start_with(settings: &[(&str, &str)]) -> PgServer {
        static SERVERS: AtomicU32 = AtomicU32::new(0);
        let root = target_dir().join("postgres-tests");
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        if let Some(target) = root.parent() {
            allow_traverse(target);
        }
        allow_traverse(&root);
        let n = SERVERS.fetch_add(1, Ordering::Relaxed);
        let dir = root.join(format!("{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        std::fs::create_dir_all(&data)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", data.display()));
        allow_traverse(&dir);
        if let Some((uid, gid)) = server_user() {
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("cannot chown {} to {uid}:{gid}: {e}", data.display()));
        }
        let mut server = PgServer {
            dir,
            port: 0,
            settings: settings
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
            child: None,
            watchdog: None,
            databases: AtomicU32::new(0),
        };
        server.watch();
        server.initdb();
        let mut failures = Vec::new();
        // A port found free can be taken before the server binds it.
        for _ in 0..3 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => failures.push(e),
            }
        }
        panic!("postgres did not start:\n{}", failures.join("\n"));
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log file (kept while the server lives).
    pub fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn watch(&mut self) {
        let script = "trap '' INT TERM HUP; cat >/dev/null; \
             pid=$(head -n1 \"$1/data/postmaster.pid\" 2>/dev/null) && env kill -KILL -- \"-$pid\" 2>/dev/null; \
             for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 \"$pid\" 2>/dev/null || break; sleep 0.1; done; \
             rm -rf \"$1\"";
        let mut child = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the server's watchdog (sh): {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        self.watchdog = Some((child, stdin));
    }

    fn initdb(&self) {
        let initdb = bin_dir().join("initdb");
        let mut command = Command::new(&initdb);
        command
            .arg("-D")
            .arg(self.data())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .stdin(Stdio::null())
            .current_dir(&self.dir);
        let out = as_server_user(&mut command)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", initdb.display()));
        assert!(
            out.status.success(),
            "initdb -D {} failed ({}):\n{}{}",
            self.data().display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn spawn(&mut self) -> Result<(), String> {
        let postgres = bin_dir().join("postgres");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| format!("cannot open {}: {e}", self.log().display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("cannot clone the log handle: {e}"))?;
        let mut command = Command::new(&postgres);
        command
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "recovery_init_sync_method=syncfs"]);
        for setting in &self.settings {
            command.args(["-c", setting]);
        }
        command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .current_dir(&self.dir)
            // Its own process group (the backends inherit it): `kill` kills
            // them all at once, as a crash, and a Ctrl-C of the tests does
            // not reach it (the watchdog or `Drop` stops it).
            .process_group(0);
        let child = as_server_user(&mut command)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", postgres.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let isready = bin_dir().join("pg_isready");
        loop {
            let ready = Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-t", "5"])
                .args(["-p", &self.port.to_string()])
                .stdin(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run {}: {e}", isready.display()))?;
            if ready.success() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                return Err(format!(
                    "postgres exited ({status}) on port {}; its log:\n{}",
                    self.port,
                    self.log_text()
                ));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "postgres did not accept connections on port {} within {READY_TIMEOUT:?}; its log:\n{}",
                    self.port,
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a fresh, empty database (`CREATE DATABASE test_<n>`).
    ///
    /// # Panics
    ///
    /// When the server refuses (the panic carries psql's output).
    pub fn database(&self) -> Database {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{n}");
        self.query("postgres", &format!("CREATE DATABASE {name}"));
        Database {
            url: self.url(&name),
            name,
        }
    }

    /// Runs `sql` with `psql` in database `database`; its output, unaligned
    /// and without headers (`psql -At`), trimmed.
    ///
    /// # Panics
    ///
    /// When psql fails (the panic carries its output).
    pub fn query(&self, database: &str, sql: &str) -> String {
        let psql = bin_dir().join("psql");
        let out = Command::new(&psql)
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", database])
            .args(["-p", &self.port.to_string()])
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", psql.display()));
        assert!(
            out.status.success(),
            "psql -d {database} -c {sql:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// SIGKILL of the server's whole process group (postmaster and
    /// backends), as a crash; waits for the postmaster. Its data stays:
    /// [`PgServer::restart`] recovers it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), "KILL");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server cleanly (SIGINT: PostgreSQL's fast shutdown) and
    /// waits for it. Its data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), "INT");
            let deadline = Instant::now() + READY_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data (after
    /// [`PgServer::kill`] this runs crash recovery); kills it first if it
    /// runs.
    ///
    /// # Panics
    ///
    /// When it does not come back (the panic carries its log).
    pub fn restart(&mut self) {
        self.kill();
        let mut failures = Vec::new();
        // Backends of a killed server can hold its shared memory for a
        // moment after the postmaster is gone: try again.
        for _ in 0..5 {
            match self.spawn() {
                Ok(()) => return,
                Err(e) => failures.push(e),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("postgres did not restart:\n{}", failures.join("\n"));
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
        // Closing the pipe lets the watchdog remove the folder in the
        // background (a slow disk takes seconds over a data directory).
        match self.watchdog.take() {
            Some((_watchdog, stdin)) => drop(stdin),
            None => {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("port", &self.port)
            .field("pid", &self.pid())
            .field("dir", &self.dir)
            .finish()
    }
}
