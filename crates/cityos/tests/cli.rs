//! The `cityos` command as a user runs it: generate, import, serve on a real
//! socket, restart without re-importing, refuse bad input, stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cityos(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cityos"));
    c.env("CITYOS_DATA_DIR", data_dir)
        .env_remove("CITYOS_DATABASE")
        .env("CITYOS_LOG", "warn");
    c
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `serve` on a free port and returns the child and its base URL.
fn serve(data_dir: &Path) -> (Child, String) {
    let mut child = cityos(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Some(rest) = line.strip_prefix("cityos is serving ")
        {
            let url = rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (child, url);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start");
}

fn get_json(url: &str) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

fn terminate(mut child: Child) -> bool {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn import_then_serve_restarts_without_reimporting_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("city");
    let (ok, _, err) = run(cityos(dir.path())
        .args(["generate-city", "--seed", "7", "--out"])
        .arg(&feed));
    assert!(ok, "{err}");
    assert!(err.contains("generated"), "{err}");
    let (ok, _, err) = run(cityos(dir.path()).args(["import", "gtfs"]).arg(&feed));
    assert!(ok, "{err}");
    assert!(err.contains("now serving network 1"), "{err}");
    assert!(
        dir.path().join("cityos.db").exists(),
        "the SQLite file is created in the data directory"
    );

    let (child, url) = serve(dir.path());
    let network = get_json(&format!("{url}/api/v1/network"));
    assert_eq!(
        network["id"], 1,
        "served from the store without importing again"
    );
    assert!(network["feed_version"].as_str().unwrap().contains("seed=7"));
    assert!(terminate(child), "SIGTERM stops the server cleanly");

    // A bad feed is refused with a precise message and the served network stays.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for entry in std::fs::read_dir(&feed).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), bad.join(entry.file_name())).unwrap();
    }
    let stop_times = std::fs::read_to_string(bad.join("stop_times.txt")).unwrap();
    let mut lines: Vec<String> = stop_times.lines().map(str::to_owned).collect();
    let fields: Vec<&str> = lines[2].split(',').collect();
    let broken = lines[2].replacen(fields[1], "25:6x:00", 1);
    lines[2] = broken;
    std::fs::write(bad.join("stop_times.txt"), lines.join("\n")).unwrap();
    let (ok, _, err) = run(cityos(dir.path()).args(["import", "gtfs"]).arg(&bad));
    assert!(!ok);
    assert!(
        err.contains("stop_times.txt:3: arrival_time '25:6x:00' is not HH:MM:SS"),
        "{err}"
    );
    assert!(
        err.contains("the network already served is unchanged"),
        "{err}"
    );
    let (child, url) = serve(dir.path());
    assert_eq!(get_json(&format!("{url}/api/v1/network"))["id"], 1);
    assert!(terminate(child));
}

#[test]
fn bad_command_lines_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(cityos(dir.path()).args(["generate-city", "--size", "huge"]));
    assert!(!ok);
    assert!(err.contains("huge") && err.contains("small"), "{err}");
    let (ok, _, err) = run(cityos(dir.path()).args(["import", "gtfs", "/nonexistent/feed.zip"]));
    assert!(!ok);
    assert!(err.contains("/nonexistent/feed.zip"), "{err}");
    let config = dir.path().join("cityos.toml");
    std::fs::write(&config, "listen = 'not an address'\n").unwrap();
    let (ok, _, err) = run(cityos(dir.path()).arg("--config").arg(&config).arg("serve"));
    assert!(!ok);
    assert!(err.contains("cityos.toml"), "{err}");
    let (ok, _, err) = run(cityos(dir.path()).args([
        "user", "create", "--email", "a@b.org", "--name", "A", "--role", "mayor",
    ]));
    assert!(!ok);
    assert!(err.contains("'mayor' is not a role"), "{err}");
}

#[test]
fn users_and_api_keys_are_created_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(cityos(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "ops@city.example",
            "--name",
            "Ops",
            "--role",
            "transit_operator",
        ])
        .env("CITYOS_PASSWORD", "a long operator password"));
    assert!(ok, "{err}");
    assert!(out.contains("transit_operator"), "{out}");
    let (ok, out, err) = run(cityos(dir.path()).args([
        "user",
        "api-key",
        "--name",
        "depot 3",
        "--role",
        "transit_operator",
    ]));
    assert!(ok, "{err}");
    assert!(out.trim().starts_with("cos_k_"), "{out}");
}

#[test]
fn every_generated_city_size_imports_without_errors_or_warnings() {
    for size in ["small", "medium"] {
        let dir = tempfile::tempdir().unwrap();
        let feed = dir.path().join("city");
        let (ok, _, err) = run(cityos(dir.path())
            .args(["generate-city", "--size", size, "--out"])
            .arg(&feed));
        assert!(ok, "{err}");
        let (data, report) =
            cityos_transit::gtfs::load(&feed, &|_| {}).unwrap_or_else(|e| panic!("{size}: {e}"));
        assert!(report.warnings.is_empty(), "{size}: {report}");
        assert!(data.routes.len() > 10);
    }
}
