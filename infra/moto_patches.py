"""Fixes for moto, applied only in the embedded emulator process.

1. TransactWriteItems cost (below). 2. CloudFormation's TimeToLiveSpecification
on AWS::DynamoDB::Table, which moto ignores; AWS and LocalStack enable TTL
(`_apply_cloudformation_ttl`, needed by tests/deploy). 3. Query cost, on a
table and on a global secondary index (`_patch_partition_queries`; an
index's sorted partitions are kept until the table's next write, counted by
`_count_writes`). 4. One lock over the DynamoDB backend (`_serialise_backend`).

moto 5 backs up every table a transaction names with `copy.deepcopy`, once per
transaction item, so a 50-item transaction on a 4,000-item table takes ~7 s
and a run slows down as its results accumulate. AWS and LocalStack cost the
same at any table size. This patch keeps moto's semantics (all or nothing,
the same cancellation reasons) but snapshots only the items the transaction
touches and restores those on failure. Only an Update's item is copied: a Put
stores a new Item and a Delete drops it, so the one they replace is left as
it was.

5. A cancelled transaction leaves no stream records (`_patch_transactions`).
moto writes each Put of a transaction to the table's stream as it applies it,
and its rollback writes more (REMOVE, MODIFY), so a ledger transaction
cancelled by one duplicate showed INSERTs of results that were never stored.
DynamoDB streams only what a transaction commits, and the datalake relies on
that. Stream reads take the backend lock, so no reader sees a record that a
rollback then withdraws.

6. Item responses skip moto's generic serializer (`_fast_responses`).
moto 5.2 serializes every response by walking botocore's output shape, in
Python, value by value: a Query answering 26 typed jobs with their timelines
spent ~45 ms there, so `GET /api/jobs` took 80 ms with 1,000 jobs stored and
20 clients queued behind one another for 1.5 s. The item operations' results
are already DynamoDB JSON (attribute values, strings and numbers), so they
are sent as `json.dumps` of it, which is what the serializer produces for
them; a result holding a binary value goes the generic way, and so does any
other operation (their outputs hold timestamps and shapes it transforms).

7. A long poll returns when a delayed message becomes visible
(`_wake_long_polls`). moto's ReceiveMessage waits on a condition that only
a send notifies, so a message whose DelaySeconds (or visibility timeout)
ran out during a poll was delivered only by the next poll: up to a second
late (the local runtime polls for 1 s). SQS answers a long poll as soon as
a message is available. Rate-limited typed jobs, timed to start in their
wall-clock second by their delay, started up to a second late, in the next.

8. SQS's message operations and the streams' GetRecords skip the generic
serializer too (the same `_fast_responses`), and each request finds its service
without a directory listing (`_memo_backend_for_host`). A profile of the
emulator under fair compute (2,000 numbers, 2 workers; the emulator was the
one saturated process, 16 ms of its CPU a job) put 11% of its time in
serializing ReceiveMessage and the batch results, a quarter of a second in
each GetRecords of a thousand stream records, and 8% in moto's `listdir`
of its own package, once per request, to learn whether the host names a
service. Their outputs are strings, numbers, lists, maps and timestamps,
which the serializer sends unchanged (timestamps as epoch seconds).

9. Expressions are parsed once per text (`_cache_expression_parses`). moto
parses each condition and update expression twice per request item (once
to check the names and values it uses, once to apply it), though a job
system sends the same few texts again and again. A profile of the emulator
under fair compute (after issue 12's cuts, 9.9 ms of its CPU a job) put
about a fifth of its CPU in those parses. A parsed condition is kept per
(text, names, values) and an update expression's tree per text, up to
4,096 each; moto evaluates a condition without changing it and copies an
update's tree before it resolves it, so what runs is moto's own code on
the same trees. A text that fails to parse is not kept and fails as before.

10. An update expression's check walks its tree without moto's per-node
overheads (`_fast_update_checks`). Before it resolves an update expression
against the item, moto deep-copies the parsed tree with `copy.deepcopy` and
walks it once per check (eight or so), and at each node each walk rebuilds
its table of node kinds and tests the node against them with
abstract-class `isinstance`. A profile of the emulator under typed jobs
(whose updates set five attributes and append to the timeline) put 14% of
its CPU in the copy and 26% in the walks. The copy is now made node by node
(a node holds its kind, children and parent), and each walk finds each node
kind's step once per kind of check; the steps, their order and the tree
they leave are moto's.

11. DynamoDB's results become plain dicts without moto's per-value checks
(`_fast_dynamo_results`). Before serializing, moto's `dynamo_to_dict` asks
each value in turn whether it is a datetime, has a `to_json` or is a
DynamoType. A profile of the emulator while 20 clients page through
`GET /api/jobs` put 27% of its CPU there. Strings, numbers, booleans, nulls,
maps and lists (and an item's attributes, a `LimitedSizeDict`) are now
converted by their exact class; anything else (binary values, sets,
datetimes) goes to moto's own.

12. DynamoDB requests are read with `json.loads` (`_fast_dynamo_requests`).
moto 5.2 parses every request by walking botocore's input shape, value by
value, to turn blobs and timestamps into richer types. A profile of the
emulator under the batch endpoint put 18% of its busy time there. A
DynamoDB request's body is already what that walk returns, except for binary
values (`B`, `BS`), which it base64-decodes: an item operation's body naming
neither is taken as `json.loads` gives it, and any other request (a binary
value, a table operation, whose inputs may hold timestamps) goes the generic
way.

13. An item is checked against DynamoDB's size limit once, not once per
attribute (`_size_items_once`). moto's `Item` sets its attributes one by
one into a dict that, on every set, sums the sizes of all attributes set so
far: a quadratic walk, which re-wraps every element of a typed job's
timeline for each attribute. A profile of the emulator's transactions put
about a quarter of their time there. An item now gets all its attributes at
once and raises moto's `ItemSizeTooLarge` if their total passes moto's limit:
sizes only add up, so the total passes it exactly when some attribute's set
would have. Updates still go through moto's per-set check.

14. A received message's retention is checked against its queue's period
(`_retention_without_attributes`). moto asked for it through
`get_queue_attributes`, which builds every attribute of the queue (and counts
its messages) once per message a receive returns: 7% of the emulator's busy
time under the batch endpoint.
"""
from __future__ import annotations

