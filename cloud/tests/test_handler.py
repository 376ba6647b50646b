"""The Lambda handler against moto's DynamoDB (mock_aws) and a local Twilio Super SIM API."""

from __future__ import annotations

import base64
import json
import logging
from decimal import Decimal
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws
from twilio.request_validator import RequestValidator

import app
from conftest import ACCOUNT_SID, AUTH_TOKEN, create_table, seed_table

HOST = "abc123defg.execute-api.us-west-2.amazonaws.com"
SID = "HG" + "a" * 32


@pytest.fixture
def table(monkeypatch):
    with mock_aws():
        app._tables.clear()
        client = boto3.client("dynamodb")
        create_table(client)
        yield boto3.resource("dynamodb").Table("digitaltwin")
        app._tables.clear()


def items(table) -> list[dict]:
    return sorted(table.scan()["Items"], key=lambda item: item["messageid"])


def call(event) -> tuple[int, dict]:
    result = app.lambda_handler(event, None)
    assert result["headers"]["Content-Type"] == "application/json"
    return result["statusCode"], json.loads(result["body"])


def proxy(resource, method="GET", query=None, body=None, headers=None, path=None, path_parameters=None):
    headers = {"Host": HOST, **(headers or {})}
    return {
        "resource": resource, "path": path or resource, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters, "stageVariables": None,
        "requestContext": {"stage": "prod", "path": "/prod" + (path or resource), "requestTimeEpoch": 1764590400000},
        "body": body, "isBase64Encoded": False,
    }


def dtwin_params(device="uno1", payload=b"sim-uno1 data 512", message_id="0190a1b2c3d4-0001",
                 received="2026-12-01T12:00:00.000Z"):
    return {"SimUniqueName": device, "Payload": base64.b64encode(payload).decode(), "PayloadType": "binary",
            "Direction": "from_sim", "Status": "received", "MessageId": message_id,
            "Topic": f"dtwin/{device}/up", "ReceivedAt": received, "Source": "mqtt"}


def bridge_post(params) -> dict:
    """What API Gateway passes on for dtwin's `apigw` upstream with method POST."""
    form = urlencode(params)
    return proxy("/bridge", "POST", query=params, body=form,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})


def super_sim(params, method="POST", token=AUTH_TOKEN, signature=None) -> dict:
    """Twilio's Super SIM webhook through API Gateway, signed as Twilio signs it."""
    url = f"https://{HOST}/prod/iot"
    if method == "GET":
        url += "?" + urlencode(params)
        event = proxy("/iot", "GET", query=params)
        signed = {}
    else:
        event = proxy("/iot", "POST", body=urlencode(params), headers={"Content-Type": "application/x-www-form-urlencoded"})
        signed = params
    event["headers"]["X-Twilio-Signature"] = signature or RequestValidator(token).compute_signature(url, signed)
    return event


def sim_params(payload=b"sim-uno1 data 42", sid=SID, device="uno1"):
    return {"AccountSid": ACCOUNT_SID, "Sid": sid, "SimSid": "HS" + "b" * 32, "SimUniqueName": device,
            "Status": "received", "Direction": "from_sim", "DeviceIp": "100.64.0.12", "DevicePort": "6969",
            "PayloadType": "binary", "Payload": base64.b64encode(payload).decode()}


# MARK: the console test event


def test_console_test_event_answers_200_with_one_log_line(caplog):
    caplog.set_level(logging.INFO, logger="dtwin")
    status, body = call({"testuser": "kilroy", "testdata": "3.14", "isIOT": "False"})
    assert status == 200
    assert body["testuser"] == "kilroy" and body["testdata"] == "3.14"
    lines = [r.getMessage() for r in caplog.records if r.name == "dtwin"]
    assert lines == ["console test event: testuser=kilroy testdata=3.14"]


def test_console_test_event_through_the_bridge_route(table):
    status, body = call(bridge_post({"testuser": "kilroy", "testdata": "3.14", "isIOT": "False"}))
    assert status == 200 and body["message"] == "test event received"
    assert items(table) == []


# MARK: dtwin's events


