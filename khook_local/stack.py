"""``khook up``: start every part of the system on this machine, run until a signal, stop it all.

Order of start-up, chosen so slow parts overlap: the demo agent (in-process, instant), every
function process (they boot in parallel while the rest starts), the Pub/Sub emulator or the
in-process bus, its topics and subscriptions, the forwarder if a cluster answers; then the
stack waits for every function to answer HTTP, writes ``stack.json`` with ``ready: true`` and
says what to do next. SIGINT or SIGTERM, at any point, stops everything started so far: each
child is its own process group and is signalled as a group, so nothing is left behind.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from khook_core.transport.http import env_prefix
from khook_local import PROJECT, stackfile
from khook_local.agent import DemoAgent
from khook_local.bus import MemoryBus
from khook_local.config_watch import FUNCTION_REFRESH_S, ConfigWatcher
from khook_local.console import Console, LogFollower
from khook_local.emulator import PubSubEmulator, PubSubRest, RestEndpoint, find_launcher
from khook_local.forwarder import MARKER as FORWARDER_MARKER
from khook_local.forwarder import reachable_cluster, start_forwarder
from khook_local.functions import (
    SERVER_MODULE,
    FunctionProcess,
    discover,
    start_function,
)
from khook_local.ports import DEFAULT_BASE_PORT, PortPlan
from khook_local.processes import Child, group_alive, stop_group
from khook_local.stackfile import BusInfo, ChildInfo, FunctionInfo, StackInfo
from khook_local.topology import DeadLetterDrain, Route, Ticker, create

logger = logging.getLogger(__name__)

BusChoice = Literal["auto", "emulator", "memory"]
WATCH_S: Final = 0.5
EMULATOR_MARKER: Final = "cloud-pubsub-emulator"
FORWARDER_FLUSH_S: Final = "5"
SWEEP_FUNCTION: Final = "sweep"
SWEEP_EVERY_S: Final = 60.0
"""The production schedule's period (every minute)."""
"""Locally, a shorter flush on stop than the pod's 20 s: nothing waits on a laptop's queue."""


EXIT_PATH: Final = 2
"""A path on the command line that cannot be used, as for any other bad argument."""


class StackError(Exception):
    """The stack cannot start; the message says why and what to do."""


class _Interrupted(BaseException):
    """A signal during start-up; a BaseException so no ``except Exception`` swallows it."""


def project_root() -> Path:
    """The working tree holding ``functions/``: this package's checkout, else the cwd."""
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "functions").is_dir() else Path.cwd()


@dataclass
class UpOptions:
    state_dir: Path
    config_dir: Path
    bus: BusChoice = "auto"
    forwarder: bool = True
    sweep_every: float = SWEEP_EVERY_S
    base_port: int = DEFAULT_BASE_PORT
    root: Path = field(default_factory=project_root)


