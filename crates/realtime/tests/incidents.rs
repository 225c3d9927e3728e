//! Incidents on a generated city: validation that names the field, alerts
//! that say what they concern, and the stalled and bunched vehicles the
//! engine proposes from simulated positions.

use cityos_realtime::incidents::{Area, Cause, Effect, Incident, Severity, detect};
use cityos_realtime::{Config, Engine};
use cityos_transit::Network;

fn small_city() -> Network {
    let dir = tempfile::tempdir().unwrap();
    cityos_sim::generate_city(&cityos_sim::CityOptions::default(), dir.path()).unwrap();
    cityos_transit::load_network(dir.path(), &|_| {}).unwrap().0
}

fn incident(network: &Network) -> Incident {
    let d = network.data();
    Incident {
        header: "시청앞 집회로 우회".into(),
        header_en: Some("Detour around City Hall".into()),
        description: None,
        cause: Cause::Demonstration,
        effect: Effect::Detour,
        severity: Severity::Warning,
        routes: vec![d.route_ids.id(0).to_owned()],
        stops: vec![d.stops.ids.id(0).to_owned()],
        area: None,
        starts_at: Some(1_000),
        ends_at: Some(2_000),
        vehicle_id: None,
    }
}

#[test]
fn incidents_are_validated_field_by_field() {
    let network = small_city();
    let good = incident(&network);
    assert_eq!(good.validate(&network), Ok(()));
    let field = |i: Incident| i.validate(&network).unwrap_err().field;
    assert_eq!(
        field(Incident {
            header: " ".into(),
            ..good.clone()
        }),
        "header"
    );
    assert_eq!(
        field(Incident {
            routes: vec!["nope".into()],
            ..good.clone()
        }),
        "routes"
    );
    assert_eq!(
        field(Incident {
            stops: vec!["nope".into()],
            ..good.clone()
        }),
        "stops"
    );
    assert_eq!(
        field(Incident {
            ends_at: Some(1_000),
            ..good.clone()
        }),
        "ends_at"
    );
    let far = Area {
        lat: 95.0,
        lon: 0.0,
        radius_m: 100.0,
    };
    assert_eq!(
        field(Incident {
            area: Some(far),
            ..good.clone()
        }),
        "area"
    );
    let nothing = Incident {
        routes: vec![],
        stops: vec![],
        ..good.clone()
    };
    assert_eq!(field(nothing), "routes");
    assert!(good.in_force(1_500) && !good.in_force(2_000) && !good.in_force(999));
}

#[test]
fn an_alert_names_its_routes_and_every_stop_in_its_area() {
    let network = small_city();
    let d = network.data();
    let (lat, lon) = (d.stops.lat[5], d.stops.lon[5]);
    let mut i = incident(&network);
    i.stops.clear();
    i.area = Some(Area {
        lat,
        lon,
        radius_m: 400.0,
    });
    let alert = i.alert(&network);
    let stops: Vec<&str> = alert
        .informed_entity
        .iter()
        .filter_map(|e| e.stop_id.as_deref())
        .collect();
    assert!(stops.contains(&d.stops.ids.id(5)));
    for s in &stops {
        let k = d.stops.ids.get(s).unwrap() as usize;
        assert!(cityos_transit::haversine_m(lat, lon, d.stops.lat[k], d.stops.lon[k]) <= 400.5);
    }
    assert_eq!(
        alert.informed_entity[0].route_id.as_deref(),
        Some(d.route_ids.id(0))
    );
    let header = alert.header_text.unwrap();
    assert_eq!(header.translation.len(), 2);
    assert_eq!(header.translation[1].language.as_deref(), Some("en"));
    assert_eq!(alert.active_period[0].end, Some(2_000));
}

/// What a simulated vehicle's on-board unit reports for `fix`.
fn record(
    network: &Network,
    fleet: &cityos_sim::vehicles::Fleet,
    fix: &cityos_sim::vehicles::Fix,
    date: jiff::civil::Date,
) -> cityos_realtime::PositionRecord {
    cityos_realtime::PositionRecord {
        vehicle_id: fleet.vehicle_id(fix.vehicle).to_owned(),
        trip_id: network.data().trips.ids.id(fix.trip).to_owned(),
        start_date: Some(date),
        latitude: fix.lat,
        longitude: fix.lon,
        timestamp: Some(fix.time),
        ..Default::default()
    }
}