import bisect
import copy
import functools
import json
import re
from datetime import datetime
from decimal import Decimal
import threading
import types

import moto.dynamodb.models as dynamodb_models
from botocore.utils import parse_to_aware_datetime
from moto.core.responses import ActionResult
from moto.core.serialize import JSONSerializer, TimestampSerializer
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table


def _deepcopy_all_but_tables(value, memo=None):
    # Tables pass through uncopied: transact_write_items is the module's only caller
    # that copies a Table, and our wrapper below does the rollback instead.
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _touched_keys(backend: DynamoDBBackend, transact_items) -> list[tuple[str, str, dict]]:
    """(operation, table name, key) of each item of a transaction."""
    keys = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        keys.append((op_type, op["TableName"], key))
    return keys


def _apply_cloudformation_ttl() -> None:
    """moto 5.2 creates a table from CloudFormation without its TimeToLiveSpecification."""
    if getattr(Table.create_from_cloudformation_json, "_pacer_patched", False):
        return
    original = Table.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        table = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        ttl = cloudformation_json.get("Properties", {}).get("TimeToLiveSpecification")
        if ttl:
            backend = dynamodb_models.dynamodb_backends[account_id][region_name]
            backend.update_time_to_live(table.name, {"Enabled": ttl.get("Enabled", False) in (True, "true"),
                                                     "AttributeName": ttl["AttributeName"]})
        return table

    create_from_cloudformation_json._pacer_patched = True
    Table.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


_BACKEND_LOCK = threading.RLock()
_SERIALISED = ("transact_write_items", "put_item", "update_item", "delete_item", "get_item", "query", "scan",
               "batch_get_item")


def _serialise_backend() -> None:
    """Make each DynamoDB request atomic towards the others, as DynamoDB's own are.

    moto's server is threaded and its backend takes no lock: a transaction that
    fails restores its snapshot, wiping out whatever a concurrent request wrote
    to the same items meanwhile (a counter increment, say). Found by the
    injected-failure drill: processed + failed came out one short of the results.
    """
    for name in _SERIALISED:
        original = getattr(DynamoDBBackend, name, None)
        if original is None or getattr(original, "_pacer_serialised", False):
            continue

        def serialised(self, *args, __original=original, **kwargs):
            with _BACKEND_LOCK:
                return __original(self, *args, **kwargs)

        serialised._pacer_serialised = True
        setattr(DynamoDBBackend, name, serialised)
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend
    original_get_records = DynamoDBStreamsBackend.get_records
    if not getattr(original_get_records, "_pacer_serialised", False):
        def get_records(self, *args, **kwargs):
            with _BACKEND_LOCK:
                return original_get_records(self, *args, **kwargs)

        get_records._pacer_serialised = True
        DynamoDBStreamsBackend.get_records = get_records


