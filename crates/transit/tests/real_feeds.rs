//! Imports every real feed in `../shared/data` and checks the network
//! against the files themselves, read naively here with the csv crate.
//! Skipped, saying so, when the shared data is absent.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use cityos_transit::{Network, load_network, time};
use jiff::civil::Date;

fn shared(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipped: {} is absent (real data lives in ../shared/data)",
            path.display()
        );
        None
    }
}

/// A feed's file read naively into rows of column → value.
fn rows(zip_path: &Path, file: &str) -> Vec<HashMap<String, String>> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let name = archive
        .file_names()
        .find(|n| n.rsplit('/').next() == Some(file))
        .map(str::to_owned);
    let Some(name) = name else { return Vec::new() };
    let mut text = String::new();
    archive
        .by_name(&name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .cloned()
                .zip(r.iter().map(|v| v.trim().to_owned()))
                .collect()
        })
        .collect()
}

fn load(path: &Path) -> Network {
    let (network, report) = load_network(path, &|_| {})
        .unwrap_or_else(|e| panic!("{} failed to load: {e}", path.display()));
    eprintln!("{}: {} warnings", path.display(), report.warning_count());
    network
}

fn check_counts(path: &Path, network: &Network) {
    let s = network.summary();
    assert_eq!(s.agencies, rows(path, "agency.txt").len(), "agencies");
    assert_eq!(s.routes, rows(path, "routes.txt").len(), "routes");
    assert_eq!(s.stops, rows(path, "stops.txt").len(), "stops");
    assert_eq!(s.trips, rows(path, "trips.txt").len(), "trips");
    assert_eq!(
        s.stop_times,
        rows(path, "stop_times.txt").len(),
        "stop_times"
    );
    let shape_ids: HashSet<String> = rows(path, "shapes.txt")
        .into_iter()
        .map(|r| r["shape_id"].clone())
        .collect();
    assert_eq!(s.shapes, shape_ids.len(), "shapes");
}

/// Departures from `stop_id` on `date` between two service-day times, computed naively from the files.
fn naive_departures(
    path: &Path,
    stop_id: &str,
    date: Date,
    from: u32,
    to: u32,
) -> Vec<(String, u32)> {
    let weekday = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ][date.weekday().to_monday_zero_offset() as usize];
    let ymd = date.strftime("%Y%m%d").to_string();
    let mut active: HashSet<String> = rows(path, "calendar.txt")
        .into_iter()
        .filter(|r| r[weekday] == "1" && r["start_date"] <= ymd && ymd <= r["end_date"])
        .map(|r| r["service_id"].clone())
        .collect();
    for r in rows(path, "calendar_dates.txt") {
        if r["date"] == ymd {
            if r["exception_type"] == "1" {
                active.insert(r["service_id"].clone());
            } else {
                active.remove(&r["service_id"]);
            }
        }
    }
    let trip_service: HashMap<String, String> = rows(path, "trips.txt")
        .into_iter()
        .map(|r| (r["trip_id"].clone(), r["service_id"].clone()))
        .collect();
    let stop_times = rows(path, "stop_times.txt");
    let mut last_seq: HashMap<&str, u32> = HashMap::new();
    for r in &stop_times {
        let seq: u32 = r["stop_sequence"].parse().unwrap();
        let e = last_seq.entry(r["trip_id"].as_str()).or_insert(0);
        *e = (*e).max(seq);
    }
    let mut out: Vec<(String, u32)> = stop_times
        .iter()
        .filter(|r| r["stop_id"] == stop_id && !r["departure_time"].is_empty())
        .filter(|r| r.get("pickup_type").is_none_or(|p| p != "1"))
        .filter(|r| last_seq[r["trip_id"].as_str()] != r["stop_sequence"].parse::<u32>().unwrap())
        .filter(|r| active.contains(&trip_service[&r["trip_id"]]))
        .map(|r| {
            (
                r["trip_id"].clone(),
                time::parse_time(r["departure_time"].as_bytes()).unwrap(),
            )
        })
        .filter(|(_, t)| (from..=to).contains(t))
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    out
}

fn check_departures(path: &Path, network: &Network, stop_id: &str, date: Date, from: u32, to: u32) {
    let expected = naive_departures(path, stop_id, date, from, to);
    assert!(!expected.is_empty(), "pick a stop and time with departures");
    let stop = network.data().stops.ids.get(stop_id).unwrap();
    let (a, b) = (
        network.instant(date, from).unwrap(),
        network.instant(date, to).unwrap(),
    );
    let mut got: Vec<(String, u32)> = network
        .departures(stop, a, b, usize::MAX)
        .into_iter()
        .filter(|d| d.service_date == date)
        .map(|d| (network.data().trips.ids.id(d.trip).to_owned(), d.time))
        .collect();
    got.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    assert_eq!(got, expected, "departures at {stop_id} on {date}");
}

