//! Small hand-written feeds for the GTFS reference's edge cases and for the
//! errors a feed author must be able to act on.

use std::path::Path;

use cityos_transit::{LoadError, Network, Report, load_network};
use jiff::civil::date;

/// Writes `files` into a fresh folder and loads it.
fn load(files: &[(&str, &str)]) -> Result<(Network, Report), LoadError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    load_network(dir.path(), &|_| {})
}

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    match load(files) {
        Ok(_) => panic!("the feed should have been refused"),
        Err(LoadError::Invalid(report)) => report.errors.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

const AGENCY: &str = "agency_id,agency_name,agency_url,agency_timezone\nA,Seoul Bus,https://example.org,Asia/Seoul\n";
const STOPS: &str = "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\nST,\"Seoul Station, Main\",37.5547,126.9706,1,\nP1,Platform 1,37.5548,126.9707,0,ST\nS2,\"City Hall \"\"Plaza\"\"\",37.5657,126.9769,0,\nS3,Gwanghwamun,37.5716,126.9768,0,\n";
const ROUTES: &str = "route_id,agency_id,route_short_name,route_long_name,route_type,route_color\nR1,A,N13,,3,1B2C5A\n";
const CALENDAR: &str = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWK,1,1,1,1,1,0,0,20260101,20261231\n";
const TRIPS: &str = "route_id,service_id,trip_id,trip_headsign,direction_id\nR1,WK,T1,Gwanghwamun,0\nR1,WK,T2,Gwanghwamun,0\n";

fn feed(stop_times: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("agency.txt", AGENCY),
        ("stops.txt", STOPS),
        ("routes.txt", ROUTES),
        ("calendar.txt", CALENDAR),
        ("trips.txt", TRIPS),
        ("stop_times.txt", stop_times),
    ]
}

#[test]
fn bom_crlf_quotes_times_past_midnight_and_interpolation() {
    let stop_times = "\u{feff}trip_id,arrival_time,departure_time,stop_id,stop_sequence\r\nT1,23:50:00,23:50:00,P1,1\r\nT1,,,S2,2\r\nT1,24:10:00,24:10:00,S3,3\r\nT2,5:00:00,5:00:00,P1,1\r\nT2,5:10:00,5:10:00,S3,2\r\n";
    let (network, report) = load(&feed(stop_times)).unwrap();
    assert!(report.errors.is_empty());
    let d = network.data();
    assert_eq!(d.stops.names[1], "Platform 1");
    assert_eq!(d.stops.names[2], "City Hall \"Plaza\"");
    assert_eq!(d.stops.names[0], "Seoul Station, Main");
    // The empty time is interpolated halfway.
    let t1 = d.trips.ids.get("T1").unwrap();
    let range = d.trips.stop_time_range(t1);
    assert_eq!(d.stop_times.arrival[range.start + 1], 24 * 3600);
    assert_eq!(
        network.data().routes[0].kind(),
        cityos_transit::RouteKind::Night
    );
    // 24:10 on Tuesday's service day shows up on Wednesday just after midnight, in Seoul time.
    let station = d.stops.ids.get("ST").unwrap();
    let from = network.instant(date(2026, 3, 3), 23 * 3600).unwrap();
    let until = network.instant(date(2026, 3, 4), 6 * 3600).unwrap();
    let deps = network.departures(station, from, until, 10);
    let names: Vec<_> = deps
        .iter()
        .map(|x| (d.trips.ids.id(x.trip), x.at.to_string()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("T1", "2026-03-03T14:50:00Z".to_owned()),
            ("T2", "2026-03-03T20:00:00Z".to_owned())
        ]
    );
    // Tuesday's 23:50 is that day's last N13 (막차) from the station; the
    // 05:00 on Wednesday's service day is not Wednesday's last.
    let last: Vec<bool> = deps
        .iter()
        .map(|x| network.is_last_departure(station, x))
        .collect();
    assert_eq!(last, vec![true, false]);
}