def _patch_transactions() -> None:
    if getattr(DynamoDBBackend.transact_write_items, "_pacer_patched", False):
        return
    original = DynamoDBBackend.transact_write_items
    dynamodb_models.copy = types.SimpleNamespace(deepcopy=_deepcopy_all_but_tables, copy=copy.copy)

    def transact_write_items(self, transact_items):
        try:
            # Only an Update changes the stored Item in place; a Put stores a new one and a Delete drops it, so the
            # Item they leave behind is its own snapshot.
            snapshots = []
            for op_type, name, key in _touched_keys(self, transact_items):
                item = self.get_item(name, key)
                snapshots.append((name, key, copy.deepcopy(item) if op_type == "Update" else item))
        except Exception:
            return original(self, transact_items)  # malformed: let moto produce its own error
        streams = {name: shard for name in {name for name, _, _ in snapshots}
                   if (shard := self.get_table(name).stream_shard) is not None}
        stream_lengths = {name: len(shard.items) for name, shard in streams.items()}
        try:
            return original(self, transact_items)
        except Exception:
            for name, key, before in reversed(snapshots):
                if before is None:
                    if self.get_item(name, key) is not None:
                        self.delete_item(name, key)
                else:
                    self.put_item(name, before.to_json()["Attributes"])
            for name, shard in streams.items():  # what the rollback undid was never committed: stream none of it
                del shard.items[stream_lengths[name]:]
            raise

    transact_write_items._pacer_patched = True
    DynamoDBBackend.transact_write_items = transact_write_items


def _sort_value(key):
    """A range key's order as DynamoDB sorts it: numbers by value, strings by code point (UTF-8's byte order)."""
    if key is None:
        return ""
    return Decimal(key.value) if key.type == "N" else key.value


def _plain(typed: dict):
    """A key value as the request gives it ({"S": "abc"}), in DynamoDB's order (see _sort_value)."""
    (kind, value), = typed.items()
    return Decimal(value) if kind == "N" else value


def _unsorted_items(table: Table) -> list:
    """Every item of the table, in no order: what Table.all_items gives before it sorts them all."""
    if not table.range_key_attr:
        return list(table.items.values())
    return [item for partition in table.items.values() for item in partition.values()]


def _count_writes() -> None:
    """Give each table a write count (`_pacer_writes`), so what is derived from its items can be kept until it changes.

    Every write reaches the backend through put_item, update_item or
    delete_item (each naming its table first; a BatchWriteItem arrives as puts
    and deletes) or transact_write_items; a failed conditional write counts
    too, which only costs a rebuild.
    """
    def counted(original, tables):
        if getattr(original, "_pacer_counted", False):
            return original

        def write(self, *args, **kwargs):
            try:
                return original(self, *args, **kwargs)
            finally:
                for name in tables(*args, **kwargs):
                    table = self.tables.get(name)
                    if table is not None:
                        table._pacer_writes = getattr(table, "_pacer_writes", 0) + 1

        write._pacer_counted = True
        return write

    def named(table_name, *args, **kwargs):
        return {table_name}

    def transacted(transact_items):
        return {op["TableName"] for entry in transact_items for op in entry.values()}

    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, counted(getattr(DynamoDBBackend, name), named))
    DynamoDBBackend.transact_write_items = counted(DynamoDBBackend.transact_write_items, transacted)


