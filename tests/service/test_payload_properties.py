"""Properties of request decoding and settings parsing, on generated input (hypothesis)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from service.schemas import ActivateRequest, BatchRequest, ClassifyRequest, FeedbackRequest, TrainRequest
from service.settings import Settings, SettingsError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
ticket_like = st.fixed_dictionaries(
    {},
    optional={
        "title": st.none() | st.text(max_size=40),
        "body": st.none() | st.text(max_size=40),
        "text": st.none() | st.text(max_size=40),
        "team": st.text(max_size=10),
        "decision_id": st.text(max_size=10),
        "id": st.integers() | st.text(max_size=10),
    },
)
REQUESTS = [ClassifyRequest, FeedbackRequest, TrainRequest, ActivateRequest, BatchRequest]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REQUESTS), json_values | ticket_like)
def test_request_bodies_decode_or_fail_with_a_validation_error(kind: type[Any], value: Any) -> None:
    body = msgspec.json.encode(value)
    try:
        decoded = msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError:
        return
    if kind is ClassifyRequest:
        title, text_body = decoded.parts
        assert (title or "").strip() or (text_body or "").strip()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_the_decoder_as_anything_else(data: bytes) -> None:
    with contextlib.suppress(msgspec.DecodeError, UnicodeDecodeError):
        msgspec.json.decode(data, type=ClassifyRequest)


FIELDS = [
    "TICKET_ROUTER_PORT",
    "TICKET_ROUTER_WORKERS",
    "TICKET_ROUTER_RATE_LIMIT",
    "TICKET_ROUTER_WRITE_BACK",
    "TICKET_ROUTER_ABSTAIN_THRESHOLD",
    "TICKET_ROUTER_API_TOKENS",
    "TICKET_ROUTER_DATA_DIR",
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), st.text(max_size=30))
def test_settings_accept_or_name_the_variable(name: str, value: str) -> None:
    try:
        Settings.from_env({name: value})
    except SettingsError as exc:
        assert "TICKET_ROUTER_" in str(exc)
