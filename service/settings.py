"""Settings: one frozen object, read from ``TICKET_ROUTER_*`` environment variables.

Each tracker's variables (``TICKET_ROUTER_GITHUB_*`` and so on) form a group owned by that
tracker's module; ``Settings.trackers`` holds the groups by tracker name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.config import PREFIX, SettingsError, WriteBackMode, read_group, secret
from service.places import current_places
from service.trackers import registry
from service.trackers.base import TrackerSettings

__all__ = ["PREFIX", "Settings", "SettingsError", "WriteBackMode"]

_RATE = re.compile(r"^([1-9][0-9]*)/(second|minute|hour|day)$")
_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


def _rule(value: str) -> tuple[int, float] | None:
    """``N/unit`` as (N, seconds), or None for ``off``."""
    match = _RATE.match(value)
    if match is None:
        return None
    count, unit = match.groups()
    return int(count), _PERIODS[unit]


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
    admin_token: str | None = secret()
    api_tokens: tuple[str, ...] = field(default=(), repr=False)
    database_url: str | None = field(default=None, repr=False)

    # classification
    abstain_threshold: float | None = None
    target_precision: float = 0.9
    batch_limit: int = 1000
    max_body_bytes: int = 1_048_576
    max_text_chars: int = 20_000
    model_poll_seconds: float = 2.0

    # routing policy: rules before the model, a question instead of a guess, production quality
    rules: Path | None = None
    tie_margin: float = 0.15
    ask_questions: bool = False
    protected_labels: tuple[str, ...] = ()
    quality_window_days: int = 30
    drift_tolerance: float = 0.1

    # operations: what protects the service from clients (docs/OPERATIONS.md, "Limits")
    rate_limit: str = "100/second"
    auth_failure_limit: str = "20/minute"
    rate_limit_clients: int = 100_000
    max_concurrency: int = 1000
    max_connections: int = 10_000
    header_timeout_seconds: float = 10.0
    forwarded_allow_ips: str = "127.0.0.1"

    # learning loop
    correction_weight: float = 3.0
    max_ece: float = 0.05
    job_stale_seconds: float = 60.0

    # the triage queue and the console
    triage_margin: float = 0.1
    triage_retention_days: int = 30
    console_session_hours: float = 12.0
    console_secure_cookies: bool = False

    # webhooks and write-back, for every tracker
    write_back: WriteBackMode = "label"
    insecure_webhooks: bool = False
    triage_label: str = "needs-triage"
    webhook_retention_days: int = 14
    webhook_replay_window_hours: float = 24.0
    writeback_timeout_seconds: float = 10.0
    writeback_deadline_seconds: float = 30.0
    writeback_attempts: int = 3
    writeback_backoff_seconds: float = 1.0
    writeback_max_wait_seconds: float = 30.0
    writeback_retry_seconds: float = 60.0
    writeback_retry_limit: int = 10
    writeback_poll_seconds: float = 5.0

    # each tracker's own group, by tracker name
    trackers: Mapping[str, TrackerSettings] = field(default_factory=registry.default_settings)

    @property
    def rate_limit_rule(self) -> tuple[int, float] | None:
        """The per-client request limit as (count, period in seconds), or None when it is off."""
        return _rule(self.rate_limit)

    @property
    def auth_failure_rule(self) -> tuple[int, float] | None:
        """The per-address budget of failed authentications as (count, period in seconds), or None when off."""
        return _rule(self.auth_failure_limit)

    @property
    def rules_path(self) -> Path:
        """The routing rules file: ``TICKET_ROUTER_RULES``, else ``rules.toml`` beside ``teams.toml``."""
        return self.rules if self.rules is not None else self.training_data / "rules.toml"

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
        values = read_group(cls, env, PREFIX, skip={"trackers"})
        if "data_dir" not in values or "training_data" not in values:
            places = current_places(env)  # the same places from any working directory
            values.setdefault("data_dir", places.data_dir)
            values.setdefault("training_data", places.training_data)
        return cls(**values, trackers=registry.settings_from_env(env))

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
            (self.max_connections >= 128, "TICKET_ROUTER_MAX_CONNECTIONS must be at least 128"),
            (
                1.0 <= self.header_timeout_seconds <= 60.0,
                "TICKET_ROUTER_HEADER_TIMEOUT_SECONDS must be between 1 and 60",
            ),
            (
                self.rate_limit == "off" or _RATE.match(self.rate_limit) is not None,
                "TICKET_ROUTER_RATE_LIMIT must be 'off' or like '100/second' (second, minute, hour or day)",
            ),
            (
                self.auth_failure_limit == "off" or _RATE.match(self.auth_failure_limit) is not None,
                "TICKET_ROUTER_AUTH_FAILURE_LIMIT must be 'off' or like '20/minute' (second, minute, hour or day)",
            ),
            (self.rate_limit_clients >= 100, "TICKET_ROUTER_RATE_LIMIT_CLIENTS must be at least 100"),
            (0.0 < self.max_ece <= 1.0, "TICKET_ROUTER_MAX_ECE must be in (0, 1]"),
            (0.0 <= self.triage_margin <= 1.0, "TICKET_ROUTER_TRIAGE_MARGIN must be in [0, 1]"),
            (self.triage_retention_days >= 1, "TICKET_ROUTER_TRIAGE_RETENTION_DAYS must be at least 1"),
            (self.console_session_hours > 0, "TICKET_ROUTER_CONSOLE_SESSION_HOURS must be positive"),
            (0.0 <= self.tie_margin < 1.0, "TICKET_ROUTER_TIE_MARGIN must be in [0, 1)"),
            (self.quality_window_days >= 1, "TICKET_ROUTER_QUALITY_WINDOW_DAYS must be at least 1"),
            (0.0 < self.drift_tolerance < 1.0, "TICKET_ROUTER_DRIFT_TOLERANCE must be in (0, 1)"),
            (
                bool(self.triage_label) and not any(c.isspace() or c == "," for c in self.triage_label),
                "TICKET_ROUTER_TRIAGE_LABEL must be one label: no spaces (Jira) and no commas (GitLab)",
            ),
            (self.webhook_retention_days >= 7, "TICKET_ROUTER_WEBHOOK_RETENTION_DAYS must be at least 7"),
            (
                0 <= self.webhook_replay_window_hours <= 24 * self.webhook_retention_days,
                "TICKET_ROUTER_WEBHOOK_REPLAY_WINDOW_HOURS must be between 0 (off) and the retention in hours",
            ),
            (self.writeback_timeout_seconds > 0, "TICKET_ROUTER_WRITEBACK_TIMEOUT_SECONDS must be positive"),
            (self.writeback_deadline_seconds > 0, "TICKET_ROUTER_WRITEBACK_DEADLINE_SECONDS must be positive"),
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
        for group in self.trackers.values():
            problems = group.problems()
            if problems:
                raise SettingsError("; ".join(problems))
        problems = self._write_back_problems()
        if problems:
            raise SettingsError("; ".join(problems))

    def write_back_for(self, tracker: str) -> WriteBackMode:
        """The write-back mode of ``tracker``: its own override, else ``TICKET_ROUTER_WRITE_BACK``."""
        return self.trackers[tracker].write_back or self.write_back

    def webhook_secured(self, tracker: str) -> bool:
        """Whether ``tracker`` has a webhook secret configured (so its deliveries can be verified)."""
        return self.trackers[tracker].secured

    def write_back_credentials_missing(self, tracker: str) -> list[str]:
        """The variables ``tracker``'s write-back needs that are unset."""
        return self.trackers[tracker].missing_credentials()

    def _write_back_problems(self) -> list[str]:
        # A tracker with a secret is in production use: writing back without credentials would
        # fail on every ticket, so refuse to start rather than pile up failed write-backs.
        problems = []
        for tracker in self.trackers:
            mode = self.write_back_for(tracker)
            missing = self.write_back_credentials_missing(tracker)
            if self.webhook_secured(tracker) and mode != "dry-run" and missing:
                problems.append(
                    f"{tracker} webhooks are configured with write-back mode {mode!r} but {', '.join(missing)}"
                    f" {'is' if len(missing) == 1 else 'are'} not set; set {'it' if len(missing) == 1 else 'them'},"
                    f" or set {PREFIX}{tracker.upper()}_WRITE_BACK=dry-run"
                )
        return problems
