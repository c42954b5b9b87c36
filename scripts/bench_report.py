"""Write docs/benchmarks.md from the records the benchmarks appended to the results file.

Each benchmark prints its figures and appends them (name, value, unit, budget, verdict, the
design budgets a figure covers) to ``.khook/bench-results.jsonl`` through
``benchmarks/_report.py``, together with the budgets it could not measure and why, small
breakdown tables, and (from ``make bench``) each benchmark's exit status. This turns one run's
file into the report: every figure beside its budget, pass or miss, the misses listed first,
"not measured" (with the reason) for every budget of design.md's table without a figure, the
machine, and how to reproduce.

Exit status 1 when anything missed, was not measured or a benchmark stopped early, so that
``make bench`` fails after the report is written.

Usage: ``scripts/bench_report.py [--results FILE] [--output docs/benchmarks.md]`` (stdout if
no ``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("KHOOK_BENCH_RESULTS", ROOT / ".khook" / "bench-results.jsonl"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _report import BUDGETS  # noqa: E402 - the budget table the benchmarks' figures cover

Record = dict[str, Any]

NOTES = """\
## What bounds the figures

- **Pipeline throughput** is bounded by Python object work per event: parsing the JSON,
  validating the raw Kubernetes Event in one pass (pydantic-core), building the `Event`, the
  dedup key and the claim. Duplicates — most of a storm — stop at the claim and never pay for
  mapping enrichment, prompt rendering or dispatch. The floor (`json.loads` +
  `Event.model_validate`) is measured in the same process, so the ratio is stable across
  machines while the absolute rate is not.
- **Which pipeline workload each budget applies to.** ≥ 20,000 events/s and ≤ 2.0× the floor
  are checked on the *storm mix*: 20,000 Warning events over 2,000 pods, a quarter with no
  hook, so only about 7.5 % of the events are rendered, dispatched and recorded. ≤ 4.0× the
  floor is checked on the *all unique* stream, where every event fires (claim, render, dry-run
  dispatch, audit record): the per-firing cost, which the storm mix mostly skips.
- **Function import** is a ratio to a floor measured in the same run, in turns with the
  functions: a fresh process that only runs `import functions_framework, pydantic` (≤ 1.20×).
  `import pydantic` alone loads pydantic's lazy top level; the first `BaseModel` class loads
  the rest (`pydantic.main`, its schema builder, `pydantic.types`), which every function needs.
  `sources_cold_start.py` times, in the same turns and unbudgeted, that floor plus one model
  class and `import yaml`: what a start that parsed its YAML and checked it with pydantic
  would not go below. Counted in instructions (valgrind, which a loaded machine does not
  skew), the floor is 773 M and one model class takes it to 981 M (1.27×): more than the
  1.20× budget before any khook module is imported, so the budget cannot be met while a bad
  configuration fails the cold start (the start validates every file with the models).
  PyYAML (+89 M, 12 % of the floor) is no longer on that path: the archive carries each
  configuration file pre-parsed to JSON beside it, with the sha256 of the YAML it was made
  from (`khook_core.preparsed`, written by `scripts/package.py`); the start loads that form
  when the hash matches the file, parses the YAML when it does not, and validates either with
  the same models. The cold-start benchmarks lay their config directories out as the archive
  does. `functions/kubernetes`: 1,531 M → 1,423 M (1.98× → 1.84× the floor, same run).
- **Hook conditions** (`when:`). The storm mix is run again with a CEL condition on every
  configuration (a resource kind, a reason and a count threshold, true for every event so the
  decisions are the same), paired round by round with the run without; the budget is at most
  10 % over. The ratio is the median of the rounds' ratios in CPU time: a difference of a few
  per cent is lost in wall-clock noise on a shared machine. One evaluation costs one to two
  microseconds; a condition that reads the severity, the tags or the internal type applies
  the mapping row before matching (as `minSeverity` and `matchTags` do), so every duplicate
  pays for it too; that run is reported beside, unbudgeted.
- **Correlation** (`correlate:` on every hook, ≤ 1.20× the run without). The storm mix's
  15,000 hooked events join 15 workload incidents (about 1,000 joins each); a join costs what
  a duplicate does plus the incident store's read-modify-write, so the figure is the price of
  that write per repeat. Members are kept as an append-only record read up to a size
  (`incident_changes.Members`): a join adds its member in place, in O(1), and an incident a
  store handed out never sees a later join (the reason the members were copied before). The
  join is written out in `incident_changes.correlate` (no helper calls, keyword dicts or
  copies), and a repeat joins on its claim's instant with its decision built as a duplicate's.
  In instructions (valgrind, 20,000 events, the set-up subtracted), correlating vs plain:
  266.7 k vs 244.6 k an event before (1.09×; 29.5 k a join beyond a duplicate), 251.6 k vs
  244.9 k after (1.03×; 8.9 k a join); function calls 2.22 M → 2.07 M (plain 2.00 M). In CPU
  time, alternating runs of the two builds: 1.18–1.25× before, 1.03–1.11× after. The SQLite
  store still reads and rewrites an incident's whole row (members, evidence) per join: about
  1.3 M instructions a join while the members fill, 2.0 M once they are full.
