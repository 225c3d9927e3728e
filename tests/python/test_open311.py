"""Drives a real `cityos serve` as Open311 clients do: the `georeport` client
library from PyPI for the reads (JSON and XML), form POSTs shaped like
FixMyStreet's, the published GeoReport v2 JSON schemas for every JSON answer,
and a local SMTP sink (aiosmtpd) that receives the notification emails."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import requests
from aiosmtpd.controller import Controller
from georeport import GeoReport
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("CITYOS_BIN", str(ROOT / "target" / "debug" / "cityos"))
SCHEMAS = pathlib.Path(__file__).resolve().parent / "schemas" / "georeport-v2"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def schema(name):
    documents = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    # The schemas refer to each other by file name ("$ref": "request.json") and name no draft.
    registry = Registry().with_resources((n, DRAFT7.create_resource(d)) for n, d in documents.items())
    return Draft7Validator(documents[name], registry=registry)


class Sink:
    """Keeps every message the SMTP sink receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 OK"


class Server:
    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="cityos-open311-")
        self.sink = Sink()
        self.smtp = Controller(self.sink, hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        env = dict(os.environ, CITYOS_DATA_DIR=self.dir.name, CITYOS_LOG="warn")
        env.pop("CITYOS_DATABASE", None)
        self.env = env
        self.key = self.cli("user", "api-key", "--name", "fixmystreet", "--role", "citizen").strip()
        self.cli("user", "create", "--email", "roads@seoul.go.kr", "--name", "Roads", "--role", "department_staff",
                 extra_env={"CITYOS_PASSWORD": "a long staff password"})
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(pathlib.Path(self.dir.name) / "serve.log", "w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--mqtt-listen", "off",
             "--smtp", f"smtp://127.0.0.1:{self.smtp.port}", "--mail-from", "desk@seoul.go.kr"],
            env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("cityos serve did not start")

    def cli(self, *args, extra_env=None):
        env = dict(self.env, **(extra_env or {}))
        return subprocess.run([BIN, *args], env=env, check=True, capture_output=True, text=True).stdout

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.smtp.stop()
        self.log.close()
        self.dir.cleanup()


SERVER = None


def setUpModule():
    global SERVER
    if not pathlib.Path(BIN).exists():
        raise RuntimeError(f"{BIN} is missing: run cargo build -p cityos first")
    SERVER = Server()


def tearDownModule():
    if SERVER:
        SERVER.stop()


def fixmystreet_post(fmt="json", **fields):
    """A POST as FixMyStreet's Open311 client sends it: form-urlencoded, attribute[code] fields."""
    data = {"api_key": SERVER.key, "jurisdiction_id": "seoul.go.kr", **fields}
    return requests.post(f"{SERVER.base}/open311/v2/requests.{fmt}", data=data, timeout=10)


POTHOLE = {
    "service_code": "pothole", "lat": "37.5660", "long": "126.9780",
    "description": "Deep hole in the bus lane", "email": "minji@example.org",
    "first_name": "Minji", "last_name": "Kim", "phone": "010-1234-5678",
    "attribute[lane]": "bus_lane", "attribute[size_cm]": "35",
}


class Open311(unittest.TestCase):
    def setUp(self):
        self.json = GeoReport(f"{SERVER.base}/open311/v2", jurisdiction="seoul.go.kr")
        self.xml = GeoReport(f"{SERVER.base}/open311/v2", jurisdiction="seoul.go.kr", output_format="xml")

    def test_services_match_the_schema_in_json_and_xml(self):
        services = self.json.get_service_list()
        schema("services.json").validate(services)
        xml = self.xml.get_service_list()
        self.assertEqual([s["service_code"] for s in xml], [s["service_code"] for s in services])
        self.assertTrue(any(s["type"] == "batch" for s in services))

    def test_service_definitions_offer_every_datatype(self):
        seen = set()
        for service in self.json.get_service_list():
            if not service["metadata"]:
                continue
            definition = self.json.get_service_definition(service["service_code"])
            schema("service-definition.json").validate(definition)
            seen.update(a["datatype"] for a in definition["attributes"])
            xml = self.xml.get_service_definition(service["service_code"])
            self.assertEqual(xml["service_code"], service["service_code"])
        self.assertEqual(seen, DATATYPES)

    def test_a_fixmystreet_post_is_filed_and_read_back_by_the_client(self):
        answer = fixmystreet_post(**POTHOLE)
        self.assertEqual(answer.status_code, 200, answer.text)
        request_id = answer.json()[0]["service_request_id"]
        one = self.json.get_service_request(request_id)
        schema("request.json").validate(one)
        self.assertEqual((one["status"], one["service_code"]), ("open", "pothole"))
        self.assertRegex(one["requested_datetime"], ISO)
        self.assertTrue(one["requested_datetime"].endswith("+09:00"))
        for private in ("minji", "Minji", "Kim", "010-1234"):
            self.assertNotIn(private, json.dumps(one))
        xml = self.xml.get_service_request(request_id)
        self.assertEqual(xml["service_request_id"], request_id)
        self.assertEqual(set(xml), set(one), "XML elements are named as the JSON fields")

    def test_listings_filter_by_service_status_and_dates(self):
        for _ in range(2):
            self.assertEqual(fixmystreet_post(**POTHOLE).status_code, 200)
        self.assertEqual(fixmystreet_post(service_code="graffiti", address_string="Sejong-daero 110").status_code, 200)
        everything = self.json.get_service_requests()
        schema("requests.json").validate(everything)
        potholes = self.json.get_service_requests(service_code="pothole", status="open")
        self.assertTrue(potholes and all(r["service_code"] == "pothole" for r in potholes))
        both = self.json.get_service_requests(service_code="pothole,graffiti")
        self.assertEqual({r["service_code"] for r in both}, {"pothole", "graffiti"})
        self.assertEqual(self.json.get_service_requests(status="closed"), [])
        self.assertEqual(self.json.get_service_requests(start_date="2010-01-01T00:00:00Z", end_date="2010-03-01T00:00:00Z"), [])
        ids = ",".join(r["service_request_id"] for r in potholes[:2])
        chosen = self.json.get_service_requests(service_request_id=ids, status="closed")
        self.assertEqual(sorted(r["service_request_id"] for r in chosen), sorted(ids.split(",")))
        xml = self.xml.get_service_requests(service_code="pothole")
        self.assertEqual(len(xml if isinstance(xml, list) else [xml]), len(self.json.get_service_requests(service_code="pothole")))

    def test_batch_services_answer_with_a_token(self):
        answer = fixmystreet_post(service_code="noise", address_string="Sejong-daero 110", description="Drilling at night")
        self.assertEqual(answer.status_code, 200, answer.text)
        token = answer.json()[0]["token"]
        found = requests.get(f"{SERVER.base}/open311/v2/tokens/{token}.json", timeout=10).json()
        self.assertTrue(found[0]["service_request_id"])
        xml = ET.fromstring(requests.get(f"{SERVER.base}/open311/v2/tokens/{token}.xml", timeout=10).content)
        self.assertEqual(xml.tag, "service_requests")
        self.assertEqual(xml.find("request/token").text, token)

    def test_errors_are_the_standard_list_with_400_403_and_404(self):
        cases = [
            (requests.post(f"{SERVER.base}/open311/v2/requests.json", data={"service_code": "pothole"}, timeout=10), 403, "api_key"),
            (fixmystreet_post(**dict(POTHOLE, api_key="cos_k_wrong")), 403, "api_key"),
            (fixmystreet_post(**dict(POTHOLE, service_code="zeppelin")), 400, "service_code"),
            (fixmystreet_post(**dict(POTHOLE, lat="35.1", long="129.0")), 400, "lat"),
            (fixmystreet_post(**dict(POTHOLE, **{"attribute[size_cm]": "huge"})), 400, "attribute[size_cm]"),
            (fixmystreet_post(**dict(POTHOLE, description="x" * 4001)), 400, "description"),
            (requests.get(f"{SERVER.base}/open311/v2/requests/999999.json", timeout=10), 404, "999999"),
            (requests.get(f"{SERVER.base}/open311/v2/services/zeppelin.json", timeout=10), 404, "zeppelin"),
        ]
        for reply, code, mentions in cases:
            self.assertEqual(reply.status_code, code, reply.text)
            body = reply.json()
            self.assertEqual(body[0]["code"], code)
            self.assertIn(mentions, body[0]["description"])
        xml = fixmystreet_post(fmt="xml", **dict(POTHOLE, api_key=""))
        self.assertEqual(xml.status_code, 403)
        root = ET.fromstring(xml.content)
        self.assertEqual((root.tag, root.find("error/code").text), ("errors", "403"))

    def test_discovery_names_the_endpoint_and_its_formats(self):
        discovery = requests.get(f"{SERVER.base}/open311/discovery.json", timeout=10).json()
        endpoint = discovery["endpoints"][0]
        self.assertEqual(endpoint["url"], f"{SERVER.base}/open311/v2")
        self.assertEqual(set(endpoint["formats"]), {"text/xml", "application/json"})
        root = ET.fromstring(requests.get(f"{SERVER.base}/open311/discovery.xml", timeout=10).content)
        self.assertEqual(root.find("endpoints/endpoint/specification").text, "http://wiki.open311.org/GeoReport_v2")

    def test_reporters_get_an_email_for_each_public_update_and_none_for_notes(self):
        request_id = fixmystreet_post(**dict(POTHOLE, email="jiho@example.org")).json()[0]["service_request_id"]
        token = requests.post(f"{SERVER.base}/api/v1/accounts/login",
                              json={"email": "roads@seoul.go.kr", "password": "a long staff password"}, timeout=10).json()["token"]
        headers = {"authorization": f"Bearer {token}"}
        url = f"{SERVER.base}/api/v1/complaints/{request_id}/updates"
        note = requests.post(url, json={"text": "send crew 7", "public": False}, headers=headers, timeout=10)
        self.assertEqual(note.status_code, 200, note.text)
        update = requests.post(url, json={"status": "resolved", "text": "The hole is filled", "public": True}, headers=headers, timeout=10)
        self.assertEqual(update.status_code, 200, update.text)
        deadline = time.time() + 30
        mine = []
        while time.time() < deadline and not mine:
            mine = [m for to, m in SERVER.sink.messages if "jiho@example.org" in to]
            time.sleep(0.2)
        self.assertEqual(len(mine), 1, SERVER.sink.messages)
        self.assertIn("The hole is filled", mine[0])
        self.assertIn(f"#{request_id}", mine[0])
        self.assertNotIn("crew 7", "".join(m for _, m in SERVER.sink.messages))
        closed = self.json.get_service_request(request_id)
        self.assertEqual((closed["status"], closed["status_notes"]), ("closed", "The hole is filled"))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
