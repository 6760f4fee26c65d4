"""Routing rules through the real app: API, batch, NDJSON and webhooks decide the same way; bad files stop start-up."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
import respx
from litestar.testing import AsyncTestClient

from model.errors import RulesError
from service.app import create_app
from service.settings import Settings
from tests.service.webhook_kit import (
    as_bytes,
    configured,
    fixture,
    github_headers,
    sent_json,
    serving,
    settle,
    store_of,
)

pytestmark = pytest.mark.anyio

RULES = """
[[rules]]
name = "dependency bots"
author = ["dependabot[bot]", "renovate[bot]"]
skip = true

[[rules]]
name = "infra repositories"
repository = ["acme/infra-*"]
team = "DevOps"

[[rules]]
name = "platform people"
author = ["ana"]
team = "Platform"

[[rules]]
name = "sev titles"
title = "(?i)^sev[0-9]"
team = "SRE"
"""

CHECKOUT = {"title": "Checkout button does nothing on Safari", "body": "Clicking Pay does nothing."}


@pytest.fixture
def ruled(settings: Settings) -> Settings:
    (settings.training_data / "rules.toml").write_text(RULES)
    return settings


async def test_a_rule_decides_with_the_model_scores_kept_and_is_recorded(ruled: Settings) -> None:
    async with serving(ruled) as client:
        plain = (await client.post("/v1/classify", json=CHECKOUT)).json()
        # The author is not evidence for the model, so the scores with and without it are the same.
        response = await client.post("/v1/classify", json={**CHECKOUT, "context": {"author": "Ana"}})
        decision = response.json()
        assert plain["team"] != "Platform" and "rule" not in plain
        assert (decision["team"], decision["rule"], decision["abstained"]) == ("Platform", "platform people", False)
        assert decision["scores"] == plain["scores"], "the model's scores are still reported"
        assert decision["confidence"] == plain["scores"]["Platform"]
        stored = store_of(client).audit.get(response.headers["x-decision-id"])
        assert stored is not None and (stored.team, stored.rule, stored.skipped) == (
            "Platform",
            "platform people",
            False,
        )
        repo = await client.post("/v1/classify", json={**CHECKOUT, "context": {"repository": "acme/infra-eu"}})
        assert (repo.json()["team"], repo.json()["rule"]) == ("DevOps", "infra repositories")


async def test_every_surface_applies_the_same_rules(ruled: Settings) -> None:
    items = [
        {"id": "a", **CHECKOUT, "context": {"author": "renovate[bot]"}},
        {"id": "b", "title": "SEV2 checkout slow", "body": ""},
        {"id": "c", **CHECKOUT},
    ]
    async with serving(ruled) as client:
        batch = (await client.post("/v1/classify/batch", json={"items": items})).json()["results"]
        lines = "\n".join(__import__("json").dumps(item) for item in items).encode()
        stream = await client.post(
            "/v1/classify/batch", content=lines, headers={"content-type": "application/x-ndjson"}
        )
        streamed = [__import__("json").loads(line) for line in stream.text.splitlines()]
    for results in (batch, streamed):
        assert [(r.get("rule"), r.get("skipped", False)) for r in results] == [
            ("dependency bots", True),
            ("sev titles", False),
            (None, False),
        ]
        assert results[1]["team"] == "SRE"


async def test_a_rule_reads_the_title_only_so_a_320_kb_body_costs_nothing_more(ruled: Settings) -> None:
    body = ("(a+)+" * 64_000)[:320_000]
    async with serving(ruled) as client:
        response = await client.post("/v1/classify", json={"title": "sev1: " + "a" * 5_000, "body": body})
    assert response.status_code == 200 and response.json()["rule"] == "sev titles"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rules]]\nname = "r1"\ntitle = "(unclosed"\nteam = "SRE"\n', "rule 'r1': title is not a usable"),
        ('[[rules]]\nname = "r2"\ntitle = "x"\nteam = "Ops"\n', "rule 'r2' (rule 1): unknown team 'Ops'"),
    ],
)
async def test_a_bad_rules_file_stops_start_up_naming_the_rule(settings: Settings, text: str, message: str) -> None:
    path = settings.data_dir / "elsewhere.toml"
    path.write_text(text)
    with pytest.raises(BaseException) as caught:  # noqa: PT011 - the lifespan wraps it in an exception group
        async with AsyncTestClient(app=create_app(dataclasses.replace(settings, rules=path))):
            pass
    error = caught.value
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, RulesError)
    assert str(error).startswith(str(path)) and message in str(error)


API = "https://api.github.com/repos/acme/shop/issues/12"


def opened(**issue: Any) -> dict[str, Any]:
    payload = fixture("github", "issues_opened")
    payload["issue"].update(issue)
    return payload


async def test_webhooks_skip_a_bot_ticket_and_route_by_rule(ruled: Settings) -> None:
    with respx.mock() as router:
        labels = router.post(f"{API}/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(ruled)) as client:
            bot = as_bytes(opened(user={"login": "dependabot[bot]", "type": "Bot"}, title="Bump lodash"))
            skipped = (await client.post("/v1/webhooks/github", content=bot, headers=github_headers(bot))).json()
            sev = as_bytes(opened(title="SEV1: payments failing"))
            routed = (await client.post("/v1/webhooks/github", content=sev, headers=github_headers(sev))).json()
            rows = await settle(client)
            audit = store_of(client).audit.get(skipped["decision_id"])
    assert (skipped["outcome"], skipped["reason"]) == (
        "skipped",
        "rule 'dependency bots' says to leave this ticket alone: nothing written",
    )
    assert audit is not None and (audit.skipped, audit.rule) == (True, "dependency bots")
    assert (routed["rule"], routed["label"]) == ("sev titles", "team:sre")
    assert [sent_json(call.request) for call in labels.calls] == [{"labels": ["team:sre"]}]
    assert len(rows) == 1
