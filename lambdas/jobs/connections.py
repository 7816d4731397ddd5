"""Data access for WebSocket subscriptions (``notify=websocket``): the connections table.

One item per open connection (key ``connection_id``): the ``job_id`` it watches, its
``owner`` and ``expires_at`` (TTL: API Gateway closes a connection after 2 hours at most,
so an item whose ``$disconnect`` never arrived disappears by itself). The ``job-connections``
index (keys only) finds a job's subscribers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobs import clients
from jobs.items import from_attributes, to_attributes
from jobs.model import utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

JOB_CONNECTIONS_INDEX = "job-connections"
# API Gateway's longest WebSocket connection is 2 hours; keep the item a little longer.
CONNECTION_TTL_SECONDS = 2 * 3600 + 600


class ConnectionRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    @classmethod
    def from_name(cls, table_name: str) -> ConnectionRepository:
        return cls(clients.dynamodb(), table_name)

    def subscribe(self, connection_id: str, job_id: str, owner: str) -> None:
        item: dict[str, Any] = {
            "connection_id": connection_id,
            "job_id": job_id,
            "owner": owner,
            "expires_at": int(utc_now().timestamp()) + CONNECTION_TTL_SECONDS,
        }
        self._client.put_item(TableName=self._table_name, Item=to_attributes(item))

    def unsubscribe(self, connection_id: str) -> None:
        self._client.delete_item(TableName=self._table_name, Key={"connection_id": {"S": connection_id}})

    def subscribers(self, job_id: str) -> list[str]:
        """Connection ids watching ``job_id``."""
        found: list[str] = []
        query: dict[str, Any] = {
            "TableName": self._table_name,
            "IndexName": JOB_CONNECTIONS_INDEX,
            "KeyConditionExpression": "job_id = :job",
            "ExpressionAttributeValues": {":job": {"S": job_id}},
        }
        while True:
            page = self._client.query(**query)
            found.extend(str(from_attributes(item)["connection_id"]) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