def show(path: Path) -> str:
    """``path`` relative to the cwd when it is below it (what a user would type)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Stack:
    """One run of ``khook up``."""

    def __init__(self, options: UpOptions, console: Console | None = None) -> None:
        self.options = options
        self.state_dir = options.state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.console = console or Console()
        self.ports = PortPlan(options.base_port)
        self.children: list[Child] = []
        self.functions: list[FunctionProcess] = []
        self.emulator: PubSubEmulator | None = None
        self.bus: MemoryBus | None = None
        self.agent: DemoAgent | None = None
        self.drain: DeadLetterDrain | None = None
        self.ticker: Ticker | None = None
        self.follower: LogFollower | None = None
        self.watcher: ConfigWatcher | None = None
        self.info = StackInfo(
            pid=os.getpid(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            state_dir=str(self.state_dir),
            config_dir=str(options.config_dir.resolve()),
        )
        self._stop = threading.Event()
        self._phase: Literal["starting", "running", "stopping"] = "starting"
        self._reported: set[str] = set()
        self._bus_note = ""
        self._owns_file = False
        self._cluster = ""
        self._forwarder_port = 0

    # -- the run --------------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve until SIGINT/SIGTERM, stop; 0 after a clean run, 1 if start failed."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                self._start()
            except _Interrupted:
                self.console.say("interrupted during start-up")
                return self._teardown(130)
            except StackError as exc:
                self.console.say(f"khook up: {exc}")
                return self._teardown(1)
            except OSError as exc:
                if exc.filename is None:
                    raise
                # a state directory that cannot be made or written: the user's path to fix
                problem = (exc.strerror or str(exc)).lower()
                self.console.say(f"khook up: {exc.filename}: {problem}")
                return self._teardown(EXIT_PATH)
            except Exception as exc:  # a port lost to a race, an emulator that died: clean up
                logger.debug("start-up failed", exc_info=True)
                self.console.say(f"khook up: start-up failed: {type(exc).__name__}: {exc}")
                return self._teardown(1)
            self._phase = "running"
            self._announce()
            # Ready in the stack file only once the console says so: whoever waits on the file
            # (``khook send``, the tests) then finds the announcement already written.
            self.info.ready = True
            stackfile.write(self.state_dir, self.info)
            while not self._stop.wait(WATCH_S):
                self._check_children()
            return self._teardown(0)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: types.FrameType | None) -> None:
        self._stop.set()
        if self._phase == "starting":
            raise _Interrupted(signal.Signals(signum).name)

    # -- start-up -------------------------------------------------------------------------

    def _start(self) -> None:
        self._prepare_state_dir()
        config = self._validate_config()
        self._publish_config()
        self.console.say(
            f"khook local stack — state in {show(self.state_dir)}/, config "
            f"{show(self.options.config_dir)}/ ({config})"
        )
        self.console.say("starting the functions, Pub/Sub and the agent…")
        agent_url = self._start_agent()
        specs = discover(self.options.root)
        if not specs:
            raise StackError(f"no functions/*/main.py under {self.options.root}")
        http = [s.name for s in specs if s.signature == "http"]
        tokens = {name: secrets.token_urlsafe(24) for name in http}
        keys = {name: secrets.token_urlsafe(24) for name in http}
        env = self._function_env(agent_url, tokens, keys)
        for index, spec in enumerate(specs):
            port = self.ports.function(index, spec.name)
            function = start_function(spec, port, env, self.log_dir, self.options.root)
            self.functions.append(function)
            self._adopt(function.child, SERVER_MODULE)
            self.info.functions[spec.name] = FunctionInfo(
                url=function.url,
                signature=spec.signature,
                topic=spec.topic,
                token=tokens.get(spec.name),
                hmac_secret=keys.get(spec.name),
            )
        api = self._start_bus()
        routes = [
            Route(f.spec.topic, f.push_endpoint(PROJECT)) for f in self.functions if f.spec.topic
        ]
        create(api, routes, pull_dead_letters=self.emulator is not None)
        if self.emulator is not None:
            self.drain = DeadLetterDrain(
                api, routes, self._dead_letters, self._on_dead_letter
            ).start()
        sweep_topic = f"khook-{SWEEP_FUNCTION}"
        if self.options.sweep_every > 0 and any(r.topic == sweep_topic for r in routes):
            self.ticker = Ticker(api, sweep_topic, self.options.sweep_every).start()
        self._maybe_start_forwarder(env)
        for function in self.functions:
            try:
                function.wait_ready()
            except RuntimeError as exc:
                raise StackError(str(exc)) from None
        self.follower = LogFollower(
            self.console, {f.spec.name: f.child.log_path for f in self.functions}
        ).start()
        assert self.watcher is not None
        self.watcher.start()  # from now on an edit of config/ applies live

    def _prepare_state_dir(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        old = stackfile.read(self.state_dir)
        if old is None:
            stackfile.remove(self.state_dir)  # unreadable leftovers
        elif stackfile.is_running(old):
            raise StackError(
                f"a stack is already running from {show(self.state_dir)} (pid "
                f"{old.pid}, started {old.started}); stop it with Ctrl-C in its "
                f"terminal or `kill {old.pid}`"
            )
        else:
            leftovers = stackfile.leftovers(old)
            for child in leftovers:
                self.console.say(
                    f"stopping {child.name} (pid {child.pid}) left over by a "
                    f"stack that did not stop cleanly"
                )
            with ThreadPoolExecutor(max_workers=max(1, len(leftovers))) as pool:
                list(pool.map(stop_group, [child.pid for child in leftovers]))
            self.console.say(
                f"removed stale {show(stackfile.path_in(self.state_dir))} "
                f"(pid {old.pid} is not running)"
            )
            stackfile.remove(self.state_dir)
        stackfile.write(self.state_dir, self.info)
        self._owns_file = True

    def _validate_config(self) -> str:
        from khook_core.errors import ConfigError
        from khook_core.runtime import load_config

        try:
            config = load_config(self.options.config_dir)
        except ConfigError as exc:
            problems = "\n".join(f"  {p}" for p in exc.problems)
            raise StackError(f"the configuration is invalid:\n{problems}") from None
        return f"{len(config.hooks.hooks())} hooks, {len(config.hooks.rules)} event configurations"

    def _publish_config(self) -> None:
        """The config directory as the live snapshot the functions load (see config_watch)."""
        from khook_core.errors import ConfigError

        self.watcher = ConfigWatcher(
            self.options.config_dir, f"sqlite:{self.state_dir / 'state.db'}", self.console
        )
        try:
            self.watcher.publish_initial()
        except ConfigError as exc:
            problems = "\n".join(f"  {p}" for p in exc.problems)
            raise StackError(f"the configuration is invalid:\n{problems}") from None

    def _start_agent(self) -> str:
        user_url = os.environ.get("KAGENT_API_URL") or os.environ.get("KAGENT_API_BASE_URL")
        if user_url:
            self.info.agent_url = user_url
            return user_url
        self.agent = DemoAgent(
            self.state_dir / "agent-prompts.jsonl", self.console.out, self.console.lock
        ).start(self.ports.agent())
        self.info.agent_url, self.info.demo_agent = self.agent.url, True
        return self.agent.url

    def _function_env(
        self, agent_url: str, tokens: dict[str, str], keys: dict[str, str]
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
        path = os.pathsep.join(p for p in (str(self.options.root), env.get("PYTHONPATH")) if p)
        env |= {
            "PYTHONPATH": path,
            "KHOOK_CONFIG_DIR": self.info.config_dir,
            "KHOOK_STATE": f"sqlite:{self.state_dir / 'state.db'}",
            "KHOOK_LOG_FORMAT": "json",
            "KAGENT_API_URL": agent_url,
            "PYTHONUNBUFFERED": "1",
            "KHOOK_CONFIG_REFRESH": FUNCTION_REFRESH_S,
        }
        for name, token in tokens.items():
            env[f"{env_prefix(name)}TOKEN"] = token
        for name, key in keys.items():
            env[f"{env_prefix(name)}HMAC_SECRET"] = key
        if not env.get("KHOOK_REDACTION_KEY"):  # one key for every local function
            env["KHOOK_REDACTION_KEY"] = redaction_key(self.state_dir)
        return env

    def _start_bus(self) -> PubSubRest:
        choice = self.options.bus
        port = self.ports.pubsub()
        reason = ""
        if choice in ("auto", "emulator"):
            launcher, reason = find_launcher()
            if launcher is not None:
                emulator = PubSubEmulator(
                    launcher, port=port, log_path=self.log_dir / "pubsub-emulator.log"
                )
                self.emulator = emulator
                try:
                    emulator.start()
                except RuntimeError as exc:
                    self.emulator = None
                    reason = str(exc)
                else:
                    assert emulator.proc is not None
                    self._record_child("pubsub emulator", emulator.proc.pid, EMULATOR_MARKER)
                    self.info.bus = BusInfo(kind="emulator", host=emulator.host, project=PROJECT)
                    return emulator
            if choice == "emulator":
                raise StackError(f"--bus emulator: the Pub/Sub emulator is unavailable: {reason}")
        self.bus = MemoryBus(self._dead_letters, self._on_dead_letter).start(port)
        self.info.bus = BusInfo(kind="memory", host=self.bus.host, project=PROJECT)
        self._bus_note = f"Pub/Sub emulator unavailable: {reason}" if reason else ""
        return RestEndpoint(self.bus.host)

    def _maybe_start_forwarder(self, env: dict[str, str]) -> None:
        why = ""
        if not self.options.forwarder:
            why = "--no-forwarder"
        elif self.emulator is None:
            why = (
                "the stack starts it only beside the Pub/Sub emulator "
                "(the in-process bus is running)"
            )
        else:
            context, why = reachable_cluster()
            if context is not None and "khook-kubernetes" in {f.spec.topic for f in self.functions}:
                self._forwarder_port = self.ports.forwarder()
                child = start_forwarder(
                    context,
                    emulator_host=self.emulator.host,
                    project=PROJECT,
                    topic="khook-kubernetes",
                    config_dir=self.options.config_dir.resolve(),
                    port=self._forwarder_port,
                    log_dir=self.log_dir,
                    env={**env, "KHOOK_FORWARDER_FLUSH_SECONDS": FORWARDER_FLUSH_S},
                    cwd=self.options.root,
                )
                self._adopt(child, FORWARDER_MARKER)
                self.info.forwarder = str(child.pid)
                self._cluster = context
                return
            why = why or "no kubernetes function to forward to"
        self.info.forwarder = f"skipped: {why}"

    def _adopt(self, child: Child, marker: str) -> None:
        self.children.append(child)
        self._record_child(child.name, child.pid, marker)

    def _record_child(self, name: str, pid: int, marker: str) -> None:
        self.info.children.append(ChildInfo(name=name, pid=pid, marker=marker))
        stackfile.write(self.state_dir, self.info)

    # -- running --------------------------------------------------------------------------

    @property
    def _dead_letters(self) -> Path:
        return self.state_dir / "dead-letters.jsonl"

    def _on_dead_letter(self, record: dict[str, Any]) -> None:
        self.console.say(
            f"  dead letter: message {record['messageId']} of "
            f"{record['subscription']} after {record['deliveryAttempts']} "
            f"attempts → {show(self._dead_letters)}"
        )

    def _announce(self) -> None:
        say = self.console.say
        for function in self.functions:
            spec = function.spec
            how = (
                f"← Pub/Sub topic {spec.topic}"
                if spec.topic
                else f"HTTP, bearer token {env_prefix(spec.name)}TOKEN in "
                f"{show(stackfile.path_in(self.state_dir))}"
            )
            say(f"  function   {spec.name:<13} {function.url:<24} {how}")
            if spec.name == "console":  # the page takes its API token from the fragment
                token = self.info.functions[spec.name].token
                say(f"  dashboard  {function.url}#token={token}")
        bus = self.info.bus
        assert bus is not None
        dead = f"dead letters after 5 attempts → {show(self._dead_letters)}"
        if bus.kind == "emulator":
            say(
                f"  pubsub     Pub/Sub emulator on {bus.host} (PUBSUB_EMULATOR_HOST={bus.host}, "
                f"project {bus.project}); {dead}"
            )
        else:
            say(
                f"  pubsub     in-process bus on {bus.host} (the REST publish API, project "
                f"{bus.project}); {dead}"
            )
            if self._bus_note:
                say(f"             {self._bus_note}")
        if self.agent is not None:
            say(
                f"  agent      demo A2A agent on {self.agent.url}/api/a2a/<namespace>/<name>/ "
                f"(prompts also in {show(self.agent.prompts_path)})"
            )
        else:
            say(f"  agent      KAGENT_API_URL={self.info.agent_url} (yours; no demo agent)")
        say(f"  state      sqlite:{show(self.state_dir / 'state.db')}")
        if self.ticker is not None:
            say(
                f"  sweep      a tick every {self.ticker.every:g} s → topic {self.ticker.topic} "
                "(Cloud Scheduler's job when deployed)"
            )
        if self.info.forwarder.startswith("skipped"):
            say(f"  forwarder  {self.info.forwarder}")
        else:
            say(
                f"  forwarder  watching cluster {self._cluster} → topic khook-kubernetes (pid "
                f"{self.info.forwarder}; http://127.0.0.1:{self._forwarder_port}/readyz)"
            )
        say(f"  logs       {show(self.log_dir)}/")
        for moved in self.ports.moved:
            say(f"  note       {moved}")
        say("")
        say("Ready. In another terminal: make demo   (or: .venv/bin/khook send SOURCE FILE...)")
        say("Stop with Ctrl-C.")

    def _check_children(self) -> None:
        for child in self.children:
            code = child.exit_code()
            if code is not None and child.name not in self._reported:
                self._reported.add(child.name)
                self.console.say(
                    f"{child.name} exited with status {code}; its log: {show(child.log_path)}"
                )

    # -- shutdown -------------------------------------------------------------------------

    def _teardown(self, code: int) -> int:
        self._phase = "stopping"
        if not self._owns_file:
            return code  # nothing was started; the stack.json there is another stack's
        if self.children or self.emulator or self.bus or self.agent:
            self.console.say("stopping…")
        for part in (self.follower, self.watcher, self.ticker, self.drain):
            if part is not None:
                part.stop()
        groups = [c.pid for c in self.children if c.proc is not None]
        if self.emulator is not None and self.emulator.proc is not None:
            groups.append(self.emulator.proc.pid)
        forwarder = [c for c in self.children if c.name == "forwarder"]
        for child in forwarder:  # first, so it can flush into the emulator
            child.stop()
        stoppers: list[Callable[[], None]] = [c.stop for c in self.children if c not in forwarder]
        if self.emulator is not None:
            stoppers.append(self.emulator.stop)
        with ThreadPoolExecutor(max_workers=max(1, len(stoppers))) as pool:
            for future in [pool.submit(stop) for stop in stoppers]:
                try:
                    future.result()
                except OSError as exc:  # reported below if the group survived
                    logger.warning("stopping a child failed: %s", exc)
        if self.bus is not None:
            self.bus.stop()
        if self.agent is not None:
            self.agent.stop()
        left = [pid for pid in groups if group_alive(pid)]
        stackfile.remove(self.state_dir)
        if left:
            self.console.say(f"could not stop process groups {left}")
            return code or 1
        self.console.say(f"stopped {self._inventory()}; nothing left running")
        return code

    def _inventory(self) -> str:
        parts = [f"{len(self.functions)} functions"] if self.functions else []
        parts += [
            what
            for what, present in (
                ("the Pub/Sub emulator", self.emulator is not None),
                ("the in-process bus", self.bus is not None),
                ("the forwarder", any(c.name == "forwarder" for c in self.children)),
                ("the demo agent", self.agent is not None),
            )
            if present
        ]
        return (
            ", ".join(parts[:-1]) + " and " + parts[-1]
            if len(parts) > 1
            else (parts[0] if parts else "nothing")
        )


def run_up(options: UpOptions) -> int:
    """``khook up``."""
    return Stack(options).run()


REDACTION_KEY_FILE = "redaction.key"


def redaction_key(state_dir: Path) -> str:
    """The local stack's redaction key, made once and kept in the state directory, so masks of
    one secret stay alike across functions and restarts."""
    from khook_core.redaction.keyed import new_key

    path = state_dir / REDACTION_KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = new_key()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(key)
        return key