def test_a_dtwin_event_is_stored_as_the_bridge_stores_it(table):
    status, body = call(bridge_post(dtwin_params()))
    assert status == 200
    assert body == {"messageId": "0190a1b2c3d4-0001", "stored": "new"}
    assert items(table) == [{"messageid": "0190a1b2c3d4-0001", "device": "uno1", "ts": "2026-12-01T12:00:00.000Z",
                             "payload": "sim-uno1 data 512", "kind": "reading", "value": Decimal(512),
                             "source": "mqtt"}]


def test_json_awake_and_binary_payloads(table):
    call(bridge_post(dtwin_params(payload=b'{"value": 3.5, "seq": 7, "ts": 1764590400123, "unit": "lux"}',
                                  message_id="m1")))
    call(bridge_post(dtwin_params(payload=b"uno1:awake", message_id="m2")))
    call(bridge_post(dtwin_params(payload=bytes([0xFF, 0x00, 0x10]), message_id="m3")))
    stored = {item["messageid"]: item for item in items(table)}
    assert stored["m1"]["kind"] == "reading" and stored["m1"]["value"] == Decimal("3.5")
    assert stored["m1"]["seq"] == 7 and stored["m1"]["ts"] == "2025-12-01T12:00:00.123Z"
    assert stored["m2"]["kind"] == "awake" and "value" not in stored["m2"]
    assert stored["m3"] == {"messageid": "m3", "device": "uno1", "ts": "2026-12-01T12:00:00.000Z",
                            "payload": base64.b64encode(bytes([0xFF, 0x00, 0x10])).decode(),
                            "payloadEncoding": "base64", "kind": "raw", "source": "mqtt"}


def test_the_lambda_upstreams_invocation_is_a_dtwin_event(table):
    event = proxy(app.INVOKE_RESOURCE, "GET", query=dtwin_params(message_id="inv-1"))
    status, body = call(event)
    assert status == 200 and body["stored"] == "new"
    assert [item["messageid"] for item in items(table)] == ["inv-1"]


def test_a_retried_message_is_one_item(table, monkeypatch):
    monkeypatch.setenv("light_threshold", "1000")
    first = call(bridge_post(dtwin_params()))
    second = call(bridge_post(dtwin_params(received="2026-12-01T12:00:09.000Z")))
    assert first == (200, {"messageId": "0190a1b2c3d4-0001", "stored": "new", "reply": "LIG"})
    # The bridge saw no answer the first time: it gets its reply again, the table keeps the first copy.
    assert second == (200, {"messageId": "0190a1b2c3d4-0001", "stored": "duplicate", "reply": "LIG"})
    assert [item["ts"] for item in items(table)] == ["2026-12-01T12:00:00.000Z"]


@pytest.mark.parametrize("value, reply", [(99, "LIG"), (100, "ACK"), (512, "ACK")])
def test_the_control_rule(table, monkeypatch, value, reply):
    monkeypatch.setenv("light_threshold", "100")
    status, body = call(bridge_post(dtwin_params(payload=f"sim-uno1 data {value}".encode())))
    assert status == 200 and body["reply"] == reply


@pytest.mark.parametrize("value, led", [(99, True), (100, False)])
def test_the_control_rule_as_a_desired_state(table, monkeypatch, value, led):
    monkeypatch.setenv("light_threshold", "100")
    monkeypatch.setenv("control_answer", "desired")
    status, body = call(bridge_post(dtwin_params(payload=f"sim-uno1 data {value}".encode())))
    assert status == 200 and body["desired"] == {"led": led} and "reply" not in body
    assert "desired" not in call(bridge_post(dtwin_params(payload=b"uno1:awake", message_id="b")))[1]


def test_no_threshold_no_reply_and_no_reply_for_non_readings(table, monkeypatch):
    assert "reply" not in call(bridge_post(dtwin_params(message_id="a")))[1]
    monkeypatch.setenv("light_threshold", "100")
    assert "reply" not in call(bridge_post(dtwin_params(payload=b"uno1:awake", message_id="b")))[1]


# MARK: Twilio's Super SIM webhook


