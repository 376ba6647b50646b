"""The seed's Lambda, made real: `app.lambda_handler` behind the API of cloud/template.yaml.

Routes (API Gateway REST, proxy integration, payload format 1.0):
  GET|POST /iot                   Twilio's Super SIM IP-command webhook (X-Twilio-Signature checked)
  POST /bridge                    dtwin's `apigw` upstream (AWS_IAM): README: "The IoT event"'s parameters
  GET /devices/{device}/readings  the seed's non-IoT API: since, until, limit (AWS_IAM)
  GET /status                     the table answers and has its index (AWS_IAM)
The Lambda console's test event `{"testuser": "kilroy", "testdata": "3.14", "isIOT": "False"}`
is answered 200 with one log line; dtwin's `lambda` upstream (resource /digitaltwin) is a
dtwin event too.

Settings (environment): acct_id_env, acct_token_env (Twilio, the seed's names), table_name,
light_threshold (a reading below it is answered LIG, at or above ACK; unset: no reply),
control_answer (`reply`: answer dtwin with the command; `desired`: with the device's desired state,
{"desired": {"led": true|false}}, which the bridge keeps in the twin; Super SIM webhooks always get
the command as an IP command),
public_url (the URL Twilio calls, behind a custom domain), ip_command_port (6969),
twilio_supersim_base (Twilio's own by default), max_payload_bytes (262144).
AWS_ENDPOINT_URL_DYNAMODB points boto3 at another DynamoDB (a local one in tests).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import parse_qsl

import boto3

import contract
from contract import BadEvent
from table import TableUnavailable, TwinTable
from twilio_side import DEFAULT_DEVICE_PORT, IPCommands, called_urls, signature_is_valid

log = logging.getLogger("dtwin")
log.setLevel(logging.INFO)

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
# dtwin's `lambda` upstream invokes the function with this resource (APIGatewayProxyEvent.defaultPath).
INVOKE_RESOURCE = "/digitaltwin"


@dataclass
class Settings:
    table_name: str
    account_sid: Optional[str]
    auth_token: Optional[str]
    light_threshold: Optional[float]
    control_answer: str
    public_url: Optional[str]
    device_port: int
    supersim_base: Optional[str]
    max_payload_bytes: int

    @staticmethod
    def from_environment(env=os.environ) -> "Settings":
        def number(name: str, default, kind):
            text = (env.get(name) or "").strip()
            if not text:
                return default
            try:
                return kind(text)
            except ValueError:
                raise RuntimeError(f"the function's setting {name}={text!r} is not a number") from None

        def choice(name: str, choices: tuple) -> str:
            text = (env.get(name) or "").strip() or choices[0]
            if text not in choices:
                raise RuntimeError(f"the function's setting {name}={text!r} is not one of {', '.join(choices)}")
            return text

        return Settings(
            table_name=env.get("table_name") or "digitaltwin",
            account_sid=env.get("acct_id_env") or None,
            auth_token=env.get("acct_token_env") or None,
            light_threshold=number("light_threshold", None, float),
            control_answer=choice("control_answer", ("reply", "desired")),
            public_url=env.get("public_url") or None,
            device_port=number("ip_command_port", DEFAULT_DEVICE_PORT, int),
            supersim_base=env.get("twilio_supersim_base") or None,
            max_payload_bytes=number("max_payload_bytes", 256 * 1024, int),
        )


_tables: dict[tuple, TwinTable] = {}


def twin_table(settings: Settings) -> TwinTable:
    """One table object per container (boto3 resources are slow to make, cheap to reuse)."""
    key = (settings.table_name, os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"), os.environ.get("AWS_ACCESS_KEY_ID"))
    if key not in _tables:
        _tables[key] = TwinTable(boto3.resource("dynamodb").Table(settings.table_name))
    return _tables[key]


def answer(status: int, body: dict) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, separators=(",", ":"), sort_keys=True),
        "isBase64Encoded": False,
    }


def lambda_handler(event, context):
    try:
        settings = Settings.from_environment()
        return route(event, settings)
    except BadEvent as error:
        return answer(error.status, {"error": str(error)})
    except TableUnavailable as error:
        log.error("twin table not available: %s", error)
        return answer(503, {"error": f"the twin table is not available: {error}"})
    except Exception:  # the function's own fault: say so without a stack trace to the caller
        log.error("unhandled error: %s", traceback.format_exc())
        return answer(500, {"error": "internal error in the function (see its log)"})


def route(event, settings: Settings) -> dict:
    if not isinstance(event, dict):
        raise BadEvent("the event is not a JSON object")
    if "httpMethod" not in event:
        if "testuser" in event or "isIOT" in event:
            return test_event(event)
        raise BadEvent("not an event this function handles: neither an API Gateway proxy event nor the console test event")
    method = (event.get("httpMethod") or "").upper()
    resource = event.get("resource") or ""
    routes: dict[str, dict[str, Callable[[dict, Settings], dict]]] = {
        "/iot": {"GET": super_sim_webhook, "POST": super_sim_webhook},
        "/bridge": {"POST": dtwin_event},
        INVOKE_RESOURCE: {"GET": dtwin_event, "POST": dtwin_event},
        "/devices/{device}/readings": {"GET": readings},
        "/status": {"GET": status},
    }
    if resource not in routes:
        return answer(404, {"error": f"no route {resource or event.get('path')!r}; the routes are {', '.join(sorted(routes))}"})
    handler = routes[resource].get(method)
    if handler is None:
        return answer(405, {"error": f"{resource} takes {', '.join(sorted(routes[resource]))}, not {method}"})
    return handler(event, settings)


# MARK: the console test event


def test_event(event: dict) -> dict:
    if str(event.get("isIOT", "False")).lower() != "false":
        raise BadEvent('a test event has "isIOT": "False"')
    log.info("console test event: testuser=%s testdata=%s", event.get("testuser"), event.get("testdata"))
    return answer(200, {"message": "test event received", "testuser": str(event.get("testuser", "")),
                        "testdata": str(event.get("testdata", ""))})


# MARK: parameters


def parameters(event: dict) -> dict:
    """Query string and (for a form POST) body parameters; the first value of each name wins."""
    params: dict[str, str] = {}
    for name, values in (event.get("multiValueQueryStringParameters") or {}).items():
        if values:
            params.setdefault(name, values[0])
    for name, value in (event.get("queryStringParameters") or {}).items():
        params.setdefault(name, value)
    body = event.get("body")
    if body:
        headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
        content_type = headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            raise BadEvent(f"expected a form body (application/x-www-form-urlencoded), not {content_type or 'no type'}", 415)
        try:
            text = base64.b64decode(body).decode() if event.get("isBase64Encoded") else body
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
        except (ValueError, UnicodeDecodeError) as error:
            raise BadEvent(f"the form body cannot be read: {error}") from None
        for name, value in pairs:
            params.setdefault(name, value)
    return params


def received_millis(event: dict) -> int:
    epoch = (event.get("requestContext") or {}).get("requestTimeEpoch")
    return int(epoch) if isinstance(epoch, int) and epoch > 0 else int(time.time() * 1000)


# MARK: POST /bridge — dtwin's upstream


def dtwin_event(event: dict, settings: Settings) -> dict:
    params = parameters(event)
    if "SimUniqueName" not in params and ("testuser" in params or "isIOT" in params):
        return test_event(params)
    message = contract.message_from_dtwin(params, settings.max_payload_bytes)
    item, stored = store(message, settings)
    body = {"messageId": item["messageid"], "stored": "new" if stored else "duplicate"}
    # A retried message gets its answer again: the bridge did not see the first one.
    if settings.control_answer == "desired":
        desired = contract.control_desired(item, settings.light_threshold)
        if desired:
            body["desired"] = desired
    else:
        reply = contract.control_reply(item, settings.light_threshold)
        if reply:
            body["reply"] = reply
    return answer(200, body)


def store(message: contract.IoTMessage, settings: Settings) -> tuple[dict, bool]:
    item = contract.twin_item(message)
    stored = twin_table(settings).put(item)
    log.info("%s %s from %s (%s)", "stored" if stored else "already stored", item["messageid"], item["device"], item["kind"])
    return item, stored


# MARK: GET|POST /iot — Twilio's Super SIM IP-command webhook


def super_sim_webhook(event: dict, settings: Settings) -> dict:
    if not settings.auth_token:
        log.error("Super SIM webhook refused: acct_token_env is not set, so signatures cannot be checked")
        return answer(403, {"error": "signatures cannot be checked: the function has no Twilio auth token"})
    params = parameters(event)
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    urls = called_urls(event, settings.public_url)
    signed = {} if (event.get("httpMethod") or "").upper() == "GET" else params
    if not signature_is_valid(settings.auth_token, urls, signed, headers.get("x-twilio-signature")):
        log.warning("Super SIM webhook refused: bad or missing X-Twilio-Signature for %s (is public_url right?)", urls[0])
        return answer(403, {"error": "missing or invalid X-Twilio-Signature"})
    if settings.account_sid and params.get("AccountSid") not in (None, settings.account_sid):
        return answer(403, {"error": "the webhook is for another Twilio account"})
    if params.get("Direction", "from_sim") != "from_sim":
        return answer(200, {"ignored": "only from_sim IP commands are stored"})
    message = contract.message_from_super_sim(params, received_millis(event), settings.max_payload_bytes)
    item, stored = store(message, settings)
    body = {"messageId": item["messageid"], "stored": "new" if stored else "duplicate"}
    reply = contract.control_reply(item, settings.light_threshold)
    if reply:
        body["reply"] = reply
        if not settings.account_sid:
            log.error("reply %s for %s not sent: acct_id_env is not set", reply, message.device)
            return answer(502, dict(body, error="the reply was not sent: acct_id_env is not set"))
        try:
            body["ipCommandSid"] = IPCommands(
                settings.account_sid, settings.auth_token, settings.supersim_base, settings.device_port
            ).send(message.device, reply)
        except Exception as error:  # Twilio refused or could not be reached: the reading is stored
            log.error("reply %s for %s not sent: %s", reply, message.device, error)
            return answer(502, dict(body, error=f"stored, but the reply was not sent: {error}"))
    return answer(200, body)


# MARK: GET /devices/{device}/readings and GET /status — the non-IoT API


def readings(event: dict, settings: Settings) -> dict:
    device = contract.require_device((event.get("pathParameters") or {}).get("device"), "device")
    query = event.get("queryStringParameters") or {}
    unknown = sorted(set(query) - {"since", "until", "limit"})
    if unknown:
        raise BadEvent(f"unknown query parameter {unknown[0]!r}: this route takes limit, since, until")
    bounds: dict[str, Optional[int]] = {}
    for name in ("since", "until"):
        text = query.get(name)
        bounds[name] = None if text is None else contract.parse_millis(text)
        if text is not None and bounds[name] is None:
            raise BadEvent(f"{name}={text!r} is not an ISO-8601 time (2026-11-24T12:00:00Z) or Unix milliseconds")
    if bounds["since"] is not None and bounds["until"] is not None and bounds["since"] >= bounds["until"]:
        raise BadEvent("since must be earlier than until")
    limit_text = query.get("limit", str(DEFAULT_LIMIT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise BadEvent(f"limit={limit_text!r} must be a whole number from 1 to {MAX_LIMIT}")
    items = twin_table(settings).readings(device, bounds["since"], bounds["until"], int(limit_text))
    return answer(200, {"device": device, "count": len(items), "items": [api_item(item) for item in items]})


def api_item(item: dict) -> dict:
    """An item in the bridge's /api shape (its TwinItem keys: messageId, not messageid)."""
    shown = contract.json_safe(item)
    shown["messageId"] = shown.pop("messageid", "")
    return shown


def status(event: dict, settings: Settings) -> dict:
    report = twin_table(settings).status()
    return answer(200 if report["ready"] else 503, report)
