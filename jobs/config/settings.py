"""Settings from the environment (and `.env`), with the names of DESIGN §3."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def split_ids(raw: str | None) -> list[str]:
    """`"U1, S2,,W3"` -> `["U1", "S2", "W3"]`."""
    if not raw:
        return []
    return [p.strip() for p in raw.split(",") if p.strip()]


class Settings(BaseSettings):
    """All runtime settings. Durations are seconds and accept fractions."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    SLACK_BOT_TOKEN: SecretStr = SecretStr("")
    SLACK_SIGNING_SECRET: SecretStr = SecretStr("")
    SLACK_APP_TOKEN: SecretStr | None = None
    SLACK_API_URL: str = "https://slack.com/api/"
    PORT: int = 3000
    REDIS_URL: str = "redis://localhost:6379/0"
    PPS_REDIS_PREFIX: str = "pps:"
    PPS_INVENTORY: str = "inventory.yml"
    PPS_CHANNEL: str = ""
    PPS_APPROVERS: str = ""
    PPS_TWO_PERSON_RULE: bool = True
    PPS_SETTLE_SECONDS: float = Field(300.0, ge=0)
    PPS_POLL_SECONDS: float = Field(10.0, gt=0)
    PPS_REBOOT_TIMEOUT_SECONDS: float = Field(1800.0, gt=0)
    PPS_REMINDER_SECONDS: float = Field(600.0, gt=0)
    PPS_BACKUP_DIR: str = "backups"
    PPS_LEASE_SECONDS: float = Field(30.0, gt=0)
    PPS_OPERATORS: str = ""
    PPS_AUDIT_KEEP: int = Field(100_000, ge=1000)  # the audit stream is never trimmed below
    PPS_RETENTION_DAYS: float = Field(400.0, gt=0)  # finished jobs' records expire after this
    PPS_USER_UPGRADES_PER_HOUR: int = Field(20, ge=1)  # per user, dry runs included
    PPS_GATE_TIMEOUT_SECONDS: float = Field(14400.0, gt=0)  # unanswered disable gate: cancel
    PPS_WORKER_CONCURRENCY: int = Field(32, ge=1)  # items one worker runs at once
    PPS_ALLOWED_CHANNELS: str = ""  # channel ids where commands and clicks count; "" = any
    PPS_FLEET_POLL_SECONDS: float = Field(300.0, gt=0)  # read-only poll of idle clusters
    # One appliance call as a whole (login, retries, the last byte of the answer) ...
    PPS_CALL_TIMEOUT_SECONDS: float = Field(30.0, gt=0)
    # ... a package upload or a configuration export as a whole ...
    PPS_TRANSFER_TIMEOUT_SECONDS: float = Field(900.0, gt=0)
    # ... one attempt of a step, plus the transfers it makes (jobs/worker/budget.py).
    PPS_STEP_TIMEOUT_SECONDS: float = Field(300.0, gt=0)
    PPS_EXPORT_MAX_MB: int = Field(64, ge=1)  # largest configuration export read (MiB)
    # Configuration-tree snapshots (drift check): bytes of answers, answers, whole walk.
    PPS_CONFIG_MAX_MB: float = Field(16.0, gt=0)
    PPS_CONFIG_MAX_OBJECTS: int = Field(5000, ge=1)
    PPS_CONFIG_TIMEOUT_SECONDS: float = Field(120.0, gt=0)
    # Logins off this long while a human is awaited: escalate (once per job).
    PPS_ESCALATE_AFTER_SECONDS: float = Field(1800.0, gt=0)
    PPS_ESCALATION_CHANNEL: str = ""  # "": the job's card channel
    PPS_ONCALL: str = ""  # user (U/W) and user-group (S) ids mentioned on escalation
    PPS_ESCALATION_WEBHOOK: str = ""  # PagerDuty Events API v2 URL; "": no page
    PPS_ESCALATION_ROUTING_KEY: SecretStr = SecretStr("")  # the integration key, when needed
    PPS_WORKER_METRICS_PORT: int = Field(9102, ge=0, le=65535)  # 0: no metrics server
    LOG_FORMAT: str = "auto"  # auto | json | console
    LOG_LEVEL: str = "INFO"

    @field_validator("SLACK_API_URL")
    @classmethod
    def _trailing_slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @property
    def approvers(self) -> list[str]:
        return split_ids(self.PPS_APPROVERS)

    @property
    def operators(self) -> list[str]:
        return split_ids(self.PPS_OPERATORS)

    @property
    def oncall(self) -> list[str]:
        """Who an escalation mentions (PPS_ONCALL)."""
        return split_ids(self.PPS_ONCALL)

    @property
    def retention_seconds(self) -> float:
        """`PPS_RETENTION_DAYS` in seconds."""
        return self.PPS_RETENTION_DAYS * 86400.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
