"""Storm control's configuration: coalescing, budgets and the circuit breaker (budgets.yaml).

An alert storm from one dead node must not start hundreds of LLM runs. Three mechanisms stand
between a claimed event and a dispatch, all enforced through the state store so they hold
across function instances:

- **coalescing** (per hook configuration, ``coalesce:``): the first event of a group fires; the
  others within the window are held back and summarised in the group's next run;
- **budgets**: per hook (``rateLimit:``) and per agent rate limits, and a global cap on runs in
  flight; events over budget are held back and summarised in the next allowed run;
- **circuit breaker**: after consecutive failures an agent's circuit opens for a cool-down;
  events meanwhile are answered as retryable (held by the transport), never dropped.
"""

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from khook_core import timeparse
from khook_core.configmodel import new_list, validate
from khook_core.errors import ConfigError, Problem
from khook_core.event import Event
from khook_core.yamlfile import load_documents

ALL_AGENTS = "*"


def _duration(value: Any) -> Any:
    return timeparse.parse_duration(value) if isinstance(value, str | int | float) else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class RateLimit(BaseModel):
    """At most ``runs`` agent runs per ``per`` (fixed windows aligned to the clock)."""

    model_config = ConfigDict(extra="forbid")

    runs: int = Field(ge=0)
    per: Duration


class Coalesce(BaseModel):
    """Hook extension: one run per group and window; the rest are summarised in the next run."""

    model_config = ConfigDict(extra="forbid")

    window: Duration
    by: str = Field(default="group", pattern=r"^(group|resource|reason|tag:.+)$")
    """``group`` (owning workload, Alertmanager group), ``resource``, ``reason`` or ``tag:NAME``."""
    leading: bool = True
    """True: the group's first event runs at once, the others ride in a later run. False: the
    first is held too, and one run after the window (the sweep's) lists them all."""

    def group_of(self, event: Event) -> str:
        if self.by == "group":
            return event.group_key or event.resource.ref()
        if self.by == "resource":
            return event.resource.ref()
        if self.by == "reason":
            return event.reason
        return event.tags.get(self.by.removeprefix("tag:"), "")


DEFAULT_CORRELATION_WINDOW = timedelta(minutes=10)
"""A deploy gone bad shows within minutes: crash loops, probe failures and the CI failure."""
DEFAULT_FOLLOW_UP_INTERVAL = timedelta(minutes=2)
"""At most one follow-up message per incident this often: it summarises what arrived meanwhile."""


class Correlate(BaseModel):
    """Hook extension (or budgets.yaml default): events about one workload, from any source,
    become one incident with one agent run; later ones join it as follow-up evidence."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    by: str = Field(default="workload", pattern=r"^workload$")
    """What relates events: their workload (``namespace/kind/name``), the only key so far."""
    window: Duration = DEFAULT_CORRELATION_WINDOW
    """An event joins the open incident if it comes within this of the last one; an incident
    quiet this long closes, and the next event opens a new one."""
    follow_up_interval: Duration = Field(
        default=DEFAULT_FOLLOW_UP_INTERVAL, alias="followUpInterval"
    )
    """The shortest time between two follow-up messages of one incident."""


class CircuitBreaker(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    failures: int = Field(default=5, ge=1)
    """Consecutive transient failures of one agent that open its circuit."""
    cool_down: Duration = Field(default=timedelta(minutes=2), alias="coolDown")
    """How long an open circuit holds events back before one run probes the agent again."""


class MaintenanceWindowSpec(BaseModel):
    """A recurring maintenance window as written in ``budgets.yaml`` (``maintenanceWindows``).

    Validated here for shape; the schedule and the matcher are compiled when the
    configuration loads (``khook_core.silencing.windows``), each problem naming its field.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    schedule: str = Field(min_length=1)
    """When each occurrence starts: a cron line (``0 2 * * SUN``) or an RRULE
    (``RRULE:FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0``), in ``timeZone``'s wall-clock time."""
    time_zone: str = Field(default="UTC", alias="timeZone")
    """An IANA zone (``Europe/Berlin``): daylight saving moves the window with the wall clock."""
    duration: Duration
    """How long each occurrence lasts (elapsed time from its start)."""
    matcher: str = ""
    """A CEL condition over ``event``, as a hook's ``when:`` ("" mutes every event in scope)."""
    hooks: list[str] = Field(default_factory=new_list)
    """Only these hooks (``namespace/name``); empty: every hook."""
    source: str = ""
    """Only events of this source; "": every source."""
    drop: bool = False
    """Forget what the window held back instead of summarising it per hook when it ends."""


class Budgets(BaseModel):
    """The whole ``budgets.yaml``; every part is optional and off by default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    max_concurrent_runs: int | None = Field(default=None, ge=1, alias="maxConcurrentRuns")
    """Global cap on agent runs in flight (a run counts for ``runLease`` after it starts)."""
    run_lease: Duration = Field(default=timedelta(minutes=15), alias="runLease")
    """How long a started run counts against ``maxConcurrentRuns`` (sends are non-blocking)."""
    agents: dict[str, RateLimit] = Field(default_factory=dict)
    """Rate limit per agent (``namespace/name`` or URL); ``"*"`` applies to every other agent."""
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker, alias="circuitBreaker")
    maintenance_windows: list[MaintenanceWindowSpec] = Field(
        default_factory=new_list, alias="maintenanceWindows"
    )
    """Recurring windows in which matching events are silenced (``suppressed:silenced``)."""
    correlate: Correlate | None = None
    """Incidents for every hook that sets no ``correlate:`` of its own; off by default."""

    def agent_limit(self, agent: str) -> RateLimit | None:
        return self.agents.get(agent) or self.agents.get(ALL_AGENTS)

    @classmethod
    def load(cls, path: Path) -> "Budgets":
        """Load ``budgets.yaml``; a missing file means no budgets (khook's behaviour)."""
        if not path.exists():
            return cls()
        docs = load_documents(path)
        problems: list[Problem] = []
        budgets = validate(cls, docs[0] if docs else {}, str(path), problems)
        if budgets is None:
            raise ConfigError(problems)
        return budgets