def test_a_super_sim_message_is_stored_under_its_sid_and_answered_by_ip_command(table, twilio_api, monkeypatch):
    monkeypatch.setenv("acct_id_env", ACCOUNT_SID)
    monkeypatch.setenv("acct_token_env", AUTH_TOKEN)
    monkeypatch.setenv("light_threshold", "100")
    monkeypatch.setenv("twilio_supersim_base", twilio_api.base_url)
    status, body = call(super_sim(sim_params()))
    assert status == 200, body
    assert body["stored"] == "new" and body["reply"] == "LIG" and body["ipCommandSid"].startswith("HG")
    assert items(table) == [{"messageid": SID, "device": "uno1", "ts": "2025-12-01T12:00:00.000Z",
                             "payload": "sim-uno1 data 42", "kind": "reading", "value": Decimal(42),
                             "source": "twilio-ipcommand"}]
    [command] = twilio_api.commands
    assert (command["sim"], command["payload"], command["device_port"], command["payload_type"]) == \
        ("uno1", "LIG", 6969, "text")


def test_the_seeds_get_webhook_is_signed_over_its_query(table, monkeypatch):
    monkeypatch.setenv("acct_token_env", AUTH_TOKEN)
    status, body = call(super_sim(sim_params(payload=b"uno1:awake"), method="GET"))
    assert status == 200 and body["stored"] == "new"
    assert items(table)[0]["kind"] == "awake"


def test_a_super_sim_retry_is_one_item(table, monkeypatch):
    monkeypatch.setenv("acct_token_env", AUTH_TOKEN)
    assert call(super_sim(sim_params()))[1]["stored"] == "new"
    assert call(super_sim(sim_params()))[1]["stored"] == "duplicate"
    assert len(items(table)) == 1


def test_text_payload_type_is_taken_as_it_is(table, monkeypatch):
    monkeypatch.setenv("acct_token_env", AUTH_TOKEN)
    params = dict(sim_params(), PayloadType="text", Payload="sim-uno1 data 7")
    assert call(super_sim(params))[0] == 200
    assert items(table)[0]["value"] == Decimal(7)


def test_twilio_refusing_the_reply_is_a_502_and_the_reading_is_kept(table, twilio_api, monkeypatch):
    monkeypatch.setenv("acct_id_env", ACCOUNT_SID)
    monkeypatch.setenv("acct_token_env", AUTH_TOKEN)
    monkeypatch.setenv("light_threshold", "100")
    monkeypatch.setenv("twilio_supersim_base", twilio_api.base_url)
    twilio_api.fail_with = 503
    status, body = call(super_sim(sim_params()))
    assert status == 502 and "not sent" in body["error"]
    assert len(items(table)) == 1 and twilio_api.commands == []


@pytest.mark.parametrize("case", ["missing", "wrong token", "wrong url", "tampered", "no token configured",
                                  "other account"])
def test_forged_webhooks_are_refused_and_nothing_is_stored(table, monkeypatch, case):
    monkeypatch.setenv("acct_id_env", ACCOUNT_SID)
    monkeypatch.setenv("acct_token_env", AUTH_TOKEN)
    params = sim_params()
    event = super_sim(params)
    if case == "missing":
        del event["headers"]["X-Twilio-Signature"]
    elif case == "wrong token":
        event = super_sim(params, token="f" * 32)
    elif case == "wrong url":
        event["headers"]["Host"] = "attacker.example.com"
    elif case == "tampered":
        event["body"] = urlencode(dict(params, Payload=base64.b64encode(b"sim-uno1 data 1").decode()))
    elif case == "no token configured":
        monkeypatch.delenv("acct_token_env")
    elif case == "other account":
        event = super_sim(dict(params, AccountSid="AC" + "9" * 32))
    status, body = call(event)
    assert status == 403, body
    assert items(table) == []


