"""The triage console through the real app: access, CSRF, escaping, and each page's workflow.

The browser tests (tests/console/) drive the same pages in Chromium; these cover the server's
side of every rule quickly and without a browser.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.console.access import ConsoleAccess, safe_next
from service.settings import Settings
from service.store import Store
from tests.service.test_learning import wait_for_job
from tests.service.webhook_kit import ADMIN, configured, github_headers, raw, settle, store_of

pytestmark = pytest.mark.anyio

XSS = "<script>alert(1)</script>"
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def csrf(client: AsyncTestClient[Litestar], path: str = "/console/") -> str:
    """The CSRF token a page's forms carry (its cookie is kept by the client)."""
    page = await client.get(path)
    found = _CSRF.search(page.text)
    assert found, f"no form on {path}: {page.status_code} {page.text[:300]}"
    return found.group(1)


async def login(client: AsyncTestClient[Litestar], name: str = "ana") -> None:
    token = await csrf(client, "/console/login")
    answer = await client.post(
        "/console/login",
        data={"token": ADMIN, "name": name, "next": "/console/queue", "_csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/queue"


@pytest.fixture
def locked(settings: Settings) -> Settings:
    """An admin token (the console asks for it) and every decision abstaining (so each goes to triage)."""
    return dataclasses.replace(settings, admin_token=ADMIN, abstain_threshold=1.0)


@pytest.fixture
async def console(locked: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(locked)) as client:
        await login(client)
        yield client


async def test_the_front_page_is_the_console(client: AsyncTestClient[Litestar]) -> None:
    answer = await client.get("/", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (302, "/console/")


async def test_without_any_token_the_console_is_open_and_says_so(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/console/", "/console/queue", "/console/models", "/console/deliveries", "/console/corrections"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert "this console is open to anyone" in answer.text
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_with_api_tokens_but_no_admin_token_the_console_is_refused(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(dataclasses.replace(settings, api_tokens=("api",)))) as client:
        answer = await client.get("/console/queue")
    assert answer.status_code == 403
    assert "TICKET_ROUTER_ADMIN_TOKEN" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


async def test_login_sets_a_session_cookie_scoped_to_the_console(locked: Settings) -> None:
    async with AsyncTestClient(app=create_app(locked)) as client:
        away = await client.get("/console/models?version=x", follow_redirects=False)
        assert away.status_code == 303
        assert away.headers["location"] == "/console/login?next=%2Fconsole%2Fmodels%3Fversion%3Dx"
        token = await csrf(client, "/console/login")
        wrong = await client.post("/console/login", data={"token": "nope", "_csrf_token": token})
        assert wrong.status_code == 401
        assert "not the admin token" in wrong.text
        right = await client.post(
            "/console/login", data={"token": ADMIN, "name": "ana", "_csrf_token": token}, follow_redirects=False
        )
        assert right.status_code == 303
        cookie = right.headers["set-cookie"]
        assert cookie.startswith("tr_console_session=")
        for attribute in ("HttpOnly", "Path=/console", "SameSite=Strict"):
            assert attribute.lower() in cookie.lower(), cookie
        assert ADMIN not in cookie
        page = await client.get("/console/queue")
        assert page.status_code == 200
        assert "ana" in page.text
        out = await client.post("/console/logout", data={"_csrf_token": await csrf(client)}, follow_redirects=False)
        assert out.status_code == 303
        client.cookies.delete("tr_console_session", path="/console")
        assert (await client.get("/console/queue", follow_redirects=False)).status_code == 303


@pytest.mark.parametrize(
    "tamper",
    [
        lambda value: value[:-1] + ("0" if value[-1] != "0" else "1"),  # signature
        lambda value: "9" + value,  # expiry moved
        lambda value: "",
        lambda value: "a.b.c",
    ],
)
def test_sessions_cannot_be_forged_or_outlive_their_time(settings: Settings, tamper: Any) -> None:
    access = ConsoleAccess(dataclasses.replace(settings, admin_token=ADMIN), b"k" * 32)
    value = access.issue("ana", now=1000.0).value or ""
    assert access.user_of(value, now=1001.0) == "ana"
    assert access.user_of(value, now=1000.0 + access.lifetime + 1) is None
    assert access.user_of(tamper(value), now=1001.0) is None
    rotated = ConsoleAccess(dataclasses.replace(settings, admin_token="new-token"), b"k" * 32)
    assert rotated.user_of(value, now=1001.0) is None, "a new admin token ends every session"


@pytest.mark.parametrize(
    ("target", "kept"),
    [("/console/models", True), ("https://evil.example/", False), ("//evil.example", False), ("/v1/models", False)],
)
def test_login_only_returns_to_console_pages(target: str, kept: bool) -> None:
    assert safe_next(target) == (target if kept else "/console/")


async def test_forms_need_the_csrf_token(console: AsyncTestClient[Litestar]) -> None:
    answer = await console.post("/console/try", data={"title": "Disk full"})
    assert answer.status_code == 403
    assert "out of date or came from another site" in answer.text
    forged = await console.post("/console/try", data={"title": "Disk full", "_csrf_token": "0" * 128})
    assert forged.status_code == 403


@pytest.mark.parametrize(
    "path", ["/console/queue/0661d145e073aa414a9147734a796dd6/correct", "/console/models/rollback", "/console/logout"]
)
async def test_nothing_changes_state_on_get(console: AsyncTestClient[Litestar], path: str) -> None:
    before = store_of(console).models.activation_events()
    answer = await console.get(path)
    assert answer.status_code in {200, 405, 409}
    assert store_of(console).models.activation_events() == before
    assert (await console.get("/console/queue")).status_code == 200, "still logged in"


async def test_try_a_ticket_shows_every_team_and_escapes_the_text(console: AsyncTestClient[Litestar]) -> None:
    token = await csrf(console)
    answer = await console.post(
        "/console/try", data={"title": f"{XSS} p99 latency", "body": "Grafana shows 503s", "_csrf_token": token}
    )
    assert answer.status_code == 200
    html = answer.text
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for team in ("Development", "DevOps", "SRE", "Platform"):
        assert f"{team}" in html
    assert html.count("<meter") == 4
    assert "<mark" in html, "the words behind the decision are highlighted"
    assert "Would abstain" in html  # every decision abstains in this app
    empty = await console.post("/console/try", data={"title": " ", "body": "", "_csrf_token": token})
    assert empty.status_code == 422
    assert "Give the ticket a title or a body" in empty.text


async def test_queue_correction_is_feedback_and_the_ticket_leaves(console: AsyncTestClient[Litestar]) -> None:
    decided = await console.post(
        "/v1/classify",
        json={"title": XSS, "body": "terraform apply fails"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    decision_id = decided.headers["x-decision-id"]
    queue = await console.get("/console/queue")
    assert f'id="item-{decision_id}"' in queue.text
    assert XSS not in queue.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in queue.text
    assert "API" in queue.text
    token = _CSRF.search(queue.text).group(1)  # type: ignore[union-attr]
    picked = await console.post(
        f"/console/queue/{decision_id}/correct",
        data={"team": "DevOps", "before": "", "focus": "", "_csrf_token": token},
        follow_redirects=False,
    )
    assert picked.status_code == 303
    after = await console.get(picked.headers["location"])
    assert f'id="item-{decision_id}"' not in after.text
    assert "Corrected to <strong>DevOps</strong>" in after.text
    listed = (await console.get("/v1/feedback", headers={"Authorization": f"Bearer {ADMIN}"})).json()["items"]
    assert listed[0]["decision_id"] == decision_id
    assert (listed[0]["team"], listed[0]["actor"], listed[0]["source"], listed[0]["trainable"]) == (
        "DevOps",
        "ana",
        "console",
        True,
    )
    corrections = await console.get("/console/corrections")
    assert "1</strong> correction will go into the next training" in corrections.text
    again = await console.post(
        f"/console/queue/{decision_id}/correct", data={"team": "Nope", "_csrf_token": token}, follow_redirects=False
    )
    assert again.status_code == 422 and "unknown team" in again.text


async def test_activate_and_roll_back_through_confirmation(
    console: AsyncTestClient[Litestar], locked: Settings
) -> None:
    runtime = console.app.state.runtime
    first = runtime.registry.active_version()
    token = await csrf(console)
    # A second version: train one from the same data, stored as a candidate.
    from service.trainer import train_version

    candidate = train_version(locked, activate=False, note="candidate", store=runtime.store).version
    confirm = await console.get(f"/console/models/{candidate}/activate")
    assert confirm.status_code == 200 and "Activate" in confirm.text
    assert runtime.registry.active_version() == first, "the confirmation page changes nothing"
    done = await console.post(
        f"/console/models/{candidate}/activate", data={"force": "true", "_csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    page = await console.get(done.headers["location"])
    assert "Activated." in page.text and candidate in page.text
    assert runtime.registry.active_version() == candidate
    assert runtime.holder.version == candidate
    assert runtime.registry.history()[-1].actor == "ana"
    back = await console.get("/console/models/rollback")
    assert f"Roll back to <code>{first}</code>?" in back.text
    rolled = await console.post("/console/models/rollback", data={"_csrf_token": token}, follow_redirects=False)
    assert rolled.status_code == 303
    assert runtime.registry.active_version() == first
    missing = await console.get("/console/models/20990101T000000Z-abcdef/activate")
    assert missing.status_code == 404 and "no model version" in missing.text


async def test_models_page_shows_metrics_charts_and_thresholds(console: AsyncTestClient[Litestar]) -> None:
    version = console.app.state.runtime.registry.active_version()
    page = (await console.get("/console/models")).text
    for text in ("macro-F1", "ECE", "precision", "recall", "Threshold table", "Training jobs", version):
        assert text in page, text
    for chart in ("confusion", "reliability"):
        image = await console.get(f"/console/models/{version}/{chart}.png")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content.startswith(b"\x89PNG")


async def test_training_from_the_console_runs_a_job(console: AsyncTestClient[Litestar]) -> None:
    token = await csrf(console, "/console/models/train")
    started = await console.post(
        "/console/models/train", data={"note": "from the console", "_csrf_token": token}, follow_redirects=False
    )
    assert started.status_code == 303
    job_id = re.search(r"job=([0-9a-f]+)", started.headers["location"]).group(1)  # type: ignore[union-attr]
    job = await wait_for_job(console, job_id)
    assert (job["status"], job["requested_by"]) == ("succeeded", "ana"), job
    page = await console.get("/console/models")
    assert "from the console" in page.text


async def test_failed_write_back_is_retried_from_the_console(locked: Settings) -> None:
    body = raw("github", "issues_opened")
    api = "https://api.github.com/repos/acme/shop/issues/12/labels"
    with respx.mock() as router:
        route = router.post(api).mock(side_effect=[httpx.Response(403, json={}), httpx.Response(200, json=[])])
        async with AsyncTestClient(app=create_app(configured(locked))) as client:
            await login(client)
            await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))
            [failed] = await settle(client)
            assert failed.status == "failed"
            page = await client.get("/console/deliveries")
            assert "github:acme/shop#12" in page.text and "403" in page.text
            assert 'href="https://github.com/acme/shop/issues/12"' in page.text
            token = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
            retried = await client.post(
                "/console/writebacks/retry", data={"id": failed.id, "_csrf_token": token}, follow_redirects=False
            )
            assert retried.status_code == 303
            after = await client.get(retried.headers["location"])
            assert "Retried 1 failed write-back" in after.text and "No write-back has failed" in after.text
            await settle(client)  # the retry is sent in the background; the page answered at once
            assert store_of(client).outbox.get_writeback(failed.id).status == "done"  # type: ignore[union-attr]
    assert route.call_count == 2


async def test_pages_render_with_ten_teams_of_long_names(settings: Settings, tmp_path: Any) -> None:
    from tests.console_kit import ten_long_teams

    data = ten_long_teams(tmp_path / "ten")
    ten = dataclasses.replace(settings, training_data=data, data_dir=tmp_path / "ten-var", abstain_threshold=1.0)
    from service.trainer import train_version

    train_version(ten, activate=True, note="ten teams")
    async with AsyncTestClient(app=create_app(ten)) as client:
        await client.post("/v1/classify", json={"title": "something went wrong"})
        queue = await client.get("/console/queue")
        assert queue.status_code == 200
        assert queue.text.count('name="team"') == 10
        assert 'data-key="0"' in queue.text
        assert (await client.get("/console/models")).status_code == 200
    with Store.for_settings(ten) as store:
        assert store.triage.open_count() == 1


def test_the_console_secret_is_made_once_and_kept(tmp_path: Any) -> None:
    from service.console.access import load_secret

    path = tmp_path / "var" / "console.secret"
    first = load_secret(path)
    assert len(first) == 32 and load_secret(path) == first
    assert oct(path.stat().st_mode)[-3:] == "600"
    path.write_text("not hex")
    with pytest.raises(RuntimeError, match="delete it"):
        load_secret(path)


async def test_a_csrf_cookie_from_another_secret_is_replaced_not_refused_forever(settings: Settings) -> None:
    # Another console on the same host sends its cookie here too (cookies ignore ports), as does a
    # browser after the secret was made anew. Cookies are sent by hand: the client keeps no jar.
    stale = {"cookie": "tr_console_csrf=" + "a" * 64 + "b" * 64}
    async with AsyncTestClient(app=create_app(settings)) as client:
        page = await client.get("/console/", headers=stale)
        client.cookies.clear()
        fresh = page.headers["set-cookie"].split(";")[0]
        assert fresh.startswith("tr_console_csrf=") and fresh != stale["cookie"]
        token = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        answer = await client.post(
            "/console/try", data={"title": "Disk full on db-1", "_csrf_token": token}, headers={"cookie": fresh}
        )
        assert answer.status_code == 200, answer.text[:300]


async def test_models_page_shows_the_shadow_comparison(console: AsyncTestClient[Litestar], locked: Settings) -> None:
    from service.trainer import train_version

    runtime = console.app.state.runtime
    candidate = train_version(locked, activate=False, note="shadow candidate", store=runtime.store).version
    assert "Shadow:" not in (await console.get("/console/models")).text
    runtime.registry.set_shadow(candidate)
    runtime.holder.refresh()
    await console.post(
        "/v1/classify", json={"title": "Disk full on db-1"}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    page = (await console.get("/console/models")).text
    assert f"Shadow: <code>{candidate}</code>" in page
    assert "1 ticket decided by both" in page
