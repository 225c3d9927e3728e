//! The `cityos` command as a user runs it: generate, import, serve on a real
//! socket, restart without re-importing, refuse bad input, stop on SIGTERM.

mod common;

use common::{cityos, get_json, run, serve, terminate};

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

#[test]
fn a_generated_city_runs_from_yesterday_or_from_the_date_given() {
    let dir = tempfile::tempdir().unwrap();
    let calendar = |args: &[&str]| {
        let feed = dir.path().join("city");
        let (ok, _, err) = run(cityos(dir.path())
            .arg("generate-city")
            .args(args)
            .arg("--out")
            .arg(&feed));
        assert!(ok, "{err}");
        let text = std::fs::read_to_string(feed.join("calendar.txt")).unwrap();
        let row: Vec<String> = text
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        (row[8].clone(), row[9].clone())
    };
    // By default its year of service covers today (and last night, in Seoul).
    let today = || jiff::Timestamp::now().in_tz("Asia/Seoul").unwrap().date();
    let yesterday = |d: jiff::civil::Date| d.yesterday().unwrap().strftime("%Y%m%d").to_string();
    let before = today();
    let (start, end) = calendar(&[]);
    // (Either side of midnight in Seoul, should the test run across it.)
    assert!(
        start == yesterday(before) || start == yesterday(today()),
        "{start}"
    );
    assert!(end > today().strftime("%Y%m%d").to_string(), "{end}");
    // A date given pins it, so the same seed and date give the same city.
    assert_eq!(calendar(&["--start-date", "2027-03-01"]).0, "20270301");
    let (ok, _, err) =
        run(cityos(dir.path()).args(["generate-city", "--start-date", "2027-02-30"]));
    assert!(!ok);
    assert!(err.contains("--start-date"), "{err}");
}
