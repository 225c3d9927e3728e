"""Decodes the GTFS-realtime feeds that the server's live test saved
(TripUpdates, VehiclePositions, ServiceAlerts) with Google's
gtfs-realtime-bindings, as any GTFS-realtime consumer would."""

import json
import pathlib
import sys
import unittest

from google.transit import gtfs_realtime_pb2

OUT = pathlib.Path(__file__).resolve().parents[2] / "target" / "tmp" / "gtfs-rt"


def load(name):
    """The feed `name`.pb and what the Rust test expects of it."""
    if not (OUT / f"{name}.pb").exists():
        raise AssertionError(f"{OUT}/{name}.pb is missing: run the Rust tests first (cargo test -p cityos-server --test live)")
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString((OUT / f"{name}.pb").read_bytes())
    return feed, json.loads((OUT / f"{name}.expected.json").read_text())


class TripUpdatesFeed(unittest.TestCase):
    def setUp(self):
        self.feed, self.expected = load("trip-updates")

    def test_header_is_gtfs_realtime_2(self):
        self.assertEqual(self.feed.header.gtfs_realtime_version, "2.0")
        self.assertGreater(self.feed.header.timestamp, 1_700_000_000)

    def test_every_trip_update_decodes_with_its_trip_and_stops(self):
        updates = [e.trip_update for e in self.feed.entity if e.HasField("trip_update")]
        self.assertEqual(len(updates), self.expected["trip_updates"])
        self.assertEqual([u.trip.trip_id for u in updates], self.expected["trip_ids"])
        for update in updates:
            self.assertTrue(update.stop_time_update, update.trip.trip_id)
            for stu in update.stop_time_update:
                self.assertTrue(stu.stop_sequence or stu.stop_id)
                self.assertTrue(stu.HasField("arrival") or stu.HasField("departure"))


class VehiclePositionsFeed(unittest.TestCase):
    def setUp(self):
        self.feed, self.expected = load("vehicle-positions")

    def test_every_vehicle_has_a_position_on_a_trip(self):
        vehicles = [e.vehicle for e in self.feed.entity if e.HasField("vehicle")]
        self.assertEqual([v.vehicle.id for v in vehicles], self.expected["vehicle_ids"])
        for v in vehicles:
            self.assertTrue(v.trip.trip_id)
            self.assertTrue(-90 <= v.position.latitude <= 90 and v.position.latitude != 0)
            self.assertTrue(-180 <= v.position.longitude <= 180 and v.position.longitude != 0)
            self.assertGreater(v.timestamp, 1_700_000_000)
            self.assertIn(
                v.current_status,
                (gtfs_realtime_pb2.VehiclePosition.IN_TRANSIT_TO, gtfs_realtime_pb2.VehiclePosition.STOPPED_AT),
            )


class ServiceAlertsFeed(unittest.TestCase):
    def setUp(self):
        self.feed, self.expected = load("service-alerts")

    def test_the_incident_is_an_alert_in_korean_and_english(self):
        alerts = [e.alert for e in self.feed.entity if e.HasField("alert")]
        self.assertEqual(len(alerts), 1)
        alert = alerts[0]
        self.assertEqual(alert.cause, gtfs_realtime_pb2.Alert.ACCIDENT)
        self.assertEqual(alert.effect, gtfs_realtime_pb2.Alert.DETOUR)
        texts = {t.language: t.text for t in alert.header_text.translation}
        self.assertEqual(texts, {"ko": self.expected["header_ko"], "en": self.expected["header_en"]})
        self.assertIn(self.expected["route_id"], [e.route_id for e in alert.informed_entity])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