#[test]
fn a_route_running_round_the_clock_has_no_last_bus_until_its_service_breaks() {
    // N13 leaves at 23:50 and again at 00:20, on every weekday's timetable.
    let stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,23:50:00,23:50:00,S2,1\nT1,24:00:00,24:00:00,S3,2\nT2,00:20:00,00:20:00,S2,1\nT2,00:30:00,00:30:00,S3,2\n";
    let (network, _) = load(&feed(stop_times)).unwrap();
    let d = network.data();
    let stop = d.stops.ids.get("S2").unwrap();
    let last_at = |day, time| {
        let at = network.instant(day, time).unwrap();
        let dep = network.departures(stop, at, at, 1)[0];
        network.is_last_departure(stop, &dep)
    };
    // Thursday's 23:50 is followed by Friday's 00:20 half an hour later.
    assert!(!last_at(date(2026, 3, 5), 23 * 3600 + 50 * 60));
    // Friday's is the last: no weekday timetable runs on Saturday.
    assert!(last_at(date(2026, 3, 6), 23 * 3600 + 50 * 60));
}

#[test]
fn a_bad_time_is_reported_with_file_line_and_value() {
    let stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,P1,1\nT1,25:6x:00,25:6x:00,S3,2\n";
    let errors = errors(&feed(stop_times));
    assert!(
        errors.contains(&"stop_times.txt:3: arrival_time '25:6x:00' is not HH:MM:SS".to_owned()),
        "{errors:?}"
    );
}

#[test]
fn dangling_references_and_duplicates_are_errors() {
    let stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,P1,1\nT1,08:10:00,08:10:00,NOPE,2\nTX,08:00:00,08:00:00,P1,1\n";
    let mut files = feed(stop_times);
    files[4].1 = "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T1\nR9,WK,T3\nR1,XX,T4\n";
    let errors = errors(&files).join("\n");
    assert!(
        errors.contains("trips.txt:3: trip_id duplicate trip_id 'T1'"),
        "{errors}"
    );
    assert!(
        errors.contains("trips.txt:4: route_id 'R9' is not a route_id in routes.txt"),
        "{errors}"
    );
    assert!(
        errors.contains("trips.txt:5: service_id 'XX' is not a service_id"),
        "{errors}"
    );
    assert!(
        errors.contains("stop_times.txt:3: stop_id 'NOPE' is not a stop_id in stops.txt"),
        "{errors}"
    );
    assert!(
        errors.contains("stop_times.txt:4: trip_id 'TX' is not a trip_id in trips.txt"),
        "{errors}"
    );
}

#[test]
fn missing_required_files_and_columns_are_named() {
    let errors = errors(&[("agency.txt", "agency_name,agency_url\nX,https://x\n")]).join("\n");
    assert!(
        errors.contains("agency.txt:1: agency_timezone required column is missing"),
        "{errors}"
    );
    assert!(
        errors.contains("stops.txt: is required but missing from the feed"),
        "{errors}"
    );
    assert!(
        errors.contains("stop_times.txt: is required but missing from the feed"),
        "{errors}"
    );
}

#[test]
fn unknown_files_and_columns_are_warnings_not_errors() {
    let stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,my_extra\nT1,08:00:00,08:00:00,P1,1,x\nT1,08:10:00,08:10:00,S3,2,y\n";
    let mut files = feed(stop_times);
    files.push(("vendor_extension.txt", "a,b\n1,2\n"));
    let (_, report) = load(&files).unwrap();
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings.contains(&"stop_times.txt:1: my_extra unknown column, ignored".to_owned()),
        "{warnings:?}"
    );
    assert!(
        warnings.contains(&"vendor_extension.txt: is not a GTFS file, ignored".to_owned()),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("trip 'T2' has no stop times")),
        "{warnings:?}"
    );
}

#[test]
fn unsorted_stop_times_are_ordered_by_trip_and_sequence() {
    let stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT2,05:10:00,05:10:00,S3,20\nT1,08:10:00,08:10:00,S3,7\nT2,05:00:00,05:00:00,P1,10\nT1,08:00:00,08:00:00,P1,3\n";
    let (network, _) = load(&feed(stop_times)).unwrap();
    let d = network.data();
    assert_eq!(d.stop_times.sequence, vec![3, 7, 10, 20]);
    assert_eq!(
        d.stop_times.arrival,
        vec![8 * 3600, 8 * 3600 + 600, 5 * 3600, 5 * 3600 + 600]
    );
}

