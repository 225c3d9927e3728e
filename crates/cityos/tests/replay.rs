//! `cityos replay` from the command line: recorded positions (a flattened
//! CSV, or a folder of GTFS-realtime files) through the real ingest on a
//! replayed clock, with a TripUpdates snapshot every 30 s of replayed time.

mod common;

use std::io::Write;

use cityos_realtime::gtfsrt::FeedMessage;
use cityos_realtime::synth::{SynthOptions, drive};
use common::{cityos, run};
use prost::Message as _;

/// A generated city and 20 minutes of its buses' positions on a weekday morning.
fn recorded(dir: &std::path::Path) -> (std::path::PathBuf, Vec<cityos_realtime::PositionRecord>) {
    let feed = dir.join("city");
    cityos_sim::generate_city(&cityos_sim::CityOptions::default(), &feed).unwrap();
    let network = cityos_transit::load_network(&feed, &|_| {}).unwrap().0;
    let date = jiff::civil::date(2026, 3, 3);
    let from = network.instant(date, 8 * 3600).unwrap().as_second();
    let positions = drive(
        &network,
        &SynthOptions {
            date,
            window: from..from + 1200,
            every_s: 20,
            gps_error_m: 4.0,
            seed: 9,
        },
    );
    (feed, positions)
}

/// Snapshots written, as (replayed time in the name, decoded feed).
fn snapshots(dir: &std::path::Path) -> Vec<(i64, FeedMessage)> {
    let mut out: Vec<(i64, FeedMessage)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let t: i64 = name.strip_prefix("trip-updates-").unwrap().parse().unwrap();
            (
                t,
                FeedMessage::decode(std::fs::read(&path).unwrap().as_slice()).unwrap(),
            )
        })
        .collect();
    out.sort_by_key(|(t, _)| *t);
    out
}

fn check_snapshots(dir: &std::path::Path, positions: &[cityos_realtime::PositionRecord]) {
    let snaps = snapshots(dir);
    let (first, last) = (
        positions[0].timestamp.unwrap(),
        positions.last().unwrap().timestamp.unwrap(),
    );
    // One every 30 s of replayed time, each stamped with its replayed time.
    assert_eq!(
        snaps.len() as i64,
        (last - first) / 30,
        "{} snapshots",
        snaps.len()
    );
    for (t, feed) in &snaps {
        assert_eq!(t % 30, 0);
        assert_eq!(feed.header.timestamp, Some(*t as u64));
    }
    // Once buses have been seen, the feed predicts their trips' stops ahead.
    let (t, later) = &snaps[snaps.len() - 1];
    assert!(!later.entity.is_empty());
    for e in &later.entity {
        let update = e.trip_update.as_ref().unwrap();
        assert!(
            update
                .stop_time_update
                .iter()
                .all(|s| s.arrival.as_ref().unwrap().time.unwrap() >= *t)
        );
    }
}

/// `cityos replay --speed 0` of `positions` on `feed`, with snapshots:
/// where they are, and what it printed. It must succeed.
fn replay_fast(
    dir: &std::path::Path,
    feed: &std::path::Path,
    positions: &std::path::Path,
) -> (std::path::PathBuf, String) {
    let snaps = dir.join("snaps");
    let (ok, _, stderr) = run(cityos(&dir.join("data")).args([
        "replay".as_ref(),
        "--gtfs".as_ref(),
        feed.as_os_str(),
        "--positions".as_ref(),
        positions.as_os_str(),
        "--speed".as_ref(),
        "0".as_ref(),
        "--snapshots".as_ref(),
        snaps.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--mqtt-listen".as_ref(),
        "off".as_ref(),
    ] as [&std::ffi::OsStr; 13]));
    assert!(ok, "{stderr}");
    (snaps, stderr)
}

