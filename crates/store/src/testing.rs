//! Throwaway databases for tests: a fresh SQLite file, or a fresh database
//! on a private PostgreSQL server that this module starts from Debian's
//! `postgresql` package (initdb in a temp dir) and that dies with the test
//! process. Nobody has to set a server up.
//!
//! Without PostgreSQL installed, [`postgres_url`] returns `None` and says the
//! test was skipped, unless `CITYOS_REQUIRE_POSTGRES=1` (as CI sets), which
//! turns the absence into a failure so CI can never skip silently.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where the shared server of this test process listens, once started.
static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A URL to a new, empty PostgreSQL database, or `None` (with a note on
/// stderr) when PostgreSQL is not installed and not required.
pub async fn postgres_url() -> Option<String> {
    let server = SERVER.get_or_init(|| start_server(false).map_err(|e| e.to_string()));
    let base = match server {
        Ok(url) => url.clone(),
        Err(e) => {
            if std::env::var("CITYOS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!(
                    "PostgreSQL is required (CITYOS_REQUIRE_POSTGRES=1) but could not start: {e}"
                );
            }
            eprintln!("skipped: PostgreSQL tests need Debian's postgresql package ({e})");
            return None;
        }
    };
    let name = format!("cityos_test_{}", DATABASES.fetch_add(1, Ordering::SeqCst));
    let (client, connection) =
        tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL server");
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = task.await;
    Some(format!("{base}/{name}"))
}

/// A path for a new SQLite file inside `dir`.
pub fn sqlite_path(dir: &Path) -> String {
    dir.join("cityos.db").display().to_string()
}

/// The directory of PostgreSQL's programs (initdb, pgbench, …) from Debian's package.
pub fn bin_dir() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|_| "no /usr/lib/postgresql".to_owned())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql".to_owned())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs a command as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Starts a private PostgreSQL server that lives as long as this process and
/// returns its base URL (`postgres://postgres@127.0.0.1:PORT`). `durable`
/// keeps fsync and synchronous commits on, as a benchmark against it needs;
/// tests turn them off for speed.
pub fn start_server(durable: bool) -> Result<String, String> {
    let bin = bin_dir()?;
    let dir = std::env::temp_dir().join(format!(
        "cityos-pg-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if is_root() {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("chown of the data dir failed".to_owned());
        }
    }
    let data = dir.join("data");
    let out = as_postgres(&bin.join("initdb"))
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
            "-D",
        ])
        .arg(&data)
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // The watcher stops the server and removes its files once this test process is gone.
    let script = format!(
        "{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 {speed} -c max_connections=200 >{dir}/log 2>&1 & pg=$!; \
         while [ -d /proc/{owner} ] && kill -0 $pg 2>/dev/null; do sleep 0.5; done; kill -QUIT $pg 2>/dev/null; wait; rm -rf {dir}",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        owner = std::process::id(),
        speed = if durable {
            ""
        } else {
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        },
    );
    as_postgres(Path::new("/bin/sh"))
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(format!("postgres://postgres@127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "postgres did not become ready: {}",
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    ))
}