def test_public_url_replaces_host_and_stage(table, monkeypatch):
    monkeypatch.setenv("acct_token_env", AUTH_TOKEN)
    monkeypatch.setenv("public_url", "https://iot.example.org/twin")
    params = sim_params()
    event = super_sim(params)
    assert call(event)[0] == 403  # signed for the execute-api URL, but Twilio calls the custom domain
    event["headers"]["X-Twilio-Signature"] = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://iot.example.org/twin/iot", params)
    assert call(event)[0] == 200


# MARK: bad input: a 4xx with a JSON error, never an exception


@pytest.mark.parametrize("mutation, status, words", [
    (lambda p: p.pop("SimUniqueName"), 400, "SimUniqueName is missing"),
    (lambda p: p.pop("Payload"), 400, "Payload is missing"),
    (lambda p: p.pop("MessageId"), 400, "MessageId is missing"),
    (lambda p: p.update(ReceivedAt="yesterday"), 400, "ReceivedAt"),
    (lambda p: p.update(Payload="%%%not base64"), 400, "not base64"),
    (lambda p: p.update(SimUniqueName="uno1/../down"), 400, "outside A-Z"),
    (lambda p: p.update(SimUniqueName="dtwin/#"), 400, "outside A-Z"),
    (lambda p: p.update(SimUniqueName="bridge"), 400, "reserved"),
    (lambda p: p.update(SimUniqueName="x" * 65), 400, "longer than 64"),
    (lambda p: p.update(Payload=base64.b64encode(b"x" * (256 * 1024 + 1)).decode()), 413, "over 262144 bytes"),
])
def test_bad_dtwin_events(table, mutation, status, words):
    params = dtwin_params()
    mutation(params)
    got, body = call(bridge_post(params))
    assert got == status and words in body["error"], body
    assert items(table) == []


@pytest.mark.parametrize("event, status, words", [
    (proxy("/nowhere"), 404, "no route"),
    (proxy("/bridge", "GET"), 405, "takes POST"),
    (proxy("/bridge", "POST", body='{"SimUniqueName": "uno1"}', headers={"Content-Type": "application/json"}), 415,
     "form body"),
    (proxy("/bridge", "POST", body="a=%ZZ&&b", headers={"Content-Type": "application/x-www-form-urlencoded"}), 400,
     "cannot be read"),
    ({"hello": "world"}, 400, "not an event"),
    ({"testuser": "kilroy", "isIOT": "True"}, 400, "isIOT"),
    (["not", "an", "object"], 400, "not a JSON object"),
])
def test_bad_events_and_routes(table, event, status, words):
    got, body = call(event)
    assert got == status and words in body["error"], body


def test_bad_super_sim_webhooks(table, monkeypatch):
    monkeypatch.setenv("acct_token_env", AUTH_TOKEN)
    for params, words in [(dict(sim_params(), Sid="nope"), "Sid"), (dict(sim_params(), SimUniqueName="a b"), "outside"),
                          (dict(sim_params(), Payload="***"), "base64")]:
        status, body = call(super_sim(params))
        assert status == 400 and words in body["error"], body
    status, body = call(super_sim(dict(sim_params(), Direction="to_sim")))
    assert status == 200 and "ignored" in body
    assert items(table) == []


def test_a_broken_setting_is_the_functions_fault_not_the_callers(table, monkeypatch, caplog):
    monkeypatch.setenv("light_threshold", "dim")
    status, body = call(bridge_post(dtwin_params()))
    assert status == 500 and "internal error" in body["error"]
    assert "light_threshold='dim'" in caplog.text
    monkeypatch.setenv("light_threshold", "100")
    monkeypatch.setenv("control_answer", "command")
    status, body = call(bridge_post(dtwin_params(message_id="c")))
    assert status == 500 and "control_answer='command' is not one of reply, desired" in caplog.text


def test_a_missing_table_is_503_so_the_bridge_retries(monkeypatch):
    with mock_aws():
        app._tables.clear()
        monkeypatch.setenv("table_name", "no-such-table")
        status, body = call(bridge_post(dtwin_params()))
        assert status == 503 and "not available" in body["error"]
        status, body = call(proxy("/status"))
        assert status == 503 and body["ready"] is False and "does not answer" in body["problems"][0]
    app._tables.clear()