#[test]
fn hart_tampa_loads_with_the_counts_and_departures_of_its_files() {
    let Some(path) = shared("gtfs/hart-tampa-2018/hart.zip") else {
        return;
    };
    let network = load(&path);
    check_counts(&path, &network);
    assert_eq!(network.summary().stop_times, 435_507);
    assert_eq!(network.summary().timezone, "America/New_York");
    check_departures(
        &path,
        &network,
        "6968",
        jiff::civil::date(2018, 3, 5),
        5 * 3600,
        10 * 3600,
    );
    // A Sunday: different service.
    check_departures(
        &path,
        &network,
        "6968",
        jiff::civil::date(2018, 3, 4),
        5 * 3600,
        23 * 3600,
    );
}

#[test]
fn cairns_loads_with_the_counts_and_departures_of_its_files() {
    let Some(path) = shared("gtfs/cairns-2014/cairns_gtfs.zip") else {
        return;
    };
    let network = load(&path);
    check_counts(&path, &network);
    let first = rows(&path, "stop_times.txt").swap_remove(0);
    check_departures(
        &path,
        &network,
        &first["stop_id"],
        jiff::civil::date(2014, 6, 2),
        0,
        30 * 3600,
    );
}

#[test]
fn trimet_loads_with_the_counts_and_departures_of_its_files() {
    let Some(path) = shared("gtfs/trimet-2routes-2021/trimet-2routes.zip") else {
        return;
    };
    let network = load(&path);
    check_counts(&path, &network);
    let first = rows(&path, "stop_times.txt").swap_remove(0);
    check_departures(
        &path,
        &network,
        &first["stop_id"],
        jiff::civil::date(2021, 11, 3),
        0,
        30 * 3600,
    );
}

#[test]
fn avl_feeds_load_with_the_counts_of_their_files() {
    for feed in [
        "avl/wmata-vehiclepositions-2026-02-16/wmata_gtfs_C53_D40_D96.zip",
        "avl/transitland-rt-samples/ct.zip",
        "avl/transitland-rt-samples/bart-rt.zip",
    ] {
        let Some(path) = shared(feed) else { continue };
        let network = load(&path);
        check_counts(&path, &network);
    }
}

#[test]
fn network_survives_a_round_trip_through_bytes() {
    let Some(path) = shared("gtfs/cairns-2014/cairns_gtfs.zip") else {
        return;
    };
    let network = load(&path);
    let again = Network::from_bytes(&network.to_bytes()).unwrap();
    assert_eq!(again.summary(), network.summary());
    let stop = network
        .data()
        .stops
        .ids
        .get(&rows(&path, "stop_times.txt")[0]["stop_id"])
        .unwrap();
    let (a, b) = (
        network.instant(jiff::civil::date(2014, 6, 2), 0).unwrap(),
        network.instant(jiff::civil::date(2014, 6, 3), 0).unwrap(),
    );
    assert_eq!(
        again.departures(stop, a, b, 50),
        network.departures(stop, a, b, 50)
    );
}

#[test]
fn shape_distance_units_are_recognised() {
    // HART gives shape_dist_traveled in kilometres (12 m between its first two shape points is 0.012).
    if let Some(path) = shared("gtfs/hart-tampa-2018/hart.zip") {
        assert_eq!(load(&path).shape_dist_metres(), 1000.0);
    }
    let dir = tempfile::tempdir().unwrap();
    cityos_sim_free_city(dir.path());
}

/// A two-stop feed with distances in metres, 1.1 km apart.
fn cityos_sim_free_city(dir: &Path) {
    let files = [
        (
            "agency.txt",
            "agency_name,agency_url,agency_timezone\nBus,https://x.org,Asia/Seoul\n",
        ),
        (
            "stops.txt",
            "stop_id,stop_name,stop_lat,stop_lon\nA,A,37.5000,127.0\nB,B,37.5100,127.0\nC,C,37.5200,127.0\n",
        ),
        (
            "routes.txt",
            "route_id,route_short_name,route_type\nR,1,3\n",
        ),
        (
            "calendar.txt",
            "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nS,1,1,1,1,1,1,1,20260101,20261231\n",
        ),
        ("trips.txt", "route_id,service_id,trip_id\nR,S,T\n"),
        (
            "stop_times.txt",
            "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\nT,08:00:00,08:00:00,A,1,0\nT,08:05:00,08:05:00,B,2,1150\nT,08:10:00,08:10:00,C,3,2300\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let network = load(dir);
    assert_eq!(network.shape_dist_metres(), 1.0);
    let id = |s: &str| network.data().stops.ids.get(s).unwrap();
    assert_eq!(network.distance_on_route(0, id("A"), id("C")), Some(2300.0));
    assert_eq!(
        network.distance_on_route(0, id("C"), id("A")),
        None,
        "not in the direction of travel"
    );
}