def _sorted_index_partition(table: Table, index, keys: dict, hash_dict: dict) -> tuple[list, list]:
    """One partition of a global secondary index in the index's order, and each item's place in that order.

    Kept on the table until its next write (`_count_writes`): a listing's
    pages read the same partition again and again, and building it walks the
    whole table.
    """
    (kind, value), = hash_dict.items()
    writes = getattr(table, "_pacer_writes", 0)
    cache = table.__dict__.setdefault("_pacer_partitions", {})
    cached = cache.get((index.name, kind, value))
    if cached is not None and cached[0] == writes:
        return cached[1], cached[2]
    # A GSI holds only the items that have its key attributes (it is sparse).
    partition = [item for item in _unsorted_items(table) if (found := item.attrs.get(keys["HASH"])) is not None
                 and found.type == kind and found.value == value and ("RANGE" not in keys or keys["RANGE"] in item.attrs)]
    order = [(_sort_value(item.attrs.get(keys.get("RANGE", ""))), _sort_value(item.hash_key)) for item in partition]
    ranked = sorted(range(len(partition)), key=order.__getitem__)
    partition, order = [partition[i] for i in ranked], [order[i] for i in ranked]
    if len(cache) > 64:  # partitions of old writes, or many small ones: start again
        cache.clear()
    cache[(index.name, kind, value)] = (writes, partition, order)
    return partition, order


def _index_partition(table: Table, index_name: str, hash_dict: dict, page: dict | None) -> list:
    """The items of one partition of a global secondary index, in the index's order.

    moto walks and sorts the whole table (with slow DynamoType comparisons) for
    each index query: with 10,000 typed jobs, a page of `GET /api/jobs` took
    over 100 ms under the backend lock. This hands it only the partition,
    presorted by the index's range key and then the table's key (the order in
    which moto pages), kept until the table's next write, and for a plain page
    (`page`: no filter or range condition) only the limit + 1 items after the
    start key, found by bisection, so moto still sees whether there is more.
    (An unknown index passes through whole: moto's own error answers it.)
    """
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    if index is None:
        return _unsorted_items(table)
    keys = {key["KeyType"]: key["AttributeName"] for key in index.schema}
    partition, order = _sorted_index_partition(table, index, keys, hash_dict)
    if page is None:
        return list(partition)
    if not page["start"]:
        return partition[: page["limit"] + 1] if page["forward"] else partition[-(page["limit"] + 1) :]
    after = (_plain(page["start"][keys["RANGE"]]) if "RANGE" in keys else "",
             _plain(page["start"][table.hash_key_attr]))
    if page["forward"]:
        first = bisect.bisect_right(order, after)
        return partition[first : first + page["limit"] + 1]
    end = bisect.bisect_left(order, after)
    return partition[max(0, end - page["limit"] - 1) : end]


def _patch_partition_queries() -> None:
    """Let a query read only its partition, and only the page it needs when that is all it needs.

    moto 5 answers every Query by sorting the whole table by DynamoType (slow
    Python comparisons) and walking it. With 10,000 items in one caller's
    backlog, reading its first 10 took 150 ms, under the backend lock, on every
    dispatcher pass. DynamoDB reads the partition in key order and stops at the
    limit. This hands moto's own query code just that partition, presorted
    (and, for a plain `Limit` query, cut to limit + 1 items so moto still sees
    whether there is more); its ordering, paging, limits and filters are
    unchanged. A global secondary index's query gets the same, from
    `_index_partition`.
    """
    if getattr(DynamoDBBackend.query, "_pacer_patched", False):
        return
    original = DynamoDBBackend.query
    original_all_items = Table.all_items

    def all_items(self):
        scope = getattr(self, "_pacer_scope", None)
        return list(scope) if scope is not None else original_all_items(self)

    def query(self, table_name, hash_key_dict, range_comparison, range_value_dicts, limit, exclusive_start_key,
              scan_index_forward, projection_expressions, index_name=None, filter_expression=None,
              range_key_conditions=None, **kwargs):
        call = lambda: original(self, table_name, hash_key_dict, range_comparison, range_value_dicts, limit,
                                exclusive_start_key, scan_index_forward, projection_expressions,
                                index_name=index_name, filter_expression=filter_expression,
                                range_key_conditions=range_key_conditions, **kwargs)
        table = self.get_table(table_name)
        plain = not (range_comparison or filter_expression or len(range_key_conditions or []) > 1
                     or set(kwargs) - {"consistent_read", "expr_names", "expr_values", "hash_key_conditions",
                                       "range_key_conditions"})
        forward = scan_index_forward is not False
        if index_name is not None and hash_key_dict:
            page = {"start": exclusive_start_key, "limit": limit, "forward": forward} if limit and plain else None
            scope = _index_partition(table, index_name, hash_key_dict, page)
        elif index_name is None and hash_key_dict and table.range_key_attr:
            partition = table.items.get(DynamoType(hash_key_dict))  # .get: don't grow an empty partition
            scope = sorted((partition or {}).values(), key=lambda item: _sort_value(item.range_key))
            if limit and plain and not exclusive_start_key:
                scope = scope[: limit + 1] if forward else scope[-(limit + 1) :]
        else:
            return call()
        table._pacer_scope = scope
        try:
            return call()
        finally:
            del table._pacer_scope

    all_items._pacer_patched = query._pacer_patched = True
    Table.all_items = all_items
    DynamoDBBackend.query = query


