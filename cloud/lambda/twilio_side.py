"""Twilio, from the function: the Super SIM webhook's signature, and replies sent as IP commands.

Both use the `twilio` package from the layer: its RequestValidator is the reference
implementation of X-Twilio-Signature, and its client sends `client.supersim.v1.ip_commands`.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote, urlencode

from twilio.request_validator import RequestValidator
from twilio.rest import Client

# The UDP port the device listens on for IP commands (the seed's sketch uses 6969).
DEFAULT_DEVICE_PORT = 6969


def called_urls(event: dict, public_url: Optional[str]) -> list[str]:
    """The URL Twilio called, as the candidates to check the signature against.

    API Gateway passes the host (`Host`), the stage and path (`requestContext.path`, e.g.
    `/prod/iot`). Behind a custom domain or a proxy, `public_url` (the function's `public_url`
    setting) replaces scheme, host and stage. A GET's query is part of the signed URL; API
    Gateway hands it over decoded, so it is encoded again in both ways Twilio may have used.
    """
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    if public_url:
        base = public_url.rstrip("/") + (event.get("path") or "")
    else:
        path = context.get("path") or f"/{context.get('stage', '')}{event.get('path') or ''}"
        scheme = headers.get("x-forwarded-proto", "https")
        base = f"{scheme}://{headers.get('host', context.get('domainName', ''))}{path}"
    if (event.get("httpMethod") or "").upper() != "GET":
        return [base]
    pairs = [(name, value) for name, values in (event.get("multiValueQueryStringParameters") or {}).items()
             for value in values]
    if not pairs:
        return [base]
    return [f"{base}?{urlencode(pairs)}", f"{base}?{urlencode(pairs, quote_via=quote)}"]


def signature_is_valid(auth_token: str, urls: list[str], params: dict, signature: Optional[str]) -> bool:
    if not signature:
        return False
    validator = RequestValidator(auth_token)
    return any(validator.validate(url, params, signature) for url in urls)


class IPCommands:
    """Sends a reply to a Super SIM as an IP command (text, to the device's port)."""

    def __init__(self, account_sid: str, auth_token: str, supersim_base: Optional[str], device_port: int):
        self.client = Client(account_sid, auth_token)
        if supersim_base:
            # Twilio's regional or test endpoints; Twilio's own by default.
            self.client.supersim.base_url = supersim_base.rstrip("/")
        self.device_port = device_port

    def send(self, device: str, text: str) -> str:
        """Sends `text` to the SIM named `device`; returns the IP command's SID."""
        command = self.client.supersim.v1.ip_commands.create(
            sim=device, payload=text, device_port=self.device_port, payload_type="text")
        return command.sid