# MARK: the non-IoT API


def readings_event(device="uno1", **query):
    return proxy("/devices/{device}/readings", query=query, path=f"/devices/{device}/readings",
                 path_parameters={"device": device})


def store_readings(count=5):
    for n in range(count):
        call(bridge_post(dtwin_params(payload=f"sim-uno1 data {n}".encode(), message_id=f"id-{n}",
                                      received=f"2026-12-01T12:00:0{n}.000Z")))
    call(bridge_post(dtwin_params(device="other", payload=b"sim-other data 1", message_id="other-1")))


def test_readings_oldest_first_with_range_and_limit(table):
    store_readings()
    status, body = call(readings_event())
    assert status == 200 and body["device"] == "uno1" and body["count"] == 5
    assert [item["value"] for item in body["items"]] == [0, 1, 2, 3, 4]
    assert body["items"][0] == {"messageId": "id-0", "device": "uno1", "ts": "2026-12-01T12:00:00.000Z",
                                "payload": "sim-uno1 data 0", "kind": "reading", "value": 0, "source": "mqtt"}
    _, body = call(readings_event(since="2026-12-01T12:00:01Z", until="2026-12-01T12:00:04Z"))
    assert [item["value"] for item in body["items"]] == [1, 2, 3]
    _, body = call(readings_event(limit="2"))
    assert [item["value"] for item in body["items"]] == [3, 4]


@pytest.mark.parametrize("page_size", [2, 100])
def test_readings_of_one_millisecond_come_back_in_message_id_order(table, page_size):
    # The bridge's ids increase in arrival order; stored out of order, in one millisecond.
    app.twin_table(app.Settings.from_environment()).page_size = page_size
    for n in (3, 0, 5, 1, 4, 2):
        call(bridge_post(dtwin_params(payload=f"sim-uno1 data {n}".encode(), message_id=f"01KB00000000000000000000{n:02d}")))
    _, body = call(readings_event())
    assert [item["value"] for item in body["items"]] == [0, 1, 2, 3, 4, 5]
    _, body = call(readings_event(limit="3"))
    assert [item["value"] for item in body["items"]] == [3, 4, 5], "the limit keeps the newest ids"


@pytest.mark.parametrize("query, words", [
    ({"since": "noon"}, "not an ISO-8601"), ({"limit": "0"}, "whole number from 1 to 1000"),
    ({"limit": "1001"}, "1 to 1000"), ({"since": "2026-12-02", "until": "2026-12-01"}, "earlier than until"),
    ({"sort": "asc"}, "unknown query parameter"),
])
def test_bad_readings_queries(table, query, words):
    status, body = call(readings_event(**query))
    assert status == 400 and words in body["error"], body


def test_readings_of_a_bad_device_name(table):
    status, body = call(readings_event(device="a+b"))
    assert status == 400 and "device" in body["error"]


def test_status(table):
    status, body = call(proxy("/status"))
    assert (status, body) == (200, {"ready": True, "table": "digitaltwin", "index": "device-ts", "problems": []})


def test_a_table_made_the_seeds_way_serves_readings_by_scan_with_one_warning(monkeypatch, caplog):
    with mock_aws():
        app._tables.clear()
        seed_table(boto3.client("dynamodb"), "seedtable")
        monkeypatch.setenv("table_name", "seedtable")
        caplog.set_level(logging.WARNING, logger="dtwin.table")
        app._tables.clear()
        # Small pages, so the Scan's pagination is exercised.
        app.twin_table(app.Settings.from_environment()).page_size = 2
        store_readings()
        for _ in range(2):
            status, body = call(readings_event(since="2026-12-01T12:00:01Z", limit="3"))
            assert status == 200, body
            assert [item["value"] for item in body["items"]] == [2, 3, 4]
        warnings = [r.getMessage() for r in caplog.records if r.name == "dtwin.table"]
        assert len(warnings) == 1 and "aws dynamodb update-table --table-name seedtable" in warnings[0]
        status, body = call(proxy("/status"))
        assert status == 200 and body["ready"] is True and body["index"] is None
    app._tables.clear()
