"""DynamoDB's per-partition write limit, scaled down, for the local runtime.

DynamoDB gives one partition key value at most 1,000 write units per second, in a table
and in each global secondary index; and a base-table write whose index write is throttled
is itself throttled ("GSI back pressure"). The caller sees, for an index's partition,
``ThrottlingException`` with the reason ``IndexWriteKeyRangeThroughputExceeded`` and the
index's ARN ("GSI partition limits exceeded", gsi-throttling.html); for the table's,
``ProvisionedThroughputExceededException`` with ``TableWriteKeyRangeThroughputExceeded``
(the example of throttling-diagnosing-workflow.html). The SDK retries both.

* https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/burst-adaptive-capacity.html
* https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/gsi-throttling.html
* https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/throttling-diagnosing-workflow.html
* https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ThrottlingReason.html

moto enforces no such limit, so a design with a hot key passes every local test. A
:class:`WriteBudget` puts the limit back, at a rate small enough for a laptop to exceed
(``writes_per_second`` per key, one second's worth of burst), in the DynamoDB proxy of
``local/faults.py``. It works out which keys a request writes as DynamoDB documents it:
an index is written when an item enters or leaves it, or when a write changes one of the
index's key or projected attributes ("Global secondary indexes: writes",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes).

PutItem, UpdateItem and DeleteItem are budgeted (all the app uses); batch and transaction
writes pass unbudgeted.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

WRITES = ("PutItem", "UpdateItem", "DeleteItem")
CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Keyspace:
    """A table or one of its global secondary indexes: where its partition keys come from."""

    table: str
    index: str | None  # None: the table itself
    arn: str
    key_attributes: tuple[str, ...]  # partition key first
    projected: frozenset[str] | None  # None: every attribute (ProjectionType ALL)

    def key_of(self, item: dict[str, Any] | None) -> str | None:
        """The partition key value ``item`` has here; None when the item is not here (an
        index is sparse: an item lacking a key attribute is not in it)."""
        if item is None or any(name not in item for name in self.key_attributes):
            return None
        return _plain(item[self.key_attributes[0]])

    def is_written_by(self, touched: set[str]) -> bool:
        if self.index is None or self.projected is None:
            return bool(touched)
        return bool(touched & (self.projected | set(self.key_attributes)))


@dataclass(frozen=True)
class Admission:
    """A budget's answer to a write: the first key over its budget (the write is refused),
    or None and the keys it was charged to."""

    over: tuple[Keyspace, str] | None
    charged: tuple[tuple[Keyspace, str], ...] = ()


@dataclass
class KeyUse:
    """Writes to one partition key: the token bucket and what it saw."""

    tokens: float
    refilled_at: float
    accepted: int = 0
    throttled: int = 0
    window_start: float = 0.0
    window_writes: int = 0
    peak_writes_per_second: int = 0


@dataclass
class WriteBudget:
    """``writes_per_second`` per partition key of every table and index (see module doc)."""

    writes_per_second: float
    client: Any  # a boto3 DynamoDB client for the emulated DynamoDB (table layouts, old images)
    uses: dict[tuple[str, str], KeyUse] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._layouts: dict[str, list[Keyspace]] = {}

    # -- what a request writes -------------------------------------------------------------

    def _layout(self, table: str) -> list[Keyspace]:
        if table not in self._layouts:
            described = self.client.describe_table(TableName=table)["Table"]
            spaces = [Keyspace(table, None, described["TableArn"], _key_names(described["KeySchema"]), None)]
            for index in described.get("GlobalSecondaryIndexes", []):
                projection = index["Projection"]
                kind = projection["ProjectionType"]
                projected = (
                    None
                    if kind == "ALL"
                    else frozenset(projection.get("NonKeyAttributes", []) if kind == "INCLUDE" else [])
                )
                spaces.append(
                    Keyspace(
                        table,
                        index["IndexName"],
                        index.get("IndexArn", f"{described['TableArn']}/index/{index['IndexName']}"),
                        _key_names(index["KeySchema"]),
                        projected,
                    )
                )
            self._layouts[table] = spaces
        return self._layouts[table]

    def keys_written(self, operation: str, request: dict[str, Any]) -> list[tuple[Keyspace, str]]:
        """The (table or index, partition key value) pairs this request writes."""
        if operation not in WRITES or "TableName" not in request:
            return []
        spaces = self._layout(request["TableName"])
        base = spaces[0]
        key = request["Item"] if operation == "PutItem" else request["Key"]
        old = self.client.get_item(
            TableName=request["TableName"], Key={name: key[name] for name in base.key_attributes}
        ).get("Item")
        if operation == "PutItem":
            new, touched = request["Item"], set(request["Item"]) | set(old or {})
        elif operation == "DeleteItem":
            new, touched = None, set(old or {})
        else:
            new, touched = _updated(old, key, request)
        written: list[tuple[Keyspace, str]] = []
        for space in spaces:
            before, after = space.key_of(old), space.key_of(new)
            if space.index is None:
                after = space.key_of(key)  # a write to the table always writes the item's key
                written.append((space, str(after)))
                continue
            if before != after or (before is not None and space.is_written_by(touched)):
                written.extend((space, value) for value in {before, after} if value is not None)
        return written

    # -- the budget ------------------------------------------------------------------------

    def admit(self, operation: str, request: dict[str, Any]) -> Admission:
        """Take a write from each key the request writes, or, when one is over its budget,
        refuse the request (and take nothing)."""
        written = self.keys_written(operation, request)
        with self._lock:
            now = time.monotonic()
            uses = [self._use((space.index or space.table, value), now) for space, value in written]
            for (space, value), use in zip(written, uses, strict=True):
                if use.tokens < 1:
                    use.throttled += 1
                    return Admission(over=(space, value))
            for use in uses:
                use.tokens -= 1
                use.accepted += 1
                if now - use.window_start >= 1:
                    use.window_start, use.window_writes = now, 0
                use.window_writes += 1
                use.peak_writes_per_second = max(use.peak_writes_per_second, use.window_writes)
        return Admission(over=None, charged=tuple(written))

    def refund_indexes(self, admission: Admission) -> None:
        """A write refused by its condition: DynamoDB charges the table for it but writes no
        index, so the index keys get their write back."""
        with self._lock:
            for space, value in admission.charged:
                if space.index is not None:
                    use = self.uses[(space.index, value)]
                    use.tokens = min(self.writes_per_second, use.tokens + 1)
                    use.accepted -= 1

    def _use(self, name: tuple[str, str], now: float) -> KeyUse:
        use = self.uses.get(name)
        if use is None:
            use = self.uses[name] = KeyUse(tokens=self.writes_per_second, refilled_at=now)
        use.tokens = min(self.writes_per_second, use.tokens + (now - use.refilled_at) * self.writes_per_second)
        use.refilled_at = now
        return use

    def throttled(self) -> dict[tuple[str, str], int]:
        """Throttled writes per (table or index, key), for the keys that had any."""
        with self._lock:
            return {name: use.throttled for name, use in self.uses.items() if use.throttled}

    def busiest(self, count: int = 5) -> list[tuple[tuple[str, str], KeyUse]]:
        """The keys with the most writes in one second, most first."""
        with self._lock:
            return sorted(self.uses.items(), key=lambda pair: -pair[1].peak_writes_per_second)[:count]


def throttling_answer(space: Keyspace) -> dict[str, Any]:
    """DynamoDB's answer to a write over a partition's limit (see the module's sources);
    the reasons' member is spelled as botocore's model of each exception spells it."""
    if space.index:
        return {
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Throughput exceeds the current capacity of your index's partition key range.",
            "throttlingReasons": [{"reason": "IndexWriteKeyRangeThroughputExceeded", "resource": space.arn}],
        }
    return {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "Throughput exceeds the current capacity of your table's partition key range.",
        "ThrottlingReasons": [{"reason": "TableWriteKeyRangeThroughputExceeded", "resource": space.arn}],
    }


def _key_names(schema: list[dict[str, str]]) -> tuple[str, ...]:
    return tuple(part["AttributeName"] for part in sorted(schema, key=lambda part: part["KeyType"] != "HASH"))


def _plain(value: dict[str, Any]) -> str:
    (kind, raw), *_ = value.items()
    return f"{kind}:{raw}"


def _updated(
    old: dict[str, Any] | None, key: dict[str, Any], request: dict[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    """The item after an UpdateItem (as far as its plain assignments tell) and the
    top-level attributes the update expression touches."""
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues", {})
    new = dict(old or key)
    touched: set[str] = set()
    expression = request.get("UpdateExpression", "")
    parts = CLAUSE.split(expression)
    for verb, body in zip(parts[1::2], parts[2::2], strict=True):
        for action in _split_top_level(body):
            target = re.split(r"[\s=.\[]", action.strip(), maxsplit=1)[0]
            name = names.get(target, target)
            if not name:
                continue
            touched.add(name)
            if verb.upper() == "REMOVE":
                new.pop(name, None)
            elif verb.upper() == "SET":
                assigned = action.split("=", 1)[1].strip() if "=" in action else ""
                new[name] = values.get(assigned, new.get(name, {"S": "?"}))
            else:
                new.setdefault(name, {"S": "?"})
    return new, touched


def _split_top_level(body: str) -> list[str]:
    """Split a clause's actions on commas outside parentheses."""
    actions: list[str] = []
    current: list[str] = []
    depth = 0
    for char in body:
        if char == "," and depth == 0:
            actions.append("".join(current))
            current = []
            continue
        depth += char == "("
        depth -= char == ")"
        current.append(char)
    if "".join(current).strip():
        actions.append("".join(current))
    return [action for action in actions if action.strip()]
