"""Everything the emulator's routes share."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from airflow_provider_fgs.emulator.async_settings import AsyncSettingsStore
from airflow_provider_fgs.emulator.async_store import AsyncStore
from airflow_provider_fgs.emulator.credentials_api import CredentialIssuer
from airflow_provider_fgs.emulator.faults import FaultInjector
from airflow_provider_fgs.emulator.iam import IamSettings, TokenStore
from airflow_provider_fgs.emulator.invoker import Invoker
from airflow_provider_fgs.emulator.lockout import Lockouts
from airflow_provider_fgs.emulator.pool import WorkerPool
from airflow_provider_fgs.emulator.registry import FunctionRegistry
from airflow_provider_fgs.emulator.stats import Stats
from airflow_provider_fgs.protocol.async_invoke import DEFAULT_QUERY_WINDOW_S
from airflow_provider_fgs.protocol.invoke import SYNC_GATEWAY_TIMEOUT_S


@dataclass
class EmulatorState:
    """
    The emulator's configuration and live parts.

    :param gateway_timeout: seconds after which a synchronous answer is cut (504 APIG.0201) while the
        function keeps running, as FunctionGraph's API gateway does at 90 s.
    :param async_query_window: how far back an async status query looks without ``query_begin_time``.
    :param clock_offset: seconds added to the real clock (tests move time forward instead of waiting).
    """

    region: str
    project_id: str
    project_name: str
    users: Mapping[str, Mapping[str, str]]
    access_keys: Mapping[str, str]
    registry: FunctionRegistry
    pool: WorkerPool
    tokens: TokenStore
    stats: Stats = field(default_factory=Stats)
    faults: FaultInjector = field(default_factory=FaultInjector)
    async_records: AsyncStore = field(default_factory=AsyncStore)
    async_settings: AsyncSettingsStore = field(default_factory=AsyncSettingsStore)
    lockouts: Lockouts = field(default_factory=Lockouts)
    gateway_timeout: float = SYNC_GATEWAY_TIMEOUT_S
    async_query_window: float = DEFAULT_QUERY_WINDOW_S
    clock_offset: float = 0.0

    def now(self) -> float:
        """The emulator's clock (epoch seconds)."""
        return time.time() + self.clock_offset

    def __post_init__(self) -> None:
        self.async_records.clock = self.now
        self.async_settings.clock = self.now
        self.credentials = CredentialIssuer(self.now)
        self.invoker = Invoker(self.pool, self.stats, self.project_id)
        self.iam = IamSettings(users=self.users, project_id=self.project_id, project_name=self.project_name)
