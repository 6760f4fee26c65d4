"""compose.yaml, the nginx configuration and the Dockerfile, checked without a Docker engine."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def interpolate(text: str) -> str:
    """What docker compose sees with an empty environment: ${VAR:-default} -> default, ${VAR} -> ''."""
    return re.sub(r"\$\{[A-Z0-9_]+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(interpolate((ROOT / "compose.yaml").read_text()))
    return data


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((FIXTURES / "compose-spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(compose)


def test_postgres_has_a_volume_and_a_healthcheck(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    volume, _, target = postgres["volumes"][0].partition(":")
    assert volume in compose["volumes"] and target == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_router_replicas_share_the_registry_and_wait_for_postgres(compose: dict[str, Any]) -> None:
    router = compose["services"]["router"]
    assert router["deploy"]["replicas"] >= 2
    env = router["environment"]
    assert env["TICKET_ROUTER_HOST"] == "0.0.0.0"
    assert (
        env["TICKET_ROUTER_DATABASE_URL"].startswith("postgresql://")
        and "@postgres:5432/" in env["TICKET_ROUTER_DATABASE_URL"]
    )
    assert all(key.startswith("TICKET_ROUTER_") for key in env)
    volume, _, target = router["volumes"][0].partition(":")
    assert target == env["TICKET_ROUTER_DATA_DIR"] and volume in compose["volumes"], "one registry volume for all"
    assert router["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert router["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "/readyz" in " ".join(router["healthcheck"]["test"])
    assert "ports" not in router, "only the proxy is published"
    init = compose["services"]["init"]
    assert init["command"] == ["ticket-router", "init"]
    assert init["environment"] == env and init["volumes"] == router["volumes"]


def test_the_proxy_balances_across_the_replicas(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    assert any(str(p).endswith(":80") for p in proxy["ports"])
    assert proxy["depends_on"]["router"]["condition"] == "service_healthy"
    source, _, target = proxy["volumes"][0].partition(":")
    config = (ROOT / source).read_text()
    assert target.startswith("/etc/nginx/conf.d/")
    assert re.search(r"upstream ticket_router \{\s*server router:8000;", config)
    assert config.count("proxy_pass http://ticket_router;") == 2
    assert "X-Forwarded-For" in config and "proxy_request_buffering off" in config
    assert config.count("{") == config.count("}")


def test_dockerfile_is_small_non_root_and_installs_from_pyproject() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM python:3.11-slim") == 2, "multi-stage on the slim base"
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE)
    assert "COPY pyproject.toml" in text and "pip install ." in text
    assert "TICKET_ROUTER_HOST=0.0.0.0" in text
    assert 'CMD ["ticket-router", "serve"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)


def healthcheck_command(compose: dict[str, Any], port: int) -> list[str]:
    """The router's compose healthcheck as an argv, pointed at ``port``."""
    test = compose["services"]["router"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in test[1:]]


def test_kubernetes_manifests_share_postgres_from_a_secret_and_one_registry() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "ticket-router.yaml").read_text()))
    kinds = {d["kind"]: d for d in documents}
    assert set(kinds) == {"PersistentVolumeClaim", "Job", "Deployment", "Service"}
    assert kinds["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    deployment = kinds["Deployment"]["spec"]
    assert deployment["replicas"] >= 2
    pod = deployment["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["TICKET_ROUTER_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "ticket-router",
        "key": "database-url",
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    assert container["volumeMounts"][0]["mountPath"] == env["TICKET_ROUTER_DATA_DIR"]["value"]
    assert kinds["Job"]["spec"]["template"]["spec"]["containers"][0]["command"] == ["ticket-router", "init"]
    assert kinds["Service"]["spec"]["selector"] == deployment["selector"]["matchLabels"]
