"""Everything the emulator's routes share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from airflow_provider_fgs.emulator.async_store import AsyncStore
from airflow_provider_fgs.emulator.faults import FaultInjector
from airflow_provider_fgs.emulator.iam import IamSettings, TokenStore
from airflow_provider_fgs.emulator.invoker import Invoker
from airflow_provider_fgs.emulator.lockout import Lockouts
from airflow_provider_fgs.emulator.pool import WorkerPool
from airflow_provider_fgs.emulator.registry import FunctionRegistry
from airflow_provider_fgs.emulator.stats import Stats


@dataclass
class EmulatorState:
    """The emulator's configuration and live parts."""

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
    lockouts: Lockouts = field(default_factory=Lockouts)

    def __post_init__(self) -> None:
        self.invoker = Invoker(self.pool, self.stats, self.project_id)
        self.iam = IamSettings(users=self.users, project_id=self.project_id, project_name=self.project_name)
