"""The cloud message contract (README: "Topic tree", "The IoT event", "The twin table") as the Lambda reads it. Pure: no I/O, no clock.

It decodes a device message exactly as the bridge's `local` upstream does (DTwinContract's
DevicePayload and TwinItem), so an item is the same whichever side stored it; the shared
contract test in cloud/tests/test_contract.py holds the two to that.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Optional

DEVICE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
RESERVED_DEVICE = "bridge"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
LEGACY_INTEGER = re.compile(r"[+-]?[0-9]+")


class BadEvent(ValueError):
    """The event is not something the function can store; the message says why (a 4xx)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def device_name_problem(name: str) -> Optional[str]:
    """Why `name` is not a device name (`[A-Za-z0-9_-]{1,64}`, not `bridge`), or None."""
    if not name:
        return "is empty"
    if len(name.encode()) > 64:
        return "is longer than 64 characters"
    if not DEVICE_NAME.fullmatch(name):
        return "contains a character outside A-Z a-z 0-9 _ -"
    if name == RESERVED_DEVICE:
        return "is reserved for the bridge's own topics"
    return None


def require_device(name: Optional[str], what: str = "SimUniqueName") -> str:
    if name is None:
        raise BadEvent(f"{what} is missing")
    problem = device_name_problem(name)
    if problem:
        raise BadEvent(f"{what} {name[:80]!r} {problem}")
    return name


# MARK: payload decoding (DevicePayload.decode)


@dataclass
class Decoded:
    kind: str  # reading | awake | raw
    value: Optional[float] = None
    seq: Optional[int] = None
    ts_millis: Optional[int] = None
    unit: Optional[str] = None


# Unicode's White_Space property, which Swift's trimming uses (str.isspace also counts U+001C-1F).
WHITE_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(code) for code in range(0x2000, 0x200B)
)


def _is_whitespace(char: str) -> bool:
    return char in WHITE_SPACE


def _trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_whitespace(text[start]):
        start += 1
    while end > start and _is_whitespace(text[end - 1]):
        end -= 1
    return text[start:end]


def decode_payload(raw: bytes) -> Decoded:
    """What a device payload is. Total: anything that is not a reading or an awake event is raw."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Decoded("raw")
    trimmed = _trim(text)
    if trimmed.startswith("{"):
        return _decode_json(trimmed)
    return _decode_legacy(trimmed) or Decoded("raw")


def _decode_legacy(text: str) -> Optional[Decoded]:
    """`sim-<dev> data <int>` (a reading) and `<dev>:awake` / `sim-<dev>:awake` (a boot)."""
    if text.endswith(":awake"):
        name = text[: -len(":awake")]
        plain = device_name_problem(name) is None
        sim = name.startswith("sim-") and device_name_problem(name[4:]) is None
        return Decoded("awake") if plain or sim else None
    words = [word for word in text.split(" ") if word]
    if len(words) != 3 or not words[0].startswith("sim-") or words[1] != "data":
        return None
    if device_name_problem(words[0][4:]) is not None:
        return None
    if not LEGACY_INTEGER.fullmatch(words[2]) or not INT64_MIN <= int(words[2]) <= INT64_MAX:
        return Decoded("raw")
    return Decoded("reading", value=float(int(words[2])))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _json_number(value) -> Optional[float]:
    """A JSON number as the bridge reads it (a double); booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return float("inf")


def _exact_int64(number: Optional[float]) -> Optional[int]:
    if number is None or number != number or number in (float("inf"), float("-inf")) or not number.is_integer():
        return None
    whole = int(number)
    return whole if INT64_MIN <= whole <= INT64_MAX else None


def _decode_json(text: str) -> Decoded:
    """`{"value": <number>, "seq": <int>?, "ts": <unix ms>?, "unit": <string>?}`."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return Decoded("raw")
    if not isinstance(document, dict) or "value" not in document:
        return Decoded("raw")
    value = _json_number(document["value"])
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return Decoded("raw")
    decoded = Decoded("reading", value=value)
    if document.get("seq") is not None:
        decoded.seq = _exact_int64(_json_number(document["seq"]))
        if decoded.seq is None:
            return Decoded("raw")
    if document.get("ts") is not None:
        decoded.ts_millis = _exact_int64(_json_number(document["ts"]))
        if decoded.ts_millis is None or decoded.ts_millis < 0:
            return Decoded("raw")
    if document.get("unit") is not None:
        if not isinstance(document["unit"], str):
            return Decoded("raw")
        decoded.unit = document["unit"]
    return decoded


# MARK: time (Timestamp.iso8601 / parseMillis)


def iso8601(millis: int) -> str:
    """`2026-11-24T12:00:00.000Z` for Unix milliseconds, any year (no datetime range limit)."""
    days, ms_of_day = divmod(millis, 86_400_000)
    year, month, day = _civil(days)
    hour, minute = ms_of_day // 3_600_000, ms_of_day // 60_000 % 60
    second, ms = ms_of_day // 1000 % 60, ms_of_day % 1000
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{ms:03d}Z"


def _civil(days: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= 1 if month <= 2 else 0
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


ISO_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?"
)


def parse_millis(text: str) -> Optional[int]:
    """ISO-8601 (`Z`, `±HH:MM` or no zone = UTC) or Unix milliseconds as digits; None otherwise."""
    if text.isdigit() and text.isascii():
        return int(text)
    match = ISO_TIME.fullmatch(text)
    if not match:
        return None
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    if not 1 <= month <= 12 or not 1 <= day <= _days_in(month, year):
        return None
    millis = _days_from_civil(year, month, day) * 86_400_000
    if match[4] is None:
        return millis
    hour, minute, second = int(match[4]), int(match[5]), int(match[6] or 0)
    if hour >= 24 or minute >= 60 or second >= 60:
        return None
    fraction = match[7] or ""
    ms = int((fraction + "000")[:3]) if fraction else 0
    millis += ((hour * 60 + minute) * 60 + second) * 1000 + ms
    zone = match[8]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        millis -= sign * (int(zone[1:3]) * 60 + int(zone[4:6])) * 60_000
    return millis


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


# MARK: the twin item (TwinItem.from(event:), README: "The twin table")


@dataclass
class IoTMessage:
    """One device message, from the bridge (README: "The IoT event") or from Twilio's Super SIM webhook."""

    message_id: str
    device: str
    payload: bytes
    payload_base64: str
    received_millis: int
    source: str
    extra: dict = field(default_factory=dict)


