"""Decodes the TripUpdates feed that the server's live test saved, with
Google's gtfs-realtime-bindings, as any GTFS-realtime consumer would."""

import json
import pathlib
import sys
import unittest

from google.transit import gtfs_realtime_pb2

OUT = pathlib.Path(__file__).resolve().parents[2] / "target" / "tmp" / "gtfs-rt"


class TripUpdatesFeed(unittest.TestCase):
    def setUp(self):
        if not (OUT / "trip-updates.pb").exists():
            self.fail(f"{OUT}/trip-updates.pb is missing: run the Rust tests first (cargo test -p cityos-server --test live)")
        self.feed = gtfs_realtime_pb2.FeedMessage()
        self.feed.ParseFromString((OUT / "trip-updates.pb").read_bytes())
        self.expected = json.loads((OUT / "trip-updates.expected.json").read_text())

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


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
