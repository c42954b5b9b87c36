// The khook console dashboard: reads only the console API (/api/v1/*) and draws it.
// Plain browser JavaScript, no build step; Chart.js (vendor/) draws the timeline.
"use strict";

(function () {
  const COLORS = {
    dispatched: "#2e7d32",
    "resent-unverified": "#66bb6a",
    coalesced: "#1e88e5",
    "suppressed:budget": "#fb8c00",
    "suppressed:silenced": "#6d4c41",
    resolved: "#8e24aa",
  };
  const FAILED = "#c62828";
  const OTHER = "#78909c";
  const TOKEN_KEY = "khook-console-token";
  const SILENCE_BAND = "rgba(109, 76, 65, 0.18)";
  const state = { chart: null, loads: 0, bands: [] };

  // A token handed over as #token=... is kept for this tab and taken out of the address bar.
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }

  function colorOf(decision) {
    if (decision === "failed" || decision.startsWith("failed:")) return FAILED;
    return COLORS[decision] || OTHER;
  }

  function authHeaders() {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    return headers;
  }

  // The console's one write: a JSON body and X-Khook-Console, which no cross-site form can send.
  async function decide(id, decision) {
    const headers = { ...authHeaders(), "Content-Type": "application/json", "X-Khook-Console": "1" };
    const who = document.getElementById("decider").value.trim();
    if (who) headers["X-Khook-User"] = who;
    const response = await fetch("api/v1/approvals/" + encodeURIComponent(id) + "/decision", {
      method: "POST", headers, body: JSON.stringify(decision), cache: "no-store",
    });
    const body = await response.json();
    if (!response.ok) throw new Error(id + ": " + response.status + " " + (body.error || ""));
    return body;
  }

  async function api(path, params) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v) query.set(k, v);
    const headers = authHeaders();
    const url = "api/v1/" + path + (query.toString() ? "?" + query : "");
    const response = await fetch(url, { headers, cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(path + ": " + response.status + " " + (body.error || ""));
    return body;
  }

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  function fill(id, items, render) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    for (const item of items) render(body.insertRow(), item);
  }

  function shortTime(iso) {
    return iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "Z") : "";
  }

  function bucketLabel(ms, seconds) {
    const d = new Date(ms).toISOString();
    return seconds >= 86400 ? d.slice(0, 10) : d.slice(5, 16).replace("T", " ");
  }

  // Silences and window occurrences overlapping the range, as [first, last] bucket indices.
  function silenceBands(silences, starts, step) {
    if (!starts.length) return [];
    const end = starts[starts.length - 1] + step;
    const spans = silences.silences.map((s) => ({ id: s.id, from: s.starts_at, to: s.ends_at }));
    for (const w of silences.windows) spans.push({ id: "window:" + w.name, from: w.start, to: w.end });
    const bands = [];
    for (const span of spans) {
      const from = Date.parse(span.from);
      const to = Date.parse(span.to);
      if (to <= starts[0] || from >= end) continue;
      const first = Math.max(0, Math.floor((from - starts[0]) / step));
      const last = Math.min(starts.length - 1, Math.ceil((to - starts[0]) / step) - 1);
      bands.push({ id: span.id, first, last });
    }
    return bands;
  }

  // Draws each band behind the bars: the silence's span across the buckets it covers.
  const bandPlugin = {
    id: "silenceBands",
    beforeDatasetsDraw(chart) {
      const x = chart.scales.x;
      const area = chart.chartArea;
      const half = x.width / Math.max(1, chart.data.labels.length) / 2;
      chart.ctx.save();
      chart.ctx.fillStyle = SILENCE_BAND;
      for (const band of state.bands) {
        const left = x.getPixelForValue(band.first) - half;
        const right = x.getPixelForValue(band.last) + half;
        chart.ctx.fillRect(left, area.top, right - left, area.bottom - area.top);
      }
      chart.ctx.restore();
    },
  };

  function drawSilences(silences) {
    const onTimeline = new Set(state.bands.map((b) => b.id));
    const items = silences.silences.map((s) => ({
      id: s.id, state: s.state, from: s.starts_at, to: s.ends_at,
      scope: [s.matcher, s.hook, s.source].filter(Boolean).join(" · "),
      by: s.author + (s.expired_by ? ", expired by " + s.expired_by : ""), comment: s.comment,
    }));
    for (const w of silences.windows) {
      items.push({ id: "window:" + w.name, state: w.open ? "active" : "next", from: w.start,
                   to: w.end, scope: "maintenance window", by: "", comment: "" });
    }
    fill("silences", items, (row, s) => {
      row.dataset.silence = s.id;
      row.dataset.onTimeline = String(onTimeline.has(s.id));
      cell(row, s.id);
      cell(row, s.state, "state-" + s.state);
      cell(row, shortTime(s.from));
      cell(row, shortTime(s.to));
      cell(row, s.scope);
      cell(row, s.by);
      cell(row, s.comment);
    });
  }

  function drawTimeline(counts, silences) {
    const step = counts.bucket_seconds * 1000;
    const first = Math.floor(Date.parse(counts.since) / step) * step;
    const last = Date.parse(counts.until);
    const starts = [];
    for (let t = first; t < last; t += step) starts.push(t);
    const index = new Map(starts.map((t, i) => [t, i]));
    const byDecision = new Map();
    for (const b of counts.buckets) {
      if (!byDecision.has(b.decision)) byDecision.set(b.decision, new Array(starts.length).fill(0));
      const i = index.get(Date.parse(b.start));
      if (i !== undefined) byDecision.get(b.decision)[i] += b.count;
    }
    const datasets = [...byDecision.keys()].sort().map((decision) => ({
      label: decision,
      data: byDecision.get(decision),
      backgroundColor: colorOf(decision),
      stack: "decisions",
    }));
    const labels = starts.map((t) => bucketLabel(t, counts.bucket_seconds));
    state.bands = silenceBands(silences, starts, step);
    if (state.chart) state.chart.destroy();
    state.chart = new Chart(document.getElementById("timeline"), {
      type: "bar",
      data: { labels, datasets },
      plugins: [bandPlugin],
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
    fill("decision-totals", Object.entries(counts.totals.decision), (row, [decision, n]) => {
      row.dataset.decision = decision;
      cell(row, decision);
      cell(row, n, "num");
    });
    const perHook = new Map();
    for (const b of counts.buckets) {
      const key = b.hook + "\u0000" + b.decision;
      perHook.set(key, (perHook.get(key) || 0) + b.count);
    }
    fill("hook-totals", [...perHook.entries()].sort(), (row, [key, n]) => {
      const [hook, decision] = key.split("\u0000");
      row.dataset.hook = hook;
      row.dataset.decision = decision;
      cell(row, hook);
      cell(row, decision);
      cell(row, n, "num");
    });
  }

  function drawFirings(page) {
    fill("firings", page.firings, (row, f) => {
      row.dataset.eventId = f.event_id;
      cell(row, shortTime(f.at));
      cell(row, f.hook);
      cell(row, f.decision, f.decision.startsWith("failed") ? "state-failing" : "");
      cell(row, f.source);
      cell(row, f.type);
      cell(row, f.resource);
      cell(row, f.agent);
      const task = cell(row, f.task_url ? "" : f.task_id);
      if (f.task_url) {
        const link = document.createElement("a");
        link.href = f.task_url;
        link.rel = "noopener noreferrer";
        link.textContent = f.task_id;
        task.append(link);
      }
      if (f.error) row.title = f.error;
    });
  }

  function drawIncidents(incidents) {
    fill("incidents", incidents.incidents, (row, i) => {
      row.dataset.incident = i.id;
      cell(row, i.id);
      cell(row, i.close_reason ? i.state + " (" + i.close_reason + ")" : i.state,
           "state-" + i.state);
      cell(row, i.workload);
      cell(row, shortTime(i.opened_at));
      cell(row, shortTime(i.closed_at));
      cell(row, i.events, "num");
      cell(row, i.members.map((m) => m.member + " " + m.state).join(", "));
      const runs = cell(row, "");
      for (const run of i.runs) {
        const text = run.task_id || run.decision;
        if (run.task_url) {
          const link = document.createElement("a");
          link.href = run.task_url;
          link.rel = "noopener noreferrer";
          link.textContent = text;
          runs.append(link, " ");
        } else {
          runs.append(text + " ");
        }
      }
      cell(row, i.follow_ups, "num");
    });
  }

  function button(text, action) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.dataset.action = action;
    return b;
  }

  // Sends one decision from a row's controls, shows a refusal, then reloads the page's data.
  async function submit(row, decision) {
    const shown = document.getElementById("decision-error");
    for (const b of row.querySelectorAll("button")) b.disabled = true;
    try {
      await decide(row.dataset.approval, decision);
      shown.hidden = true;
    } catch (exc) {
      shown.textContent = String(exc.message || exc);
      shown.hidden = false;
    }
    await load();
  }

  function drawApprovals(approvals) {
    fill("approvals", approvals.approvals, (row, a) => {
      row.dataset.approval = a.id;
      row.dataset.kind = a.kind;
      cell(row, a.id);
      cell(row, a.task_id);
      cell(row, a.hook);
      cell(row, a.agent);
      const waiting = cell(row, "", "waiting");
      const request = a.request || {};
      const pending = (request.nested && request.nested.tools) || request.tools || [];
      const tools = request.type === "tool_approval_request" ? pending : [];
      const questions = request.type === "ask_user_request" ? request.questions || [] : [];
      if (a.text || request.hint) {
        const p = document.createElement("p");
        p.textContent = request.hint || a.text;
        waiting.append(p);
      }
      for (const t of tools) {
        const p = document.createElement("p");
        p.className = "call";
        p.dataset.call = t.id;
        const code = document.createElement("code");
        code.textContent = JSON.stringify(t.args || {});
        p.append(t.id + ": " + (t.name || "?") + " ", code);
        waiting.append(p);
      }
      const answers = [];
      for (const q of questions) {
        const label = document.createElement("label");
        label.className = "question";
        const choices = (q.choices || []).map(String);
        label.textContent = (q.question || "") + (choices.length ? " [" + choices.join(", ") + "] " : " ");
        const input = document.createElement("input");
        input.maxLength = 2000;
        answers.push(input);
        label.append(input);
        waiting.append(label);
      }
      cell(row, shortTime(a.deadline));
      const controls = cell(row, "", "decide");
      const wrap = document.createElement("div");
      wrap.className = "decide";
      controls.append(wrap);
      if (a.kind === "tool_approval") {
        const reason = document.createElement("input");
        reason.placeholder = "reason (sent with a rejection)";
        reason.maxLength = 2000;
        reason.dataset.field = "reason";
        const approve = button("Approve all", "approve");
        const reject = button("Reject all", "reject");
        approve.addEventListener("click", () => submit(row, { approve: true, reason: reason.value }));
        reject.addEventListener("click", () => submit(row, { approve: false, reason: reason.value }));
        wrap.append(approve, reject, reason);
      } else if (a.kind === "ask_user") {
        const answer = button("Answer", "answer");
        answer.addEventListener("click", () => submit(row, { answers: answers.map((i) => i.value) }));
        wrap.append(answer);
      } else {
        wrap.append("answer the agent directly");
      }
    });
  }

  function drawBacklogs(held) {
    document.getElementById("held-total").textContent = held.held_total + " events held";
    document.getElementById("held-total").dataset.total = held.held_total;
    fill("backlogs", held.backlogs, (row, b) => {
      row.dataset.key = b.key;
      cell(row, b.key);
      cell(row, b.hook);
      cell(row, b.held, "num");
      cell(row, shortTime(b.first));
      cell(row, shortTime(b.last));
    });
    fill("circuits", held.circuits, (row, c) => {
      row.dataset.key = c.key;
      cell(row, c.key);
      cell(row, c.state, "state-" + c.state);
      cell(row, c.failures, "num");
      cell(row, shortTime(c.open_until));
    });
  }

  function drawHealth(health) {
    fill("health", health.sources, (row, s) => {
      row.dataset.source = s.source;
      cell(row, s.source);
      cell(row, s.state, "state-" + s.state);
      cell(row, shortTime(s.last_event));
      cell(row, s.errors_last_hour, "num");
      cell(row, s.last_error);
    });
  }

  function drawHooks(hooks) {
    const select = document.getElementById("hook");
    const chosen = select.value;
    select.replaceChildren(new Option("all hooks", ""));
    for (const h of hooks.hooks) select.add(new Option(h.name, h.name, false, h.name === chosen));
    fill("hooks", hooks.hooks, (row, h) => {
      row.dataset.hook = h.name;
      cell(row, h.name);
      cell(row, h.status, "state-" + h.status);
      cell(row, h.event_types.join(", "));
      cell(row, h.agents.join(", "));
      cell(row, h.config_version);
    });
  }

  async function load() {
    const seconds = Number(document.getElementById("range").value);
    const hook = document.getElementById("hook").value;
    const until = new Date();
    const since = new Date(until.getTime() - seconds * 1000);
    const range = { since: since.toISOString(), until: until.toISOString(), hook };
    document.body.dataset.state = "loading";
    const error = document.getElementById("error");
    try {
      const [counts, firings, held, health, hooks, silences, incidents, approvals] = await Promise.all([
        api("counts", range),
        api("firings", { ...range, limit: "50" }),
        api("backlogs"),
        api("health"),
        api("hooks"),
        api("silences", { all: "1" }),
        api("incidents", { limit: "50" }),
        api("approvals"),
      ]);
      drawTimeline(counts, silences);
      drawSilences(silences);
      drawFirings(firings);
      drawIncidents(incidents);
      drawApprovals(approvals);
      drawBacklogs(held);
      drawHealth(health);
      drawHooks(hooks);
      error.hidden = true;
      document.getElementById("updated").textContent = "updated " + shortTime(until.toISOString());
      state.loads += 1;
      document.body.dataset.state = "ready";
    } catch (exc) {
      error.textContent = String(exc.message || exc);
      error.hidden = false;
      document.body.dataset.state = "error";
    }
  }

  window.khookDashboard = state;
  document.getElementById("refresh").addEventListener("click", load);
  document.getElementById("range").addEventListener("change", load);
  document.getElementById("hook").addEventListener("change", load);
  load();
})();
