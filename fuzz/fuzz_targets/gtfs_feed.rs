//! The GTFS loader on arbitrary bytes: as a zip archive, and as the
//! stop_times.txt of an otherwise valid feed. It must answer with a network
//! or a report, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

const FILES: &[(&str, &str)] = &[
    ("agency.txt", "agency_name,agency_url,agency_timezone\nBus,https://x.org,Asia/Seoul\n"),
    ("stops.txt", "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\nST,Station,37.5,127.0,1,\nA,A,37.5,127.0,0,ST\nB,B,37.6,127.0,0,\n"),
    ("routes.txt", "route_id,route_short_name,route_type\nR,1,3\n"),
    ("calendar.txt", "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nS,1,1,1,1,1,1,1,20260101,20261231\n"),
    ("trips.txt", "route_id,service_id,trip_id\nR,S,T\nR,S,U\n"),
    ("frequencies.txt", "trip_id,start_time,end_time,headway_secs\nU,06:00:00,07:00:00,600\n"),
];

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    // As a whole archive.
    let zip = dir.path().join("feed.zip");
    if std::fs::write(&zip, data).is_ok() {
        let _ = cityos_transit::load_network(&zip, &|_| {});
    }
    // As stop_times.txt beside valid files.
    let feed = dir.path().join("feed");
    let _ = std::fs::create_dir(&feed);
    for (name, text) in FILES {
        let _ = std::fs::write(feed.join(name), text);
    }
    let mut stop_times = b"trip_id,arrival_time,departure_time,stop_id,stop_sequence,pickup_type,shape_dist_traveled\n".to_vec();
    stop_times.extend_from_slice(data);
    let _ = std::fs::write(feed.join("stop_times.txt"), stop_times);
    if let Ok((network, _)) = cityos_transit::load_network(&feed, &|_| {}) {
        // Everything the loader accepts must survive storage and answer queries.
        let again = cityos_transit::Network::from_bytes(&network.to_bytes()).expect("round trip");
        let day = jiff::civil::date(2026, 3, 2);
        if let (Some(a), Some(b)) = (again.instant(day, 0), again.instant(day, 30 * 3600)) {
            for stop in 0..again.data().stops.len() as u32 {
                let _ = again.departures(stop, a, b, 100);
            }
        }
    }
});