/// The vehicles proposed as stalled over 90 minutes of a simulated morning.
fn stalled_vehicles(network: &Network, breakdown_chance: f64) -> std::collections::HashSet<String> {
    let date = jiff::civil::date(2026, 3, 3);
    let from = network.instant(date, 10 * 3600).unwrap().as_second();
    let fleet = cityos_sim::vehicles::Fleet::plan(
        network,
        &cityos_sim::vehicles::FleetOptions {
            breakdown_chance,
            ..cityos_sim::vehicles::FleetOptions::new(date)
        },
    );
    let mut engine = Engine::new(network, Config::default());
    let reports = fleet.reports(from..from + 5400, 15, 3.0, 1);
    let mut stalled = std::collections::HashSet::new();
    let mut now = from;
    for fix in &reports {
        let _ = engine.ingest(record(network, &fleet, fix, date).view(), fix.time);
        if fix.time >= now + 60 {
            now = fix.time;
            engine.expire(now);
            let runs: Vec<_> = engine
                .runs(now)
                .map(|r| (r, engine.vehicle_id(r.id).unwrap_or("").to_owned()))
                .collect();
            let view: Vec<_> = runs.iter().map(|(r, v)| (*r, v.as_str())).collect();
            for d in detect(network, engine.index(), &view, engine.lost(), now) {
                // Simulated buses never lose contact, broken down or not.
                assert_ne!(d.source, "silent", "{d:?}");
                if d.source == "stalled" {
                    assert!(d.key.starts_with("stalled:"));
                    assert_eq!(d.incident.validate(network), Ok(()));
                    stalled.insert(d.incident.vehicle_id.unwrap());
                }
            }
        }
    }
    stalled
}

#[test]
fn broken_down_buses_are_proposed_as_stalled_and_others_not() {
    let network = small_city();
    let stalled = stalled_vehicles(&network, 1.0);
    assert!(stalled.len() >= 3, "{stalled:?}");
    // Without breakdowns, dwelling at stops and waiting at terminals is not stalling.
    assert_eq!(stalled_vehicles(&network, 0.0), Default::default());
}

#[test]
fn a_bus_that_stops_reporting_mid_trip_is_proposed_as_lost_contact() {
    let network = small_city();
    let date = jiff::civil::date(2026, 3, 3);
    let from = network.instant(date, 9 * 3600).unwrap().as_second();
    let fleet =
        cityos_sim::vehicles::Fleet::plan(&network, &cityos_sim::vehicles::FleetOptions::new(date));
    let record = |fix: &cityos_sim::vehicles::Fix| record(&network, &fleet, fix, date);
    // A bus on a trip of twenty minutes or more reports for five minutes
    // of it, then falls silent.
    let reports = fleet.reports(from..from + 3600, 15, 3.0, 1);
    let on_trip = |fix: &cityos_sim::vehicles::Fix| -> Vec<&cityos_sim::vehicles::Fix> {
        reports
            .iter()
            .filter(|f| f.vehicle == fix.vehicle && f.trip == fix.trip)
            .collect()
    };
    let mine = reports
        .iter()
        .map(on_trip)
        .find(|fixes| fixes[fixes.len() - 1].time - fixes[0].time >= 1200)
        .expect("a long trip");
    let bus = mine[0].vehicle;
    let mut engine = Engine::new(&network, Config::default());
    let silent_from = mine[0].time + 300;
    for fix in mine.iter().filter(|f| f.time < silent_from) {
        engine.ingest(record(fix).view(), fix.time).unwrap();
    }
    let id = fleet.vehicle_id(bus).to_owned();
    let last = mine.iter().rfind(|f| f.time < silent_from).unwrap().time;
    let lost_contact = |engine: &Engine<&Network>, now: i64| {
        let runs: Vec<_> = engine
            .runs(now)
            .map(|r| (r, engine.vehicle_id(r.id).unwrap_or("")))
            .collect();
        detect(&network, engine.index(), &runs, engine.lost(), now)
            .into_iter()
            .filter(|d| d.source == "silent")
            .map(|d| (d.key, d.incident))
            .collect::<Vec<_>>()
    };
    // A minute's silence is a few missed reports: nothing yet.
    assert!(lost_contact(&engine, last + 60).is_empty());
    // Two minutes: proposed, where it was last seen.
    let proposed = lost_contact(&engine, last + 150);
    assert_eq!(proposed.len(), 1, "{proposed:?}");
    let (key, incident) = &proposed[0];
    assert_eq!(key, &format!("silent:{id}"));
    assert_eq!(incident.vehicle_id.as_deref(), Some(id.as_str()));
    assert_eq!(incident.starts_at, Some(last));
    assert_eq!(incident.validate(&network), Ok(()));
    // Its run expires (it leaves the map), and the proposal stays.
    engine.expire(last + 400);
    assert_eq!(engine.runs(last + 400).count(), 0);
    assert_eq!(lost_contact(&engine, last + 400).len(), 1);
    // It reports again: back in contact.
    let back = mine.iter().find(|f| f.time > last + 400).unwrap();
    engine.ingest(record(back).view(), back.time).unwrap();
    assert!(lost_contact(&engine, back.time).is_empty());
}
