//! The machine around the server: its binaries, the target directory, the user it runs as, signals.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("postgres").exists() && bin.join("initdb").exists()).then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

/// The directory of the newest PostgreSQL server binaries
/// (`/usr/lib/postgresql/<version>/bin`), after `scripts/postgres install`
/// (Debian's `postgresql` package) if there is none.
///
/// # Panics
///
/// When no binaries are found and the install fails: a test failure.
pub fn bin_dir() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(dir) = find_bin_dir() {
            return dir;
        }
        let script = workspace_root().join("scripts/postgres");
        let status = Command::new("bash")
            .arg(&script)
            .arg("install")
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin, and `scripts/postgres install` \
             (Debian's `postgresql` package) failed; see its output above"
        );
        find_bin_dir().unwrap_or_else(|| {
            panic!("`scripts/postgres install` succeeded but /usr/lib/postgresql/*/bin has no `postgres` and `initdb`")
        })
    })
}

/// The target directory of the running test binary (the first ancestor of
/// the executable holding `CACHEDIR.TAG`), else the system's temp dir.
pub(crate) fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").exists())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(std::env::temp_dir)
}

/// The user the server runs as: `None` (ourselves) unless we are root,
/// which PostgreSQL refuses; then `postgres` (the package's user) or
/// `nobody`, as (uid, gid).
pub(crate) fn server_user() -> Option<(u32, u32)> {
    static USER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *USER.get_or_init(|| {
        if effective_uid() != Some(0) {
            return None;
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let lookup = |name: &str| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.first() == Some(&name) && fields.len() > 3)
                    .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                    .flatten()
            })
        };
        Some(
            lookup("postgres")
                .or_else(|| lookup("nobody"))
                .unwrap_or((65534, 65534)),
        )
    })
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    // Uid: real effective saved fs
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Lets other users traverse `dir` (adds o+x), so the server's user reaches
/// its data directory below it.
pub(crate) fn allow_traverse(dir: &Path) {
    if let Ok(meta) = std::fs::metadata(dir) {
        let mut perms = meta.permissions();
        if perms.mode() & 0o001 == 0 {
            perms.set_mode(perms.mode() | 0o001);
            let _ = std::fs::set_permissions(dir, perms);
        }
    }
}

/// Sends `signal` (e.g. `KILL`, `INT`) to the process group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