def decode_base64(text: str, max_bytes: int) -> bytes:
    too_big = BadEvent(f"Payload is over {max_bytes} bytes", status=413)
    if len(text) > (max_bytes + 2) // 3 * 4:  # before decoding: a huge text is refused cheaply
        raise too_big
    try:
        payload = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadEvent("Payload is not base64") from None
    if len(payload) > max_bytes:
        raise too_big
    return payload


def message_from_dtwin(params: dict, max_bytes: int) -> IoTMessage:
    """README: "The IoT event"'s parameters, as the bridge's `apigw` and `lambda` upstreams send them."""
    device = require_device(params.get("SimUniqueName"))
    if "Payload" not in params:
        raise BadEvent("Payload is missing")
    payload = decode_base64(params["Payload"], max_bytes)
    message_id = params.get("MessageId") or ""
    if not message_id:
        raise BadEvent("MessageId is missing")
    received = parse_millis(params.get("ReceivedAt") or "")
    if received is None:
        raise BadEvent("ReceivedAt is missing or not ISO-8601")
    return IoTMessage(message_id, device, payload, params["Payload"], received, params.get("Source") or "mqtt")


def message_from_super_sim(params: dict, received_millis: int, max_bytes: int) -> IoTMessage:
    """Twilio's Super SIM IP-command webhook (`Sid`, `SimUniqueName`, `Payload`, `PayloadType`)."""
    device = require_device(params.get("SimUniqueName"))
    sid = params.get("Sid") or ""
    if not re.fullmatch(r"HG[0-9a-fA-F]{32}", sid):
        raise BadEvent("Sid is missing or not an IP command SID (HG followed by 32 hex digits)")
    if "Payload" not in params:
        raise BadEvent("Payload is missing")
    if params.get("PayloadType") == "text":
        payload = params["Payload"].encode()
        if len(payload) > max_bytes:
            raise BadEvent(f"Payload is over {max_bytes} bytes", status=413)
        encoded = base64.b64encode(payload).decode()
    else:
        payload = decode_base64(params["Payload"], max_bytes)
        encoded = params["Payload"]
    return IoTMessage(sid, device, payload, encoded, received_millis, "twilio-ipcommand")


def twin_item(message: IoTMessage) -> dict:
    """The item the twin table stores, attribute for attribute as the bridge's local upstream."""
    decoded = decode_payload(message.payload)
    try:
        text: Optional[str] = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    item = {
        "messageid": message.message_id,
        "device": message.device,
        "ts": iso8601(decoded.ts_millis if decoded.ts_millis is not None else message.received_millis),
        "payload": text if text is not None else message.payload_base64,
        "kind": decoded.kind,
        "source": message.source,
    }
    if text is None:
        item["payloadEncoding"] = "base64"
    if decoded.value is not None:
        item["value"] = dynamo_number(decoded.value)
    if decoded.seq is not None:
        item["seq"] = Decimal(decoded.seq)
    return item


def dynamo_number(value: float) -> Decimal:
    """A reading as DynamoDB's exact decimal: whole numbers as integers, others by repr."""
    if value.is_integer() and abs(value) < 1e15:
        return Decimal(int(value))
    return Decimal(repr(value))


# MARK: the control rule (the seed's placeholder reply "aye!", made real)


def control_reply(item: dict, threshold: Optional[float]) -> Optional[str]:
    """`LIG` (light the LED) for a reading below the threshold, `ACK` at or above it, else None."""
    led = wanted_led(item, threshold)
    return None if led is None else ("LIG" if led else "ACK")


def control_desired(item: dict, threshold: Optional[float]) -> Optional[dict]:
    """The same rule as the device's desired state: `{"led": true}` below the threshold, `{"led":
    false}` at or above it, else None. The bridge keeps it in the device's twin and sends LIG or
    ACK only when it differs from what the device reported, once, even to a device that sleeps."""
    led = wanted_led(item, threshold)
    return None if led is None else {"led": led}


def wanted_led(item: dict, threshold: Optional[float]) -> Optional[bool]:
    if threshold is None or item.get("kind") != "reading" or "value" not in item:
        return None
    return float(item["value"]) < threshold


def json_safe(item: dict) -> dict:
    """An item for a JSON answer: DynamoDB's Decimals as plain numbers."""
    out = {}
    for key, value in item.items():
        if isinstance(value, Decimal):
            out[key] = int(value) if value == value.to_integral_value() else float(value)
        else:
            out[key] = value
    return out
