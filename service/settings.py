"""Settings: one frozen object, read from ``TICKET_ROUTER_*`` environment variables."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args, get_type_hints

__all__ = ["PREFIX", "Settings", "SettingsError", "WriteBackMode", "signing_key"]

PREFIX = "TICKET_ROUTER_"

WriteBackMode = Literal["label", "label+comment", "dry-run"]
_RATE = re.compile(r"^([1-9][0-9]*)/(second|minute|hour|day)$")


class SettingsError(ValueError):
    """Raised when an environment variable has a value that cannot be used; names the variable."""


def _secret() -> str | None:
    return field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the service and the CLI; tests build it directly.

    Field ``x`` is read from ``TICKET_ROUTER_X``. Secrets are left out of ``repr``.
    """

    data_dir: Path = Path("./var")
    training_data: Path = Path("./training_data")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    admin_token: str | None = _secret()
    api_tokens: tuple[str, ...] = field(default=(), repr=False)
    database_url: str | None = field(default=None, repr=False)

    # classification
    abstain_threshold: float | None = None
    target_precision: float = 0.9
    batch_limit: int = 1000
    max_body_bytes: int = 1_048_576
    max_text_chars: int = 20_000
    model_poll_seconds: float = 2.0

    # operations
    rate_limit: str = "100/second"
    max_concurrency: int = 1000
    forwarded_allow_ips: str = "127.0.0.1"

    # learning loop
    correction_weight: float = 3.0
    max_ece: float = 0.05
    job_stale_seconds: float = 60.0

    # trackers
    github_webhook_secret: str | None = _secret()
    github_token: str | None = _secret()
    github_api_url: str = "https://api.github.com"
    gitlab_webhook_token: str | None = _secret()
    gitlab_signing_token: str | None = _secret()
    gitlab_token: str | None = _secret()
    gitlab_url: str = "https://gitlab.com"
    jira_webhook_secret: str | None = _secret()
    jira_url: str | None = None
    jira_email: str | None = None
    jira_api_token: str | None = _secret()
    write_back: WriteBackMode = "label"

    # webhooks and write-back
    github_write_back: WriteBackMode | None = None
    gitlab_write_back: WriteBackMode | None = None
    jira_write_back: WriteBackMode | None = None
    github_bot_login: str | None = None
    gitlab_bot_username: str | None = None
    jira_bot_account_id: str | None = None
    insecure_webhooks: bool = False
    triage_label: str = "needs-triage"
    gitlab_signature_tolerance_seconds: int = 300
    webhook_retention_days: int = 14
    writeback_timeout_seconds: float = 10.0
    writeback_attempts: int = 3
    writeback_backoff_seconds: float = 1.0
    writeback_max_wait_seconds: float = 30.0
    writeback_retry_seconds: float = 60.0
    writeback_retry_limit: int = 10
    writeback_poll_seconds: float = 5.0

    @property
    def rate_limit_rule(self) -> tuple[Literal["second", "minute", "hour", "day"], int] | None:
        """The per-client request limit as (unit, count), or None when it is off."""
        match = _RATE.match(self.rate_limit)
        if match is None:
            return None
        count, unit = match.groups()
        return unit, int(count)  # type: ignore[return-value]

    @property
    def registry_dir(self) -> Path:
        """Where model versions live."""
        return self.data_dir / "models"

    @property
    def sqlite_path(self) -> Path:
        """The embedded database file, used when ``database_url`` is unset."""
        return self.data_dir / "ticket-router.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``TICKET_ROUTER_*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            name = PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None:
                continue
            values[f.name] = _parse(name, raw.strip(), hints[f.name])
        try:
            return cls(**values)  # type: ignore[arg-type]
        except TypeError as exc:  # pragma: no cover - every field has a default
            raise SettingsError(str(exc)) from None

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.port <= 65535, "TICKET_ROUTER_PORT must be between 1 and 65535"),
            (self.workers >= 1, "TICKET_ROUTER_WORKERS must be at least 1"),
            (self.batch_limit >= 1, "TICKET_ROUTER_BATCH_LIMIT must be at least 1"),
            (self.max_body_bytes >= 1024, "TICKET_ROUTER_MAX_BODY_BYTES must be at least 1024"),
            (self.max_text_chars >= 100, "TICKET_ROUTER_MAX_TEXT_CHARS must be at least 100"),
            (0.0 < self.target_precision <= 1.0, "TICKET_ROUTER_TARGET_PRECISION must be in (0, 1]"),
            (
                self.abstain_threshold is None or 0.0 <= self.abstain_threshold <= 1.0,
                "TICKET_ROUTER_ABSTAIN_THRESHOLD must be in [0, 1]",
            ),
            (self.model_poll_seconds > 0, "TICKET_ROUTER_MODEL_POLL_SECONDS must be positive"),
            (self.correction_weight > 0, "TICKET_ROUTER_CORRECTION_WEIGHT must be positive"),
            (self.max_concurrency >= 1, "TICKET_ROUTER_MAX_CONCURRENCY must be at least 1"),
            (
                self.rate_limit == "off" or _RATE.match(self.rate_limit) is not None,
                "TICKET_ROUTER_RATE_LIMIT must be 'off' or like '100/second' (second, minute, hour or day)",
            ),
            (0.0 < self.max_ece <= 1.0, "TICKET_ROUTER_MAX_ECE must be in (0, 1]"),
            (
                bool(self.triage_label) and not any(c.isspace() or c == "," for c in self.triage_label),
                "TICKET_ROUTER_TRIAGE_LABEL must be one label: no spaces (Jira) and no commas (GitLab)",
            ),
            (
                self.gitlab_signature_tolerance_seconds >= 1,
                "TICKET_ROUTER_GITLAB_SIGNATURE_TOLERANCE_SECONDS must be at least 1",
            ),
            (self.webhook_retention_days >= 7, "TICKET_ROUTER_WEBHOOK_RETENTION_DAYS must be at least 7"),
            (self.writeback_timeout_seconds > 0, "TICKET_ROUTER_WRITEBACK_TIMEOUT_SECONDS must be positive"),
            (1 <= self.writeback_attempts <= 10, "TICKET_ROUTER_WRITEBACK_ATTEMPTS must be between 1 and 10"),
            (self.writeback_backoff_seconds >= 0, "TICKET_ROUTER_WRITEBACK_BACKOFF_SECONDS must not be negative"),
            (self.writeback_max_wait_seconds >= 0, "TICKET_ROUTER_WRITEBACK_MAX_WAIT_SECONDS must not be negative"),
            (self.writeback_retry_seconds > 0, "TICKET_ROUTER_WRITEBACK_RETRY_SECONDS must be positive"),
            (self.writeback_retry_limit >= 0, "TICKET_ROUTER_WRITEBACK_RETRY_LIMIT must not be negative"),
            (self.writeback_poll_seconds > 0, "TICKET_ROUTER_WRITEBACK_POLL_SECONDS must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)
        if self.gitlab_signing_token and signing_key(self.gitlab_signing_token) is None:
            raise SettingsError(
                "TICKET_ROUTER_GITLAB_SIGNING_TOKEN must be the signing token GitLab shows (whsec_ and base64)"
            )
        problems = self._write_back_problems()
        if problems:
            raise SettingsError("; ".join(problems))

    def write_back_for(self, tracker: str) -> WriteBackMode:
        """The write-back mode of ``tracker``: its own override, else ``TICKET_ROUTER_WRITE_BACK``."""
        override: WriteBackMode | None = getattr(self, f"{tracker}_write_back")
        return override or self.write_back

    def webhook_secured(self, tracker: str) -> bool:
        """Whether ``tracker`` has a webhook secret configured (so its deliveries can be verified)."""
        if tracker == "github":
            return bool(self.github_webhook_secret)
        if tracker == "gitlab":
            return bool(self.gitlab_webhook_token or self.gitlab_signing_token)
        return bool(self.jira_webhook_secret)

    def write_back_credentials_missing(self, tracker: str) -> list[str]:
        """The variables ``tracker``'s write-back needs that are unset."""
        needed = {
            "github": [("github_token", self.github_token)],
            "gitlab": [("gitlab_token", self.gitlab_token)],
            "jira": [
                ("jira_url", self.jira_url),
                ("jira_email", self.jira_email),
                ("jira_api_token", self.jira_api_token),
            ],
        }[tracker]
        return [PREFIX + name.upper() for name, value in needed if not value]

    def _write_back_problems(self) -> list[str]:
        # A tracker with a secret is in production use: writing back without credentials would
        # fail on every ticket, so refuse to start rather than pile up failed write-backs.
        problems = []
        for tracker in ("github", "gitlab", "jira"):
            mode = self.write_back_for(tracker)
            missing = self.write_back_credentials_missing(tracker)
            if self.webhook_secured(tracker) and mode != "dry-run" and missing:
                problems.append(
                    f"{tracker} webhooks are configured with write-back mode {mode!r} but {', '.join(missing)}"
                    f" {'is' if len(missing) == 1 else 'are'} not set; set {'it' if len(missing) == 1 else 'them'},"
                    f" or set {PREFIX}{tracker.upper()}_WRITE_BACK=dry-run"
                )
        return problems


def signing_key(token: str) -> bytes | None:
    """The HMAC key of a GitLab signing token (``whsec_`` then base64), or None when it is not one."""
    try:
        key = base64.b64decode(token.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def _parse(name: str, raw: str, hint: object) -> object:
    """Convert one variable's text to the field's type."""
    options = [a for a in get_args(hint) if a is not type(None)] if _is_optional(hint) else [hint]
    target = options[0] if options else hint
    if _is_optional(hint) and raw == "":
        return None
    try:
        if target is Path:
            return Path(raw)
        if target is bool:
            lowered = raw.lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if target is int:
            return int(raw)
        if target is float:
            return float(raw)
        if target == tuple[str, ...]:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if getattr(target, "__origin__", None) is Literal:
            allowed = get_args(target)
            if raw not in allowed:
                raise ValueError(raw)
            return raw
        return raw
    except ValueError:
        expected = (
            ", ".join(get_args(target))
            if getattr(target, "__origin__", None) is Literal
            else getattr(target, "__name__", str(target))
        )
        raise SettingsError(f"{name}={raw!r} is not a valid value (expected {expected})") from None


def _is_optional(hint: object) -> bool:
    return type(None) in get_args(hint)
