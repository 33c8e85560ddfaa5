#!/usr/bin/env python3
"""Network partitions, Jepsen style: viewer load on both API instances, links taken down, checks.

Run by scripts/cluster-partitions inside the clients' namespace, against the cluster it started
in network namespaces (its topology.json names them and the switch's ports):

    python3 tests/cluster/partitions.py <state dir>

Load (direct to each API instance, from the clients' namespace): on each API instance, threads that seat viewers from one shared pool of users
(POST /api/token/viewer), send their heartbeats and make them leave, so that the two instances
race for the same users and stages. Every POST carries an Idempotency-Key and is retried with it
after a 503, a 409 or a 429, as a client does; each attempt is recorded (instance, start, end,
status), and each 2xx answer with its X-Event-Sequence.

Scenarios, each under load, for ONAIR_PARTITIONS_SECONDS (20) and then healed:
  leader    the node leading the ONAIR stream cut off (its bridge port down)
  follower  one follower node cut off
  api       api-1 cut off from NATS (its port on the NATS bridge down; clients still reach it)
  flap      the leader's link taken down 5 times (5, 2, 5, 2, 1 s down, 1 s up in between)

Checks after each heal:
  - the three nodes converge (same messages, bytes, first and last sequence; each its own /jsz),
    the stream keeps its 3 replicas, and each node's own copy, read from its file store (a
    JetStream read would be answered by whichever replica or leader the server picks), holds the
    same message at every sequence: the same subject, ce-id, timestamp, headers and payload;
  - every 2xx answer's event is at its X-Event-Sequence on every node, exactly once, and is the
    event asked for (its type and user); no sequence answered for two different requests;
  - no two leaders accepted writes: what the cut-off node held when the partition ended (read
    from its store) is, sequence by sequence, what the majority kept; the nodes' /jsz samples
    give the election time and how long two nodes both claimed the lead (reported);
  - `onair audit` finds 0 differences once the projections caught up;
  - pool invariants replayed from `onair events export`: no stage over 50 viewers, nobody seated
    twice;
  - every answer came within the request deadline (ONAIR_REQUEST_DEADLINE_MS, 9 s) plus 1 s,
    none hung, none was a 500 or an undocumented error; the cut-off API instance answered 503
    within the deadline while cut off and answered 2xx again by itself after the heal.

Prints a table per scenario (election, time without writes, 503s, recovery, convergence) and
exits 1 when a check failed.
"""

