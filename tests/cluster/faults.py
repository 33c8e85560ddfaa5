#!/usr/bin/env python3
"""The cluster fault suite: load through nginx, one fault at a time, checks after each, a report.

Run by scripts/cluster-faults against a cluster that scripts/cluster started:

    python3 tests/cluster/faults.py <state dir> [--short|--long]

Load (all through nginx, bounded): viewers that take a token and send heartbeats, new viewer
tokens, gifts (client gateway `sendGift`), and chat with the real ActionheroWebsocketClient
(tests/cluster/chat_load.js: guest listeners spread over both API instances, verified senders).
Every POST carries an Idempotency-Key and is retried with it after a 503, a 409
REQUEST_IN_PROGRESS or a lost connection, as a client behind a load balancer does; each attempt
has a 10 s client timeout.

Faults: the NATS node leading the stream killed (-9) and restarted; an API instance killed and
restarted; the worker leading the projections killed and restarted; PostgreSQL crashed
(pg_ctl stop -m immediate) and restarted; a NATS node paused (SIGSTOP) past the client timeouts,
then resumed. --short runs the first three.

After each fault: every 2xx answer's X-Event-Sequence is in the stream and its event stored
exactly once; `onair audit` finds 0 differences; no stage holds more than 50 viewers and nobody
holds two seats (replayed from the stream's viewer events); every chat message answered OK reached
every listener that stayed connected, or is in the stream (what chatHistory reads); every member
that joined a room left it once its socket closed or its instance died; no answer was a 500 or
an undocumented error, and no attempt hung past the client timeout.

Before the faults (both modes), two checks on the fresh cluster:
- the viewer burst: 1,000 concurrent POST /api/token/viewer through nginx on an empty pool (20
  stages of 50: its full capacity) all answer 200 on the first try, nobody holds two seats, no
  stage holds more than 50, and a 1,001st request gets the documented pool-full error; then the
  1,000 leave;
- operators at work: `onair member create` and `onair gift set` run against the live cluster; the
  stream keeps its 3 replicas and /health stays ok; then viewers seated through one API instance
  beat and leave through the other at once (never a 404), and the chat load of the first fault
  phase runs through nginx.

Prints a table per fault and exits 1 when a check failed.
"""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import requests

CLIENT_TIMEOUT = 10.0
RETRY_BUDGET = 45.0
MAX_VIEWERS_PER_STAGE = 50
DOCUMENTED_503 = {"SERVICE_UNAVAILABLE", "READ_MODEL_BEHIND", "STAGE_FULL", "STAGE_LIMIT_REACHED"}
PASSWORD = "cluster-pass-1"
AGENT = "mabu.mabumaster"
STREAMER = "star@" + AGENT
ROOM = "chatroomSystem-chatroom-%s-%s" % (AGENT, STREAMER)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(message):
    print("[faults] " + message, file=sys.stderr, flush=True)


def now():
    return time.monotonic()