# Operations whose JSON-protocol output is strings, numbers, lists, maps and (stream records) timestamps, which the
# generic serializer sends as they are, timestamps as epoch seconds: DynamoDB's item operations (items, keys and
# capacity), SQS's message operations and the streams' records. A binary value (a B or BS attribute, a binary
# message attribute) is encoded, so `_plain_json` sends those the generic way.
_FAST_OPERATIONS = {
    "dynamodb": frozenset({"Query", "Scan", "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem",
                           "BatchWriteItem", "TransactGetItems", "TransactWriteItems"}),
    "sqs": frozenset({"ReceiveMessage", "SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch",
                      "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "GetQueueUrl", "GetQueueAttributes"}),
    "dynamodbstreams": frozenset({"GetRecords", "GetShardIterator"}),
}


def _plain_json(value) -> bool:
    """Whether the generic serializer would send `value` as `json.dumps` does: no binary attribute values (it
    encodes bytes), only JSON's own types and datetimes (as epoch seconds, `_epoch_seconds`)."""
    if isinstance(value, dict):
        return not ({"B", "BS"} & value.keys()) and all(_plain_json(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool, datetime))


def _epoch_seconds(value):
    if not isinstance(value, datetime):
        raise TypeError(f"not JSON: {type(value).__name__}")
    return TimestampSerializer._timestamp_unixtimestamp(parse_to_aware_datetime(value))


def fast_response(result, context):
    """What the generic serializer would answer for one of `_FAST_OPERATIONS`, as `json.dumps` of its result, or
    None where that would differ: another operation, the query (XML) protocol, an error, or a binary value."""
    model = context.operation_model
    if (model.name not in _FAST_OPERATIONS.get(model.service_model.service_name, ())
            or not issubclass(context.serializer_class, JSONSerializer) or not isinstance(result, dict)
            or not _plain_json(result)):
        return None
    # moto leaves keys outside the output shape in some results (DeleteItem's ConsumedCapacityUnits); the serializer
    # drops them.
    members = model.output_shape.members if model.output_shape is not None else {}
    answer = {key: value for key, value in result.items() if key in members}
    content_type = f"application/x-amz-json-{model.service_model.metadata.get('jsonVersion', '1.0')}"
    return 200, {"Content-Type": content_type}, json.dumps(answer, default=_epoch_seconds)


def _fast_responses() -> None:
    # Every service's results, DynamoDB's too (DynamoResult inherits execute_result), pass through here.
    if getattr(ActionResult.execute_result, "_pacer_patched", False):
        return
    generic = ActionResult.execute_result

    def execute_result(self, context):
        return fast_response(self.result, context) or generic(self, context)

    execute_result._pacer_patched = True
    ActionResult.execute_result = execute_result


def _memo_backend_for_host() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication.get_backend_for_host, "_pacer_patched", False):
        return
    looked_up = DomainDispatcherApplication.get_backend_for_host
    known: dict = {}

    def get_backend_for_host(self, host):
        # The answer depends on the host alone (moto's package folders and its URL patterns); callers hold self.lock.
        if host not in known:
            known[host] = looked_up(self, host)
        return known[host]

    get_backend_for_host._pacer_patched = True
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host


def _wake_long_polls() -> None:
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue

    if getattr(Queue.wait_for_messages, "_pacer_patched", False):
        return

    def wait_for_messages(self, timeout: int) -> None:
        """Wait up to `timeout` s for a message to send, or for a delayed or received one to become visible."""
        deadline = unix_time_millis() + timeout * 1000
        with self._messages_lock:
            while not self.messages:
                now = unix_time_millis()
                if now >= deadline:
                    return
                wakes = [at for message in self._messages for at in (message.delayed_until, message.visible_at)
                         if at > now]
                self._messages_lock.wait((min([deadline, *wakes]) - now) / 1000 + 0.001)

    wait_for_messages._pacer_patched = True
    Queue.wait_for_messages = wait_for_messages


def _cache_expression_parses() -> None:
    """Condition and update expressions parsed once per text (see 9)."""
    from moto.dynamodb import comparisons, responses as dynamodb_responses
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    if getattr(comparisons.create_condition_expression_parser, "_pacer_patched", False):
        return
    moto_parser = comparisons.ConditionExpressionParser
    moto_make = UpdateExpressionParser.make

    @functools.lru_cache(maxsize=4096)
    def parsed_condition(expression, names: tuple | None, values: str | None):
        parser = moto_parser(expression, None if names is None else dict(names),
                             None if values is None else json.loads(values))
        return parser.parse(), tuple(parser.expr_attr_names_found), tuple(parser.expr_attr_values_found)

    class CachedConditionParser:
        """What moto's callers use of a ConditionExpressionParser: parse(), then the names and values it found."""

        def __init__(self, expression, names, values):
            self._arguments = (expression, names, values)
            self.expr_attr_names_found: list[str] = []
            self.expr_attr_values_found: list[str] = []

        def parse(self):
            expression, names, values = self._arguments
            try:
                key = (expression, None if names is None else tuple(sorted(names.items())),
                       None if values is None else json.dumps(values, sort_keys=True))
                hash(key)
            except TypeError:  # not plain JSON: parse it as moto does, unkept
                parser = moto_parser(expression, names, values)
                found = parser.parse(), parser.expr_attr_names_found, parser.expr_attr_values_found
            else:
                found = parsed_condition(*key)
            operation, names_found, values_found = found
            self.expr_attr_names_found, self.expr_attr_values_found = list(names_found), list(values_found)
            return operation

    def create_condition_expression_parser(expression, names, values):
        return CachedConditionParser(expression, names, values)

    create_condition_expression_parser._pacer_patched = True
    for module in (comparisons, dynamodb_models, dynamodb_responses):  # each imported the name for itself
        module.create_condition_expression_parser = create_condition_expression_parser
    UpdateExpressionParser.make = classmethod(functools.lru_cache(maxsize=4096)(
        lambda cls, expression: moto_make.__func__(cls, expression)))


def _fast_update_checks() -> None:
    """moto's copy and walks of an update expression's tree, without their per-node overheads (see 10)."""
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    if getattr(DepthFirstTraverser.traverse, "_pacer_patched", False):
        return

    @functools.cache
    def is_node(cls: type) -> bool:
        return issubclass(cls, Node)

    def copy_tree(node, parent):
        clone = object.__new__(type(node))
        clone.__dict__.update({name: value if name in ("type", "parent") else copy.deepcopy(value)
                               for name, value in vars(node).items() if name != "children"})
        clone.parent = parent
        clone.children = None if node.children is None else [
            copy_tree(child, clone) if is_node(type(child)) else copy.deepcopy(child) for child in node.children]
        return clone

    def deepcopy(value, memo=None):
        if is_node(type(value)) and value.parent is None:  # a whole tree: its root
            return copy_tree(value, None)
        return copy.deepcopy(value, memo)

    steps: dict[tuple[type, type], int | None] = {}  # (kind of walk, node class) -> its step's place, or None

    def traverse(self, root):
        # moto's rule: a node is processed by the first of the map's kinds it is an instance of. The kinds and their
        # order belong to the walk's class; the functions are bound to this walk.
        kinds, functions = self.nodes_to_be_processed(), list(self._processing_map().values())
        walker = type(self)

        def walk(node, child_id=-1):
            node_class = type(node)
            if not is_node(node_class):
                return node
            parent = node.parent
            if node.children is not None:
                for i, child in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    walk(child, i)
            key = (walker, node_class)
            if key not in steps:
                steps[key] = next((i for i, kind in enumerate(kinds) if issubclass(node_class, kind)), None)
            step = steps[key]
            if step is not None:
                node = functions[step](node)
                node.parent = parent
                if parent:
                    parent.children[child_id] = node
            return node

        return walk(root)

    traverse._pacer_patched = True
    DepthFirstTraverser.traverse = traverse
    validators.deepcopy = deepcopy


def _fast_dynamo_results() -> None:
    """DynamoDB's results turned into plain dicts without moto's per-value checks.

    moto's `dynamo_to_dict` asks every value whether it is a datetime, has a `to_json` or is a DynamoType before it
    recurses: a quarter of the emulator's time while `GET /api/jobs` pages through typed jobs with their timelines.
    This converts the common attribute types by their exact class and hands everything else (binary values, sets,
    datetimes, subclasses) to moto's own.
    """
    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    if getattr(responses.dynamo_to_dict, "_pacer_patched", False):
        return
    generic = responses.dynamo_to_dict
    scalars = (str, int, float, bool, type(None))

    def convert(value):
        kind = type(value)
        if kind is DynamoType:
            attribute = value.type
            if attribute == "M":
                return {"M": {name: convert(inner) for name, inner in value.value.items()}}
            if attribute == "L":
                return {"L": [convert(inner) for inner in value.value]}
            if attribute in ("S", "N", "BOOL", "NULL") and type(value.value) in scalars:
                return {attribute: value.value}
            return generic(value)
        if kind is dict or kind is LimitedSizeDict:  # an item's attributes are a LimitedSizeDict
            return {name: convert(inner) for name, inner in value.items()}
        if kind is list:
            return [convert(inner) for inner in value]
        if kind in scalars:
            return value
        return generic(value)

    convert._pacer_patched = True
    responses.dynamo_to_dict = convert


# Operations on items, whose inputs hold no timestamps (which moto's parser would turn into datetimes).
_ITEM_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                              "BatchWriteItem", "TransactGetItems", "TransactWriteItems"})
_BINARY_KEY = re.compile(rb'"BS?"\s*:')  # only an object's key can be a quoted B or BS followed by a colon