import ctypes
import glob
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import threading
import time
import uuid

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402  (the fault suite's Cluster, export and report helpers)
from faults import Cluster, dedupe, export_events, fmt, now, wait_caught_up  # noqa: E402

PARTITION_S = float(os.environ.get("ONAIR_PARTITIONS_SECONDS", "20"))
DEADLINE_S = int(os.environ.get("ONAIR_REQUEST_DEADLINE_MS", "9000")) / 1000.0
LATE_SLACK_S = 1.0
CLIENT_TIMEOUT = DEADLINE_S + 4.0
RETRY_BUDGET = 30.0
BASELINE_S = 4.0
RECOVERY_S = 8.0
RECOVER_WITHIN_S = 30.0
CONVERGE_WITHIN_S = 30.0
FLAPS = [(5.0, 1.0), (2.0, 1.0), (5.0, 1.0), (2.0, 1.0), (1.0, 1.0)]  # (down, up) seconds
USERS = 120
THREADS_PER_API = 3
STREAM = "ONAIR"
DOCUMENTED_503 = faults.DOCUMENTED_503
MAX_VIEWERS_PER_STAGE = faults.MAX_VIEWERS_PER_STAGE


def log(message):
    print("[partitions] " + message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Network namespaces
# ---------------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def enter_netns(ns):
    """Moves the calling thread (only it) into network namespace `ns`."""
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns %s: %s" % (ns, os.strerror(err)))
    finally:
        os.close(fd)


def in_netns(ns, fn, *args, timeout=60.0):
    """fn(*args) on a thread inside namespace `ns` (its sockets are that namespace's)."""
    out = {}

    def run():
        try:
            enter_netns(ns)
            out["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001  (handed to the caller)
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError("%s in %s took over %.0f s" % (getattr(fn, "__name__", fn), ns, timeout))
    if "error" in out:
        raise out["error"]
    return out["value"]


class Links:
    """The switch's ports: a partition is one taken down."""

    def __init__(self, switch):
        self.switch = switch
        self.log = []  # (t, port, "down"|"up")
        self.down = set()

    def set(self, port, up):
        subprocess.run(["ip", "netns", "exec", self.switch, "ip", "link", "set", port,
                        "up" if up else "down"], check=True)
        self.log.append((now(), port, "up" if up else "down"))
        (self.down.discard if up else self.down.add)(port)

    def heal_all(self):
        for port in sorted(self.down):
            try:
                self.set(port, True)
            except subprocess.CalledProcessError:
                pass


# ---------------------------------------------------------------------------------------------
# NATS nodes: monitoring and reading each node's own copy of the stream
# ---------------------------------------------------------------------------------------------


EBIT, TBIT, HBIT = 1 << 63, 1 << 62, 1 << 31


def read_store(msgs_dir, first=1, last=None):
    """One node's own copy of the stream, read from its file store (msgs/<n>.blk): {seq: (subject,
    ce-id, timestamp, digest of headers and payload)} for first..last, and what looked wrong.

    nats-server's record: total length (4, high bit: has headers), sequence (8, high bits: erased,
    tombstone), timestamp (8), subject length (2), subject, [headers length (4), headers], payload,
    hash (8). A record cut short at the end of the last block is one still being written."""
    out, problems = {}, []
    blocks = sorted(int(f[:-4]) for f in os.listdir(msgs_dir) if f.endswith(".blk") and f[:-4].isdigit())
    for index in blocks:
        with open(os.path.join(msgs_dir, "%d.blk" % index), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 22 <= len(data):
            rl, seq, ts, slen = struct.unpack_from("<IQqH", data, pos)
            has_headers, rl = bool(rl & HBIT), rl & ~HBIT
            if rl < 30 or pos + rl > len(data):
                if index != blocks[-1] or rl != 0 and pos + rl <= len(data):
                    problems.append("block %d: bad record at byte %d (length %d)" % (index, pos, rl))
                break
            body = data[pos + 22:pos + rl - 8]
            pos += rl
            if seq & (EBIT | TBIT):
                continue
            subject = body[:slen].decode("utf-8", "replace")
            headers, payload = b"", body[slen:]
            if has_headers:
                (hlen,) = struct.unpack_from("<I", body, slen)
                headers, payload = body[slen + 4:slen + 4 + hlen], body[slen + 4 + hlen:]
            if seq < first or (last is not None and seq > last):
                continue
            if seq in out:
                problems.append("sequence %d stored twice" % seq)
            out[seq] = (subject, header(headers, "ce-id"), ts, hashlib.sha1(headers + b"|" + payload).hexdigest()[:16])
    return out, problems


def header(raw, name):
    for line in raw.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.encode():
            return v.strip().decode()
    return None


class Node:
    """One nats-server in its namespace; a thread samples its /jsz from inside it every 0.25 s."""

    def __init__(self, spec):
        self.name = spec["name"]
        self.server = spec["server"]
        self.ns = spec["ns"]
        self.port = spec["port"]
        self.store = spec["store"]
        self.samples = []  # (t, state dict or None)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        enter_netns(self.ns)
        s = requests.Session()
        while not self.stop.is_set():
            self.samples.append((now(), self._jsz(s)))
            # Samples the meta state every 250 ms while the phase runs (a sampling period, not a wait).
            time.sleep(0.25)

    @staticmethod
    def _jsz(session):
        try:
            d = session.get("http://127.0.0.1:8222/jsz?streams=true&config=true", timeout=1.0).json()
        except (requests.RequestException, ValueError):
            return None
        for acc in d.get("account_details") or []:
            for st in acc.get("stream_detail") or []:
                if st.get("name") == STREAM:
                    state = st.get("state") or {}
                    cluster = st.get("cluster") or {}
                    return {"leader": cluster.get("leader") or None,
                            "replicas": (st.get("config") or {}).get("num_replicas"),
                            "messages": state.get("messages", 0), "bytes": state.get("bytes", 0),
                            "first_seq": state.get("first_seq", 0), "last_seq": state.get("last_seq", 0),
                            "num_deleted": state.get("num_deleted", 0)}
        return {"leader": None, "replicas": 0, "messages": 0, "bytes": 0, "first_seq": 0, "last_seq": 0, "num_deleted": 0}

    def state(self):
        """The node's stream state now (asked now, not sampled)."""
        return in_netns(self.ns, lambda: self._jsz(requests.Session()), timeout=5)

    def latest(self):
        for t, st in reversed(self.samples):
            if st is not None:
                return st
        return None

    def msgs_dir(self):
        found = glob.glob(os.path.join(self.store, "jetstream", "*", "streams", STREAM, "msgs"))
        if not found:
            raise RuntimeError("no %s store under %s" % (STREAM, self.store))
        return found[0]

    def read(self, first, last, tries=10):
        """This node's own copy of sequences first..last, from its file store. The writes of the
        last moments may still be in the server's buffers: read again until first..last are all
        there (no gaps: the stream deletes nothing), or give what there is."""
        for i in range(tries):
            copy, problems = read_store(self.msgs_dir(), first, last)
            if last is None or len(copy) >= last - first + 1 or i == tries - 1:
                return copy, problems
            # Polls until the node's copy holds every sequence (the condition above), at most `tries` times.
            time.sleep(0.5)


class Nodes:
    def __init__(self, specs):
        self.all = [Node(s) for s in specs]
        self.by_server = {n.server: n for n in self.all}

    def leader(self, exclude=None):
        """The node most nodes (not `exclude`) name as the stream's leader, or None."""
        votes = {}
        for n in self.all:
            if n is exclude:
                continue
            st = n.latest()
            if st and st["leader"]:
                votes[st["leader"]] = votes.get(st["leader"], 0) + 1
        if not votes:
            return None
        best = max(votes, key=votes.get)
        return self.by_server.get(best)

    def wait_leader(self, seconds=30, exclude=None):
        deadline = now() + seconds
        while now() < deadline:
            n = self.leader(exclude)
            if n is not None:
                return n
            # Polls for a stream leader (the condition above).
            time.sleep(0.25)
        return None

    def stop(self):
        for n in self.all:
            n.stop.set()


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------


class Load:
    """Viewers on both API instances from one shared pool of users, until stopped."""

    def __init__(self, cluster, apis, phase):
        self.cluster = cluster
        self.apis = apis
        self.phase = phase
        self.users = ["p%s-%d" % (phase, i) for i in range(USERS)]
        self.seats = {}
        self.lock = threading.Lock()
        self.attempts = []  # (api, kind, started, ended, status, code)
        self.acks = []  # (api, kind, user, key, seq, ended)
        self.stop = threading.Event()
        self.threads = []

    def start(self):
        for api in self.apis:
            for i in range(THREADS_PER_API):
                t = threading.Thread(target=self.viewer_loop, args=(api, i), daemon=True)
                self.threads.append(t)
                t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT + 5)

    def post(self, session, api, kind, path, body, user):
        """POSTs with an Idempotency-Key, retried with it; (status, payload) of the last attempt."""
        key = str(uuid.uuid4())
        h = {"Idempotency-Key": key, "x-api-key": self.cluster.key}
        deadline = now() + RETRY_BUDGET
        status, payload = None, None
        while now() < deadline:
            started = now()
            try:
                r = session.post(api["url"] + path, json=body, headers=h, timeout=CLIENT_TIMEOUT)
            except requests.Timeout:
                self._attempt(api, kind, started, "timeout", None)
                status = "timeout"
            except requests.RequestException:
                self._attempt(api, kind, started, "conn", None)
                status = "conn"
                # Back-off after a refused connection; the load goes on retrying.
                time.sleep(0.2)
            else:
                code = None
                try:
                    payload = r.json()
                except ValueError:
                    payload = None
                if r.status_code >= 400 and isinstance(payload, dict):
                    code = payload.get("error") or payload.get("code")
                ended = self._attempt(api, kind, started, r.status_code, code)
                status = r.status_code
                if 200 <= r.status_code < 300:
                    seq = r.headers.get("X-Event-Sequence")
                    if seq:
                        with self.lock:
                            self.acks.append((api["name"], kind, user, key, int(seq), ended))
                    return status, payload
                if r.status_code not in (503, 409, 429):
                    return status, payload
                # Honours the server's Retry-After (at most 1 s) before the retry.
                time.sleep(min(float(r.headers.get("Retry-After", "0.3") or 0.3), 1.0))
            if self.stop.is_set():
                break
        return status, payload

    def _attempt(self, api, kind, started, status, code):
        ended = now()
        with self.lock:
            self.attempts.append((api["name"], kind, started, ended, status, code))
        return ended

    def viewer_loop(self, api, worker):
        s = requests.Session()
        rnd = random.Random("%s-%s-%d" % (self.phase, api["name"], worker))
        while not self.stop.is_set():
            user = rnd.choice(self.users)
            with self.lock:
                arn = self.seats.get(user)
            r = rnd.random()
            if arn is None or r < 0.2:
                status, payload = self.post(s, api, "token", "/api/token/viewer", {"userId": user}, user)
                if status == 200 and isinstance(payload, dict):
                    with self.lock:
                        self.seats[user] = (payload.get("data") or {}).get("stageArn")
            elif r < 0.8:
                status, _ = self.post(s, api, "heartbeat", "/api/viewer/heartbeat",
                                      {"userId": user, "stageArn": arn}, user)
                if status == 404:
                    with self.lock:
                        self.seats.pop(user, None)
            else:
                status, _ = self.post(s, api, "leave", "/api/viewer/leave",
                                      {"userId": user, "stageArn": arn}, user)
                if status in (200, 404):
                    with self.lock:
                        self.seats.pop(user, None)
            # Paces the load (one round per 30 ms); not a wait.
            time.sleep(0.03)


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


class Ctx:
    def __init__(self, cluster, topo):
        self.cluster = cluster
        self.topo = topo
        self.nodes = Nodes(topo["nats"])
        self.apis = topo["api"]
        self.links = Links(topo["switch"])
        self.connected = {}  # API instance -> the NATS server it was connected to before the cut


def isolate(ctx, node, seconds):
    """Cuts `node` off for `seconds`; reads what it holds at the end, from inside it."""
    before = node.latest() or {}
    at_cut = before.get("last_seq", 0)
    log("cut off %s (%s; last sequence %d)" % (node.name, node.server, at_cut))
    t_cut = now()
    ctx.links.set(node.port, False)
    # The fault schedule: the node stays cut off for `seconds` (tail reading happens in the last 0.5 s).
    time.sleep(max(0.0, seconds - 0.5))
    # What the cut-off node holds now, from its own store (reads no network).
    try:
        tail, problems = node.read(max(1, at_cut - 50), None, tries=1)
        readable = True if not problems else "; ".join(problems[:3])
    except Exception as e:  # noqa: BLE001  (reported, not fatal)
        tail, readable = {}, str(e)
    remaining = t_cut + seconds - now()
    if remaining > 0:
        # The rest of the cut's scheduled length.
        time.sleep(remaining)
    ctx.links.set(node.port, True)
    t_heal = now()
    end = max(tail) if tail else (node.latest() or {}).get("last_seq", 0)
    log("healed %s after %.1f s (it held up to sequence %d)" % (node.name, t_heal - t_cut, end))
    return {"node": node, "t_cut": t_cut, "t_heal": t_heal, "at_cut": at_cut, "at_end": end,
            "tail": tail, "readable": readable}


def scenario_leader(ctx):
    node = ctx.nodes.wait_leader()
    if node is None:
        raise RuntimeError("no stream leader")
    cut = isolate(ctx, node, PARTITION_S)
    return {"t_cut": cut["t_cut"], "t_heal": cut["t_heal"], "cuts": [cut], "what": "leader %s" % node.name}


def scenario_follower(ctx):
    leader = ctx.nodes.wait_leader()
    followers = [n for n in ctx.nodes.all if n is not leader]
    # Preferably one an API instance is connected to: its clients must move to another node.
    used = set(ctx.connected.values())
    node = next((n for n in followers if n.server in used), followers[-1])
    cut = isolate(ctx, node, PARTITION_S)
    return {"t_cut": cut["t_cut"], "t_heal": cut["t_heal"], "cuts": [cut], "what": "follower %s" % node.name}


def scenario_api(ctx):
    api = ctx.apis[0]
    h = ctx.cluster.health(api["url"])
    server = h and (h.get("natsServer") or {}).get("name")
    log("cut %s off NATS (connected to %s)" % (api["name"], server))
    t_cut = now()
    ctx.links.set(api["nats_port"], False)
    health = []
    while now() < t_cut + PARTITION_S:
        started = now()
        try:
            r = requests.get(api["url"] + "/health", timeout=4)
            health.append((started - t_cut, r.status_code, now() - started))
        except requests.RequestException as e:
            health.append((started - t_cut, type(e).__name__, now() - started))
        # Paces the health probes across the partition (at most every 2 s); not a wait.
        time.sleep(min(2.0, max(0.0, t_cut + PARTITION_S - now())))
    ctx.links.set(api["nats_port"], True)
    t_heal = now()
    log("healed %s after %.1f s; its /health during the cut: %s" % (
        api["name"], t_heal - t_cut, ", ".join("%.0fs:%s" % (t, s) for t, s, _ in health)))
    return {"t_cut": t_cut, "t_heal": t_heal, "cuts": [], "api": api, "api_health": health,
            "what": "%s from NATS" % api["name"]}


def scenario_flap(ctx):
    cuts = []
    t0 = now()
    for down, up in FLAPS:
        node = ctx.nodes.leader() or ctx.nodes.wait_leader(5) or ctx.nodes.all[0]
        cuts.append(isolate(ctx, node, down))
        # The fault schedule: the link stays up this long before the next flap.
        time.sleep(up)
    return {"t_cut": t0, "t_heal": cuts[-1]["t_heal"], "cuts": cuts,
            "what": "leader flapped %dx (%s)" % (len(FLAPS), ",".join(c["node"].name for c in cuts))}


SCENARIOS = {
    "leader": ("stream leader cut off", scenario_leader),
    "follower": ("follower node cut off", scenario_follower),
    "api": ("API instance cut off from NATS", scenario_api),
    "flap": ("leader link flapped 5x", scenario_flap),
}


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def converge(ctx, since):
    """Until the three nodes report one stream state twice in a row: (seconds since `since`,
    the state) or (None, the states last seen)."""
    deadline = now() + CONVERGE_WITHIN_S
    prev, states = None, None
    while now() < deadline:
        try:
            states = [n.state() for n in ctx.nodes.all]
        except Exception:  # noqa: BLE001
            states = None
        if states and all(states):
            keys = {(s["messages"], s["bytes"], s["first_seq"], s["last_seq"], s["num_deleted"]) for s in states}
            if len(keys) == 1:
                key = keys.pop()
                if key == prev:
                    return now() - since, states[0]
                prev = key
                # Polls until two readings in a row agree (the condition above).
                time.sleep(0.3)
                continue
        prev = None
        # Polls until the states are readable (the condition above).
        time.sleep(0.3)
    return None, states


def event_matches(kind, user, e):
    t, d = e["type"], e.get("data") or {}
    if kind == "token":
        return t in ("onair.viewer.joined.v1", "onair.viewer.token_renewed.v1") and d.get("userId") == user
    if kind == "heartbeat":
        if t == "onair.viewer.heartbeat_recorded.v1":
            return d.get("userId") == user
        if t == "onair.viewer.heartbeats_recorded.v1":
            return any(h.get("userId") == user for h in d.get("heartbeats") or [])
        return False
    if kind == "leave":
        return t == "onair.viewer.left.v1" and d.get("userId") == user
    return True


def pool_invariants(events):
    """No stage over 50 viewers, nobody in two seats, replayed from the stream's viewer events."""
    failures = []
    seats, per_stage, peak = {}, {}, 0
    for e in events:
        t, d = e["type"], e.get("data") or {}
        if t == "onair.viewer.joined.v1":
            if d["userId"] in seats:
                failures.append("%s joined %s while seated on %s (sequence %s)" % (
                    d["userId"], d["stageArn"], seats[d["userId"]], e["sequence"]))
            seats[d["userId"]] = d["stageArn"]
            per_stage[d["stageArn"]] = per_stage.get(d["stageArn"], 0) + 1
            peak = max(peak, per_stage[d["stageArn"]])
            if per_stage[d["stageArn"]] > MAX_VIEWERS_PER_STAGE:
                failures.append("stage %s holds %d viewers (sequence %s)" % (
                    d["stageArn"], per_stage[d["stageArn"]], e["sequence"]))
        elif t in ("onair.viewer.left.v1", "onair.viewer.expired.v1"):
            if seats.pop(d["userId"], None) is not None:
                per_stage[d["stageArn"]] -= 1
    return failures, peak, len(per_stage)


def check(ctx, name, info, load):
    """The checks after a heal; returns the report row (its failures included)."""
    cluster = ctx.cluster
    failures = []
    t_cut, t_heal = info["t_cut"], info["t_heal"]

    # 1. Convergence, then each node's own copy, sequence by sequence.
    conv_s, state = converge(ctx, t_heal)
    for n in ctx.nodes.all:
        st = n.latest() or {}
        if st.get("replicas") != 3:
            failures.append("%s: the %s stream has %s replicas here (3 expected; 0: not on this node)" % (
                n.name, STREAM, st.get("replicas")))
    if conv_s is None:
        failures.append("the nodes did not converge within %.0f s of the heal: %s" % (
            CONVERGE_WITHIN_S, json.dumps(state)))
        # Compare what there is: up to the lowest last sequence of the nodes that hold the stream.
        last = min((s["last_seq"] for s in (state or []) if s and s.get("replicas")), default=0)
    else:
        last = state["last_seq"]
    copies = {}
    for n in ctx.nodes.all:
        try:
            copies[n.name], problems = n.read(1, last)
        except Exception as e:  # noqa: BLE001
            failures.append("could not read %s's store: %s" % (n.name, e))
            continue
        failures += ["%s's store: %s" % (n.name, p) for p in problems[:5]]
        if len(copies[n.name]) != last:
            failures.append("%s's store holds %d of sequences 1..%d" % (n.name, len(copies[n.name]), last))
    ref_name = next((n.name for n in ctx.nodes.all if n.name in copies), None)
    reference = copies.get(ref_name, {})
    for n in ctx.nodes.all:
        other = copies.get(n.name)
        if other is None or n.name == ref_name:
            continue
        diff = sorted(s for s in set(reference) | set(other) if reference.get(s) != other.get(s))
        if diff:
            failures.append("%s and %s differ at %d sequences (first %s: %s vs %s)" % (
                ref_name, n.name, len(diff), diff[0], reference.get(diff[0]), other.get(diff[0])))
    id_seqs = {}
    for n_name, copy in copies.items():
        counts = {}
        for seq, (_, msg_id, _, _) in copy.items():
            counts.setdefault(msg_id, []).append(seq)
        twice = {k: v for k, v in counts.items() if len(v) > 1}
        if twice:
            k = sorted(twice)[0]
            failures.append("%s stores %d event ids more than once (e.g. %s at %s)" % (n_name, len(twice), k, twice[k]))
        id_seqs[n_name] = counts

    # 2. The exported events (types, data) for the acked answers and the pool.
    events = None
    for _ in range(5):
        try:
            events = export_events(cluster)
            break
        except subprocess.CalledProcessError as e:
            log("events export failed: %s" % (e.stderr or "")[-300:])
            # Back-off before retrying a failed export (at most 5 tries).
            time.sleep(2)
    if events is None:
        failures.append("onair events export failed")
        events = []
    by_seq = {int(e["sequence"]): e for e in events}

    # 3. Every acked event: on every node at its sequence, once, and the event asked for.
    seen_seq = {}
    missing, wrong, not_once = [], [], []
    for api, kind, user, key, seq, _ in load.acks:
        for n_name, copy in copies.items():
            if seq not in copy:
                missing.append("%s %s for %s (sequence %d, answered by %s) is not on %s" % (
                    kind, key[:8], user, seq, api, n_name))
            elif len(id_seqs[n_name].get(copy[seq][1], [])) != 1:
                not_once.append("%s at sequence %d is stored %d times on %s" % (
                    kind, seq, len(id_seqs[n_name][copy[seq][1]]), n_name))
        e = by_seq.get(seq)
        if e is not None and not event_matches(kind, user, e):
            wrong.append("%s for %s answered with sequence %d, which holds %s for %s" % (
                kind, user, seq, e["type"], (e.get("data") or {}).get("userId")))
        if e is None and events and seq <= last:
            missing.append("%s for %s answered with sequence %d, not in the export" % (kind, user, seq))
        batched = e is not None and e["type"] == "onair.viewer.heartbeats_recorded.v1"
        if seq in seen_seq and seen_seq[seq] != key and not batched:
            wrong.append("two requests answered with sequence %d" % seq)
        seen_seq[seq] = key
    failures += dedupe(missing)[:10] + dedupe(not_once)[:10] + dedupe(wrong)[:10]

    # 4. No two leaders accepted writes: what the cut-off node held is what the majority kept.
    split = []
    for cut in info["cuts"]:
        if cut["readable"] is not True:
            failures.append("could not read cut-off %s's store at the end of its partition: %s" % (
                cut["node"].name, cut["readable"]))
        if not reference:
            continue  # nothing to compare with (reported above)
        for seq, msg in sorted(cut["tail"].items()):
            if seq > last:
                split.append("cut-off %s held sequence %d (%s), beyond the converged stream's last %d" % (
                    cut["node"].name, seq, msg[1], last))
            elif reference.get(seq) != msg:
                split.append("cut-off %s held %s at sequence %d, the majority %s" % (
                    cut["node"].name, msg, seq, reference.get(seq)))
    failures += dedupe(split)[:10]
    claims = leader_claims(ctx, t_cut - 1, t_heal + 5)
    catch_up = catch_up_time(ctx, info["cuts"])

    # 5. Answers: within the deadline, documented, and the cut-off instance's behaviour.
    late, bad = [], []
    statuses = {}
    for api, kind, started, ended, status, code in load.attempts:
        k = "%s %s" % (status, code or "")
        statuses[k] = statuses.get(k, 0) + 1
        took = ended - started
        if status == "timeout":
            late.append("%s on %s got no answer within %.0f s" % (kind, api, CLIENT_TIMEOUT))
        elif took > DEADLINE_S + LATE_SLACK_S:
            late.append("%s on %s answered %s after %.1f s (deadline %.0f s)" % (kind, api, status, took, DEADLINE_S))
        if isinstance(status, int) and status >= 500 and not (status == 503 and code in DOCUMENTED_503):
            bad.append("%s on %s answered %s %s" % (kind, api, status, code))
        elif isinstance(status, int) and 400 <= status < 500 and status not in (409, 429) and not (
                status == 404 and kind in ("heartbeat", "leave")):
            bad.append("%s on %s answered %s %s" % (kind, api, status, code))
        elif status == "conn":
            bad.append("%s on %s: connection failed" % (kind, api))
    failures += dedupe(late)[:10] + dedupe(bad)[:10]

    recover_s, cut_503, cut_409, cut_longest = None, None, None, None
    if info.get("api"):
        api_name = info["api"]["name"]
        during = [a for a in load.attempts if a[0] == api_name and t_cut <= a[2] <= t_heal]
        cut_503 = sum(1 for a in during if a[4] == 503)
        cut_409 = sum(1 for a in during if a[4] == 409)
        cut_longest = max((a[3] - a[2] for a in during), default=None)
        if not cut_503:
            failures.append("%s, cut off from NATS, answered no 503 (answers: %s)" % (
                api_name, sorted({str(a[4]) for a in during})))
        after = [a[3] for a in load.attempts if a[0] == api_name and a[2] >= t_heal and isinstance(a[4], int)
                 and 200 <= a[4] < 300]
        recover_s = (min(after) - t_heal) if after else None
        if recover_s is None or recover_s > RECOVER_WITHIN_S:
            failures.append("%s did not answer 2xx within %.0f s of the heal" % (api_name, RECOVER_WITHIN_S))
        h = cluster.health(info["api"]["url"], timeout=5)
        if not h or h.get("status") != "ok":
            failures.append("%s /health after the heal: %s" % (
                api_name, None if not h else {"status": h.get("status"), "services": h.get("services")}))

    # 6. Pool invariants, from the stream.
    pool_failures, peak, stages = pool_invariants(events)
    failures += dedupe(pool_failures)[:10]

    # 7. onair audit, once the projections caught up.
    if not wait_caught_up(cluster):
        failures.append("the projections did not catch up within 60 s")
    t_audit = now()
    audit = cluster.onair("audit", check=False)
    audit_s = now() - t_audit
    if audit.returncode != 0 or "0 differences" not in audit.stdout:
        # A second audit 5 s later tells a lagging projection from a real difference; a fixed pause by design.
        time.sleep(5)
        again = cluster.onair("audit", check=False)
        failures.append("onair audit: exit %d (again 5 s later: %s)\n%s" % (
            audit.returncode, "0 differences" if again.returncode == 0 else "exit %d" % again.returncode,
            audit_summary(audit.stdout + audit.stderr)))

    # Figures.
    oks = sorted(a[3] for a in load.attempts if isinstance(a[4], int) and 200 <= a[4] < 300)
    window = [t for t in oks if t_cut <= t] + [t_heal + RECOVERY_S]
    gaps, prev = [], t_cut
    for t in window:
        gaps.append(t - prev)
        prev = t
    first_ok = next((t for t in oks if t >= t_cut), None)
    cut_nodes = [c["node"] for c in info["cuts"]]
    election = election_time(ctx, info) if cut_nodes else None
    row = {
        "scenario": name,
        "what": info["what"],
        "connected": info.get("connected"),
        "requests": len(load.attempts),
        "2xx": len(oks),
        "503": sum(1 for a in load.attempts if a[4] == 503),
        "404": sum(1 for a in load.attempts if a[4] == 404),
        "other": sum(1 for a in load.attempts if not (isinstance(a[4], int) and (200 <= a[4] < 300 or a[4] in (404, 503)))),
        "longest": max((a[3] - a[2] for a in load.attempts), default=0.0),
        "first_2xx": None if first_ok is None else first_ok - t_cut,
        "write_gap": max(gaps) if gaps else None,
        "election": election,
        "claims": claims,
        "recover": recover_s,
        "cut_503": cut_503,
        "cut_409": cut_409,
        "cut_longest": cut_longest,
        "converge": conv_s,
        "catch_up": catch_up,
        "stream": "%d msgs, last %d" % (len(reference), last),
        "acks": len(load.acks),
        "peak": peak,
        "stages": stages,
        "audit_s": audit_s,
        "statuses": statuses,
        "failures": failures,
        "tails": ["%s: %d -> %d%s" % (c["node"].name, c["at_cut"], c["at_end"],
                                      "" if c["readable"] is True else " (unreadable)") for c in info["cuts"]],
    }
    if info.get("api_health"):
        row["api_health"] = info["api_health"]
    return row


def audit_summary(out, rows=4):
    """`onair audit`'s summary lines and the first few rows of each difference."""
    keep, shown = [], 0
    for line in out.splitlines():
        if line.startswith("  "):
            shown += 1
            if shown <= rows:
                keep.append(line)
        elif line.strip() and not line.startswith("["):
            keep.append(line)
            shown = 0
    return "\n".join("    " + line for line in keep[:40])


def leader_claims(ctx, start, end):
    """The longest time two nodes at once said they led the stream (each its own /jsz)."""
    timeline = sorted((t, n.server, (st or {}).get("leader")) for n in ctx.nodes.all
                      for t, st in n.samples if start <= t <= end)
    claim = {}
    since, longest = None, 0.0
    for t, server, leader in timeline:
        claim[server] = leader == server
        if sum(claim.values()) >= 2:
            since = t if since is None else since
            longest = max(longest, t - since)
        else:
            since = None
    return longest


def catch_up_time(ctx, cuts):
    """Longest time from a heal until the healed node held what the others held at the heal."""
    worst = None
    for cut in cuts:
        node = cut["node"]
        target = max(((st or {}).get("last_seq", 0) for n in ctx.nodes.all if n is not node
                      for t, st in n.samples if t <= cut["t_heal"]), default=0)
        took = next((t - cut["t_heal"] for t, st in node.samples
                     if t >= cut["t_heal"] and st and st["last_seq"] >= target), None)
        if took is None:
            return "never"
        worst = took if worst is None else max(worst, took)
    return worst


def election_time(ctx, info):
    """For each cut of the node leading the stream: seconds until the other nodes named another
    leader, or None when none was named before the heal. None when no leader was cut."""
    out = []
    for cut in info["cuts"]:
        node = cut["node"]
        others = [n for n in ctx.nodes.all if n is not node]
        samples = sorted(s for n in others for s in n.samples)
        if not any(st and st["leader"] == node.server for t, st in samples if cut["t_cut"] - 2 <= t <= cut["t_cut"]):
            continue
        out.append(next((t - cut["t_cut"] for t, st in samples if cut["t_cut"] <= t <= cut["t_heal"] + 0.5
                         and st and st["leader"] and st["leader"] != node.server), None))
    if not out:
        return None
    elected = [e for e in out if e is not None]
    if len(out) == 1:
        return out[0] if elected else "none before the heal"
    return "%d of %d cuts%s" % (len(elected), len(out), ", longest %.2f s" % max(elected) if elected else "")


# ---------------------------------------------------------------------------------------------


def logged_cli(run, path):
    """`Cluster.onair`, with each command's output appended to `path`."""
    def onair(*args, check=True):
        started = time.strftime("%H:%M:%S", time.gmtime())
        rc, text = None, ""
        try:
            out = run(*args, check=check)
            rc, text = out.returncode, (out.stdout or "")[-3000:] + (out.stderr or "")[-3000:]
            return out
        except subprocess.CalledProcessError as e:
            rc, text = e.returncode, (e.stdout or "")[-3000:] + (e.stderr or "")[-3000:]
            raise
        finally:
            with open(path, "a") as f:
                f.write("== %s onair %s -> exit %s\n%s\n" % (started, " ".join(args), rc, text))
    return onair


def dump(state_dir, name, info, load, ctx):
    """The scenario's raw facts, times relative to the (first) cut: partitions-<scenario>.json."""
    t0 = info["t_cut"]
    facts = {
        "what": info["what"],
        "wall_cut": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - (now() - t0))) + "Z",
        "connected": info.get("connected"),
        "heal": info["t_heal"] - t0,
        "links": [(t - t0, port, state) for t, port, state in ctx.links.log if t >= t0 - 10],
        "cuts": [{"node": c["node"].name, "cut": c["t_cut"] - t0, "heal": c["t_heal"] - t0,
                  "last_at_cut": c["at_cut"], "last_at_end": c["at_end"]} for c in info["cuts"]],
        "attempts": [(a[0], a[1], round(a[2] - t0, 3), round(a[3] - t0, 3), a[4], a[5]) for a in load.attempts],
        "acks": [(a[0], a[1], a[2], a[4], round(a[5] - t0, 3)) for a in load.acks],
        "jsz": {n.name: [(round(t - t0, 2), st) for t, st in n.samples if t0 - 5 <= t <= info["t_heal"] + 30]
                for n in ctx.nodes.all},
    }
    with open(os.path.join(state_dir, "partitions-%s.json" % name), "w") as f:
        json.dump(facts, f)


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    state_dir = args[0]
    with open(os.path.join(state_dir, "topology.json")) as f:
        topo = json.load(f)
    cluster = Cluster(state_dir)
    # The CLI runs with the cluster's settings, as scripts/cluster runs it (run/onair.env), and
    # what it prints goes to logs/cli.log.
    cluster.onair_env["ONAIR_STREAM_REPLICAS"] = "3"
    cluster.onair = logged_cli(cluster.onair, os.path.join(state_dir, "logs", "cli.log"))
    ctx = Ctx(cluster, topo)
    wanted = [s.strip() for s in os.environ.get("ONAIR_PARTITIONS_SCENARIOS", ",".join(SCENARIOS)).split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        log("unknown scenarios %s (known: %s)" % (unknown, ", ".join(SCENARIOS)))
        return 2
    if ctx.nodes.wait_leader(30) is None:
        log("the stream has no leader")
        return 1
    rows, errors = [], []
    started = now()
    try:
        for name in wanted:
            title, run = SCENARIOS[name]
            log("=== %s ===" % title)
            load = Load(cluster, ctx.apis, uuid.uuid4().hex[:5])
            load.start()
            # The baseline phase: load runs unfaulted for BASELINE_S (a measured period, not a wait).
            time.sleep(BASELINE_S)
            connected = ctx.connected = {}
            for api in ctx.apis:
                h = cluster.health(api["url"], timeout=3)
                connected[api["name"]] = (h and (h.get("natsServer") or {}).get("name")) or "?"
            leader = ctx.nodes.leader()
            log("NATS servers of the API instances: %s; stream leader %s" % (
                ", ".join("%s -> %s" % kv for kv in sorted(connected.items())), leader.server if leader else "?"))
            try:
                info = run(ctx)
                info["connected"] = connected
            finally:
                ctx.links.heal_all()
            # The recovery phase: load runs for RECOVERY_S after the heal (a measured period).
            time.sleep(RECOVERY_S)
            if info.get("api"):
                deadline = info["t_heal"] + RECOVER_WITHIN_S
                while now() < deadline and not any(
                        a[0] == info["api"]["name"] and a[2] >= info["t_heal"] and isinstance(a[4], int)
                        and 200 <= a[4] < 300 for a in list(load.attempts)):
                    # Polls until the isolated API has answered a write after the heal (the condition above).
                    time.sleep(0.5)
            load.finish()
            row = check(ctx, name, info, load)
            dump(state_dir, name, info, load, ctx)
            for f in row["failures"]:
                log("FAIL " + f)
            errors += ["%s: %s" % (name, f) for f in row["failures"]]
            rows.append(row)
    finally:
        ctx.links.heal_all()
        ctx.nodes.stop()

    print()
    print("| scenario | cut | requests | 2xx | 503 | 404 | 409 and other errors | longest answer | election | "
          "two leaders claimed | first 2xx after the cut | longest time without a 2xx | cut-off API: 503s, "
          "longest answer, recovered after | cut-off node caught up after the heal | nodes equal after the heal | "
          "cut-off node's last sequence (cut, end) | stream | audit | checks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        api = "-" if r["cut_503"] is None else "%d (+%d 409), %s, %s" % (
            r["cut_503"], r["cut_409"], fmt(r["cut_longest"]), fmt(r["recover"]))
        print("| %s | %s | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["scenario"], r["what"], r["requests"], r["2xx"], r["503"], r["404"], r["other"], fmt(r["longest"]),
            fmt(r["election"]), fmt(r["claims"]), fmt(r["first_2xx"]), fmt(r["write_gap"]), api,
            fmt(r["catch_up"]), fmt(r["converge"]), "; ".join(r["tails"]) or "-", r["stream"], fmt(r["audit_s"]),
            "pass" if not r["failures"] else "FAIL (%d)" % len(r["failures"])))
    print()
    for r in rows:
        print("%s: %d acked answers; peak %d viewers on one stage, %d stages; answers %s" % (
            r["scenario"], r["acks"], r["peak"], r["stages"],
            ", ".join("%s x%d" % (k.strip(), v) for k, v in sorted(r["statuses"].items()))))
        print("%s: API instances' NATS servers before the cut: %s" % (r["scenario"], r["connected"]))
        if r.get("api_health"):
            print("%s: cut-off instance's /health during the cut: %s" % (r["scenario"], ", ".join(
                "%.0f s: %s in %.1f s" % h for h in r["api_health"])))
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