class Cluster:
    """What scripts/cluster wrote: URLs, the key, pid files, launchers."""

    def __init__(self, state_dir):
        self.dir = os.path.abspath(state_dir)
        env = {}
        with open(os.path.join(self.dir, "cluster.env")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.strip().split("=", 1)
                    env[k] = v
        self.url = env["ONAIR_CLUSTER_URL"]
        self.api_urls = env["ONAIR_CLUSTER_API_URLS"].split(",")
        self.worker_urls = env["ONAIR_CLUSTER_WORKER_URLS"].split(",")
        self.nats_monitor = env["ONAIR_CLUSTER_NATS_MONITOR_URLS"].split(",")
        self.bin = env["ONAIR_CLUSTER_BIN"]
        with open(os.path.join(self.dir, "api-key")) as f:
            self.key = f.read().strip()
        self.onair_env = dict(os.environ)
        self.onair_env["ONAIR_DATABASE_URL"] = env["ONAIR_CLUSTER_DATABASE_URL"]
        self.onair_env["ONAIR_NATS_URL"] = env["ONAIR_CLUSTER_NATS_URLS"]

    def pid(self, name):
        try:
            with open(os.path.join(self.dir, "pids", name + ".pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def signal(self, name, sig):
        pid = self.pid(name)
        if pid is None:
            raise RuntimeError("no pid for " + name)
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                with open("/proc/%d/stat" % pid) if os.path.exists("/proc/%d/stat" % pid) else open(os.devnull) as f:
                    if " Z " in f.read():
                        break
                # Polls until the process is a zombie or gone (the condition above).
                time.sleep(0.05)

    def restart(self, name):
        subprocess.run(["bash", os.path.join(ROOT, "scripts/cluster"), "restart", name],
                       check=True, env=dict(os.environ, ONAIR_CLUSTER_DIR=self.dir),
                       stdout=subprocess.DEVNULL)

    def onair(self, *args, check=True):
        return subprocess.run([self.bin] + list(args), env=self.onair_env, check=check,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def health(self, base, timeout=2.0):
        try:
            return requests.get(base + "/health", timeout=timeout).json()
        except (requests.RequestException, ValueError):
            return None

    def stream_leader(self):
        """The node (1..3) leading the ONAIR stream, from an API instance's /health."""
        for base in self.api_urls + [self.url]:
            h = self.health(base)
            leader = h and h.get("stream") and h["stream"].get("leader")
            if leader:
                return int(leader.rsplit("-", 1)[1])
        return None

    def projection_leaders(self):
        """For each worker (1, 2): the projections it leads, or None when it does not answer."""
        out = {}
        for i, base in enumerate(self.worker_urls, start=1):
            h = self.health(base, timeout=1.0)
            out[i] = None if h is None else sorted(
                name for name, p in h.get("projections", {}).items() if p.get("leader"))
        return out

    def psql(self, sql):
        pg_bin = os.environ.get("PG_BIN", "")
        psql = os.path.join(pg_bin, "psql") if pg_bin else "psql"
        url = self.onair_env["ONAIR_DATABASE_URL"]
        return subprocess.run([psql, "-X", "-qtA", url, "-c", sql], check=True,
                              stdout=subprocess.PIPE, text=True).stdout


class Recorder:
    """Every HTTP attempt of the load: kind, start and end (monotonic), status, error code, sequence."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = []
        self.answers = []  # (kind, key, sequence) of 2xx answers

    def attempt(self, kind, started, ended, status, code):
        with self.lock:
            self.attempts.append((kind, started, ended, status, code))

    def answered(self, kind, key, sequence):
        with self.lock:
            self.answers.append((kind, key, sequence))


def post(session, rec, cluster, kind, path, body, headers=None, stop=None):
    """POSTs with an Idempotency-Key, retrying with the same key; returns the 2xx JSON or None."""
    key = str(uuid.uuid4())
    h = {"Idempotency-Key": key, "Content-Type": "application/json"}
    h.update(headers or {})
    deadline = now() + RETRY_BUDGET
    while now() < deadline:
        started = now()
        try:
            r = session.post(cluster.url + path, json=body, headers=h, timeout=CLIENT_TIMEOUT)
        except requests.Timeout:
            rec.attempt(kind, started, now(), "timeout", None)
            continue
        except requests.RequestException:
            rec.attempt(kind, started, now(), "conn", None)
            # Back-off after a refused connection; the load goes on retrying.
            time.sleep(0.2)
            continue
        ended = now()
        code = None
        try:
            payload = r.json()
        except ValueError:
            payload = None
        if r.status_code >= 400 and isinstance(payload, dict):
            code = payload.get("error") or payload.get("code")
        rec.attempt(kind, started, ended, r.status_code, code)
        if 200 <= r.status_code < 300:
            seq = r.headers.get("X-Event-Sequence")
            if seq:
                rec.answered(kind, key, int(seq))
            return payload
        if r.status_code in (503, 409, 429):
            # Honours the server's Retry-After (at most 1 s) before the retry.
            time.sleep(min(float(r.headers.get("Retry-After", "0.3") or 0.3), 1.0))
            continue
        return None  # a 4xx the caller did not expect: recorded, not retried
    return None


class Load:
    """Heartbeats, viewer tokens and gifts in threads, until stopped."""

    def __init__(self, cluster, members, phase):
        self.cluster = cluster
        self.members = members
        self.phase = phase
        self.rec = Recorder()
        self.stop = threading.Event()
        self.threads = []

    def start(self):
        for i in range(3):
            self.threads.append(threading.Thread(target=self.viewers, args=(i,), daemon=True))
        self.threads.append(threading.Thread(target=self.tokens, daemon=True))
        self.threads.append(threading.Thread(target=self.gifts, daemon=True))
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(RETRY_BUDGET + CLIENT_TIMEOUT)

    def headers(self):
        return {"x-api-key": self.cluster.key}

    def viewers(self, worker):
        s = requests.Session()
        seats = []
        for n in range(12):
            user = "v-%s-%d-%d" % (self.phase, worker, n)
            data = post(s, self.rec, self.cluster, "token", "/api/token/viewer", {"userId": user},
                        self.headers())
            if data and data.get("data", {}).get("stageArn"):
                seats.append((user, data["data"]["stageArn"]))
            if self.stop.is_set():
                return
        while not self.stop.is_set():
            for user, arn in seats:
                if self.stop.is_set():
                    return
                post(s, self.rec, self.cluster, "heartbeat", "/api/viewer/heartbeat",
                     {"userId": user, "stageArn": arn}, self.headers())
                # Paces the heartbeat load (one per 20 ms per thread); not a wait.
                time.sleep(0.02)

    def tokens(self):
        s = requests.Session()
        n = 0
        while not self.stop.is_set() and n < 150:
            post(s, self.rec, self.cluster, "token", "/api/token/viewer",
                 {"userId": "t-%s-%d" % (self.phase, n)}, self.headers())
            n += 1
            # Paces the token load (one per 100 ms); not a wait.
            time.sleep(0.1)

    def gifts(self):
        s = requests.Session()
        giver = self.members["givers"][0]
        while not self.stop.is_set():
            query = {"Authorization": giver["token"], "giftID": 1, "giftCount": 1,
                     "memberID": giver["id"], "gameID": STREAMER, "agentID": AGENT}
            post(s, self.rec, self.cluster, "gift", "/api/action/sendGift",
                 {"server": "giftSystem", "actionName": "sendGift", "query": json.dumps(query)})
            # Paces the gift load (one per 150 ms); not a wait.
            time.sleep(0.15)


class Chat:
    """tests/cluster/chat_load.js, its facts collected."""

    def __init__(self, cluster, members, listeners=6):
        cfg = {"origin": cluster.url, "room": ROOM, "listeners": listeners,
               "senders": members["senders"], "intervalMs": 2200}
        fd, self.config = tempfile.mkstemp(prefix="onair-chat-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        self.facts = []
        self.ready = threading.Event()
        self.done = threading.Event()
        self.proc = subprocess.Popen(
            ["node", os.path.join(ROOT, "tests/cluster/chat_load.js"), self.config],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ)
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()
        # Wall clock of node facts -> our monotonic clock.
        self.offset = time.time() * 1000 - now() * 1000

    def read(self):
        for line in self.proc.stdout:
            try:
                fact = json.loads(line)
            except ValueError:
                continue
            fact["m"] = (fact["t"] - self.offset) / 1000.0
            self.facts.append(fact)
            if fact["ev"] == "ready":
                self.ready.set()
            if fact["ev"] in ("done", "fail"):
                if fact["ev"] == "fail":
                    log("chat load failed: " + fact.get("error", ""))
                self.ready.set()
                self.done.set()

    def finish(self):
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        self.done.wait(30)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.unlink(self.config)


def export_events(cluster):
    """Every event of the stream, in order (onair events export)."""
    fd, path = tempfile.mkstemp(prefix="onair-export-", suffix=".jsonl")
    os.close(fd)
    try:
        cluster.onair("events", "export", "--output", path)
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    finally:
        os.unlink(path)


def wait_caught_up(cluster, seconds=60):
    """Until a worker reports every projection with nothing pending."""
    deadline = now() + seconds
    while now() < deadline:
        for base in cluster.worker_urls:
            h = cluster.health(base)
            if h and h.get("projections") and all(
                    p.get("pending") == 0 for p in h["projections"].values()):
                return True
        # Polls until every projection has nothing pending (the condition above).
        time.sleep(0.5)
    return False


def members_left(events):
    """Connections that joined a room and have not left it."""
    joined, left = set(), set()
    for e in events:
        d = e.get("data") or {}
        if e["type"] == "onair.chat.member_joined_room.v1":
            joined.add(d.get("connectionId"))
        elif e["type"] == "onair.chat.member_left_room.v1":
            left.add(d.get("connectionId"))
    return joined - left


def check(cluster, load, chat, fault_name, t0, monitor, errors, joins_must_leave=True):
    """The checks after a fault; appends failures to `errors`; returns the report row."""
    failures = []
    rec = load.rec
    events = None
    # A dead instance's members leave once it has been silent ONAIR_CHAT_INSTANCE_TIMEOUT_MS
    # (scripts/cluster-faults: 15 s) and the presence reactor has looked (every few seconds).
    wait_s = int(os.environ.get("ONAIR_CHAT_INSTANCE_TIMEOUT_MS", "45000")) / 1000.0 + 15
    deadline = now() + wait_s
    while joins_must_leave and now() < deadline:
        try:
            if not members_left(export_events(cluster)):
                break
        except subprocess.CalledProcessError:
            pass
        # Back-off before retrying a failed audit.
        time.sleep(2)
    for _ in range(10):
        try:
            events = export_events(cluster)
            break
        except subprocess.CalledProcessError:
            # Back-off before retrying a failed export.
            time.sleep(2)
    if events is None:
        failures.append("events export failed")
        events = []
    by_seq = {int(e["sequence"]): e for e in events}
    id_count = {}
    for e in events:
        id_count[e["id"]] = id_count.get(e["id"], 0) + 1

    # 1. Every 2xx answer's event is in the stream, exactly once; distinct requests, distinct events.
    seen_seq = {}
    for kind, key, seq in rec.answers:
        e = by_seq.get(seq)
        if e is None:
            failures.append("%s answered 2xx with sequence %d, not in the stream" % (kind, seq))
        elif id_count[e["id"]] != 1:
            failures.append("event %s (sequence %d) stored %d times" % (e["id"], seq, id_count[e["id"]]))
        # Heartbeats that arrive together share one message (group commit,
        # onair.viewer.heartbeats_recorded.v1): their answers carry its sequence.
        batched = e is not None and e["type"] == "onair.viewer.heartbeats_recorded.v1"
        if seq in seen_seq and seen_seq[seq] != key and not batched:
            failures.append("two requests answered with one sequence %d" % seq)
        seen_seq[seq] = key

    # 2. No stage over 50, nobody in two seats, replayed from the stream.
    seats, per_stage = {}, {}
    for e in events:
        t, d = e["type"], e.get("data") or {}
        if t == "onair.viewer.joined.v1":
            if d["userId"] in seats:
                failures.append("%s joined %s while seated on %s" % (d["userId"], d["stageArn"], seats[d["userId"]]))
            seats[d["userId"]] = d["stageArn"]
            per_stage[d["stageArn"]] = per_stage.get(d["stageArn"], 0) + 1
            if per_stage[d["stageArn"]] > MAX_VIEWERS_PER_STAGE:
                failures.append("stage %s holds %d viewers" % (d["stageArn"], per_stage[d["stageArn"]]))
        elif t in ("onair.viewer.left.v1", "onair.viewer.expired.v1"):
            if seats.pop(d["userId"], None) is not None:
                per_stage[d["stageArn"]] -= 1

    # 3. Chat: every OK'd message reached every listener that stayed connected, or is stored.
    posted = set()
    for e in events:
        if e["type"] == "onair.chat.message_posted.v1":
            try:
                posted.add(json.loads(e["data"]["message"])["text"])
            except (ValueError, KeyError, TypeError):
                pass
    facts = chat.facts
    listeners = sorted({f["c"] for f in facts if f["ev"] == "recv" or (f["ev"] in ("down", "up") and f["c"].startswith("listener"))})
    got = {}
    downs = {}
    for f in facts:
        if f["ev"] == "recv":
            got.setdefault(f["c"], set()).add(f["text"])
        elif f["ev"] == "down":
            downs.setdefault(f["c"], []).append([f["m"], None])
        elif f["ev"] == "up" and downs.get(f["c"]):
            downs[f["c"]][-1][1] = f["m"]
    oks = [f for f in facts if f["ev"] == "ok"]
    missed_stored = 0
    for f in oks:
        for c in listeners:
            if f["text"] in got.get(c, set()):
                continue
            # Not connected around the send: it must be in the stream (chatHistory reads it).
            gap = any(d[0] - 2.0 <= f["m"] and (d[1] is None or f["m"] <= d[1] + 2.0) for d in downs.get(c, []))
            if gap and f["text"] in posted:
                missed_stored += 1
                continue
            failures.append("chat %s answered OK, not received by %s%s" % (
                f["text"], c, "" if f["text"] in posted else " and not stored"))
    reconnects = [d[1] - d[0] for ds in downs.values() for d in ds if d[1] is not None and d[0] >= t0 - 1]
    never_back = [c for c, ds in downs.items() if ds and ds[-1][1] is None]
    if never_back:
        failures.append("chat clients never reconnected: %s" % ", ".join(never_back))

    # 4. Members leave their rooms: every join of the phase has its leave (sockets closed at the
    # end of the phase; a dead instance's members by the presence reactor).
    if joins_must_leave:
        stuck = members_left(events)
        if stuck:
            failures.append("%d room members never left (connections %s)" % (len(stuck), ", ".join(sorted(stuck)[:3])))

    # 5. Only documented errors, no hang.
    statuses = {}
    for kind, started, ended, status, code in rec.attempts:
        key = "%s %s" % (status, code or "")
        statuses[key] = statuses.get(key, 0) + 1
        if status == "timeout":
            failures.append("%s hung past the client timeout (%.0f s)" % (kind, CLIENT_TIMEOUT))
        elif isinstance(status, int) and status >= 500 and not (status == 503 and code in DOCUMENTED_503):
            failures.append("%s answered %s %s" % (kind, status, code))
        elif isinstance(status, int) and 400 <= status < 500 and status not in (409, 429):
            failures.append("%s answered %s %s" % (kind, status, code))
    failures = dedupe(failures)

    # 6. onair audit.
    if not wait_caught_up(cluster):
        failures.append("the projections did not catch up within 60 s")
    audit = cluster.onair("audit", check=False)
    if audit.returncode != 0:
        failures.append("onair audit: exit %d\n%s" % (audit.returncode, (audit.stdout + audit.stderr)[-2000:]))

    after = [a for a in rec.attempts if a[1] >= t0]
    first_2xx = min((a[2] for a in after if isinstance(a[3], int) and 200 <= a[3] < 300), default=None)
    row = {
        "fault": fault_name,
        "requests": len(rec.attempts),
        "answered_2xx": sum(1 for a in rec.attempts if isinstance(a[3], int) and 200 <= a[3] < 300),
        "503": sum(1 for a in rec.attempts if a[3] == 503),
        "409": sum(1 for a in rec.attempts if a[3] == 409),
        "other_errors": sum(1 for a in rec.attempts if a[3] in ("conn", "timeout") or (isinstance(a[3], int) and a[3] >= 400 and a[3] not in (409, 503))),
        "longest_s": max((a[2] - a[1] for a in rec.attempts), default=0.0),
        "first_2xx_s": None if first_2xx is None else first_2xx - t0,
        "last_error_s": max((a[2] - t0 for a in after if not (isinstance(a[3], int) and 200 <= a[3] < 300)), default=None),
        "takeover_s": monitor.takeover(t0),
        "chat_ok": len(oks),
        "chat_missed_stored": missed_stored,
        "chat_reconnect_s": max(reconnects) if reconnects else None,
        "statuses": statuses,
        "failures": failures,
    }
    errors.extend("%s: %s" % (fault_name, f) for f in failures)
    return row


def dedupe(items):
    out, seen = [], {}
    for i in items:
        seen[i] = seen.get(i, 0) + 1
    for i, n in seen.items():
        out.append(i if n == 1 else "%s (x%d)" % (i, n))
    return out[:40]


class LeaderMonitor:
    """Polls the workers' /health: when each projection had a leader."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.samples = []  # (t, complete: every projection led by exactly one worker)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            leaders = self.cluster.projection_leaders()
            led = [name for ps in leaders.values() if ps for name in ps]
            names = set(led)
            complete = len(names) >= 7 and len(led) == len(names)
            twice = len(led) != len(names)
            self.samples.append((now(), complete, twice))
            # Samples the projection leaders every 200 ms while the phase runs (a sampling period).
            time.sleep(0.2)

    def takeover(self, t0):
        """Seconds from t0 until every projection had a leader again, when leadership lapsed."""
        lapsed = None
        for t, complete, _ in self.samples:
            if t < t0:
                continue
            if not complete and lapsed is None:
                lapsed = t
            if complete and lapsed is not None:
                return t - t0
        return 0.0 if lapsed is None else None

    def doubled(self, longer_than=5.0):
        """Whether two workers said they led one projection for longer than `longer_than` s.

        The two /health answers are not taken at one instant, so a handover can look doubled for
        one sample; a leader that lost its lock must notice within LOCK_CHECK_INTERVAL +
        LOCK_CHECK_TIMEOUT (4 s, src/projections/mod.rs)."""
        since = None
        for t, _, twice in self.samples:
            if twice:
                since = t if since is None else since
                if t - since > longer_than:
                    return True
            else:
                since = None
        return False


def setup(cluster):
    """An operator, a streamer, senders and a giver (logged in), a gift in the catalog."""
    out = cluster.onair("operator", "create", "--website", "site-cluster", check=False)
    op_key = out.stdout.strip().split()[-1] if out.returncode == 0 else None
    if op_key is None:
        raise RuntimeError("onair operator create failed: " + out.stderr)
    cluster.onair("gift", "set", "--gift-id", "1", "--name", "Rose", "--points", "10")
    suffix = uuid.uuid4().hex[:6]

    def member(name, role="member"):
        mid = "%s%s@%s" % (name, suffix, AGENT) if role != "streamer" else STREAMER
        r = requests.post(cluster.url + "/api/backoffice/CreateMember", timeout=10, json={
            "website": "site-cluster", "key": op_key, "memberID": mid, "password": PASSWORD,
            "role": role, "nickname": name.upper()})
        if r.status_code != 200 and not (role == "streamer" and r.status_code in (409, 422)):
            raise RuntimeError("CreateMember %s: %s %s" % (mid, r.status_code, r.text))
        action = "loginStreamer" if role == "streamer" else "loginAction"
        r = requests.post(cluster.url + "/api/action/" + action, timeout=10, json={
            "query": json.dumps({"memberID": mid, "password": PASSWORD})})
        r.raise_for_status()
        return {"id": mid, "token": r.json()["data"]["Authorization"]}

    member("star", "streamer")
    return {"senders": [member("s%d" % i) for i in range(4)], "givers": [member("giver")]}


def viewer_burst(cluster, errors, count=1000):
    """`count` concurrent viewer token requests through nginx on an empty pool; the report row."""
    headers = {"x-api-key": cluster.key, "Content-Type": "application/json"}
    barrier = threading.Barrier(count)
    phase = uuid.uuid4().hex[:6]

    def one(i):
        session = requests.Session()
        barrier.wait(60)
        started = now()
        try:
            r = session.post(cluster.url + "/api/token/viewer", json={"userId": "burst-%s-%d" % (phase, i)},
                             headers=headers, timeout=30)
        except requests.RequestException as e:
            return ("conn", str(e), now() - started, None)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        return (r.status_code, body.get("error"), now() - started, body.get("data", {}).get("stageArn"))

    log("viewer burst: %d concurrent viewer tokens through nginx" % count)
    started = now()
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        answers = list(pool.map(one, range(count)))
    took = now() - started
    statuses = {}
    for status, code, _, _ in answers:
        key = "%s %s" % (status, code or "")
        statuses[key] = statuses.get(key, 0) + 1
    ok = [a for a in answers if a[0] == 200]
    failures = []
    if len(ok) != count:
        failures.append("viewer burst: %d of %d answered 200 (%s)" % (len(ok), count, statuses))
    per_stage = {}
    for a in ok:
        per_stage[a[3]] = per_stage.get(a[3], 0) + 1
    over = {arn: n for arn, n in per_stage.items() if n > MAX_VIEWERS_PER_STAGE}
    if over:
        failures.append("viewer burst: stages over 50: %s" % over)
    extra = requests.post(cluster.url + "/api/token/viewer", json={"userId": "burst-%s-extra" % phase},
                          headers=headers, timeout=30)
    extra_code = extra.json().get("error") if extra.status_code != 200 else None
    if not (extra.status_code == 503 and extra_code in ("STAGE_FULL", "STAGE_LIMIT_REACHED")):
        failures.append("viewer burst: the %dth request answered %s %s, not the pool-full error" % (
            count + 1, extra.status_code, extra_code))
    # Nobody twice, from the stream.
    seats = {}
    for e in export_events(cluster):
        if e["type"] == "onair.viewer.joined.v1" and e["data"]["userId"].startswith("burst-" + phase):
            if e["data"]["userId"] in seats:
                failures.append("viewer burst: %s seated twice" % e["data"]["userId"])
            seats[e["data"]["userId"]] = e["data"]["stageArn"]
    latencies = sorted(a[2] for a in ok) or [0.0]
    log("viewer burst: %d x 200 in %.2f s (p50 %.2f s, p99 %.2f s, %d stages); the extra one: %s %s" % (
        len(ok), took, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1],
        len(per_stage), extra.status_code, extra_code))

    def leave(i_arn):
        i, arn = i_arn
        r = requests.post(cluster.url + "/api/viewer/leave", json={"userId": "burst-%s-%d" % (phase, i), "stageArn": arn},
                          headers=headers, timeout=30)
        return r.status_code
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        left = list(pool.map(leave, [(i, a[3]) for i, a in enumerate(answers) if a[0] == 200]))
    if any(s != 200 for s in left):
        failures.append("viewer burst: leaves answered %s" % sorted(set(left)))
    for f in failures:
        log("FAIL " + f)
    errors.extend(failures)
    return {"requests": count + 1, "ok": len(ok), "seconds": took, "stages": len(per_stage),
            "p99_s": latencies[int(len(latencies) * 0.99) - 1], "extra": "%s %s" % (extra.status_code, extra_code),
            "failures": failures}


def operators_then_flows(cluster, errors):
    """CLI commands against the live cluster, then the viewer flow across both API instances."""
    failures = []
    suffix = uuid.uuid4().hex[:6]
    out = cluster.onair("member", "create", "--member-id", "op%s@%s" % (suffix, AGENT), "--nickname", "OP",
                        "--password", PASSWORD, check=False)
    if out.returncode != 0:
        failures.append("onair member create: %s" % out.stderr[-500:])
    out = cluster.onair("gift", "set", "--gift-id", "2", "--name", "Star", "--points", "20", check=False)
    if out.returncode != 0:
        failures.append("onair gift set: %s" % out.stderr[-500:])
    # Lets the servers' periodic health refresh run after the operator commands; /health has no
    # counter of refreshes to wait on.
    time.sleep(2)
    for base in cluster.api_urls:
        h = cluster.health(base) or {}
        replicas = (h.get("stream") or {}).get("replicas")
        if replicas != 3:
            failures.append("after the operator commands %s reports %s stream replicas" % (base, replicas))
        if h.get("status") != "ok":
            failures.append("after the operator commands %s is %s: %s" % (base, h.get("status"), h.get("reasons")))
    headers = {"x-api-key": cluster.key}
    first, second = cluster.api_urls[0], cluster.api_urls[1]
    for n in range(20):
        user = "across-%s-%d" % (suffix, n)
        r = requests.post(first + "/api/token/viewer", json={"userId": user}, headers=headers, timeout=15)
        if r.status_code != 200:
            failures.append("token through %s: %s %s" % (first, r.status_code, r.text[:200]))
            continue
        arn = r.json()["data"]["stageArn"]
        for path in ("/api/viewer/heartbeat", "/api/viewer/leave"):
            r = requests.post(second + path, json={"userId": user, "stageArn": arn}, headers=headers, timeout=15)
            if r.status_code != 200:
                failures.append("%s through the other instance: %s %s" % (path, r.status_code, r.text[:200]))
    failures = dedupe(failures)
    for f in failures:
        log("FAIL " + f)
    errors.extend("operators then flows: " + f for f in failures)
    return failures


FAULTS = {}


def fault(name):
    def register(f):
        FAULTS[name] = f
        return f
    return register


@fault("NATS stream leader kill -9")
def nats_leader_kill(cluster):
    node = cluster.stream_leader()
    if node is None:
        raise RuntimeError("no stream leader found")
    log("kill -9 nats-%d (the stream leader)" % node)
    cluster.signal("nats-%d" % node, signal.SIGKILL)
    # The fault schedule: the cluster runs 6 s without the killed leader before the next step.
    time.sleep(6)
    log("restart nats-%d" % node)
    cluster.restart("nats-%d" % node)


@fault("API instance kill -9")
def api_kill(cluster):
    log("kill -9 api-1")
    cluster.signal("api-1", signal.SIGKILL)
    # The fault schedule: the load runs 5 s against the surviving API instance.
    time.sleep(5)
    log("restart api-1")
    cluster.restart("api-1")


@fault("projection leader worker kill -9")
def worker_kill(cluster):
    leaders = cluster.projection_leaders()
    worker = max(leaders, key=lambda w: len(leaders[w] or []))
    log("kill -9 worker-%d (leads %s)" % (worker, ",".join(leaders[worker] or [])))
    cluster.signal("worker-%d" % worker, signal.SIGKILL)
    deadline = now() + 30
    other = 3 - worker
    while now() < deadline and len(cluster.projection_leaders().get(other) or []) < 7:
        # Polls until the other worker leads every projection (the condition above).
        time.sleep(0.2)
    # The fault schedule: the new leaders run 2 s under load before the phase ends.
    time.sleep(2)
    log("restart worker-%d" % worker)
    cluster.restart("worker-%d" % worker)


@fault("PostgreSQL crash + restart")
def postgres_crash(cluster):
    pgdata = os.path.join(cluster.dir, "pgdata")
    log("pg_ctl stop -m immediate")
    pg_ctl = os.path.join(os.environ.get("PG_BIN", ""), "pg_ctl")
    cmd = [pg_ctl, "stop", "-D", pgdata, "-m", "immediate", "-w"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The fault schedule: Postgres stays down 4 s under load before it restarts.
    time.sleep(4)
    log("restart postgres")
    cluster.restart("postgres")


@fault("NATS node paused 12 s")
def nats_pause(cluster):
    node = cluster.stream_leader() or 1
    log("kill -STOP nats-%d (the stream leader) for 12 s" % node)
    cluster.signal("nats-%d" % node, signal.SIGSTOP)
    try:
        # The fault schedule: the stream leader stays frozen for 12 s.
        time.sleep(12)
    finally:
        log("kill -CONT nats-%d" % node)
        cluster.signal("nats-%d" % node, signal.SIGCONT)


SHORT = ["NATS stream leader kill -9", "API instance kill -9", "projection leader worker kill -9"]


def run_phase(cluster, members, name, monitor, errors, baseline, recovery):
    log("=== %s ===" % name)
    chat = Chat(cluster, members)
    if not chat.ready.wait(60):
        errors.append("%s: the chat clients did not connect" % name)
    sockets = [open_sockets(base) for base in cluster.api_urls]
    log("chat sockets per API instance: %s" % sockets)
    if not all(sockets):
        errors.append("%s: the chat clients are not on both API instances (%s)" % (name, sockets))
    load = Load(cluster, members, uuid.uuid4().hex[:6])
    load.start()
    # The baseline phase: load runs unfaulted for `baseline` seconds (a measured period).
    time.sleep(baseline)
    t0 = now()
    FAULTS[name](cluster)
    # The recovery phase: load runs for `recovery` seconds after the fault (a measured period).
    time.sleep(recovery)
    load.finish()
    chat.finish()
    # Sockets closed: their leaves are published on a live instance's close; the chat load has no
    # per-socket acknowledgement of the leave to wait on.
    time.sleep(2)
    row = check(cluster, load, chat, name, t0, monitor, errors)
    for f in row["failures"]:
        log("FAIL " + f)
    return row


def open_sockets(base):
    """`onair_chat_open_sockets` of one API instance (0 when it does not answer)."""
    try:
        text = requests.get(base + "/metrics", timeout=2).text
    except requests.RequestException:
        return 0
    total = 0
    for line in text.splitlines():
        if line.startswith("onair_chat_open_sockets"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def fmt(v, unit="s"):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.2f %s" % (v, unit)
    return str(v)


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    cluster = Cluster(args[0])
    mode = "--long" if "--long" in args else "--short"
    names = list(FAULTS) if mode == "--long" else SHORT
    baseline, recovery = (5, 12) if mode == "--short" else (10, 25)
    errors, rows = [], []
    started = now()
    burst = viewer_burst(cluster, errors)
    members = setup(cluster)
    operators = operators_then_flows(cluster, errors)
    monitor = LeaderMonitor(cluster)
    for name in names:
        rows.append(run_phase(cluster, members, name, monitor, errors, baseline, recovery))
    monitor.stop.set()
    if monitor.doubled():
        errors.append("two workers led one projection at the same time (seen on /health)")

    print()
    print("| fault | requests | 2xx | 503 | 409 in progress | other errors | longest answer | first 2xx after the fault | last error after the fault | projection takeover | chat OK (missed, stored) | chat reconnect | checks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %d | %d | %d | %d | %s | %s | %s | %s | %d (%d) | %s | %s |" % (
            r["fault"], r["requests"], r["answered_2xx"], r["503"], r["409"], r["other_errors"], fmt(r["longest_s"]),
            fmt(r["first_2xx_s"]), fmt(r["last_error_s"]), fmt(r["takeover_s"]), r["chat_ok"], r["chat_missed_stored"],
            fmt(r["chat_reconnect_s"]), "pass" if not r["failures"] else "FAIL (%d)" % len(r["failures"])))
    print()
    print("viewer burst: %d concurrent tokens through nginx, %d x 200 in %.2f s (p99 %.2f s) on %d stages; request %d: %s; %s" % (
        burst["requests"] - 1, burst["ok"], burst["seconds"], burst["p99_s"], burst["stages"], burst["requests"],
        burst["extra"], "pass" if not burst["failures"] else "FAIL"))
    print("operator CLI then viewer flow across instances: %s" % ("pass" if not operators else "FAIL"))
    for r in rows:
        total = r["requests"] or 1
        print("%s: 503 share %.2f%%" % (r["fault"], 100.0 * r["503"] / total))
    print()
    for r in rows:
        print("%s: answers %s" % (r["fault"], ", ".join("%s x%d" % (k.strip(), v) for k, v in sorted(r["statuses"].items()))))
    print("total %.0f s" % (now() - started))
    if errors:
        print("\nFAILED checks:")
        for e in errors:
            print("  " + e)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
