"""Classification endpoints: one ticket, or a batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIMediaType, Operation, RequestBody
from litestar.params import Body

from model.decision import Decision
from service.auth import api_guard, json_body_guard
from service.errors import BadRequestError, PayloadTooLargeError, UnprocessableError, UnsupportedMediaError
from service.openapi import inline_schema, problems
from service.runtime import Runtime
from service.schemas import BatchRequest, BatchResponse, ClassifyRequest

__all__ = ["classify", "classify_batch"]

DECISION_EXAMPLE = {
    "team": "SRE",
    "confidence": 0.87,
    "abstained": False,
    "scores": {"Development": 0.03, "DevOps": 0.06, "SRE": 0.87, "Platform": 0.04},
    "explanation": [{"term": "p99 latency", "weight": 0.41}, {"term": "503", "weight": 0.12}],
    "model_version": "20261126T194000Z-3f2a1c",
}
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
    guards=[api_guard, json_body_guard],
    responses={
        200: ResponseSpec(
            data_container=Decision,
            description="The decision",
            examples=[Example(id="decision", summary="A confident SRE decision", value=DECISION_EXAMPLE)],
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
    [recorded] = await runtime.decisions.decide([(None, *data.parts)], "api")
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
        self.request_body = RequestBody(
            required=True,
            description="A JSON object with `items`, or (with `Content-Type: application/x-ndjson`)"
            " one ticket object per line, any number of lines.",
            content={
                "application/json": OpenAPIMediaType(
                    schema=inline_schema(BatchRequest),  # type: ignore[arg-type]
                    examples={"batch": Example(summary="Two tickets", value=BATCH_EXAMPLE)},
                ),
            },
        )


_batch_decoder = msgspec.json.Decoder(BatchRequest)
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
    description="One decision per item, in input order, each with the item's `id` when given.",
    tags=["classify"],
    guards=[api_guard],
    operation_class=_BatchOperation,
    responses={
        200: ResponseSpec(
            data_container=BatchResponse,
            description="Decisions in input order",
            examples=[Example(id="batch", value={"results": [{**DECISION_EXAMPLE, "id": "OPS-12"}]})],
        ),
        **problems(400, 401, 413, 415, 422, 503),
    },
)
async def classify_batch(request: Request[Any, Any, Any], runtime: Runtime) -> Response[BatchResponse]:
    """Classify many tickets in one vectorised pass."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaError(f"send application/json, not {media!r}")
    runtime.holder.classifier  # noqa: B018 - a 503 before reading the body when no model is loaded
    batch = decode_batch(await request.body(), runtime.settings.batch_limit)
    items = [(None if item.id is None else str(item.id), *item.parts) for item in batch.items]
    recorded = await runtime.decisions.decide(items, "batch")
    return Response(BatchResponse(results=[r.decision for r in recorded]))
