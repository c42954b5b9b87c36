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
- **Hook conditions** (`when:`). The storm mix is run again with a CEL condition on every
  configuration (a resource kind, a reason and a count threshold, true for every event so the
  decisions are the same), paired round by round with the run without; the budget is at most
  10 % over. The ratio is the median of the rounds' ratios in CPU time: a difference of a few
  per cent is lost in wall-clock noise on a shared machine. One evaluation costs one to two
  microseconds; a condition that reads the severity, the tags or the internal type applies
  the mapping row before matching (as `minSeverity` and `matchTags` do), so every duplicate
  pays for it too; that run is reported beside, unbudgeted.
- **Cold start** (≤ 250 ms, spawn → first event answered) is dominated by importing
  functions-framework (Flask) and pydantic, both needed by every function; khook adds its own
  modules only (no pydantic-settings, no Google
  or Kubernetes client, no httpx until the first dispatch), parses configuration with libyaml,
  and imports no source plugin but its own. Every function's first event is dispatched to a
  local A2A agent (the a2a-sdk test agent), so the figure includes importing httpx, creating
  the client and one round trip; the sweep function's first tick on a fresh memory store has
  nothing held back, so it dispatches nothing.
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
- **Forwarder** budgets: ≥ 5,000 events/s into the emulator, peak RSS ≤ 50 MiB through the
  storm. Throughput is bounded by the emulator's answers to the publish requests (two in
  flight) on two cores; peak RSS by the imports (38 MiB) plus the bounded publish queue
  (backpressure on the watch while Pub/Sub is slower than the watch).
- **End-to-end latency** on one machine is dominated by the emulator's push delivery.
- **Claim latency** on the Firestore emulator is one `create()` round trip; a lost race costs a
  second read to check the loser's expiry.

## Profiles: where the time goes

cProfile of `run_pipeline` (memory state, dry-run dispatch; profiler overhead inflates small
calls, so read shares, not times). Reproduce: profile the loop of `benchmarks/pipeline.py`'s
`measure` on `storm_mix()` or `all_unique()`.

**Storm mix** (20,000 events), share of `run_pipeline`'s cumulative time:

- `KubernetesSource.normalize`: 49 %. Its own time 15 % (reading the validated fields,
  building the metadata map); `_occurrence` (the timestamps) 10 %; validating the raw Event
  (pydantic-core) 5 %; `stable_id` (SHA-256) 5 %; `Event.trusted` 4 %.
- `process_event` (match, claim, decision): 37 %, of which the 1,500 firings (render,
  dispatch, record) 15 %; the 13,500 duplicates stop at the claim.
- `Redactor.events` (the pre-check, with its memory of clean texts): 8 %.
- `json.loads`, which the floor pays too: 12 % of the whole loop.

Unchanged by the changes below, which are on the firing path: the storm mix fires 7.5 % of its
events. Its ratio to the floor stays above 2.0×: the floor validates a finished `Event`, while
the pipeline validates the raw Kubernetes Event, builds the `Event`, its id (a SHA-256), its
dedup key and claim, and redacts it; no change found reaches 2.0× without dropping one of
those (validation of the raw payload, the stable id, redaction before the claim).

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

**Function import** (`functions/kubernetes`, `create_app`): 80 dataclass and 24 pydantic model
classes built, 50 regular expressions compiled (PyYAML's `Reader.NON_PRINTABLE` alone about
20 ms, though the C loader never uses it), and two scans of every installed distribution's
entry points (pydantic's plugin discovery, then khook's `khook.sources`). Source discovery now
parses only the distributions that declare `khook.sources`.

**Function request rate** (`benchmarks/function_requests.py`): `functions/kubernetes` and a
hello-world CloudEvent function that only decodes the message (base64 + `json.loads`), both
under `python -m functions_framework` (gunicorn, one worker, 8 threads), fed the same storm mix
of Pub/Sub push bodies (2,000 a turn over 150 pods, 7.5 % firing, dry-run dispatch) over four
keep-alive connections, in rotated turns. On the shared 2-core machine the per-round ratio
ranges widely (0.46–0.88× in one run), so read the medians of several runs: over four runs,
memory state 0.63–0.73×, SQLite state 0.60–0.74× (budgets 0.90× and 0.85×: missed). Without the HTTP
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
