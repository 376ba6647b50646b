"""Shared fixtures for the cloud side's tests: the handler's folder on sys.path, made-up
credentials, a twin table on moto, a Twilio stand-in, and the project's paths."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

CLOUD = Path(__file__).resolve().parent.parent
PROJECT = CLOUD.parent
sys.path.insert(0, str(CLOUD / "lambda"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

REGION = "us-west-2"
# Made up: no AWS account or Twilio endpoint is reachable from the tests.
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "12345678901234567890123456789012"
TABLE_DEFINITION = json.loads((CLOUD / "dynamodb-table.json").read_text())


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch):
    """Fake AWS credentials and region; no test can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTCLOUD")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cloud-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    for name in ("acct_id_env", "acct_token_env", "table_name", "light_threshold", "public_url",
                 "ip_command_port", "twilio_supersim_base", "max_payload_bytes"):
        monkeypatch.delenv(name, raising=False)


def create_table(client, definition: dict = TABLE_DEFINITION, name: str | None = None):
    """The twin table from cloud/dynamodb-table.json (the table the template makes too)."""
    spec = dict(definition)
    if name:
        spec["TableName"] = name
    client.create_table(**spec)
    return spec["TableName"]


def seed_table(client, name: str):
    """A table made the seed's way: partition key `messageid` and nothing else."""
    client.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "messageid", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "messageid", "KeyType": "HASH"}],
                        BillingMode="PAY_PER_REQUEST")
    return name


@pytest.fixture
def twilio_api():
    from standins import TwilioSuperSim

    server = TwilioSuperSim(ACCOUNT_SID, AUTH_TOKEN).start()
    yield server
    server.stop()
