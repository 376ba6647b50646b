"""End to end on this machine: a device on the production broker (setup.sh) -> `dtwin bridge`
(apigw, auth: iam, configured with the template's own output lines) -> API Gateway (stand-in
that checks SigV4 and builds the proxy event) -> the handler -> moto's DynamoDB server; then
`dtwin readings` and the bridge's /api read the items back, and the handler's LIG reply
reaches the device on dtwin/<dev>/down."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from samtranslator.yaml_helper import yaml_parse

import app
from conftest import CLOUD, REGION, create_table
from harness import Bridge, GeneratedBroker, MotoServer, dtwin, wait_until
from standins import ApiGateway, routes_from_template

KEY_ID, SECRET = "AKIDBRIDGE0E2E", "bridge-e2e-secret"
API_TOKEN = "e2e-api-token"
TEMPLATE = yaml_parse((CLOUD / "template.yaml").read_text())


@pytest.fixture(scope="module")
def broker():
    running = GeneratedBroker()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def moto_server():
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def cloud(moto_server, monkeypatch, tmp_path):
    """The stack: its table on moto, the handler behind API Gateway, the handler's settings."""
    table = f"twin{tmp_path.name[-8:]}".replace("-", "")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_server.url)
    monkeypatch.setenv("table_name", table)
    monkeypatch.setenv("light_threshold", "100")
    app._tables.clear()
    create_table(boto3.client("dynamodb", endpoint_url=moto_server.url), name=table)
    gateway = ApiGateway(routes_from_template(TEMPLATE), app.lambda_handler, {KEY_ID: SECRET}, REGION).start()
    yield gateway, table
    gateway.stop()
    app._tables.clear()


def bridge_configuration(invoke_url: str, table: str) -> str:
    """The template's DtwinConfiguration output, as CloudFormation would fill it in for this stack."""
    lines = TEMPLATE["Outputs"]["DtwinConfiguration"]["Value"]["Fn::Sub"]
    lines = lines.replace("https://${DigitalTwinApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}", invoke_url)
    return lines.replace("${DigitalTwinTable}", table).replace("${AWS::Region}", REGION)


def bridge_environment(broker, moto_server, tmp_path, secret=SECRET) -> dict:
    return {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DTWIN_BROKER": broker.bridge_url,
        "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": REGION,
        "DTWIN_STORE_ENDPOINT": moto_server.url, "DTWIN_API_TOKEN": API_TOKEN,
        "DTWIN_UPSTREAM_RETRY_INITIAL": "100ms", "DTWIN_UPSTREAM_RETRY_MAX": "500ms",
    }


def items_in(moto_server, table: str) -> list[dict]:
    """The table's items, oldest first, without the devices' twin documents (no ts)."""
    resource = boto3.resource("dynamodb", endpoint_url=moto_server.url)
    return sorted((item for item in resource.Table(table).scan()["Items"] if "ts" in item), key=lambda item: item["ts"])


