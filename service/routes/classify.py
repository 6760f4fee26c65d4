"""Classification endpoints: one ticket, or a batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.exceptions import InternalServerException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIMediaType, OpenAPIResponse, Operation, RequestBody
from litestar.params import Body

from model.decision import Decision
from service.auth import JSON, api_guard, json_api_guard
from service.decisions import Recorded
from service.errors import (
    BadRequestError,
    NoModelError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaError,
)
from service.openapi import ANY_TOKEN, inline_schema, problems
from service.routing import facts_of
from service.runtime import Runtime
from service.schemas import BatchItem, BatchRequest, BatchResponse, ClassifyRequest
from service.store import StoreError
from service.streaming import DuplexStream

__all__ = ["DECISION_EXAMPLE", "DECISION_ID_EXAMPLE", "TICKET_EXAMPLE", "classify", "classify_batch"]

# Real decisions of the default model for the example tickets below (scores rounded).
DECISION_EXAMPLE = {
    "team": "SRE",
    "confidence": 0.99993,
    "abstained": False,
    "scores": {"Development": 0.00002, "DevOps": 0.00003, "SRE": 0.99993, "Platform": 0.00002},
    "explanation": [
        {"term": "since", "weight": 2.522},
        {"term": "p99", "weight": 2.3575},
        {"term": "latency", "weight": 2.355},
        {"term": "grafana", "weight": 1.175},
        {"term": "2s", "weight": 0.9375},
    ],
    "model_version": "20261204T172903Z-d716d5",
}
SECOND_DECISION_EXAMPLE = {
    "team": "DevOps",
    "confidence": 0.99325,
    "abstained": False,
    "scores": {"Development": 0.00045, "DevOps": 0.99325, "SRE": 0.00036, "Platform": 0.00595},
    "explanation": [
        {"term": "release", "weight": 3.8603},
        {"term": "workflow", "weight": 2.5065},
        {"term": "publish", "weight": 1.9734},
        {"term": "npm", "weight": 1.6923},
        {"term": "fails", "weight": 1.4733},
    ],
    "model_version": "20261204T172903Z-d716d5",
}
DECISION_ID_EXAMPLE = "0006458a1d2c3e4f9b8a7c6d5e4f3a2b"
SECOND_DECISION_ID_EXAMPLE = "0006458a1d2c3f019b8a7c6d5e4f3a2c"
TICKET_EXAMPLE = {
    "title": "p99 latency above 2s on checkout since 14:05",
    "body": "Grafana shows 503s from the payments service in eu-west-1; customers see timeouts.",
}
BATCH_EXAMPLE = {
    "items": [
        {"id": "OPS-12", **TICKET_EXAMPLE},
        {"id": "OPS-13", "title": "Release workflow fails to publish the npm package", "body": ""},
    ]
}


@post(
    "/v1/classify",
    status_code=200,
    summary="Classify one ticket",
    description="Returns the owning team with a calibrated score for every team. The audit id of the"
    " decision is in the `X-Decision-Id` header (use it for feedback).",
    tags=["classify"],
    guards=[json_api_guard],
    security=ANY_TOKEN,
    responses={
        200: ResponseSpec(
            data_container=Decision,
            description="The decision",
            examples=[Example(id="decision", summary="A confident SRE decision", value=DECISION_EXAMPLE)],
            generate_examples=False,
        ),
        **problems(400, 401, 413, 415, 422, 503),
    },
)
async def classify(
    data: Annotated[
        ClassifyRequest,
        Body(examples=[Example(id="ticket", summary="A production symptom", value=TICKET_EXAMPLE)]),
    ],
    runtime: Runtime,
) -> Response[bytes]:
    """Classify one ticket."""
    facts = [facts_of(data.parts[0], data.context)]
    [recorded] = await runtime.decisions.decide([(None, *data.parts, data.repository)], "api", facts=facts)
    # Encoded here with msgspec: the decision is a plain Struct, no hooks needed.
    return Response(
        _encoder.encode(recorded.decision),
        media_type=MediaType.JSON,
        headers={"X-Decision-Id": recorded.decision_id},
    )


@dataclass
class _BatchOperation(Operation):
    """The batch body is decoded by the handler (JSON or NDJSON), so its schema is declared here."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content[NDJSON] = OpenAPIMediaType(
                schema={"type": "string", "description": "One decision (or line error) a line"},  # type: ignore[arg-type]
            )
        self.request_body = RequestBody(
            required=True,
            description="A JSON object with `items`, or (with `Content-Type: application/x-ndjson`)"
            " one ticket object per line, any number of lines.",
            content={
                "application/json": OpenAPIMediaType(
                    schema=inline_schema(BatchRequest),  # type: ignore[arg-type]
                    examples={"batch": Example(summary="Two tickets", value=BATCH_EXAMPLE)},
                ),
                NDJSON: OpenAPIMediaType(
                    schema={"type": "string", "description": "One ticket object a line"},  # type: ignore[arg-type]
                    examples={
                        "stream": Example(
                            summary="Two lines",
                            value='{"id": "1", "title": "Disk full on db-1"}\n{"id": "2", "text": "CI fails"}\n',
                        )
                    },
                ),
            },
        )


NDJSON = "application/x-ndjson"
NDJSON_GROUP = 256  # lines decided together; the stream never holds more than this

_batch_decoder = msgspec.json.Decoder(BatchRequest)
_item_decoder = msgspec.json.Decoder(BatchItem)
_encoder = msgspec.json.Encoder()