- **Cold start** (≤ 250 ms, spawn → first event answered) is dominated by importing
  functions-framework (Flask) and pydantic, both needed by every function. Both cold-start
  benchmarks spawn, in the same turns and through the same probe, a hello-world function that
  only decodes the Pub/Sub message (`benchmarks/_hello.py`, the request-rate benchmark's): its
  figure ("floor: hello-world function cold start") is what no Python function served by
  functions-framework goes below on the machine; `functions/kubernetes`'s ratio to it is printed
  beside. khook adds its own
  modules only (no pydantic-settings, no Google
  or Kubernetes client, no httpx until the first dispatch), loads its configuration from the
  archive's pre-parsed JSON (PyYAML only for a file changed since packaging), and imports no
  source plugin but its own. Every function's first event is dispatched to a
  local A2A agent (the a2a-sdk test agent), so the figure includes importing httpx, creating
  the client and one round trip; the sweep function's first tick on a fresh memory store has
  nothing held back, so it dispatches nothing, and since the sending dispatcher is built on
  its first dispatch it no longer imports httpx either: 2,213 M → 1,584 M instructions from
  spawn to the tick answered (2.86× → 2.05× the floor's). Of `functions/kubernetes`'s whole cold start
  (2,165 M instructions, 2.80× the floor's), the first event is 636 M, of which importing
  httpx and creating its client are 582 M. In the development environment that import also
  loads three packages the deployed function does not have (trio, which httpcore imports when
  it is installed, here for selenium; rich and Pygments, which httpx's command line imports
  when installed, here for import-linter and pytest): without them httpx costs 160 M and the
  whole cold start 1,767 M (2.28×). The budgeted figures are now taken in the deployed
  environment, which does not have them (next point).
- **Where `functions/kubernetes`'s cold start goes**, in the deployed environment, counted
  in instructions (valgrind, the whole spawned process, the probe of `kubernetes_function.py`):
  the interpreter 82 M; `import functions_framework` 577 M (with pydantic, the floor, 774 M;
  with one model class 985 M); khook's modules 145 M beyond that; `transport.start` 112 M,
  most of it importing the modules whose pydantic models validate the configuration (the
  hooks 40 M, the report destinations 17 M, the storm settings 19 M, the mapping 15 M, the
  redactor 30 M, the settings tree 53 M with its seven groups); `create_app` 37 M; the first
  event 193 M, of which importing httpx is 77 M, khook's dispatch modules 18 M, and creating
  the client's transport (httpcore, h11) and two round trips to the agent most of the rest.
  What remains is the validation the start guarantees: every model that checks a
  configuration file or the environment is built before the first event, so a bad file fails
  the start. The redactor's rare-path patterns (the secret-pair keyword and tail, searched only
  when a text holds a pair anchor; the PII kinds, compiled only for a kind a hook opts into)
  compile on first use: 8.3 M fewer instructions to the first event answered (0.6 %).
- **Which environment the cold-start and import figures come from.** A deployed function runs
  from its archive: a plain `pip install -r requirements.txt` of the pinned runtime closure
  (the core and the `functions`, `firestore` and `cloud` extras, plus a function's own
  `requirements.txt`), with `khook_core` at the archive's root. `sources_cold_start.py`,
  `kubernetes_function.py` and `imports.py` build that environment under
  `.khook/deployed-venv/` (a plain install of the requirements `scripts/package.py` writes
  into every archive, plus the archive's entry points; khook itself is not installed but on
  `PYTHONPATH`, as at the archive's root; built on the first run, from pip's cache, and again
  only when those requirements change) and spawn every function, and the
  floor, from it and from the development venv in alternating turns. The budgets are checked
  on the deployed venv's figures, because that is what Cloud Functions runs; the development
  venv's are printed beside them, marked `[development venv]` and unbudgeted. They are higher:
  every process there consults the editable install's path finder at start, and the first
  dispatch imports development-only packages that httpx and httpcore load when installed
  (trio, here for selenium; rich and Pygments).
- **Live configuration's cold start** (no worse than without, within 10 % + 15 ms). The first
  event opens a second SQLite connection and reads the version. With a published snapshot it
  reads the row and compares digests (the deployed files: nothing loaded twice); on an empty
  store it publishes the deployed files as version 1 (one `BEGIN IMMEDIATE` transaction
  expecting version 0: of racing instances exactly one publishes). Either costs some 2.7 M
  instructions over the start without (1,361 M for the whole process, valgrind: 0.2 %; no
  module imported but the config store's). What an empty store cost beyond that was waiting
  for the disk: creating the table and the bootstrap were two commits at SQLite's default
  `synchronous = FULL`, three fsyncs with the directory's, some 4 ms each on the benchmark
  machine (`strace`; the first `current_runtime` 10.2 ms, now 0.5 ms in SQLite). Both are
  safe to lose to a power cut (the next handle creates the table again, the next start
  bootstraps the empty store again), so they commit at `NORMAL`, which survives the process
  crashing; a push still waits for the disk. Before the first answer the process now syncs
  as often with an empty store as without live configuration (8 times: the state file's
  creation and the silences' table), with a snapshot 4 times (its file exists already, in WAL
  mode). The rest is process-start noise, tens of milliseconds on a busy two-core machine
  against a gap of a few: each median is of 20 runs, and the table gives each variant's
  spread. The benchmark compiles khook before spawning (as `sources_cold_start.py` does):
  with `PYTHONDONTWRITEBYTECODE` set every process would compile every khook module, and a
  module only one variant imports would count against it.
- **Forwarder** budgets: ≥ 5,000 events/s into the emulator, peak RSS ≤ 50 MiB through the
  storm. Throughput is bounded by the emulator's answers to the publish requests (two in
  flight) on two cores; peak RSS by the imports (38 MiB) plus the bounded publish queue
  (backpressure on the watch while Pub/Sub is slower than the watch).
- **End-to-end latency** on one machine is dominated by the emulator's push delivery.
- **Claim latency** on the Firestore emulator is one `create()` round trip; a lost race costs a
  second read to check the loser's expiry.
- **Telemetry's cold start** (≤ +10 ms on, nothing off) is the time to serve the first event
  without the OpenTelemetry SDK: importing it costs a cold start tens of milliseconds (the
  metrics SDK most of them), so spans and measurements are recorded by khook's own code
  (`telemetry/deferred.py`, `tracecontext.py`: about 2 ms of import) and the SDK is loaded on a
  background thread after the first answer, then handed what was recorded. The benchmark times
  that load apart ("SDK loaded after the first answer"): it is the cost moved off the request
  path, not removed. The pipeline with the SDK loaded is measured as before.
- **Console counts on Firestore.** Firestore has no `GROUP BY`, so counting a day by reading
  it means one streamed record per firing (50,000 for the benchmark's day). Each audit record
  now increments its minute's counter in the same batch (ten minutes of counters, per shard, in
  one document of `firing_counts`), and `counts` reads 144 such documents a day per shard in
  use, plus the records of the partial minute at the range's start. On the emulator that
  partial minute is a range query over `firings`, which the emulator answers by scanning the
  collection (as it does the firings page); in production it is an indexed read of at most a
  minute of records. Firestore's `count()` aggregation was measured and not used: one query
  per bucket and group (the emulator scans for each), thousands for a day's chart. The
  counter costs each audit write a second write in the same commit (one round trip still).
  The benchmark's synthetic day is the counters' worst case: its firings spread evenly over
  120 hooks × sources × types × decisions, so a minute's counter holds almost one entry per
  firing; a real storm (one hook, one decision) collapses into a few entries a minute.
- **Console counts on SQLite** read the day's range and the four counted fields from one
  covering index (`firings_counts`), never the table's rows; what remains is SQLite's
  GROUP BY over the day's 50,000 index entries.

## Profiles: where the time goes

cProfile of `run_pipeline` (memory state, dry-run dispatch; profiler overhead inflates small
calls, so read shares, not times). Reproduce: profile the loop of `benchmarks/pipeline.py`'s
`measure` on `storm_mix()` or `all_unique()`.

**Storm mix** (5,000 events), share of `run_pipeline`'s cumulative time:

- `KubernetesSource.normalize`: 38 % (44 % before it was reworked). Its own time 12–14 %
  (reading the validated fields, building the metadata map and the Event's field dict in one
  literal, `Event.assemble`); `_occurrence` (the timestamps, looked up in a map of the strings
  already parsed) 5–6 %; validating the raw Event (pydantic-core, its validator called directly)
  3 %; the stable id (SHA-256 of the id's parts, the timestamp's text kept per instant) 4 %.
- `process_event` (match, claim, decision): 37 %, of which the 375 firings (render,
  dispatch, record) 15 %; the 3,375 duplicates stop at the claim (which opens no span with
  telemetry off).
- `Redactor.events` (the pre-check, with its memory of clean texts): 6–7 %.
- `json.loads`, which the floor pays too: 12 % of the whole loop.

The storm mix's ratio to the floor stays above 2.0× (2.99–3.29× against 3.59–3.63× before, CPU
time, best of 5 rounds of 5,000 events, two runs of each build alternated). What each guarantee costs, in instructions per event
(valgrind, which a shared machine does not disturb; the floor is 101,500: `json.loads` 59,400,
`Event.model_validate` 44,100; the pipeline 248,200, 277,300 before, so 2.45× against 2.73×):

| step | guarantee it serves | instructions / event | × floor |
|---|---|---:|---:|
| raw-Event validation (pydantic-core, strict) | a malformed event stops here | 17,800 | 0.18× |
| the rest of normalize: timestamps, stable id, `Resource`, `Event` | a redelivery keeps its id | 71,700 | 0.71× |
| redaction's pre-check | no secret leaves | 18,300 | 0.18× |
| drop reason, candidates, matching | a hook fires only on what it selects | 10,300 | 0.10× |

Without the raw validation and the redaction pre-check the pipeline would still be some 212,000
instructions, 2.09× the floor: the budget is missed by the per-event work of Python itself (a
hundred calls an event, some thirty of them dictionary reads, and three model objects
built), not by a guarantee, and none is dropped. The path after the redaction of the storm's
duplicates and unhooked events (drop reason, candidates, matching, the silence check, the firing
key, the claim, the duplicate's decision) was then cut from 45,200 to 34,900 instructions an
event (a pass of 5,000 storm-mix events every hooked one of which is a duplicate): a duplicate
builds no `Attempt` (only a won claim, a resolved event or a failure needs one), the silence
check returns at once when nothing mutes and no read is due, a one-hook event is matched and
fired without lists and `candidates` builds no default lists. With the 375 firings,
`process_event` is 63,700 an event (73,100 before) and the whole pipeline 236,400 (246,900
before) against 89,700 for the floor counted the same way: 2.64× (2.75×). Decoding and normalize
alone are 146,500 (1.63× the floor), so the 2.0× budget leaves 32,900 for redaction's pre-check
(22,900), matching, claims, decisions and the firings (63,700 on their own).
The floor validates a ready dict of the Event's fields; the pipeline must derive that dict from
a raw Kubernetes Event first.

**All unique** (every event fires), share of the loop's cumulative time, before → after:

| frame | before | after |
|---|---:|---:|
| `prompt.event_data` (the data block's capped values) | 21 % | 10 % |
| capping the metadata: `_cap_json`, a call a value → `_cap_map`, a call a map | 9 % | 4 % |
| `strftime` of the event's times (now cached per distinct instant) | 4 % | < 1 % |
| function calls for 4,000 firings | 1,575,005 | 1,378,534 |

Kept on every firing, as the prompt-safety and audit guarantees: the data block's JSON
encoding (`json.dumps`, sorted keys, ASCII) and its nonce, the audit record's prompt hash and
the two SHA-256 digests of the A2A message and context ids.

**Function import** (`functions/kubernetes`, `create_app`), as first profiled: 64 dataclass and
39 pydantic model classes built, about 40 regular expressions compiled (PyYAML's `Reader.NON_PRINTABLE` among
them, though the C loader never uses it), and two scans of every installed distribution's
entry points (pydantic's plugin discovery, then khook's `khook.sources`). Source discovery
parses only the distributions that declare `khook.sources`. What each part adds, in
instructions (valgrind; a loaded machine skews wall-clock shares, not these), each added to
what the rows above it loaded:

| part | instructions | share of the floor |
|---|---:|---:|
| the floor, `import functions_framework, pydantic` | 774 M | 100 % |
| the first model class (the rest of pydantic) | +221 M | 29 % |
| PyYAML (now not imported: the pre-parsed configuration is loaded instead) | +89 M → 0 | 12 % → 0 |
| settings, hooks, mapping (their models, prompts, conditions, storm and report config) | +207 M | 27 % |
| `khook_core.state` (ten record dataclasses, fourteen protocols) | +77 M | 10 % |
| the redactor, the source registry, the dispatcher factory | +56 M | 7 % |
| the rest: silences, telemetry, the pipeline, and the start itself (settings, files, hooks, the source, the entry-point scan) | +124 M | 16 % |
| `functions/kubernetes` in all | 1,548 M | 200 % |
| `functions/kubernetes` in all, configuration pre-parsed (another run: 1,531 M before) | 1,423 M | 184 % |
| `functions/kubernetes` in all, rarely used records created on first use (another run: 1,422 M before) | 1,343 M | 174 % |

The reporting package (findings back to GitHub and PagerDuty) was imported by the task
tracker at every function's import; it is now imported only for a webhook event's tracked
task, the one source whose events have somewhere to report back. The credential detectors
compile their patterns the first time a text has one of their anchors. In instructions:
`functions/kubernetes` 1,584 M → 1,548 M, `functions/webhook` 1,612 M → 1,597 M. What remains
is spread over every module the start needs: pydantic's model builds (deferring them saves
nothing, as the start validates every configuration file), dataclass builds (`exec` of their
generated methods, about half a millisecond each), and the scan of installed
distributions. Timed in CPU (each class's build wrapped, in the deployed venv): of the 113 ms
`main.py` adds to a floor of about 155 ms, building dataclasses takes 47 ms (89 classes: 57
of khook's, the rest pydantic's own, loaded by the first model class) and building pydantic
model classes 34 ms (event 7, settings 7, hooks 5, redaction rules 4, report and storm config
4 each). Those model modules no longer use `from __future__ import annotations`: with it every
field annotation was a string, which pydantic turned into a `typing.ForwardRef`, compiled and
evaluated one by one (194 for `functions/kubernetes`, 247 for `functions/webhook`); the fields
now carry the types themselves, and only a method's return naming its own class, a later
class and the names imported for type checking alone stay quoted. In instructions, same run:
`functions/kubernetes` 1,268 M → 1,249 M (1.64× → 1.62× the floor), `functions/webhook`
1,313 M → 1,293 M (1.70× → 1.67×). Of the 872 `ForwardRef`s the start still creates, 710 are
pydantic-core's own (its schema `TypedDict`s, loaded by the first model class). Deferring every model's build (`defer_build`) saves 5 M instructions (0.3 %): the
start validates settings, mappings, plugins and hooks, and the hook schema nests the storm,
report and redaction models; the only models not built at start are the `Event` (built on
the first event instead) and a few settings groups. A frozen dataclass of eight fields costs
about 5.9 M instructions to create (Python 3.11 compiles each generated method on its own).
Of the 43 khook dataclasses `functions/kubernetes` created by its first event answered, 20
were never instantiated; those only the console, the CLI, live config, silences, incidents,
approvals, finished tasks, storm control's held-back summaries and a configured maintenance
window build now live in modules of their own (`state/records.py`, `storm/backlogs.py`,
`silencing/occurrences.py`; `tracking.finding` is imported by the first timed-out task),
loaded on first use and still exported from their old modules: 43 → 30 created, 7 of them
never instantiated (the redactor's finding records, `errors.Problem`, the prompt's template
problem, the compiled webhook body, the dispatchers' task lookup: each in a module the start
needs, built on paths that are not rare). Pydantic read the signature of every
`default_factory=list` field, which for the builtin `list` has `inspect` tokenize its text
signature and compile the tokenizer's patterns (the "builtin signature" seen in profiles):
list fields now use a plain function (`configmodel.new_list`), identical in behaviour. A
dataclass without a docstring (`Runtime`) had one rendered from `inspect.signature` as it was
created. In instructions, same run: `functions/kubernetes` import 1,422 M → 1,343 M (1.84× →
1.74× the floor's 773 M) and spawn → first event answered 1,652 M → 1,574 M (2.14× → 2.04×);
`functions/webhook` spawn → first event answered 1,697 M → 1,617 M. The first dispatched
event adds importing httpx: 16 ms of CPU (about a tenth of the floor's).

**Function request rate** (`benchmarks/function_requests.py`): `functions/kubernetes` and a
hello-world CloudEvent function that only decodes the message (base64 + `json.loads`), both
under `python -m functions_framework` (gunicorn, one worker, 8 threads), fed the same storm mix
of Pub/Sub push bodies (2,000 a turn over 150 pods, 7.5 % firing, dry-run dispatch) over four
keep-alive connections, in rotated turns. On the shared 2-core machine the per-round ratio
ranges widely (0.46–0.88× in one run), so read the medians of several runs: over four runs,
memory state 0.63–0.73×, SQLite state 0.60–0.74× (budgets 0.90× and 0.85×: missed, before a
checked push skipped the framework's dispatch; below). Without the HTTP
server, through the Flask test client in one process, a request costs about 400 µs in the
hello world, 690 µs with the memory state and 920 µs with SQLite: khook adds about 290 µs
(memory) to a floor of 400 µs, where 0.90× allows 45 µs.

cProfile inside the gunicorn worker (its request handler wrapped, one request at a time; wall
time, so a share freed shows up as waiting on the socket), share of a request, before → after:

| frame | before | after |
|---|---:|---:|
| gunicorn: parse the request, send the answer | 21 % | 38 % |
| Flask and functions-framework: request context, push envelope → CloudEvent | 19 % | 20 % |
| `guard`: reading the body under its deadline | 20 % | 2 % |
| `guard`: `envelope.check` (the delivery's shape, one `json.loads`) | 3 % | 4 % |
| `handle_pubsub` outside the pipeline: decoding, `jsontext` checks, log context | 7 % | 7 % |
| `run_pipeline`: normalize, redaction pre-check, match, claim, the 7.5 % firing | 11 % | 9 % |
| the JSON acknowledgement (a new response a request, now rewritten in place) | 3 % | 2 % |

The body deadline started a `threading.Timer` (a new thread, which the request waits for) on
every request; one watchdog thread a process (`transport/deadlines.py`) now keeps the
deadlines in a heap, so arming is a heap push. Under the profiler that was a fifth of a
request; without it, paired turns of the two builds differ by less than the machine's noise
(832 vs 852 requests/s, median of 8). What remains is the guarantees: the push envelope is
parsed twice (khook's shape check, then functions-framework's conversion) and the message's
JSON once more with its depth, number and surrogate checks; the pipeline validates, redacts,
claims and records each event. None of those was dropped.

**Forwarder memory**: resident size after each import, in the forwarder's order in one
process. Before: the interpreter 11 MiB, pydantic + khook's settings +20 MiB, the `kubernetes`
client (all its models, requests, oauthlib, google-auth, urllib3, PyYAML) +27 MiB,
`google.cloud.pubsub_v1` (grpc, protobuf, google-api-core) +25 MiB: 83 MiB before the first
event, 90–96 MiB at the peak of the storm. Now the forwarder publishes through Pub/Sub's REST API
(`forwarder/pubsub_rest.py`: one `topics.publish` request a batch, two in flight, the metadata
server's token) and watches through a lean client over urllib3 (`forwarder/kube_http.py`);
neither google-cloud-pubsub, grpc nor `kubernetes` is imported (the latter only with
`--hooks-state` or an `exec` kubeconfig user): the interpreter 11 MiB, pydantic + khook's
settings and event model +21 MiB, the pre-filter +1 MiB, urllib3 (with ssl and http.client)
+3 MiB, the forwarder's own modules +2 MiB: 38 MiB before the first event, 48–49 MiB at the
peak. Of the storm's 11 MiB, tracemalloc finds 6.5 MiB of Python objects that stay (the
workload inference caches of `workloads.py` and `sources/kubernetes.py`, 4,096 entries each
with their `Workload` models, and the owner cache); the rest is the batches and parsed Events in
flight at the allocator's high-water mark. Same
machine, alternating runs of the two builds: peak 94.9–96.3 MiB before, 48.4–49.4 MiB after.
The storm's rate is bound by the emulator's answers on a busy two-core machine in both builds
(2,240–2,390 events/s before, 2,120–2,150 after, in the same alternation); CPU time the
forwarder spends per event fell by about a quarter (4,850–6,120 → 7,040–7,630 events per CPU
second). `benchmarks/forwarder.py` reports that CPU time per 1,000 events with each storm (0.13 s
on the all-Warning storm: one core's worth of it is some 7,700 events/s), so the forwarder's
own share of a missed rate can be read off a busy machine.

**Forwarder rate** (budget >= 5,000 events/s into the emulator; 4,314 in the last full run,
6,084 in the one before). py-spy on the forwarder process through the benchmark showed its one
watch thread as the limiting stage: the publisher's senders waited on an empty queue about 40 %
of their time, while the watch thread spent its own on the source's `normalize` (~30 %), owner
lookups it made synchronously (~17 %, mostly waiting for the API server), `json.dumps` of the
object it was about to publish (~16 %), the watch line's `json.loads` (~13 %) and the stream
itself. Changes: owner lookups run on the sender threads, each batch's just before it is
published (`filtering.attach_workloads`, the publisher's `prepare`), so the watch never waits on
an API call; a watch line laid out as the API server lays it out keeps its object's own text,
which is published as it is instead of encoded a second time (`kube._server_line`; a real
kube-apiserver's lines all take it, other layouts are parsed as before); the filter judges an
Event without building it (below); the publish request's body is written as bytes, so hundreds of
kilobytes of base64 a batch skip the JSON encoder (`pubsub_rest.request_body`). A pre-existing
bug came to light on the way: with two senders, a failed batch was put back at the queue's
front even when another sender had meanwhile requeued an older one, so in an outage the queue
could keep old messages and drop newer ones; each message now carries its place in the queue
and a requeue puts it back by age. In instructions (valgrind; 5,000 all-Warning watch lines
through `RawWatch`, the watcher and the filter to the queue, and their request bodies; owners
off; set-up subtracted): 400 k an event before, 292 k after the lookups, text and body changes,
204 k with the judgement below. The forwarder's CPU time per 1,000 events on the all-Warning
storm fell from 0.11–0.15 s to 0.05–0.06 s, its peak RSS from 47.5 to 41.8 MiB (the workload
inference caches are no longer filled), and its watch thread now waits on the queue's
back-pressure: the emulator's answers bound the rate. The emulator is a JVM that compiles its
publish path during the first storm it serves (some 14 s of its CPU against 7 s warm, on the
same two cores), so the benchmark runs one unmeasured storm of other objects first and reports
its rate beside the others ("warm-up storm"); on a quiet machine the warm-up storm ran at
5,800–6,700 events/s and the measured ones at 8,800–9,300 (all-Warning) and 9,400–10,900
(owner storm).

**The pre-filter's verdict without building Events.** The filter asked the kubernetes source's
`normalize` for every watched Event only to learn its event type (or its drop, or that it is
invalid), so every Event that could fire was built and thrown away: its SHA-256 stable id, the
workload inference, the resource, group key and metadata, the `Event` itself. The source now
has one judgement (`KubernetesSource._judge`: validation, the API shape, the occurrence, the
drops, the event type) that `normalize` assembles the Event from and the filter asks through
`event_types_of`, which returns a drop's reason instead of raising it (most watched Events are
dropped); the filter's `last_occurrence` reads timestamps through the source's cache of parsed
ones, so the judgement finds them parsed. Verdicts are unchanged, reason for reason
(`tests/unit/forwarder/test_verdicts.py` holds them to the route that built the Events, on the
storm rows, the samples and generated Events). In instructions (valgrind, 20,000 storm Events
through the filter the forwarder's tests build, owners off, the watch line's text published,
the set-up subtracted), a judged Event, before → after: all-Warning storm 163 k → 80 k
(0.49×); the realistic mix, where most Events are Normal chatter that was dropped before any
Event was built, 91–93 k → 69 k (0.74×). Step by step (measured with the object's JSON still
encoded): all-Warning 234 k → 158 k (the judgement) → 150 k (the cached timestamps), the mix
96.8 k → 88.1 k → 80.3 k; a Normal Event's judgement with its drop returned, not raised,
42.5 k → 36.5 k. `normalize` itself is unchanged (91 k an Event before and after). Of the
filter's time under cProfile, before → after, all-Warning: `normalize` 60 % (the stable id
6 %, workload inference 8 %) → the judgement 38 %, `last_occurrence` 15 % → 18 % of the smaller
whole; 106 → 74 function calls an Event (mix: 78 → 67). What is left of the judgement is its
guarantees: the raw Event validated in one pydantic-core pass (a malformed field is `invalid`,
as in the functions) and every timestamp field read, so a broken one is reported as the
functions report it.

**The per-event path with its later features off.** Since the figures above were first taken,
the path gained CEL conditions, silences and maintenance windows, redaction, correlation,
telemetry, live configuration and task tracking. Each now decides once whether it is configured
and costs no more than an attribute test per event when it is not: with telemetry off there is
no span, clock read or metric call per event or claim; the tracking settings a dispatch reads
are looked up once per runtime (`Runtime.tracking`), not through the settings tree's lock and
private attributes per firing; a target's label is worked out once; the data block's and the
strict parser's JSON encoder and decoder are built once (`json.dumps`/`json.loads` with options
build a new one per call); a firing reads the clock once for its silences and its claim. A
profile of the loop (cProfile, 20,000 storm-mix and 5,000 all-unique events), before → after:

| | storm mix | all unique |
|---|---:|---:|
| function calls per event | 134 → 128 | 328 → 312 |
| `KubernetesSource.normalize`, share of the loop | 45 % → 49 % | 20 % → 19 % |
| `process_event` (match, claim, decision; the firings) | 32 % → 31 % | 70 % → 70 % |
| `prompt.render`, of which the data block's JSON encoding | 5 % → 7 %, 1 % | 29 % → 27 %, 5 % → 4 % |
| the settings lookup of `tracking.push_fields` | 0.4 % → 0 | 3 % → 0 |
| pipeline / floor, CPU time, min of 7, three paired runs | 3.63–3.67× → 3.46–3.68× | 11.9–13.1× → 10.6–11.4× |

The storm mix's duplicates stop at the claim, so they gained least; what remains of their cost
is the guarantees: the raw Event validated in one pydantic-core pass, its stable id (a SHA-256),
the redaction pre-check before the claim, the claim itself and the decision. A firing still
encodes its data block (sorted keys, ASCII) and hashes it for the nonce, hashes the prompt for
the audit record, digests the A2A message and context ids and writes one audit record.

The request path: a delivery's check (`envelope.check`) walks the message's strings for lone
surrogates only when the body holds a `\\udXXX` escape (strictly decoded UTF-8 can hold no
surrogate otherwise); the guard builds only the headers it reads (`content-type`, `ce-*`) from
the WSGI environ; a decision's log text is built only when INFO is logged. With the SQLite state
a duplicate's claim, a take of an empty backlog and a closed circuit's success are answered from
one read of the committed row instead of a `BEGIN IMMEDIATE` transaction, so a storm's
duplicates never queue for the file's write lock behind other processes ([state](state.md)).
Through the Flask test client in one process (CPU time a request, storm-mix bodies, quietest of
three paired runs): hello world 288 µs; memory state 484 → 438 µs (khook's share 197 → 151 µs);
SQLite 599 → 547 µs (312 → 259 µs). Through gunicorn the per-round ratios of this run ranged
from 0.25× to 1.16× as other work shared the two cores, too wide to read a change of this size;
the medians of two runs were 0.45×/0.90× (memory) and 0.68×/0.54× (SQLite), against 0.81×/0.95×
and 0.51×/0.69× for the build before, in the same minutes.

Where a request's cost outside the pipeline went, in instructions (valgrind, one process, the
WSGI app functions-framework builds called as gunicorn calls it, 400 storm-mix push bodies after
100 to warm up): the garbage collector's full collections walked every object the start built
(some 60,000, tens of ms each, once every few thousand requests with the memory state's growth);
a function's start now ends with `gc.freeze()`, and a full collection takes 2-10 ms instead of
86 ms (the collector's whole share of a request, on against off: about 50 k instructions). `jsontext.loads` searched every payload with a pattern
holding a character class (`\\udXXX` or a surrogate character), 20 µs on a Kubernetes Event;
text decoded from UTF-8 or all ASCII holds no surrogate character, so it searches for the escape
alone (literal-prefixed, under 1 µs). functions-framework parsed the push body a second time to
convert it (`request.get_json()`); the guard's `CheckedRequest` hands it the delivery check's
parse. `logs.bind` is a plain context manager (4.7 → 1.6 µs). Instructions a request, before →
after (hello world 0.89 M, the normalize changes above included): memory state 1.45 M → 1.26 M
(0.61× → 0.71× the hello world's), SQLite 1.50 M → 1.31 M (0.59× → 0.68×). Of the 0.37 M the
memory state still adds, the pipeline is 0.22 M (normalize, redaction, the claim and a firing's
work, above) and the
request around it 0.15 M: the guard's delivery check (about 15 µs: reading the body under its
deadline, its one strict parse, the push envelope's fields), the handler around the pipeline
(about 20 µs: base64 and the payload's strict parse, which the hello world does too, the
message's checks, the log labels, counters and trace span), the JSON acknowledgement (4 µs)
and the collector's young-generation passes over what those allocate. functions-framework's
own work is the hello world's too: its CloudEvent attempt on a push body (`from_http`, about
45 µs, failing before the push-envelope conversion) and a random execution id a request. With
SQLite a duplicate's claim is one read of the committed row and a firing adds three autocommit
writes (claim, audit record, confirmation); the connection is one a process, WAL with
`synchronous = NORMAL` (a commit survives the process crashing; no fsync a request), unchanged.
In instructions a call (valgrind, one process, before → after): a duplicate's claim 43 k → 29 k
(one reused cursor; another owner's live claim is answered without parsing its time), a new
key's claim 168 k → 121 k (one `INSERT … ON CONFLICT DO NOTHING` instead of a transaction
around a second read; committed before the agent is called, as before), the audit record
193 k → 179 k (its row built in one call; the insert into the table and its three indexes is
179 k's bulk: the indexes 42 k, `firings_at` alone 12 k). On the storm mix that is about 14 k
instructions a request of SQLite's 1.31 M; SQLite's own share is now some 44 k a request
(0.675 × 29 k + 0.075 × the firing's three writes), the rest of the gap to the budget is the
request and pipeline work both states share. Folding the confirmation into the audit record's
transaction was measured and left out: `BEGIN IMMEDIATE` and `COMMIT` as statements cost more
(+22 k a firing) than the second autocommit they save.

A checked push delivery now skips functions-framework's dispatch. By the time the guard passes
a push envelope on it has read the body under its deadline, parsed it strictly and checked
every field the conversion reads; the framework then spent more than half of a request (more
than the whole hello world's own work) on what decides nothing for such a body: a Flask request
and app context, URL routing, a CloudEvents parse of the body that must fail (a push envelope
is not a CloudEvent), a random execution id, an `OK` response built, finalized and rewritten
to JSON. `transport.serve_pushes` (on every CloudEvent function's `handle`) lets the guard call
the target itself (`transport/direct.py`) with the CloudEvent the framework's own conversion
(`event_conversion`) builds from the same document, and answer what the framework answers
(200, `application/json`, `{"status": 200, "acknowledged": true}`); an exception goes through
the app's error handling inside a request context, as from the framework's view (Flask's log
line, the JSON 500 with `X-Google-Status: crash`). A path the router might rewrite, a request
hook, a Flask signal receiver, `LOG_EXECUTION_ID` or a test client keeping contexts takes the
framework's path; both paths are compared request for request in
`tests/unit/functions/test_direct_push.py`. No check was dropped: the guard's strict parse, the
payload's strict parse, the message checks and the pipeline all run as before. The strict
parse also decodes bytes as UTF-8 and drops one BOM itself instead of the Python-level
`utf-8-sig` codec (about 5 k instructions a parse, two a request). cProfile in one process
(2,000 storm-mix bodies): 961 → 328 function calls a request; before, of a request, the
framework's work around the call 62 % (the request context 11 %, the response's finalizing
10 % with the JSON acknowledgement's rewrite 3 %, the failing CloudEvents parse 9 %, the
conversion 5 %, the execution id 4 %), `handle_pubsub` 27 % (the pipeline 15 %), the guard's
check 7 %; after,
`handle_pubsub` 63 % (the pipeline 36 %), the guard's check 18 %, the conversion 7 %, the
rest of `direct` 3 %. Instructions a request (valgrind, before → after): the WSGI app in one
process (400 bodies after 100, minus a run of the set-up alone), hello world 0.90 M, memory
state 1.27 M → 0.57 M (0.71× → 1.58× the hello world's rate in instructions), SQLite 1.31 M →
0.60 M (0.68× → 1.48×); inside the gunicorn worker of `python -m functions_framework`, which
adds its own 0.69 M a request to both sides, hello world 1.59 M, memory 1.95 M → 1.25 M
(0.81× → 1.27×), SQLite 2.01 M → 1.27 M (0.79× → 1.25×). Through the benchmark itself on the
shared machine (3 rounds a run, paired runs of the two builds in the same minutes): medians of
all rounds 0.75× → 1.06× (memory) and 0.76× → 1.12× (SQLite); single runs still ranged
0.77–1.71× and 0.85–1.41× as other work shared the two cores.

**What each stage costs.** `benchmarks/pipeline.py` times each stage of the pipeline alone over
the events that reach it on both workloads, with the floor and the whole pipeline in the same
rounds (CPU time, best of five, the garbage collector off for the stages and the whole, its
share measured apart); a stage only firings reach is spread over every event of its workload.
One run on the shared two-core machine, µs per event and × the floor (12.9 µs storm mix,
12.2 µs all unique):

| stage | guarantee it serves | storm mix | all unique |
|---|---|---:|---:|
| `json.loads` | the payload decoded (half the floor) | 6.8 (0.53×) | 6.5 (0.53×) |
| normalize: raw-Event validation, stable id, `Event` | a malformed event stops here; a redelivery keeps its id | 17.2 (1.34×) | 20.4 (1.66×) |
| redaction: pre-check and masking | no secret leaves; every later step sees masked values | 2.4 (0.18×) | 3.0 (0.25×) |
| hook matching, the mapping row of a firing | a hook fires only on what it selects | 1.9 (0.14×) | 5.3 (0.43×) |
| silences, the claim and its confirmation (memory) | atomic claims: one run per dedup key | 2.3 (0.18×) | 4.3 (0.35×) |
| storm control: gates, backlogs, circuit | circuit, coalescing and budgets hold a storm back | 0.4 (0.03×) | 4.7 (0.38×) |
| prompt rendering: escaping, fenced data block, nonce | prompt safety: event data is data, never instructions | 1.6 (0.13×) | 20.8 (1.70×) |
| dry-run dispatch: request, message and context ids | the same message id on a redelivery, one conversation per incident | 0.5 (0.04×) | 6.9 (0.56×) |
| decisions, the audit record of a firing | one audit record per claim | 1.5 (0.11×) | 9.9 (0.81×) |
| sum of the stages | | 34.5 (2.68×) | 81.8 (6.68×) |
| the rest: the calls between the stages | | 8.7 (0.68×) | 41.4 (3.39×) |
| the whole pipeline, collector off | | 43.2 (3.35×) | 123.2 (10.07×) |
| garbage collection (from −1 % to 14 % of the whole across runs) | | 7.2 (0.56×) | 4.6 (0.37×) |

On the storm mix the normalize stage alone is 1.34× the floor and `json.loads` another 0.53×:
the budget of 2.0× leaves 0.13× for everything after decoding, where redaction's pre-check,
matching and the claim take 0.50× with nothing fired. The floor validates a ready dict of the
Event's fields; normalize validates the raw Kubernetes Event first (one pydantic-core pass),
derives the stable id (a SHA-256) and builds the Event, which the floor does not. So the storm
mix's figure is bounded by the raw-Event validation and stable id (a malformed event stops at
the door, a redelivery keeps its id) and by redaction before the claim; none of those is dropped.
A firing costs some 110 µs over the floor, of which rendering is a fifth (escaping every
value, the fenced data block's encoding and the nonce's hash: prompt safety), the
audit record and the decision a tenth, the dispatch request's two digests and storm control's
gates a twentieth each. "The rest" is what no stage holds: `run_pipeline`/`process_event`/
`fire` and their per-event objects (the argument tuples, the decision list; an `Attempt` only
once a claim is won), and
the cost of running every stage for one event in turn instead of each stage for every event
(the stages timed alone run warm); it is a fifth of the storm mix's time and a third of the
all-unique stream's, where `fire` and `firing.run` pass each event through a dozen calls.

**What a firing costs, and which guarantee pays for it.** Counted in instructions (valgrind,
which a loaded machine does not skew; 2,000 all-unique events, memory state, dry-run), the whole
pipeline is about 6.7× the floor's instructions per event (710 k against 106 k), and
`pipeline.fire` alone, from the claim to the decision, about 480 k. The firing path was then
made cheaper without changing a byte of what it sends or records (a test pins the renders of a
varied corpus, another every decision, dispatch request and audit record of a firing stream):
each template's placeholders are specialised once (a plain string is quoted in place), the data
block's C encoder is built once without the circular check (the same bytes; `JSONEncoder.encode`
builds a new one every call), `escaping.cut` is inlined where a value fits, the audit record is
built with one write of its fields (`Firing.trusted`) instead of a frozen dataclass's setattr per
field, and with telemetry off a dispatch opens no span and reads no clock. Function calls per
all-unique event 316 → 277; `fire` 483 k → 448 k instructions; the whole pipeline 710 k → 666 k
(about 6.3× the floor's instructions); in CPU time, three alternating runs of each build (the
median of five rounds each, the floor timed in the same rounds), 10.2–11.0× → 9.4–10.3×. What a firing still costs is its guarantees, per firing: prompt safety, about 170 k
(the data block's sorted-key ASCII encoding 70 k, capping every field 47 k, quoting the inlined
values 19 k, the nonce's SHA-256 over the block 22 k); the audit record, about 104 k (the
prompt's SHA-256 49 k — valgrind runs SHA-256 without the CPU's SHA extensions, so hashing
weighs less in time — the record 32 k, the decision); the dry-run dispatch, about 43 k (the
request, the message and context ids' two SHA-256 digests, the result); storm control's gates
and backlog take, about 31 k. The floor itself is 106 k, so those four alone are 3.3× the floor
before the event is decoded (0.5×), normalized (1.6×), redacted, matched and claimed (1.1× of
time): ≤ 4.0× on the all-unique stream cannot be met while every firing escapes and fences its
data, records its prompt's hash and digests its message id.

**The firing path, a third round.** Counted the same way (valgrind, 4,000 all-unique events,
memory state, dry-run, the collector off): each stage of `benchmarks/pipeline.py` run alone
over what the one before it produced, the whole pipeline and the floor in processes with the
same set-up subtracted, instructions an event, before → after:

| stage | before | after |
|---|---:|---:|
| `json.loads` | 58 k | 58 k |
| normalize | 120 k | 116 k |
| redaction, matching, the claim (memory) | 65 k | 63 k |
| the mapping row, storm control's gates and backlogs | 59 k | 61 k |
| rendering (after: with the prompt's hash, taken as it renders) | 166 k | 176 k |
| the dry-run dispatch | 68 k | 48 k |
| the decision and the audit record (before: with the prompt's hash) | 103 k | 40 k |
| sum of the stages | 640 k | 562 k |
| the whole pipeline | 649 k (6.3× the floor) | 571 k (5.6×) |
| the floor (`json.loads` 58 k + `Event.model_validate`) | 102 k | 102 k |

What changed, without a byte of what a firing sends or records changing (the render and
firing-stream golden tests, and property tests holding each new path equal to the old one):
the data block's JSON is written field by field, each value capped and escaped by the encoder's
own function, with no dict to build and no keys to sort (the general path stays for a
held-back summary, a count that is no plain integer and an over-long block); the prompt's hash
is taken as it renders, over its parts' bytes, the data block's encoded once for its nonce and
its hash, instead of encoding the whole prompt again (the preamble's `…` makes it wide text,
whose UTF-8 encoding alone was some 11 k); the message and context ids hash the key once (a
copy of its hash state goes on with the event id); the dispatch request and the audit record are
built with one write of their fields (`DispatchRequest.trusted`, and `Firing.trusted` with the
fields as keyword parameters instead of checking a keyword dict's keys); a new Pod name's
workload is built without validation and each name heuristic is one match call. What a firing
still costs, per guarantee, after: prompt safety about 139 k (the quoted values of the
instructions 17 k, the capped and escaped data block 96 k, the nonce's SHA-256 and the fence
26 k); the audit record about 77 k (the prompt's SHA-256 37 k, the record and the decision
40 k); the dispatch about 48 k (the request, the two ids, the dry-run send and its result);
storm control with the mapping row about 61 k; the atomic claim with the silences about 27 k.
Before any claim, decoding, normalize, redaction and matching are 2.1× the floor; the claim and
the firing add some 3.5×, so ≤ 4.0× is out of reach while every firing escapes and fences its data,
records its prompt's hash and digests its ids. In CPU time (six alternating runs of each
build at a quiet moment, best of three rounds of 5,000 events each, the floor in the same
rounds) the all-unique ratio's median moved from 9.9× to 9.5× (9.5–10.7× → 9.0–9.8×, one
disturbed run at 12.2× left out), the pipeline from about 124 to 114 µs an event: less than the
instructions' 12 %, as valgrind runs SHA-256 without the CPU's SHA extensions (the hashes weigh
less in time than in these counts) and the lost IPC of running every stage per event remains.

**Telemetry's cold start** (`python -X importtime`, `functions/kubernetes` handling its first
event with `KHOOK_TELEMETRY=console`, modules imported before the answer that telemetry `off`
does not import): before, the SDK (`opentelemetry.sdk.metrics` about 30 ms of the ~42, then
`opentelemetry.sdk.resources`, `opentelemetry.sdk.trace`, `opentelemetry.trace`); after, three
modules, about 1 ms together (`khook_core.telemetry.deferred`, `tracecontext`, and the
`opentelemetry` namespace package that finding the SDK imports). The SDK's import now runs after
the answer ("SDK loaded after the first answer").

**Console counts on Firestore** (cProfile of `count_firings`, a day of the benchmark's data on
the emulator): before, 50,000 streamed records — one gRPC message, one snapshot (a deep copy of
its fields) and one decode each; after, 580 counter documents (their maps decoded and deep
copied by the client: most of the Python time) and one range query for the partial first
minute, which the emulator answers by scanning `firings` (about as long as the firings page).
"""


def load(path: Path) -> list[Record]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in records:
        r.setdefault("kind", "figure")  # files written before records had kinds
        r.setdefault("covers", [])
    return records


def not_measured(records: list[Record]) -> dict[str, str]:
    """Every budget of design.md's table without a figure in this run, and why."""
    measured = {k for r in records if r["kind"] == "figure" for k in r["covers"]}
    reasons: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r["kind"] == "not-measured":
            for key in r["covers"]:
                if r["reason"] not in reasons[key]:
                    reasons[key].append(r["reason"])
    exits = {r["benchmark"]: r["status"] for r in records if r["kind"] == "exit"}
    out = {}
    for key, budget in BUDGETS.items():
        if key in measured:
            continue
        if reasons[key]:
            out[key] = "; ".join(reasons[key])
        elif exits.get(budget.benchmark, 0) != 0:
            out[key] = (
                f"benchmarks/{budget.benchmark} exited {exits[budget.benchmark]} before "
                "measuring it (see its output in the `make bench` log)"
            )
        elif budget.benchmark in exits:
            out[key] = f"benchmarks/{budget.benchmark} ran but recorded no figure for it"
        else:
            out[key] = f"benchmarks/{budget.benchmark} did not run (nothing of it in the results)"
    return out


def stopped_early(records: list[Record]) -> list[str]:
    """Benchmarks that exited non-zero without recording a miss or a budget not measured."""
    explained = {
        r["benchmark"] for r in records if r["kind"] == "not-measured" or r.get("verdict") == "MISS"
    }
    return [
        f"benchmarks/{r['benchmark']} (exit {r['status']})"
        for r in records
        if r["kind"] == "exit" and r["status"] != 0 and r["benchmark"] not in explained
    ]


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(records: list[Record]) -> tuple[str, bool]:
    """The report, and whether everything was measured and within budget."""
    figures = [r for r in records if r["kind"] == "figure"]
    machine = next((r["machine"] for r in records if "machine" in r), platform.platform())
    misses = [r for r in figures if r["verdict"] == "MISS"]
    missing = not_measured(records)
    stopped = stopped_early(records)
    headline = (
        f"**{len(figures) - len(misses)} of {len(figures)} figures within budget or "
        "unbudgeted" + (f"; {len(misses)} missed (listed below)**" if misses else "**")
    )
    out = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` on {datetime.now(UTC):%Y-%m-%d} — {machine}, "
        f"{platform.system()} {platform.release()}.",
        "Budgets are those of the design; figures are from one run, and each name says how it "
        "was taken: the median of N fresh processes, the best of N rounds, a percentile (pNN) "
        "over the calls made, or one run. Reproduce with `make bench`; each benchmark in "
        "`benchmarks/` also runs alone (`.venv/bin/python benchmarks/<name>.py`).",
        "",
        headline,
        "",
        (
            f"**{len(missing)} of {len(BUDGETS)} budgets of the design not measured: "
            f"{', '.join(missing)}** (NOT MEASURED rows of the table say why)"
            if missing
            else f"**All {len(BUDGETS)} budgets of the design measured.**"
        ),
    ]
    if stopped:
        out += [
            "",
            f"**Stopped early (no miss recorded; see the `make bench` log): {', '.join(stopped)}**",
        ]
    if misses:
        out += ["", "Missed:", ""]
        out += [
            f"- {r['name']}: {r['value']:,.2f} {r['unit']} against {r['budget']}" for r in misses
        ]
    out += ["", "| figure | value | budget | verdict |", "|---|---:|---|---|"]
    for r in figures:
        value = f"{r['value']:,.2f} {r['unit']}".strip()
        out.append(f"| {cell(r['name'])} | {value} | {cell(r['budget'])} | {r['verdict']} |")
    for key, reason in missing.items():
        budget = BUDGETS[key]
        out.append(
            f"| {cell(budget.what)} | — | {cell(budget.budget)} | NOT MEASURED: {cell(reason)} |"
        )
    for t in (r for r in records if r["kind"] == "table"):
        out += ["", f"## {t['title']}", ""]
        if t.get("note"):
            out += [t["note"], ""]
        out += [
            "| " + " | ".join(cell(h) for h in t["header"]) + " |",
            "|" + "---|" * len(t["header"]),
        ]
        out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t["rows"]]
    out += ["", NOTES]
    ok = bool(figures) and not misses and not missing and not stopped
    return "\n".join(out), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    if not args.results.exists():
        print(f"no results in {args.results}: run `make bench`", file=sys.stderr)
        return 1
    report, ok = render(load(args.results))
    if args.output is None:
        print(report)
    else:
        partial = args.output.with_suffix(".partial")
        partial.write_text(report + "\n", encoding="utf-8")
        partial.replace(args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    if not ok:
        print(
            "benchmarks: something missed, was not measured or stopped early (see the report)",
            file=sys.stderr,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