def signed_get(url: str, secret: str = SECRET) -> tuple[int, dict]:
    """A GET signed by botocore, as a user's script (or awscurl) calls the IAM routes."""
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(KEY_ID, secret), "execute-api", REGION).add_auth(request)
    prepared = urllib.request.Request(url, headers=dict(request.headers))
    try:
        with urllib.request.urlopen(prepared, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_device_to_cloud_and_back(broker, moto_server, cloud, tmp_path):
    gateway, table = cloud
    device = broker.device("uno1")
    bridge = Bridge(tmp_path, bridge_configuration(gateway.invoke_url, table), bridge_environment(broker, moto_server, tmp_path))
    try:
        device.publish("sim-uno1 data 42")  # below the threshold: LIG
        assert wait_until(lambda: device.commands() == ["LIG"], 15), (device.commands(), bridge.log_text()[-3000:])
        device.publish('{"value": 512, "seq": 2}')  # at or above: ACK
        assert wait_until(lambda: device.commands() == ["LIG", "ACK"], 10), device.commands()
        device.publish("uno1:awake")  # not a reading: stored, no reply
        assert wait_until(lambda: len(items_in(moto_server, table)) == 3, 15), bridge.log_text()[-3000:]

        stored = items_in(moto_server, table)
        assert [(i["device"], i["kind"], i.get("value"), i["source"]) for i in stored] == [
            ("uno1", "reading", 42, "mqtt"), ("uno1", "reading", 512, "mqtt"), ("uno1", "awake", None, "mqtt")]
        # Every delivery went through the IAM route, signed with the bridge's key.
        bridge_calls = [event for event in gateway.requests if event["resource"] == "/bridge"]
        assert len(bridge_calls) == 3 and gateway.refusals == []
        assert all(event["requestContext"]["identity"]["accessKey"] == KEY_ID for event in bridge_calls)
        assert {event["queryStringParameters"]["MessageId"] for event in bridge_calls} == {i["messageid"] for i in stored}

        # The command line reads the cloud's table back.
        env = dict(bridge.env)
        result = dtwin("readings", "uno1", "--json", "--config", str(tmp_path / "dtwin.yaml"), env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [line["messageId"] for line in lines] == [i["messageid"] for i in stored]

        # So do the bridge's /api and the stack's own readings route.
        status, page = bridge.get("/api/devices/uno1/readings", token=API_TOKEN)
        assert status == 200 and [i["messageId"] for i in page["items"]] == [i["messageid"] for i in stored]
        status, page = signed_get(f"{gateway.invoke_url}/devices/uno1/readings?limit=2")
        assert status == 200 and [i["messageId"] for i in page["items"]] == [i["messageid"] for i in stored[1:]]
        assert page["items"][0]["value"] == 512
        status, report = signed_get(f"{gateway.invoke_url}/status")
        assert (status, report["ready"], report["index"]) == (200, True, "device-ts")

        # The console test event through the bridge's API reaches the function, signed too.
        request = urllib.request.Request(f"http://127.0.0.1:{bridge.port}/api/test-event", method="POST",
                                         headers={"Authorization": f"Bearer {API_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert gateway.requests[-1]["queryStringParameters"]["testuser"] == "kilroy"
    finally:
        bridge.stop()
        device.stop()
    assert "bridge-e2e-secret" not in bridge.log_text()


def test_the_function_drives_the_device_through_its_twin(broker, moto_server, cloud, tmp_path, monkeypatch):
    """control_answer: desired. The function answers each reading with the LED it wants; the
    bridge keeps it in the device's twin (on the stack's table) and commands the device only when
    that differs from what it reported: one LIG for three dark readings, not three."""
    gateway, table = cloud
    monkeypatch.setenv("control_answer", "desired")
    device = broker.device("lamp1")
    bridge = Bridge(tmp_path, bridge_configuration(gateway.invoke_url, table), bridge_environment(broker, moto_server, tmp_path))
    twin = lambda: bridge.get("/api/devices/lamp1/state", token=API_TOKEN)[1]
    try:
        device.publish_status("online")
        assert wait_until(lambda: twin().get("reported", {}).get("online") is True, 15), bridge.log_text()[-3000:]
        for n in range(3):
            device.publish(f'{{"value": 40, "seq": {n}}}')  # dark: the function wants the LED on
        assert wait_until(lambda: device.commands() == ["LIG"], 15), (device.commands(), bridge.log_text()[-3000:])
        assert wait_until(lambda: len([i for i in items_in(moto_server, table) if i["device"] == "lamp1"]) == 3, 15)
        device.publish('{"value": 90, "led": true, "seq": 3}')  # still dark, the LED reported on
        assert wait_until(lambda: twin().get("reported", {}).get("led") is True and not twin().get("delta"), 15), twin()
        assert twin()["desired"] == {"led": True} and device.commands() == ["LIG"]
        # The twin is an item of the stack's table, beside the readings, written by the bridge.
        resource = boto3.resource("dynamodb", endpoint_url=moto_server.url)
        document = resource.Table(table).get_item(Key={"messageid": "twin:lamp1"}).get("Item")
        assert document is not None and int(document["version"]) == twin()["version"]
    finally:
        bridge.stop()
        device.stop()


def test_the_iam_routes_refuse_unsigned_and_wrongly_signed_calls(cloud):
    gateway, _ = cloud
    for url, secret in [(f"{gateway.invoke_url}/status", "wrong"), (f"{gateway.invoke_url}/devices/uno1/readings", "wrong")]:
        status, body = signed_get(url, secret)
        assert status == 403 and "signature" in body["message"]
    try:
        urllib.request.urlopen(f"{gateway.invoke_url}/status", timeout=5)
        raise AssertionError("an unsigned call was answered")
    except urllib.error.HTTPError as error:
        assert error.code == 403 and json.loads(error.read())["message"] == "Missing Authentication Token"
    assert gateway.requests == []


def test_refused_credentials_lose_nothing(broker, moto_server, cloud, tmp_path):
    """A bridge with a wrong secret is refused by API Gateway: its readings wait in the spool
    (retried, not dead-lettered) and arrive once the bridge runs with the right one."""
    gateway, table = cloud
    device = broker.device("uno2")
    config = bridge_configuration(gateway.invoke_url, table)
    bridge = Bridge(tmp_path, config, bridge_environment(broker, moto_server, tmp_path, secret="not-the-secret"))
    try:
        device.publish("sim-uno2 data 7")
        device.publish("sim-uno2 data 8")
        assert wait_until(lambda: len(gateway.refusals) >= 2, 15), bridge.log_text()[-2000:]
        assert items_in(moto_server, table) == []
    finally:
        bridge.stop()
    assert "InvalidSignatureException" in bridge.log_text() and "dead letter" not in bridge.log_text()
    bridge = Bridge(tmp_path, config, bridge_environment(broker, moto_server, tmp_path))
    try:
        assert wait_until(lambda: len(items_in(moto_server, table)) == 2, 15), bridge.log_text()[-2000:]
        assert sorted(i["value"] for i in items_in(moto_server, table)) == [7, 8]
        assert wait_until(lambda: device.commands() == ["LIG", "LIG"], 10), device.commands()
    finally:
        bridge.stop()
        device.stop()


def test_a_table_made_the_seeds_way_serves_the_bridges_api_and_dtwin_readings(broker, moto_server, tmp_path):
    """Partition key only, no index: writes as usual; /api and `dtwin readings` read by Scan and
    the bridge says so once (before, /api answered 503)."""
    from conftest import seed_table

    seed_table(boto3.client("dynamodb", endpoint_url=moto_server.url), "seedway")
    device = broker.device("seed1")
    config = "upstream:\n  mode: local\nstore:\n  kind: dynamodb\n  table: seedway\n"
    bridge = Bridge(tmp_path, config, bridge_environment(broker, moto_server, tmp_path))
    try:
        # All three at once: two stored in the same millisecond still come back in the order
        # they were published (time, then the bridge's monotonic message id).
        for value in (3, 4, 5):
            device.publish(f"sim-seed1 data {value}")
        assert wait_until(lambda: len(items_in(moto_server, "seedway")) == 3, 15), bridge.log_text()[-2000:]
        for _ in range(2):
            status, page = bridge.get("/api/devices/seed1/readings?limit=2", token=API_TOKEN)
            assert status == 200, page
            assert [item["value"] for item in page["items"]] == [4, 5]
        assert bridge.get("/readyz")[0] == 200
        result = dtwin("readings", "seed1", "--json", "--config", str(tmp_path / "dtwin.yaml"), env=bridge.env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert [json.loads(line)["value"] for line in result.stdout.splitlines()] == [3, 4, 5]
        assert "aws dynamodb update-table --table-name seedway" in result.stderr
    finally:
        bridge.stop()
        device.stop()
    assert bridge.log_text().count("has no index device-ts") == 1