def decode_batch(body: bytes, limit: int) -> BatchRequest:
    """Decode a JSON batch body; malformed JSON is a 400, invalid fields a 422, too many items a 413."""
    if not body.strip():
        raise BadRequestError("the request body is empty; send a JSON object with `items`")
    try:
        batch = _batch_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise UnprocessableError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}") from None
    if len(batch.items) > limit:
        raise PayloadTooLargeError(
            f"a batch holds at most {limit} items, this one has {len(batch.items)};"
            " split it, or stream it as application/x-ndjson"
        )
    return batch


@post(
    "/v1/classify/batch",
    status_code=200,
    summary="Classify a batch of tickets",
    description="One decision per item, in input order, each with the item's `id` when given and the"
    " `decision_id` of its row in the audit trail (for `POST /v1/feedback` and `GET /v1/decisions/{id}`).",
    tags=["classify"],
    guards=[api_guard],
    security=ANY_TOKEN,
    operation_class=_BatchOperation,
    request_max_body_size=None,  # NDJSON streams are unbounded; the JSON path keeps its limit below
    responses={
        200: ResponseSpec(
            data_container=BatchResponse,
            description="Decisions in input order (with NDJSON in, one JSON line out for each line in:"
            " a decision, or an object with the line number and the error)",
            examples=[
                Example(
                    id="batch",
                    summary="The two tickets' decisions",
                    value={
                        "results": [
                            {**DECISION_EXAMPLE, "id": "OPS-12", "decision_id": "0006458a1d2c3e4f9b8a7c6d5e4f3a2b"},
                            {
                                **SECOND_DECISION_EXAMPLE,
                                "id": "OPS-13",
                                "decision_id": "0006458a1d2c3f019b8a7c6d5e4f3a2c",
                            },
                        ]
                    },
                )
            ],
            generate_examples=False,
        ),
        **problems(400, 401, 413, 415, 422, 503),
    },
)
async def classify_batch(request: Request[Any, Any, Any], runtime: Runtime) -> Response[Any]:
    """Classify many tickets: a JSON batch in one vectorised pass, or an NDJSON stream line by line."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    runtime.holder.classifier  # noqa: B018 - a 503 before reading the body when no model is loaded
    if media == NDJSON:
        return DuplexStream(_ndjson(request, runtime), media_type=NDJSON)
    if media != JSON:
        shown = repr(media) if media else "a body without a Content-Type"
        raise UnsupportedMediaError(f"send application/json or {NDJSON}, not {shown}")
    body = await _read_limited(request, runtime.settings.max_body_bytes)
    batch = decode_batch(body, runtime.settings.batch_limit)
    items = [(None if item.id is None else str(item.id), *item.parts, item.repository) for item in batch.items]
    facts = [facts_of(item.parts[0], item.context) for item in batch.items]
    recorded = await runtime.decisions.decide(items, "batch", facts=facts)
    return Response(BatchResponse(results=[_with_id(r) for r in recorded]))


def _with_id(recorded: Recorded) -> Decision:
    """A batch result: the decision with the id of its audit row, for feedback."""
    return msgspec.structs.replace(recorded.decision, decision_id=recorded.decision_id)


async def _read_limited(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is over {limit} bytes; stream a large batch as {NDJSON}")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body is over {limit} bytes; stream a large batch as {NDJSON}")
        parts.append(chunk)
    return b"".join(parts)


async def _ndjson(request: Request[Any, Any, Any], runtime: Runtime) -> AsyncIterator[bytes]:
    """Decisions for an NDJSON body, one output line per non-blank input line, in order."""
    limit = runtime.settings.max_body_bytes
    pending: list[tuple[int, BatchItem | str]] = []
    buffer = b""
    number = 0
    skipping = False  # inside a line longer than the limit: drop it up to its newline

    def take(raw: bytes) -> None:
        nonlocal number
        number += 1
        if len(raw) > limit:  # a whole overlong line can arrive in one chunk when the network coalesces
            pending.append((number, f"line longer than {limit} bytes"))
        elif raw.strip():
            pending.append((number, _parse_line(raw)))

    try:
        async for chunk in request.stream():
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                if skipping:
                    number += 1
                    pending.append((number, f"line longer than {limit} bytes"))
                    skipping = False
                    continue
                take(raw)
            if len(buffer) > limit:
                buffer, skipping = b"", True
            if len(pending) >= NDJSON_GROUP:
                async for line in _decide_lines(pending, runtime):
                    yield line
                pending = []
        if skipping:
            number += 1
            pending.append((number, f"line longer than {limit} bytes"))
        elif buffer:
            take(buffer)
        async for line in _decide_lines(pending, runtime):
            yield line
    except (NoModelError, StoreError) as exc:
        # The status line is long gone: say it in the stream and stop.
        yield _encoder.encode({"error": f"the stream stopped: {exc}"}) + b"\n"
    except InternalServerException:
        return  # Litestar's way of saying the client disconnected while sending: nobody to answer


def _parse_line(raw: bytes) -> BatchItem | str:
    try:
        return _item_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return f"invalid ticket: {exc}"
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return "not a JSON object"


async def _decide_lines(pending: list[tuple[int, BatchItem | str]], runtime: Runtime) -> AsyncIterator[bytes]:
    items = [item for _, item in pending if isinstance(item, BatchItem)]
    tickets = [(None if item.id is None else str(item.id), *item.parts, item.repository) for item in items]
    facts = [facts_of(item.parts[0], item.context) for item in items]
    recorded = iter(await runtime.decisions.decide(tickets, "batch", facts=facts)) if tickets else iter(())
    for number, item in pending:
        if isinstance(item, BatchItem):
            yield _encoder.encode(_with_id(next(recorded))) + b"\n"
        else:
            yield _encoder.encode({"line": number, "error": item}) + b"\n"
