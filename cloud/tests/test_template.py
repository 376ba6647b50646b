"""cloud/template.yaml: cfn-lint, the SAM transform, one table definition, least privilege, the
routes the handler serves, and the layer built the seed's way."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from moto import mock_aws
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

import app
from conftest import CLOUD, TABLE_DEFINITION
from standins import routes_from_template

TEMPLATE_PATH = CLOUD / "template.yaml"
TEMPLATE = yaml_parse(TEMPLATE_PATH.read_text())
RESOURCES = TEMPLATE["Resources"]
BIN = Path(sys.executable).parent


class NoManagedPolicies:
    """The template names no AWS managed policy, so the transform never needs IAM to look one up."""

    def load(self):
        return {}


def test_cfn_lint_passes():
    result = subprocess.run([str(BIN / "cfn-lint"), str(TEMPLATE_PATH)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def packaged_template() -> dict:
    """The template as `sam package` / `aws cloudformation package` hands it to CloudFormation:
    local folders replaced by the S3 objects they were uploaded to."""
    template = yaml_parse(TEMPLATE_PATH.read_text())
    template["Resources"]["DigitalTwinFunction"]["Properties"]["CodeUri"] = "s3://dtwin-artifacts/function.zip"
    template["Resources"]["RequirementsLayer"]["Properties"]["ContentUri"] = "s3://dtwin-artifacts/layer.zip"
    return template


def test_the_sam_transform_succeeds_and_makes_the_api():
    output = transform(packaged_template(), {}, NoManagedPolicies())
    kinds = [resource["Type"] for resource in output["Resources"].values()]
    for kind in ("AWS::ApiGateway::RestApi", "AWS::ApiGateway::Stage", "AWS::Lambda::Function",
                 "AWS::Lambda::LayerVersion", "AWS::DynamoDB::Table", "AWS::IAM::Role", "AWS::Lambda::Permission"):
        assert kind in kinds, kind
    [api] = [r for r in output["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    paths = api["Properties"]["Body"]["paths"]
    auth = {(path, method.upper()): bool(spec.get("security")) and "AWS_IAM" in str(spec["security"])
            for path, methods in paths.items() for method, spec in methods.items()}
    assert auth == {("/iot", "GET"): False, ("/iot", "POST"): False, ("/bridge", "POST"): True,
                    ("/devices/{device}/readings", "GET"): True, ("/status", "GET"): True}


def test_one_table_definition():
    """The template's table is cloud/dynamodb-table.json's, plus recovery and encryption."""
    table = RESOURCES["DigitalTwinTable"]["Properties"]
    assert TEMPLATE["Parameters"]["TableName"]["Default"] == TABLE_DEFINITION["TableName"]
    for key in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"):
        assert table[key] == TABLE_DEFINITION[key], key
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert RESOURCES["DigitalTwinTable"]["DeletionPolicy"] == "Retain"


def test_the_functions_role_has_only_what_it_needs():
    statements = [statement for policy in RESOURCES["FunctionRole"]["Properties"]["Policies"]
                  for statement in policy["PolicyDocument"]["Statement"]]
    actions = sorted(action for statement in statements for action in statement["Action"])
    assert actions == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
                       "logs:CreateLogStream", "logs:PutLogEvents"]
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources and all("*" not in str(action) for action in statement["Action"])
    function = RESOURCES["DigitalTwinFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    assert "Policies" not in function  # SAM would otherwise add a role of its own


def test_the_function_keeps_the_seeds_environment_names_and_a_current_runtime():
    function = RESOURCES["DigitalTwinFunction"]["Properties"]
    names = set(function["Environment"]["Variables"])
    assert {"acct_id_env", "acct_token_env", "table_name"} <= names
    assert TEMPLATE["Parameters"]["TwilioAuthToken"]["NoEcho"] is True
    assert TEMPLATE["Globals"]["Function"]["Runtime"] in ("python3.12", "python3.13")
    assert function["Handler"] == "app.lambda_handler"
    assert (CLOUD / function["CodeUri"] / "app.py").is_file()
    layer = RESOURCES["RequirementsLayer"]["Properties"]
    assert layer["LayerName"] == "digitaltwin_requirements"
    assert (CLOUD / layer["ContentUri"] / "requirements.txt").is_file()


def test_every_route_in_the_template_is_served_by_the_handler(monkeypatch):
    routes = routes_from_template(TEMPLATE)
    assert {(r.method, r.path, r.iam) for r in routes} == {
        ("GET", "/iot", False), ("POST", "/iot", False), ("POST", "/bridge", True),
        ("GET", "/devices/{device}/readings", True), ("GET", "/status", True)}
    handled = {(method, resource) for resource, methods in app_routes().items() for method in methods}
    for route in routes:
        assert (route.method, route.path) in handled


def app_routes() -> dict:
    """The handler's routing table, read by asking it: 404 means no such route, 405 a wrong method.
    Under mock_aws, so a route that reaches for the table stays on this machine."""
    found: dict[str, set] = {}
    with mock_aws():
        for resource in ("/iot", "/bridge", "/devices/{device}/readings", "/status", "/elsewhere"):
            for method in ("GET", "POST"):
                event = {"httpMethod": method, "resource": resource, "path": resource, "headers": {}}
                if app.lambda_handler(event, None)["statusCode"] not in (404, 405):
                    found.setdefault(resource, set()).add(method)
    app._tables.clear()
    assert "/elsewhere" not in found
    return found


def test_the_bridge_may_write_twin_documents_and_nothing_else():
    statements = RESOURCES["BridgePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    writes = [statement for statement in statements if "dynamodb:PutItem" in statement["Action"]]
    assert len(writes) == 1 and sorted(writes[0]["Action"]) == ["dynamodb:GetItem", "dynamodb:PutItem"]
    assert writes[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["twin:*"]}}
    actions = {action for statement in statements for action in statement["Action"]}
    assert not actions & {"dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"}


def test_the_outputs_give_the_bridge_its_configuration():
    outputs = TEMPLATE["Outputs"]
    for name in ("InvokeURL", "TableName", "FunctionArn", "TwilioWebhookURL", "DtwinConfiguration", "BridgePolicyArn"):
        assert name in outputs, name
    lines = outputs["DtwinConfiguration"]["Value"]["Fn::Sub"]
    for expected in ("mode: apigw", "/bridge", "method: POST", "auth: iam", "kind: dynamodb", "table: ${DigitalTwinTable}"):
        assert expected in lines, expected


def test_the_layer_builds_the_seeds_way(tmp_path):
    output = tmp_path / "python.zip"
    env = dict(os.environ, PYTHON=sys.executable)
    result = subprocess.run([str(CLOUD / "build-layer.sh"), str(output)], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    names = zipfile.ZipFile(output).namelist()
    assert names and all(name.startswith("python/") for name in names)
    tops = {name.split("/")[1] for name in names}
    assert {"twilio", "jwt", "jinja2", "bcrypt"} <= tops
    # bcrypt's compiled part, built for Lambda's Linux, not this machine's Python.
    assert any(name.startswith("python/bcrypt/") and name.endswith(".so") for name in names)
    unpacked = tmp_path / "layer"
    zipfile.ZipFile(output).extractall(unpacked)
    check = subprocess.run([sys.executable, "-c", "import twilio.rest, jwt, jinja2, bcrypt"],
                           env={"PYTHONPATH": str(unpacked / "python"), "PATH": os.environ["PATH"]},
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