#[test]
fn a_csv_recording_replays_with_snapshots_every_30_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (feed, positions) = recorded(dir.path());
    let csv = dir.path().join("positions.csv");
    let mut out = std::fs::File::create(&csv).unwrap();
    writeln!(out, "vehicle.vehicle.id,vehicle.trip.trip_id,vehicle.trip.start_date,vehicle.position.latitude,vehicle.position.longitude,vehicle.timestamp").unwrap();
    for p in &positions {
        writeln!(
            out,
            "{},{},20260303,{},{},{}",
            p.vehicle_id,
            p.trip_id,
            p.latitude,
            p.longitude,
            p.timestamp.unwrap()
        )
        .unwrap();
    }
    writeln!(out, "bus-x,T,20260303,not-a-number,127.0,1772492400").unwrap();
    drop(out);
    let (snaps, stderr) = replay_fast(dir.path(), &feed, &csv);
    assert!(
        stderr.contains(&format!(
            "{} positions, {} accepted",
            positions.len(),
            positions.len()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("1 rows skipped"), "{stderr}");
    check_snapshots(&snaps, &positions);

    // Everything the replay learned is kept in the store, its last minutes
    // included, for the next replay or server on the same store to start from.
    let network = cityos_transit::load_network(&feed, &|_| {}).unwrap().0;
    let mut engine = cityos_realtime::Engine::new(&network, cityos_realtime::Config::default());
    // As the server does: snapshots every 30 s retire runs gone quiet.
    let mut snapshot = positions[0].timestamp.unwrap() / 30 * 30 + 30;
    for p in &positions {
        let t = p.timestamp.unwrap();
        while snapshot < t {
            engine.expire(snapshot);
            snapshot += 30;
        }
        let _ = engine.ingest(p.view(), t);
    }
    let traversals = |h: &cityos_realtime::LearnedHistory| -> f64 {
        h.links
            .iter()
            .flat_map(|(_, _, hours)| hours.iter().map(|hour| hour.3))
            .sum()
    };
    let learned = traversals(&engine.learned_history());
    assert!(learned > 0.0, "20 minutes of buses teach link times");
    let db = rusqlite::Connection::open(dir.path().join("data/cityos.db")).unwrap();
    let body: Vec<u8> = db
        .query_row("SELECT body FROM realtime_history WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let kept: cityos_realtime::LearnedHistory = postcard::from_bytes(&body).unwrap();
    assert_eq!(traversals(&kept), learned);
}

#[test]
fn a_folder_of_gtfs_realtime_files_replays_too() {
    let dir = tempfile::tempdir().unwrap();
    let (feed, positions) = recorded(dir.path());
    let pbs = dir.path().join("pbs");
    std::fs::create_dir(&pbs).unwrap();
    for chunk in positions.chunk_by(|a, b| a.timestamp.unwrap() / 60 == b.timestamp.unwrap() / 60) {
        let t = chunk[0].timestamp.unwrap();
        let bytes = cityos_realtime::decode::positions_to_feed(chunk, t).encode_to_vec();
        std::fs::write(pbs.join(format!("{t}.pb")), bytes).unwrap();
    }
    let (snaps, _) = replay_fast(dir.path(), &feed, &pbs);
    check_snapshots(&snaps, &positions);
}

#[test]
fn bad_recordings_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("positions.csv");
    std::fs::write(&csv, "vehicle_id,timestamp\nbus-1,1772492400\n").unwrap();
    let data = dir.path().join("data");
    let replay = |positions: &str, speed: &str| {
        run(cityos(&data).args([
            "replay",
            "--gtfs",
            "nowhere.zip",
            "--positions",
            positions,
            &format!("--speed={speed}"),
            "--listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "off",
        ]))
    };
    let (ok, _, stderr) = replay(csv.to_str().unwrap(), "0");
    assert!(!ok);
    assert!(
        stderr.contains("latitude"),
        "names the missing column: {stderr}"
    );
    let (ok, _, stderr) = replay("/no/such/file.csv", "0");
    assert!(!ok);
    assert!(stderr.contains("/no/such/file.csv"), "{stderr}");
    let (ok, _, stderr) = replay(csv.to_str().unwrap(), "-2");
    assert!(!ok);
    assert!(stderr.contains("--speed"), "{stderr}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, _, stderr) = replay(empty.to_str().unwrap(), "1");
    assert!(!ok);
    assert!(stderr.contains("no .pb files"), "{stderr}");
}
