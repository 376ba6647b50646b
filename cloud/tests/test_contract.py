"""One contract for both sides: the same device messages, stored by the bridge's `local` upstream
(Swift, on DynamoDB) and by the Lambda (fed the events `dtwin event` makes for them), give the
same items, attribute by attribute."""

from __future__ import annotations

import base64
import json

import boto3
import pytest

import app
from conftest import REGION, create_table
from harness import Bridge, GeneratedBroker, MotoServer, dtwin, wait_until

# Every kind of payload the contract names (README: "Topic tree"), and the edges of each.
PAYLOADS: list[bytes] = [
    b"sim-c1 data 512",
    b"sim-c1 data -3",
    b"  sim-c1 data 77 \n",
    b"sim-c1 data 5.5",  # not an integer: raw
    b"sim-other data 9",  # another device named inside: still c1's message
    b"c1:awake",
    b"sim-c1:awake",
    b'{"value": 3.25, "seq": 11, "ts": 1764590400123, "unit": "lux"}',
    b'{"value": 1e-7}',
    b'{"value": 12345678901234567890}',
    b'{"value": "bright"}',  # not a number: raw
    b'{"value": 1, "seq": 1.5}',  # seq not an integer: raw
    b'{"value": true}',
    b'{"temp": 20}',  # no value: raw
    b"{not json",
    b"hello \xc3\xa9t\xc3\xa9",  # UTF-8 text
    bytes([0x00, 0xFF, 0x80, 0x10]),  # binary
    b"\xe2\x80\x83sim-c1 data 8\xe2\x80\x83",  # Unicode white space around a legacy reading
    b"\x1csim-c1 data 4",  # U+001C is not white space to Swift (str.strip() would drop it)
]


@pytest.fixture(scope="module")
def parts():
    broker, moto = GeneratedBroker(), MotoServer()
    yield broker, moto
    moto.stop()
    broker.stop()



def readings(table) -> list[dict]:
    """The table's items, without the devices' twin documents (messageid twin:<device>, no ts)."""
    return [item for item in table.scan()["Items"] if "ts" in item]

def test_local_upstream_and_lambda_store_the_same_items(parts, tmp_path, monkeypatch):
    broker, moto = parts
    client = boto3.client("dynamodb", endpoint_url=moto.url)
    create_table(client, name="bridge_local")
    create_table(client, name="lambda_side")

    # The bridge's own decoding: upstream.mode local, storing in DynamoDB.
    config = "upstream:\n  mode: local\nstore:\n  kind: dynamodb\n  table: bridge_local\n"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DTWIN_BROKER": broker.bridge_url,
           "AWS_ACCESS_KEY_ID": "AKIDCONTRACT", "AWS_SECRET_ACCESS_KEY": "contract-secret", "AWS_REGION": REGION,
           "DTWIN_STORE_ENDPOINT": moto.url, "DTWIN_LOGFORMAT": "json"}
    device = broker.device("c1")
    bridge = Bridge(tmp_path, config, env)
    local = boto3.resource("dynamodb", endpoint_url=moto.url).Table("bridge_local")
    try:
        for payload in PAYLOADS:
            device.publish(payload)
        assert wait_until(lambda: len(readings(local)) == len(PAYLOADS), 20), bridge.log_text()[-3000:]
    finally:
        bridge.stop()
        device.stop()
    bridge_items = {item["messageid"]: item for item in readings(local)}
    # logFormat: json: every line of the bridge's log is a JSON record.
    records = [json.loads(line) for line in bridge.log_text().splitlines()]
    assert records and all({"ts", "level", "message"} <= set(record) for record in records)

    # The Lambda's: the same messages as events made by `dtwin event`, with the bridge's ids and times.
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto.url)
    monkeypatch.setenv("table_name", "lambda_side")
    app._tables.clear()
    for message_id, item in bridge_items.items():
        raw = base64.b64decode(item["payload"]) if item.get("payloadEncoding") == "base64" else item["payload"].encode()
        made = dtwin("event", "c1", base64.b64encode(raw).decode(), "--base64", "--message-id", message_id,
                     "--received-at", item["ts"], env=env, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        event = json.loads(made.stdout)
        answer = app.lambda_handler(event, None)
        assert answer["statusCode"] == 200, answer
    app._tables.clear()
    lambda_items = {item["messageid"]: item for item in readings(boto3.resource("dynamodb", endpoint_url=moto.url).Table("lambda_side"))}

    assert set(lambda_items) == set(bridge_items)
    for message_id, expected in bridge_items.items():
        assert lambda_items[message_id] == expected, f"payload {expected['payload']!r}"
    # The cases did exercise every kind and both payload encodings.
    kinds = {item["kind"] for item in bridge_items.values()}
    assert kinds == {"reading", "awake", "raw"}
    assert any(item.get("payloadEncoding") == "base64" for item in bridge_items.values())
    assert any("seq" in item for item in bridge_items.values())


def test_dtwin_event_refuses_what_it_cannot_make(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for args, words in [(["--received-at", "noon"], "--received-at"), (["--message-id", ""], "--message-id")]:
        result = dtwin("event", "c1", "x", *args, env=env, cwd=tmp_path)
        assert result.returncode == 2 and words in result.stderr, result.stderr
