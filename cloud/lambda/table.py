"""The twin table `digitaltwin` on DynamoDB (README: "The twin table"): idempotent writes, a device's readings.

Readings come from the `device-ts` index. A table made the seed's way (partition key only) has
no index: then a paginated Scan with a filter serves them, and one warning says how to add it.
"""

from __future__ import annotations

import logging
from typing import Optional

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import BotoCoreError, ClientError

from contract import iso8601

INDEX = "device-ts"
log = logging.getLogger("dtwin.table")

ADD_INDEX_COMMAND = (
    "aws dynamodb update-table --table-name {table} "
    "--attribute-definitions AttributeName=device,AttributeType=S AttributeName=ts,AttributeType=S "
    "--global-secondary-index-updates "
    "'[{{\"Create\":{{\"IndexName\":\"device-ts\",\"KeySchema\":[{{\"AttributeName\":\"device\",\"KeyType\":\"HASH\"}},"
    "{{\"AttributeName\":\"ts\",\"KeyType\":\"RANGE\"}}],\"Projection\":{{\"ProjectionType\":\"ALL\"}}}}}}]'"
)



def newer_first_key(item: dict) -> tuple[str, str]:
    """The twin table's order: by time, then by message id. The bridge's ids increase in
    arrival order, so items stored in the same millisecond keep the order they arrived in."""
    return (item.get("ts", ""), item.get("messageid", ""))

class TableUnavailable(Exception):
    """DynamoDB did not do what was asked for a reason that is not the caller's (a 503)."""


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}"
    return str(error)


def _is_missing_index(error: ClientError) -> bool:
    """DynamoDB says ValidationException "The table does not have the specified index"; moto says
    ResourceNotFoundException "Invalid index". A missing table is not this."""
    details = error.response.get("Error", {})
    message = details.get("Message", "").lower()
    return details.get("Code") in ("ValidationException", "ResourceNotFoundException") and (
        "specified index" in message or "invalid index" in message)


class TwinTable:
    def __init__(self, table, page_size: int = 500):
        self.table = table
        self.page_size = page_size
        self.warned_no_index = False

    def put(self, item: dict) -> bool:
        """Stores `item`; False when its messageid was stored before (the first copy wins)."""
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(messageid)")
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise TableUnavailable(_describe(error)) from error
        except BotoCoreError as error:
            raise TableUnavailable(_describe(error)) from error

    def readings(self, device: str, since: Optional[int], until: Optional[int], limit: int) -> list[dict]:
        """The newest `limit` items of `device` with since <= ts < until (Unix ms), oldest first."""
        if since is not None and until is not None and until <= since:
            return []
        try:
            try:
                newest_first = self._query(device, since, until, limit)
            except ClientError as error:
                if not _is_missing_index(error):
                    raise
                newest_first = self._scan(device, since, until, limit)
        except (ClientError, BotoCoreError) as error:
            raise TableUnavailable(_describe(error)) from error
        return list(reversed(newest_first))

    def _query(self, device: str, since: Optional[int], until: Optional[int], limit: int) -> list[dict]:
        condition = Key("device").eq(device)
        # One condition on the sort key; BETWEEN is inclusive, so it ends a millisecond before `until`.
        if since is not None and until is not None:
            condition &= Key("ts").between(iso8601(since), iso8601(until - 1))
        elif since is not None:
            condition &= Key("ts").gte(iso8601(since))
        elif until is not None:
            condition &= Key("ts").lt(iso8601(until))
        request = {"IndexName": INDEX, "KeyConditionExpression": condition, "ScanIndexForward": False}
        found: list[dict] = []
        more = False
        while len(found) < limit:
            answer = self.table.query(Limit=min(self.page_size, limit - len(found)), **request)
            found += answer.get("Items", [])
            more = "LastEvaluatedKey" in answer
            if not more:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        # The index orders by time only: items of one millisecond come in any order. When the
        # last one kept has peers left unread, read them all so the cut follows the ids too.
        if more and found:
            seen = {item.get("messageid") for item in found}
            found += [item for item in self._at(device, found[-1]["ts"]) if item.get("messageid") not in seen]
        return sorted(found, key=newer_first_key, reverse=True)[:limit]

    def _at(self, device: str, ts: str) -> list[dict]:
        """Every item of `device` at exactly `ts`."""
        request = {"IndexName": INDEX, "KeyConditionExpression": Key("device").eq(device) & Key("ts").eq(ts)}
        found: list[dict] = []
        while True:
            answer = self.table.query(Limit=self.page_size, **request)
            found += answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                return found
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _scan(self, device: str, since: Optional[int], until: Optional[int], limit: int) -> list[dict]:
        """The seed's table: every page read, the device's items filtered by DynamoDB, sorted here."""
        if not self.warned_no_index:
            self.warned_no_index = True
            log.warning(
                "table %s has no index %s: readings are served by a full Scan, which reads (and bills) "
                "the whole table. Add the index: %s",
                self.table.name, INDEX, ADD_INDEX_COMMAND.format(table=self.table.name))
        # Items only: a device's twin document (messageid "twin:<device>") has no ts.
        condition = Attr("device").eq(device) & Attr("ts").exists()
        if since is not None:
            condition &= Attr("ts").gte(iso8601(since))
        if until is not None:
            condition &= Attr("ts").lt(iso8601(until))
        request = {"FilterExpression": condition}
        found: list[dict] = []
        while True:
            answer = self.table.scan(Limit=self.page_size, **request)
            found += answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        found.sort(key=newer_first_key, reverse=True)
        return found[:limit]

    def status(self) -> dict:
        """Whether the table answers and serves readings from its index, with what is wrong.

        It uses only GetItem and Query, the calls the function's role allows."""
        problems: list[str] = []
        indexed = True
        try:
            self.table.get_item(Key={"messageid": "dtwin-status-check"})
        except (ClientError, BotoCoreError) as error:
            problems.append(f"table {self.table.name} does not answer: {_describe(error)}")
        if not problems:
            try:
                self.table.query(IndexName=INDEX, KeyConditionExpression=Key("device").eq("dtwin-status-check"), Limit=1)
            except ClientError as error:
                if not _is_missing_index(error):
                    problems.append(f"table {self.table.name} refused a readings query: {_describe(error)}")
                indexed = False
            except BotoCoreError as error:
                problems.append(f"table {self.table.name} does not answer: {_describe(error)}")
        return {"ready": not problems, "table": self.table.name, "index": INDEX if indexed else None, "problems": problems}