#[test]
fn frequency_based_trips_expand_into_runs() {
    let stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,00:00:00,00:00:00,P1,1\nT1,00:10:00,00:10:00,S3,2\nT2,05:00:00,05:00:00,P1,1\nT2,05:10:00,05:10:00,S3,2\n";
    let mut files = feed(stop_times);
    files.push((
        "frequencies.txt",
        "trip_id,start_time,end_time,headway_secs\nT1,07:00:00,08:00:00,600\n",
    ));
    let (network, _) = load(&files).unwrap();
    let stop = network.data().stops.ids.get("P1").unwrap();
    let day = date(2026, 3, 4);
    let deps = network.departures(
        stop,
        network.instant(day, 0).unwrap(),
        network.instant(day, 86_399).unwrap(),
        100,
    );
    let times: Vec<u32> = deps.iter().map(|d| d.time / 60).collect();
    assert_eq!(times, vec![300, 420, 430, 440, 450, 460, 470]);
    // The day's last departure is the frequency's last run, not its template
    // nor the timetabled trip.
    let last: Vec<u32> = deps
        .iter()
        .filter(|x| network.is_last_departure(stop, x))
        .map(|d| d.time / 60)
        .collect();
    assert_eq!(last, vec![470]);
}

#[test]
fn a_zip_with_its_files_in_a_folder_loads() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("feed.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,P1,1\nT1,08:10:00,08:10:00,S3,2\n";
    for (name, text) in feed(stop_times) {
        zip.start_file(
            format!("seoul/{name}"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        std::io::Write::write_all(&mut zip, text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    let (network, _) = load_network(Path::new(&zip_path), &|_| {}).unwrap();
    assert_eq!(network.summary().trips, 2);
}

#[test]
fn nearby_stops_are_within_the_radius_nearest_first() {
    let stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,P1,1\nT1,08:10:00,08:10:00,S3,2\n";
    let (network, _) = load(&feed(stop_times)).unwrap();
    let mut out = Vec::new();
    // City Hall is ~0 m away, Gwanghwamun ~660 m, Seoul Station ~1.3 km.
    network.stops_nearby_into(37.5657, 126.9769, 1000.0, 10, &mut out);
    let ids: Vec<&str> = out
        .iter()
        .map(|(s, _)| network.data().stops.ids.id(*s))
        .collect();
    assert_eq!(ids, vec!["S2", "S3"]);
    assert!(out[1].1 > 600.0 && out[1].1 < 700.0);
    // Platforms fold into their station.
    network.stops_nearby_into(37.5547, 126.9706, 50.0, 10, &mut out);
    assert_eq!(
        out.iter()
            .map(|(s, _)| network.data().stops.ids.id(*s))
            .collect::<Vec<_>>(),
        vec!["ST"]
    );
    assert_eq!(
        network.search_stops("city hall"),
        vec![network.data().stops.ids.get("S2").unwrap()]
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("T1".to_owned()),
            Just("P1".to_owned()),
            Just("S3".to_owned()),
            "[0-9]{1,3}",
            "[0-9]{1,2}:[0-9]{2}:[0-9]{2}",
            any::<String>(),
            Just("\"quoted, field\"".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever stop_times.txt holds, the loader answers with a network or
        /// with errors located in that file, and never panics.
        #[test]
        fn on_any_stop_times(rows in proptest::collection::vec(proptest::collection::vec(field(), 0..7), 0..12)) {
            let mut text = String::from("trip_id,arrival_time,departure_time,stop_id,stop_sequence,pickup_type\n");
            for row in rows {
                text.push_str(&row.join(","));
                text.push('\n');
            }
            match load(&feed(&text)) {
                Ok((network, _)) => {
                    let again = Network::from_bytes(&network.to_bytes()).unwrap();
                    prop_assert_eq!(again.summary(), network.summary());
                }
                Err(LoadError::Invalid(report)) => {
                    prop_assert!(report.errors.iter().all(|e| e.file == "stop_times.txt" || e.file == "trips.txt"), "{}", report);
                }
                Err(other) => prop_assert!(false, "unexpected {}", other),
            }
        }

        /// Damaged stored bytes are refused, never a panic.
        #[test]
        fn on_damaged_network_bytes(cut in 0usize..2000, flip in any::<u8>(), at in any::<prop::sample::Index>()) {
            let stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,P1,1\nT1,08:10:00,08:10:00,S3,2\n";
            let (network, _) = load(&feed(stop_times)).unwrap();
            let mut bytes = network.to_bytes();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            bytes.truncate(bytes.len().saturating_sub(cut % 64));
            let _ = Network::from_bytes(&bytes);
        }
    }
}