def fast_request_params(body: bytes) -> dict | None:
    """A DynamoDB request's parameters as moto's parser would read them, or None where it reads them otherwise (a
    binary value, which it decodes) or the body is not a JSON object."""
    if body[:1] != b"{" or _BINARY_KEY.search(body):
        return None
    try:
        return json.loads(body)  # an object, as the body starts with "{"
    except ValueError:
        return None


def _fast_dynamo_requests() -> None:
    """DynamoDB request bodies taken as `json.loads` gives them when they hold no binary value (module docstring)."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.parse_parameters, "_pacer_patched", False):
        return
    generic = DynamoHandler.parse_parameters

    def parse_parameters(self, request):
        params = fast_request_params(request.data) if self._get_action() in _ITEM_OPERATIONS else None
        if params is None:
            generic(self, request)
        else:
            self.params = params

    parse_parameters._pacer_patched = True
    DynamoHandler.parse_parameters = parse_parameters


ITEM_SIZE_LIMIT = 405000  # moto's own limit (LimitedSizeDict.__setitem__): between DynamoDB's 400 KB and 410 KB


def _size_items_once() -> None:
    """moto's Item built with one size check over all its attributes (module docstring)."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    if getattr(Item.__init__, "_pacer_patched", False):
        return

    def __init__(self, hash_key, range_key, attrs):
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = LimitedSizeDict()
        values = {key: DynamoType(value) for key, value in attrs.items()}
        size = sum(bytesize(key) + value.size() for key, value in values.items())
        if size > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        dict.update(self.attrs, values)

    __init__._pacer_patched = True
    Item.__init__ = __init__


def _retention_without_attributes() -> None:
    """A received message checked against its queue's retention period directly (see 14)."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend.is_message_valid_based_on_retention_period, "_pacer_patched", False):
        return

    def is_message_valid_based_on_retention_period(self, queue_name, message) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return retention_period + message.sent_timestamp / 1000 > unix_time()

    is_message_valid_based_on_retention_period._pacer_patched = True
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


def apply() -> None:
    _apply_cloudformation_ttl()
    _patch_transactions()
    _count_writes()
    _patch_partition_queries()
    _fast_responses()
    _memo_backend_for_host()
    _wake_long_polls()
    _cache_expression_parses()
    _fast_update_checks()
    _fast_dynamo_results()
    _fast_dynamo_requests()
    _size_items_once()
    _retention_without_attributes()
    _serialise_backend()  # last, so the lock covers a transaction's snapshot and rollback too
