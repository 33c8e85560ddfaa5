// onair's operations dashboard. Reads GET /dashboard/api/overview once to sign in, then the
// server-sent events of GET /dashboard/api/feed (read with fetch(), since an EventSource cannot
// send the credentials header): `overview` (the figures, every 2 s), `event` (the stream's tail)
// and `skipped`. The credentials live in sessionStorage only, never in a URL.
"use strict";

(function () {
  const STORAGE = "onair.dashboard.credentials";
  const TAIL_ROWS = 100;
  const $ = (id) => document.getElementById(id);

  let credentials = null;
  let feedAbort = null;
  let reconnectTimer = null;
  let chart = null;
  let eventsSeen = 0;

  function loadCredentials() {
    try {
      return JSON.parse(sessionStorage.getItem(STORAGE));
    } catch (_) {
      return null;
    }
  }

  function authHeaders(creds) {
    if (creds && creds.apiKey) return { "x-api-key": creds.apiKey };
    if (creds && creds.website) {
      return { "x-operator-website": creds.website, "x-operator-key": creds.key };
    }
    return {};
  }

  function setStatus(text, cls) {
    const el = $("status");
    el.textContent = text;
    el.className = "status" + (cls ? " " + cls : "");
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell);
      else td.textContent = String(cell);
      tr.appendChild(td);
    }
    return tr;
  }

  function fmtRate(x) {
    return (Math.round(x * 100) / 100).toFixed(2);
  }

  // ---- rendering -------------------------------------------------------------------------

  function renderChart(history) {
    const xs = history.map((p) => p[0]);
    const ys = history.map((p) => p[1]);
    const box = $("viewer-chart");
    if (!chart && window.uPlot) {
      chart = new window.uPlot(
        {
          width: Math.max(box.clientWidth, 300),
          height: 220,
          scales: { y: { range: (u, min, max) => [0, Math.max(5, max + 1)] } },
          series: [{}, { label: "viewers", stroke: "#4fb3ff", width: 2, fill: "rgba(79,179,255,0.15)" }],
          axes: [{ stroke: "#8b95a3" }, { stroke: "#8b95a3" }],
        },
        [xs, ys],
        box
      );
      window.addEventListener("resize", () => chart.setSize({ width: Math.max(box.clientWidth, 300), height: 220 }));
    } else if (chart) {
      chart.setData([xs, ys]);
    }
    // For tests and curious operators: what the chart shows.
    box.dataset.points = String(ys.length);
    box.dataset.last = ys.length ? String(ys[ys.length - 1]) : "";
    $("history-points").textContent = ys.length + " samples";
  }

  function renderStages(o) {
    $("threshold").textContent = o.scaleUpThreshold;
    $("max-viewers").textContent = o.maxViewersPerStage;
    const box = $("stages");
    box.replaceChildren();
    const max = Math.max(o.maxViewersPerStage, 1);
    for (const s of o.stages) {
      const item = el("div", null, "stage");
      item.dataset.stageArn = s.stageArn;
      const name = el("div", null, "name");
      const left = el("span", s.name);
      if (s.isMaster) left.appendChild(el("span", "master", "tag"));
      if (s.autoScaled) left.appendChild(el("span", "auto-scaled", "tag"));
      if (s.draining) left.appendChild(el("span", "draining", "tag draining"));
      name.appendChild(left);
      name.appendChild(el("span", s.viewerCount + " / " + o.maxViewersPerStage, "count"));
      const bar = el("div", null, "bar");
      const fill = el("div", null, "fill");
      if (s.viewerCount >= o.maxViewersPerStage) fill.classList.add("full");
      else if (s.viewerCount >= o.scaleUpThreshold) fill.classList.add("hot");
      fill.style.width = Math.min(100, (100 * s.viewerCount) / max) + "%";
      bar.appendChild(fill);
      for (const mark of [o.scaleUpThreshold, o.maxViewersPerStage]) {
        const m = el("div", null, "mark");
        m.style.left = Math.min(100, (100 * mark) / max) + "%";
        m.title = String(mark);
        bar.appendChild(m);
      }
      item.appendChild(name);
      item.appendChild(bar);
      box.appendChild(item);
    }
  }

  function renderRooms(o) {
    const body = $("rooms").tBodies[0];
    body.replaceChildren();
    for (const r of o.rooms) {
      const givers = r.topGivers.map((g) => g.nickname + " (" + g.score + ")").join(", ") || "–";
      const tr = row([r.nickname + (r.title ? " · " + r.title : ""), r.viewers, r.followers, r.popularity, givers]);
      tr.dataset.streamer = r.streamerId;
      tr.cells[4].className = "givers";
      body.appendChild(tr);
    }
  }

  function renderProjections(o) {
    const body = $("projections").tBodies[0];
    body.replaceChildren();
    for (const p of o.projections) {
      body.appendChild(row([p.name, p.checkpoint, p.pending === null ? "?" : p.pending]));
    }
  }

  function renderInstances(o) {
    const list = $("instances");
    list.replaceChildren();
    for (const i of o.instances) {
      list.appendChild(el("li", "API instance " + i.instanceId + (i.thisInstance ? " (this one)" : "") + " · seen " + i.lastSeen));
    }
    const tasks = $("tasks");
    tasks.replaceChildren();
    for (const t of o.tasks) {
      const text = t.name + ": " + t.state + (t.restarts ? " (" + t.restarts + " restarts)" : "");
      tasks.appendChild(el("li", text, t.state === "running" ? "task-running" : "task-other"));
    }
  }

  function renderOverview(o) {
    $("total-viewers").textContent = o.totalViewers;
    $("stage-count").textContent = o.stages.length;
    const pub = $("publisher");
    pub.textContent = o.publisherLive ? "live" : "offline";
    pub.className = "value " + (o.publisherLive ? "on" : "off");
    $("live-rooms").textContent = o.liveRooms;
    $("chat-rate").textContent = fmtRate(o.rates.chatMessagesPerSecond);
    $("gift-rate").textContent = fmtRate(o.rates.giftsPerSecond);
    renderChart(o.viewerHistory);
    renderStages(o);
    renderRooms(o);
    renderProjections(o);
    renderInstances(o);
    setStatus("live · " + o.timestamp, "live");
  }

  function addEvent(e) {
    eventsSeen += 1;
    const body = $("tail").tBodies[0];
    const tr = row([e.sequence, e.type, e.subject, e.time]);
    tr.dataset.type = e.type;
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > TAIL_ROWS) body.deleteRow(body.rows.length - 1);
  }

  // ---- the feed --------------------------------------------------------------------------

  function handleFrame(frame) {
    let name = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (!data.length) return;
    const payload = JSON.parse(data.join("\n"));
    if (name === "overview") renderOverview(payload);
    else if (name === "event") addEvent(payload);
    else if (name === "skipped") $("skipped").textContent = payload.skipped + " events skipped (too many per second)";
  }

  async function readFeed() {
    if (feedAbort) feedAbort.abort();
    clearTimeout(reconnectTimer);
    const abort = new AbortController();
    feedAbort = abort;
    const filter = $("type-filter").value.trim();
    const url = "/dashboard/api/feed" + (filter ? "?type=" + encodeURIComponent(filter) : "");
    try {
      const resp = await fetch(url, { headers: authHeaders(credentials), signal: abort.signal, cache: "no-store" });
      if (resp.status === 401 || resp.status === 403) {
        signOut("The credentials were refused; sign in again.");
        return;
      }
      if (!resp.ok || !resp.body) throw new Error("feed answered " + resp.status);
      $("tail").tBodies[0].replaceChildren();
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handleFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
      throw new Error("feed ended");
    } catch (err) {
      if (abort.signal.aborted) return;
      setStatus("reconnecting (" + err.message + ")", "down");
      reconnectTimer = setTimeout(readFeed, 2000);
    }
  }

  // ---- sign-in ---------------------------------------------------------------------------

  function showBoard(show) {
    $("board").hidden = !show;
    $("sign-in").hidden = show;
    $("sign-out").hidden = !show;
  }

  function signOut(message) {
    sessionStorage.removeItem(STORAGE);
    credentials = null;
    if (feedAbort) feedAbort.abort();
    clearTimeout(reconnectTimer);
    showBoard(false);
    setStatus("signed out");
    const err = $("sign-in-error");
    err.hidden = !message;
    err.textContent = message || "";
  }

  async function signIn(creds) {
    const resp = await fetch("/dashboard/api/overview", { headers: authHeaders(creds), cache: "no-store" });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error(body.message || "refused (" + resp.status + ")");
    }
    credentials = creds;
    sessionStorage.setItem(STORAGE, JSON.stringify(creds));
    showBoard(true);
    renderOverview(await resp.json());
    readFeed();
  }

  function start() {
    $("sign-in-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const apiKey = $("api-key").value.trim();
      const website = $("operator-website").value.trim();
      const key = $("operator-key").value;
      const creds = apiKey ? { apiKey } : { website, key };
      signIn(creds).catch((err) => {
        const box = $("sign-in-error");
        box.hidden = false;
        box.textContent = err.message;
      });
    });
    $("sign-out").addEventListener("click", () => signOut());
    let debounce = null;
    $("type-filter").addEventListener("input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(readFeed, 300);
    });
    const saved = loadCredentials();
    if (saved) signIn(saved).catch(() => signOut());
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
