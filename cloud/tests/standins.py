"""Local stand-ins for the services the cloud side talks to, each a real HTTP server on 127.0.0.1.

- TwilioSuperSim: Twilio's Super SIM IP Commands API (`POST /v1/IpCommands`). It checks what
  Twilio checks (Basic auth with the account SID and token, the form fields and their values)
  and answers in Twilio's shapes (201 with the IpCommand resource; 401/400 with Twilio's error).
- ApiGateway: API Gateway's REST API for cloud/template.yaml, routes read from the template. It
  checks AWS_IAM routes' Signature Version 4 (recomputed with botocore, an implementation
  independent of dtwin's), builds the proxy event (payload format 1.0) from the HTTP request as
  API Gateway does, calls the handler, and writes its proxy response back.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet: pytest shows failures, not traffic
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status: int, body: bytes, headers: dict):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Running:
    """Starts `server` on a free loopback port in a thread; `stop()` shuts it down."""

    def start(self, handler_class):
        self.server = _Server(("127.0.0.1", 0), handler_class)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# MARK: Twilio's Super SIM IP Commands API


class TwilioSuperSim(_Running):
    def __init__(self, account_sid: str, auth_token: str):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.commands: list[dict] = []
        self.refusals: list[str] = []
        self.fail_with: Optional[int] = None
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        return super().start(_TwilioHandler)

    def error(self, status: int, code: int, message: str) -> tuple[int, dict]:
        with self.lock:
            self.refusals.append(message)
        return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status}

    def create(self, authorization: Optional[str], body: bytes) -> tuple[int, dict]:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if authorization != expected:
            return self.error(401, 20003, "Authenticate")
        if self.fail_with:
            return self.error(self.fail_with, 20500, "Internal Server Error")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        for required in ("Sim", "Payload", "DevicePort"):
            if not form.get(required):
                return self.error(400, 20001, f"Missing required parameter {required} in the post body")
        if not form["DevicePort"].isdigit() or not 1 <= int(form["DevicePort"]) <= 65535:
            return self.error(400, 20001, "DevicePort must be a port number")
        payload_type = form.get("PayloadType", "text")
        if payload_type not in ("text", "binary"):
            return self.error(400, 20001, "PayloadType must be text or binary")
        if len(form["Payload"].encode()) > 1300:
            return self.error(400, 20001, "Payload must not exceed 1300 bytes")
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        sid = "HG" + secrets.token_hex(16)
        resource = {
            "sid": sid, "account_sid": self.account_sid, "sim_sid": "HS" + secrets.token_hex(16),
            "sim_iccid": "89883070000123456789", "status": "queued", "direction": "to_sim", "device_ip": None,
            "device_port": int(form["DevicePort"]), "payload_type": payload_type, "payload": form["Payload"],
            "date_created": now, "date_updated": now, "url": f"https://supersim.twilio.com/v1/IpCommands/{sid}",
        }
        with self.lock:
            self.commands.append({"sim": form["Sim"], **resource})
        return 201, resource


class _TwilioHandler(_Handler):
    def do_POST(self):
        owner: TwilioSuperSim = self.server.owner
        body = self.read_body()
        if self.path != "/v1/IpCommands":
            status, answer = owner.error(404, 20404, f"The requested resource {self.path} was not found")
        else:
            status, answer = owner.create(self.headers.get("Authorization"), body)
        self.send(status, json.dumps(answer).encode(), {"Content-Type": "application/json"})


# MARK: API Gateway (REST API, proxy integration)


class Route:
    def __init__(self, method: str, path: str, iam: bool):
        self.method, self.path, self.iam = method, path, iam
        names = re.findall(r"\{(\w+)\}", path)
        pattern = re.escape(path)
        for name in names:
            pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
        self.pattern = re.compile(pattern)


def routes_from_template(template: dict) -> list[Route]:
    """The API events of every function in cloud/template.yaml: method, path, whether AWS_IAM."""
    found = []
    default_iam = (((template.get("Globals") or {}).get("Api") or {}).get("Auth") or {}).get("DefaultAuthorizer") == "AWS_IAM"
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            props = event["Properties"]
            authorizer = (props.get("Auth") or {}).get("Authorizer")
            iam = authorizer == "AWS_IAM" or (authorizer is None and default_iam)
            found.append(Route(props["Method"].upper(), props["Path"], iam))
    return found


class ApiGateway(_Running):
    """API Gateway for `routes`, on stage `stage`, calling `handler(event, context)`."""

    def __init__(self, routes: list[Route], handler: Callable, credentials: dict[str, str], region: str,
                 stage: str = "prod", account_id: str = "123456789012"):
        self.routes, self.handler, self.credentials = routes, handler, credentials
        self.region, self.stage, self.account_id = region, stage, account_id
        self.requests: list[dict] = []
        self.refusals: list[str] = []
        self.lock = threading.Lock()

    def start(self):
        return super().start(_ApiGatewayHandler)

    @property
    def invoke_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.stage}"

    def refuse(self, status: int, error_type: str, message: str) -> tuple[int, dict, bytes]:
        with self.lock:
            self.refusals.append(f"{error_type}: {message}")
        return status, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}, \
            json.dumps({"message": message}).encode()

    def serve(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes):
        split = urlsplit(target)
        prefix = f"/{self.stage}"
        if not (split.path == prefix or split.path.startswith(prefix + "/")):
            return self.refuse(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        path = split.path[len(prefix):] or "/"
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match and route.method == method:
                break
        else:
            # API Gateway answers an unknown route or method this way, whatever the auth.
            return self.refuse(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        identity = {"sourceIp": "127.0.0.1", "userAgent": _header(headers, "user-agent")}
        if route.iam:
            problem, access_key = self.check_signature(method, target, headers, body)
            if problem:
                return problem
            identity.update({"accessKey": access_key, "accountId": self.account_id,
                             "userArn": f"arn:aws:iam::{self.account_id}:user/dtwin-bridge", "caller": access_key})
        event = self.proxy_event(route, match, method, split, headers, body, identity)
        with self.lock:
            self.requests.append(event)
        result = self.handler(event, None)
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            return 502, {"Content-Type": "application/json", "x-amzn-ErrorType": "InternalServerErrorException"}, \
                b'{"message": "Internal server error"}'
        out_body = result.get("body") or ""
        data = base64.b64decode(out_body) if result.get("isBase64Encoded") else out_body.encode()
        return result["statusCode"], dict(result.get("headers") or {}), data

    def check_signature(self, method, target, headers, body):
        """What API Gateway checks for AWS_IAM: a SigV4 Authorization for execute-api in this region,
        a known key, a fresh X-Amz-Date, host among the signed headers, and the signature itself."""
        authorization = _header(headers, "authorization")
        if not authorization:
            return self.refuse(403, "MissingAuthenticationTokenException", "Missing Authentication Token"), None
        match = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                             r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", authorization)
        if not match:
            return self.refuse(403, "IncompleteSignatureException", "Authorization header requires "
                               "Credential, SignedHeaders and Signature"), None
        access_key, day, region, service, signed_names, signature = match.groups()
        if access_key not in self.credentials:
            return self.refuse(403, "UnrecognizedClientException", "The security token included in the request is invalid"), None
        if region != self.region or service != "execute-api":
            return self.refuse(403, "InvalidSignatureException",
                               f"Credential should be scoped to a valid region and service execute-api, not {region}/{service}"), None
        amz_date = _header(headers, "x-amz-date") or ""
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            return self.refuse(403, "IncompleteSignatureException", "X-Amz-Date is missing or malformed"), None
        if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 300 or day != amz_date[:8]:
            return self.refuse(403, "InvalidSignatureException", "Signature expired or not yet current"), None
        names = signed_names.split(";")
        if "host" not in names:
            return self.refuse(403, "IncompleteSignatureException", "host must be a signed header"), None
        signed_headers = {name: ",".join(v.strip() for k, v in headers if k.lower() == name) for name in names}
        request = AWSRequest(method=method, url=f"http://{signed_headers['host']}{target}", data=body,
                             headers=signed_headers)
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(access_key, self.credentials[access_key]), "execute-api", region)
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if expected != signature:
            return self.refuse(403, "InvalidSignatureException", "The request signature we calculated does not match "
                               "the signature you provided."), None
        return None, access_key

    def proxy_event(self, route, match, method, split, headers, body, identity) -> dict:
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in headers:
            single[name] = value  # the last value wins, as in API Gateway
            multi.setdefault(name, []).append(value)
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        query = {name: value for name, value in query_pairs} or None
        multi_query: dict[str, list[str]] = {}
        for name, value in query_pairs:
            multi_query.setdefault(name, []).append(value)
        text_body: Optional[str]
        is_base64 = False
        try:
            text_body = body.decode() if body else None
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
        now = datetime.datetime.now(datetime.timezone.utc)
        return {
            "resource": route.path,
            "path": unquote(split.path[len(self.stage) + 1:]),
            "httpMethod": method,
            "headers": single or None,
            "multiValueHeaders": multi or None,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": {k: unquote(v) for k, v in match.groupdict().items()} or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": self.account_id, "resourceId": "abc123", "stage": self.stage,
                "requestId": secrets.token_hex(16), "resourcePath": route.path, "httpMethod": method,
                "path": split.path, "protocol": "HTTP/1.1", "apiId": "dtwinapi01",
                "domainName": _header(headers, "host"), "identity": identity,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }


def _header(headers: list[tuple[str, str]], name: str) -> Optional[str]:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class _ApiGatewayHandler(_Handler):
    def handle_any(self):
        owner: ApiGateway = self.server.owner
        body = self.read_body()
        status, headers, data = owner.serve(self.command, self.path, list(self.headers.items()), body)
        self.send(status, data, headers)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any
