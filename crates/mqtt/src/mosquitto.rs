//! A private Mosquitto for tests and benchmarks: Debian's `mosquitto` binary
//! on a free loopback port, with its own config, password file and log in a
//! temporary directory. It stops when the [`Mosquitto`] value is dropped, and
//! a watcher stops it if this process dies without dropping it.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::MqttError;

/// Where Debian's package installs the broker.
pub const MOSQUITTO_BIN: &str = "/usr/sbin/mosquitto";

/// A running private Mosquitto.
pub struct Mosquitto {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    /// Whether the Mosquitto binary is installed.
    pub fn installed() -> bool {
        Path::new(MOSQUITTO_BIN).exists()
    }

    /// Starts Mosquitto on a free port of 127.0.0.1. With no `users`, anyone
    /// may connect anonymously; otherwise only these `(username, password)`
    /// pairs may. Its per-client queue holds `max_queue` messages, like the
    /// embedded broker's.
    pub fn start(users: &[(&str, &str)], max_queue: usize) -> Result<Mosquitto, MqttError> {
        let err = |what: &str, e: std::io::Error| MqttError::Mosquitto(format!("{what}: {e}"));
        if !Self::installed() {
            return Err(MqttError::Mosquitto(format!(
                "{MOSQUITTO_BIN} is absent; install Debian's mosquitto package"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("cityos-mosquitto-")
            .tempdir()
            .map_err(|e| err("temp dir", e))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| err("free port", e))?
            .port();
        let mut config = format!(
            "listener {port} 127.0.0.1\n\
             persistence false\n\
             max_queued_messages {max_queue}\n\
             max_inflight_messages 256\n\
             log_dest file {log}\n\
             log_type error\nlog_type warning\nlog_type notice\n",
            log = dir.path().join("log").display(),
        );
        if is_root() {
            // As root Mosquitto switches to the `mosquitto` user, which
            // cannot read our private temp directory.
            config.push_str("user root\n");
        }
        if users.is_empty() {
            config.push_str("allow_anonymous true\n");
        } else {
            let passwords = dir.path().join("passwords");
            for (i, (user, password)) in users.iter().enumerate() {
                let mut cmd = Command::new("mosquitto_passwd");
                if i == 0 {
                    cmd.arg("-c");
                }
                let status = cmd
                    .arg("-b")
                    .arg(&passwords)
                    .args([user, password])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map_err(|e| err("mosquitto_passwd", e))?;
                if !status.success() {
                    return Err(MqttError::Mosquitto("mosquitto_passwd failed".to_owned()));
                }
            }
            config.push_str(&format!(
                "allow_anonymous false\npassword_file {}\n",
                passwords.display()
            ));
        }
        std::fs::File::create(dir.path().join("mosquitto.conf"))
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .map_err(|e| err("config", e))?;
        let mut mosquitto = Mosquitto {
            port,
            dir,
            child: None,
        };
        mosquitto.spawn()?;
        Ok(mosquitto)
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops Mosquitto and starts it again on the same port, dropping every
    /// connection (and, without persistence, every session).
    pub fn restart(&mut self) -> Result<(), MqttError> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), MqttError> {
        let config = self.dir.path().join("mosquitto.conf");
        let mut child = Command::new(MOSQUITTO_BIN)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| MqttError::Mosquitto(format!("start {MOSQUITTO_BIN}: {e}")))?;
        // If this process dies without dropping us, the watcher stops
        // Mosquitto; it ends by itself when Mosquitto does.
        let watcher = format!(
            "while kill -0 {owner} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 0.5; done; kill {pid} 2>/dev/null",
            owner = std::process::id(),
            pid = child.id(),
        );
        let _ = Command::new("/bin/sh")
            .args(["-c", &watcher])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MqttError::Mosquitto(format!(
                    "it did not start listening on port {}: {}",
                    self.port,
                    self.log().trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Mosquitto's log so far, for error messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
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
