"""Production quality through the real app: human outcomes from relabels, corrections and closings, /v1/quality,
the /metrics gauges, and the alert rules shipped in deploy/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml

from service.quality import MIN_OUTCOMES
from service.settings import Settings
from tests.service.webhook_kit import admin, as_bytes, configured, fixture, github_headers, serving, settle

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent.parent
API = "https://api.github.com/repos/acme/shop/issues"


async def github(client: Any, payload: dict[str, Any], event: str = "issues") -> dict[str, Any]:
    body = as_bytes(payload)
    response = await client.post("/v1/webhooks/github", content=body, headers=github_headers(body, event))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def issue(number: int, action: str, labels: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    payload = fixture("github", "issues_opened")
    payload["action"] = action
    payload["issue"]["number"] = number
    payload["issue"]["labels"] = [{"name": name} for name in labels]
    payload["sender"] = {"login": "dana", "type": "User"}
    payload.update(extra)
    return payload


async def test_relabels_closings_and_corrections_are_measured_per_team(settings: Settings) -> None:
    with respx.mock() as router:
        router.post(url__regex=rf"{API}/\d+/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings)) as client:
            # 12: routed to SRE, and a person relabels it DevOps: a correction, and a wrong SRE decision.
            assert (await github(client, issue(12, "opened")))["team"] == "SRE"
            relabel = await github(client, issue(12, "labeled", ("team:devops",), label={"name": "team:devops"}))
            assert relabel["outcome"] == "correction"
            # 13: routed to SRE, closed as Platform by a person's label: a wrong SRE decision.
            await github(client, issue(13, "opened"))
            closed = await github(client, issue(13, "closed", ("team:platform",)))
            assert (closed["outcome"], closed["team"]) == ("outcome", "Platform")
            assert closed["reason"] == "closed as Platform: does not confirm our decision (SRE)"
            # 14: routed to SRE and closed with our label still on: confirmed.
            await github(client, issue(14, "opened"))
            await github(client, issue(14, "closed", ("team:sre",)))
            # An API decision corrected on its id.
            decided = await client.post("/v1/classify", json={"title": "Checkout button does nothing on Safari"})
            assert decided.json()["team"] not in ("SRE", "Platform")
            feedback = {"decision_id": decided.headers["x-decision-id"], "team": "Platform"}
            assert (await client.post("/v1/feedback", json=feedback, headers=admin())).status_code == 201
            await settle(client)
            quality = (await client.get("/v1/quality", headers=admin())).json()
            metrics = (await client.get("/metrics")).text
    sre = quality["per_team"]["SRE"]
    assert (sre["outcomes"], sre["right"]) == (3, 1)
    assert sre["precision"] == pytest.approx(1 / 3)
    wrong_team = decided.json()["team"]
    assert quality["per_team"][wrong_team]["outcomes"] == 1 and quality["per_team"][wrong_team]["right"] == 0
    assert quality["overall"]["outcomes"] == 4 and quality["overall"]["right"] == 1
    assert quality["decisions"] == 4 and quality["routed_share"] == 1.0 and quality["abstain_share"] == 0.0
    assert quality["corrections_since_training"] == 2
    assert quality["retrain_recommended"] is False, "too few outcomes to judge"
    assert 'ticket_router_production_precision{team="SRE"} 0.333' in metrics
    assert 'ticket_router_production_outcomes{team="all"} 4.0' in metrics


async def test_retraining_is_recommended_when_precision_falls_below_the_validated_one(settings: Settings) -> None:
    async with serving(settings) as client:
        items = [{"title": f"Checkout button does nothing on Safari {n}"} for n in range(MIN_OUTCOMES)]
        for item in items:
            decided = await client.post("/v1/classify", json=item)
            wrong = "Platform" if decided.json()["team"] != "Platform" else "SRE"
            feedback = {"decision_id": decided.headers["x-decision-id"], "team": wrong}
            assert (await client.post("/v1/feedback", json=feedback)).status_code == 201
        quality = (await client.get("/v1/quality")).json()
        metrics = (await client.get("/metrics")).text
    assert quality["overall"]["precision"] == 0.0 and quality["overall"]["outcomes"] == MIN_OUTCOMES
    assert quality["retrain_recommended"] is True
    assert any(
        reason.startswith("overall precision 0.00 on 20 outcomes is more than 0.10 below")
        for reason in quality["reasons"]
    )
    assert "ticket_router_retrain_recommended 1.0" in metrics


async def test_quality_needs_a_model(empty_settings: Settings) -> None:
    async with serving(empty_settings) as client:
        response = await client.get("/v1/quality")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_shipped_alert_rules_are_valid_and_use_metrics_the_service_exports(settings: Settings) -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "monitoring" / "alerts.yaml").read_text())
    [group] = [group for group in rules["groups"] if group["name"] == "ticket-router-quality"]
    alerts = group["rules"]
    assert {rule["alert"] for rule in alerts} == {"TicketRouterPrecisionDrift", "TicketRouterRetrainRecommended"}
    for rule in alerts:
        assert rule["expr"] and rule["for"] and rule["annotations"]["summary"]
    async with serving(settings) as client:
        await client.get("/v1/quality")
        exported = {line.split("{")[0].split(" ")[0] for line in (await client.get("/metrics")).text.splitlines()}
    used = {name for rule in alerts for name in re.findall(r"ticket_router_[a-z_]+", rule["expr"])}
    assert used and used <= exported, used - exported
    drift = next(rule for rule in alerts if rule["alert"] == "TicketRouterPrecisionDrift")
    assert "> 0.10" in drift["expr"] and f">= {MIN_OUTCOMES}" in drift["expr"], "same figures as the service"
