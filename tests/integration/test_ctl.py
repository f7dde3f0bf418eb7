"""
test_ctl.py: posternctl against the running daemon, as an operator uses
it: the queue in its states (deferred, held, delivered and gone), one
message, the statistics for people, JSON and OpenMetrics, acting on
envelopes by id and 'all', pausing deliveries, permissions for other
users, and the errors (no daemon, unknown id, bad id, malformed reply).
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import postern_harness as H
from postern_harness import make_message, new_token

POSTERNCTL = os.path.join(H.BUILD, "posternctl")
SENDER = "sender@client.test"
ALICE = "alice@test.postern"
CAROL = "carol@test.postern"
USAGE = ("usage: posternctl [-f file] [-D name=value] [-s socket] command "
    "[argument ...]\n")
# How long a queue change may take to show (the scheduler is asynchronous).
SETTLE = 10.0


@pytest.fixture(scope="module", autouse=True)
def built():
	if not os.access(POSTERNCTL, os.X_OK):
		pytest.fail("%s: not built" % POSTERNCTL, pytrace=False)


# ---------------------------------------------------------------- helpers

def run(args, user=None, input=None, timeout=20):
	"""posternctl ARGS (as user if given); the CompletedProcess."""
	cmd = [POSTERNCTL] + list(args)
	if user is not None:
		cmd = ["setpriv", "--reuid", user, "--regid", "nogroup",
		    "--clear-groups", "--"] + cmd
	kw = dict(capture_output=True, text=True, timeout=timeout)
	if input is None:
		kw["stdin"] = subprocess.DEVNULL
	else:
		kw["input"] = input
	return subprocess.run(cmd, **kw)


def ctl(inst, *args, **kw):
	"""posternctl -f CONF ARGS against inst (the config names the socket)."""
	return run(["-f", inst.conf_path] + list(args), **kw)


def ok(r, what=""):
	"""Assert exit 0 and no message; stdout."""
	assert r.returncode == 0 and r.stderr == "", "%s: exit %d\nstdout:\n%s" \
	    "\nstderr:\n%s" % (what or " ".join(r.args), r.returncode, r.stdout,
	    r.stderr)
	return r.stdout


def queue(inst):
	"""show queue --json: the list of envelope objects."""
	out = ok(ctl(inst, "show", "queue", "--json"))
	try:
		return json.loads(out)
	except ValueError as e:
		raise AssertionError("show queue --json is not JSON (%s):\n%s" %
		    (e, out)) from None


def stats(inst):
	out = ok(ctl(inst, "show", "stats", "--json"))
	try:
		return json.loads(out)
	except ValueError as e:
		raise AssertionError("show stats --json is not JSON (%s):\n%s" %
		    (e, out)) from None


def of_message(inst, qid):
	"""The queued envelopes of message qid."""
	return [e for e in queue(inst) if e["message_id"] == qid]


def wait_envelopes(inst, qid, pred, what, timeout=SETTLE):
	"""Poll until pred(envelopes of qid) holds; the envelopes."""
	deadline = time.monotonic() + timeout
	while True:
		envs = of_message(inst, qid)
		if pred(envs):
			return envs
		if time.monotonic() > deadline:
			raise AssertionError("message %s: %s not reached within "
			    "%.0fs; its envelopes: %r\nlog tail:\n%s" % (qid, what,
			    timeout, envs, inst.log_tail()))
		time.sleep(0.1)


def all_in_state(state, n=1):
	return lambda envs: len(envs) == n and all(e["state"] == state
	    for e in envs)


@pytest.fixture
def mta(instance_factory):
	"""
	A daemon with a control socket in its directory, retries an hour
	apart, and carol's maildir made a regular file so that mail to her
	stays deferred.
	"""
	inst = instance_factory()
	inst.sock = inst.path("control.sock")
	inst.extra_global = ['control "%s"' % inst.sock, "queue retry-min 1h"]
	inst.write_config(inst.config_text())
	with open(inst.path("maildir", "carol"), "w") as f:
		f.write("not a maildir\n")
	inst.start()
	return inst


def send_deferred(inst, tag="deferred"):
	"""A message to carol, waited for until deferred; (qid, envelope)."""
	tok = new_token(tag)
	qid = inst.send(SENDER, [CAROL], make_message(tok, to=CAROL))
	envs = wait_envelopes(inst, qid, lambda envs: len(envs) == 1 and
	    envs[0]["state"] == "deferred" and envs[0]["attempts"] >= 1,
	    "deferred after one attempt")
	return qid, envs[0]


# ---------------------------------------------------------------- show queue

def test_show_queue_states(mta):
	qid_d, env_d = send_deferred(mta)
	qid_h, env_h = send_deferred(mta, "held")
	r = ok(ctl(mta, "hold", env_h["id"]))
	assert r == "1 envelope held\n", r
	wait_envelopes(mta, qid_h, all_in_state("held"), "held")
	# delivered mail leaves the queue
	tok = new_token("gone")
	qid_g = mta.send(SENDER, [ALICE], make_message(tok))
	mta.maildir("alice").wait_for(tok, inst=mta)
	wait_envelopes(mta, qid_g, lambda envs: envs == [], "gone")

	out = ok(ctl(mta, "show", "queue"))
	lines = out.splitlines()
	assert len(lines) == 3, "title and two envelopes expected:\n" + out
	assert re.match(r"^ID +AGE +SIZE +SENDER +RECIPIENT +STATE +ATTEMPTS +"
	    r"NEXT +ERROR$", lines[0]), out
	rows = {l.split()[0]: l for l in lines[1:]}
	assert set(rows) == {env_d["id"], env_h["id"]}, out
	for evpid, state in ((env_d["id"], "deferred"), (env_h["id"], "held")):
		f = rows[evpid].split()
		assert re.fullmatch(r"\d+[smhd]", f[1]), rows[evpid]
		assert re.fullmatch(r"\d+(\.\d)?[BKMG]", f[2]), rows[evpid]
		assert f[3:7] == [SENDER, CAROL, state, "1"], rows[evpid]
	# retry-min 1h, with the scheduler's +-10% jitter
	assert re.fullmatch(r"5[4-9]m|1h", rows[env_d["id"]].split()[7]), \
	    "next try of the deferred one (retry-min 1h):\n" + out
	assert rows[env_h["id"]].split()[7] == "-", out
	# columns line up: every field starts where its title does
	for col in ("SENDER", "RECIPIENT", "STATE", "NEXT", "ERROR"):
		at = lines[0].index(col)
		for l in lines[1:]:
			assert l[at - 2:at] == "  " and l[at] != " ", \
			    "column %s misaligned:\n%s" % (col, out)
	for l in lines:
		assert "\x1b" not in l and "\r" not in l


def test_show_queue_json(mta):
	qid, env = send_deferred(mta)
	now = time.time()
	(e,) = of_message(mta, qid)
	assert set(e) == {"id", "message_id", "age_seconds", "size", "sender",
	    "recipient", "state", "attempts", "next_try", "last_error"}, e
	assert re.fullmatch(r"[0-9a-f]{16}", e["id"]), e
	assert e["message_id"] == qid
	assert e["sender"] == SENDER and e["recipient"] == CAROL, e
	assert e["state"] == "deferred" and e["attempts"] >= 1, e
	assert isinstance(e["last_error"], str) and e["last_error"] != "", e
	assert e["size"] > 100, e
	assert 0 <= e["age_seconds"] < 60, e
	# retry-min 1h, with the scheduler's +-10% jitter
	assert now + 3200 < e["next_try"] < now + 4000, \
	    "next_try %d is not about an hour from now (%d)" % (e["next_try"], now)


def test_empty_queue(mta):
	assert ok(ctl(mta, "show", "queue")) == ""
	assert ok(ctl(mta, "show", "queue", "--json")).strip() == "[]"


def test_null_sender_shown(mta):
	tok = new_token("null")
	qid = mta.send("", [CAROL], make_message(tok, to=CAROL))
	(e,) = wait_envelopes(mta, qid, all_in_state("deferred"), "deferred")
	assert e["sender"] == ""
	line, = [l for l in ok(ctl(mta, "show", "queue")).splitlines()
	    if l.startswith(e["id"])]
	assert line.split()[3] == "<>", line


# ---------------------------------------------------------------- acting

def test_by_id(mta):
	qid, env = send_deferred(mta)
	evpid = env["id"]

	assert ok(ctl(mta, "hold", evpid)) == "1 envelope held\n"
	wait_envelopes(mta, qid, all_in_state("held"), "held")
	assert ok(ctl(mta, "release", qid)) == "1 envelope released\n"
	wait_envelopes(mta, qid, lambda envs: len(envs) == 1 and
	    envs[0]["state"] != "held", "released")

	# retried now rather than in an hour: a second failed attempt
	before = of_message(mta, qid)[0]["attempts"]
	assert ok(ctl(mta, "schedule", evpid)) == "1 envelope scheduled\n"
	wait_envelopes(mta, qid, lambda envs: len(envs) == 1 and
	    envs[0]["attempts"] > before and envs[0]["state"] == "deferred",
	    "a new attempt")

	assert ok(ctl(mta, "remove", evpid)) == "1 envelope removed\n"
	wait_envelopes(mta, qid, lambda envs: envs == [], "removed")
	r = ctl(mta, "show", "message", qid)
	assert r.returncode == 1, r


def test_all(mta):
	qids = [send_deferred(mta, "all%d" % i)[0] for i in range(2)]

	assert ok(ctl(mta, "hold", "all")) == "2 envelopes held\n"
	for q in qids:
		wait_envelopes(mta, q, all_in_state("held"), "held")
	assert ok(ctl(mta, "release", "all")) == "2 envelopes released\n"
	for q in qids:
		wait_envelopes(mta, q, lambda envs: len(envs) == 1 and
		    envs[0]["state"] != "held", "released")
	out = ok(ctl(mta, "schedule", "all"))
	assert re.fullmatch(r"[0-2] envelopes? scheduled\n", out), out
	for q in qids:
		wait_envelopes(mta, q, lambda envs: len(envs) == 1 and
		    envs[0]["attempts"] >= 2 and envs[0]["state"] == "deferred",
		    "retried")
	# stdin is not a terminal: no question asked
	assert ok(ctl(mta, "remove", "all")) == "2 envelopes removed\n"
	assert queue(mta) == []
	assert ok(ctl(mta, "show", "queue")) == ""


def test_counts_as_json(mta):
	qid, env = send_deferred(mta)
	out = ok(ctl(mta, "hold", env["id"], "--json"))
	assert json.loads(out) == {"count": 1}, out
	out = ok(ctl(mta, "release", "--json", "all"))
	assert json.loads(out) == {"count": 1}, out


# ---------------------------------------------------------------- show message

def test_show_message(mta):
	qid, env = send_deferred(mta)
	listed = of_message(mta, qid)[0]
	out = ok(ctl(mta, "show", "message", qid))
	assert "\r" not in out, "CRLF must become LF:\n%r" % out
	lines = out.splitlines()
	assert lines[0].startswith("ID ") and lines[1].startswith(env["id"]), out
	assert any(l.startswith("Received: ") for l in lines), out
	assert any(l.startswith("Subject: test deferred-") for l in lines), out
	assert any(l.startswith("Message-ID: <deferred-") for l in lines), out
	assert "Hello, this is" not in out, "the body is not part of it:\n" + out
	# by envelope id: the same message
	assert ok(ctl(mta, "show", "message", env["id"])) == out

	j = json.loads(ok(ctl(mta, "show", "message", qid, "--json")))
	assert j["message_id"] == qid
	assert [e["id"] for e in j["envelopes"]] == [env["id"]]
	assert j["envelopes"][0] == dict(listed,
	    age_seconds=j["envelopes"][0]["age_seconds"])
	assert re.search(r"(?m)^Received: ", j["headers"]), j["headers"]
	assert "\r\n" in j["headers"]


# ---------------------------------------------------------------- stats

def test_stats(mta):
	n = 3
	for i in range(n):
		tok = new_token("stat")
		mta.send(SENDER, [ALICE], make_message(tok))
		mta.maildir("alice").wait_for(tok, inst=mta)
	send_deferred(mta)
	s = stats(mta)
	for name, v in s.items():
		assert re.fullmatch(r"[a-z0-9_]+", name) and isinstance(v, int), s
	assert s["messages_received_total"] >= n + 1, s
	assert s["messages_delivered_total"] >= n, s
	assert s["envelopes_deferred"] == 1, s
	assert s["uptime_seconds"] >= 0, s

	text = ok(ctl(mta, "show", "stats"))
	pairs = [l.split(": ") for l in text.splitlines()]
	assert all(len(p) == 2 for p in pairs), text
	assert [p[0] for p in pairs] == list(s), "same names, same order"

	om = ok(ctl(mta, "show", "stats", "--openmetrics"))
	lines = om.splitlines()
	assert lines[-1] == "# EOF" and om.endswith("# EOF\n"), om
	samples = [l for l in lines if not l.startswith("#")]
	assert len(samples) == len(s), om
	for l in samples:
		assert re.fullmatch(r"postern_[a-z0-9_]+ -?[0-9]+", l), l
	for l in lines[:-1]:
		if l.startswith("#"):
			assert re.fullmatch(r"# TYPE postern_[a-z0-9_]+ "
			    r"(counter|gauge)", l), l
	(received,) = [l for l in samples
	    if l.startswith("postern_messages_received_total ")]
	assert int(received.split()[1]) >= n + 1, om
	assert "# TYPE postern_messages_received counter" in lines, om
	assert "# TYPE postern_envelopes_deferred gauge" in lines, om


def test_monitor(mta):
	p = subprocess.Popen([POSTERNCTL, "-s", mta.sock, "monitor"],
	    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
	    stdin=subprocess.DEVNULL)
	try:
		time.sleep(3.5)
		p.send_signal(signal.SIGINT)
		out, err = p.communicate(timeout=10)
	finally:
		if p.poll() is None:
			p.kill()
			p.wait()
	assert p.returncode == 0 and err == "", (p.returncode, err)
	lines = out.splitlines()
	assert len(lines) >= 3, out
	assert lines[0].split()[:6] == ["TIME", "RECV/S", "DELIV/S", "DEFER/S",
	    "DEFERRED", "QUEUE"], out
	for l in lines[1:]:
		assert re.fullmatch(r"\d\d:\d\d:\d\d +\d+\.\d +\d+\.\d +\d+\.\d"
		    r" +\d+ +\d+( +\d+)?", l), l


# ---------------------------------------------------------------- pause

def test_pause_delivery(mta):
	r = ok(ctl(mta, "pause", "delivery"))
	assert r == "delivery paused\n", r
	assert stats(mta)["delivery_paused"] == 1
	tok = new_token("paused")
	data = make_message(tok)
	qid = mta.send(SENDER, [ALICE], data)	# SMTP still accepts
	time.sleep(1.5)
	(e,) = of_message(mta, qid)
	assert e["state"] == "pending" and e["attempts"] == 0, e
	assert mta.maildir("alice").count(tok) == 0, "delivered while paused"

	assert ok(ctl(mta, "resume", "delivery")) == "delivery resumed\n"
	H.assert_delivered(mta, "alice", tok, data)
	wait_envelopes(mta, qid, lambda envs: envs == [], "delivered")
	assert stats(mta)["delivery_paused"] == 0


def test_pause_smtp(mta):
	assert ok(ctl(mta, "pause", "smtp")) == "smtp paused\n"
	deadline = time.monotonic() + SETTLE
	while stats(mta)["smtp_paused"] != 1:
		assert time.monotonic() < deadline, "smtp_paused never 1"
		time.sleep(0.1)
	assert ok(ctl(mta, "resume", "smtp")) == "smtp resumed\n"
	assert stats(mta)["smtp_paused"] == 0
	tok = new_token("resumed")
	data = make_message(tok)
	mta.send(SENDER, [ALICE], data)
	H.assert_delivered(mta, "alice", tok, data)


def test_reload_and_log(mta):
	assert ok(ctl(mta, "reload")) == "configuration reloaded\n"
	assert ok(ctl(mta, "log", "brief")) == "log level set to brief\n"
	assert ok(ctl(mta, "log", "verbose")) == "log level set to verbose\n"
	time.sleep(0.3)
	assert mta.alive(), "posternd died:\n" + mta.log_tail()
	tok = new_token("after-reload")
	data = make_message(tok)
	mta.send(SENDER, [ALICE], data)
	H.assert_delivered(mta, "alice", tok, data)


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("verb", ["remove", "hold", "schedule"])
def test_other_user_denied(mta, verb):
	qid, env = send_deferred(mta)
	for target in (env["id"], "all"):
		r = run(["-s", mta.sock, verb, target], user="nobody")
		assert r.returncode == 1, r
		assert r.stdout == ""
		assert re.fullmatch(r"posternctl: .*permission denied.*\n",
		    r.stderr, re.I), r.stderr
	(e,) = of_message(mta, qid)
	assert e["state"] == "deferred" and e["attempts"] == env["attempts"], e


def test_unknown_id(mta):
	for args in (["hold", "0123456789abcdef"], ["remove", "fedcba9876543210"],
	    ["show", "message", "0123456789abcdef"]):
		r = ctl(mta, *args)
		assert r.returncode == 1 and r.stdout == "", r
		assert re.fullmatch(r"posternctl: no such envelope or message\n",
		    r.stderr), r.stderr


def test_no_daemon(tmp_path):
	sock = str(tmp_path / "control.sock")
	for args in (["show", "queue"], ["hold", "all"], ["show", "stats"]):
		r = run(["-s", sock] + args)
		assert r.returncode == 1 and r.stdout == "", r
		assert r.stderr == "posternctl: cannot reach posternd at %s: No " \
		    "such file or directory (is posternd running?)\n" % sock, \
		    r.stderr


def test_control_path_from_config(tmp_path):
	sock = str(tmp_path / "elsewhere.sock")
	conf = tmp_path / "p.conf"
	conf.write_text('control "$dir/elsewhere.sock"\n'
	    "table t file:/nonexistent/unreadable\n")
	r = run(["-D", "dir=%s" % tmp_path, "-f", str(conf), "show", "queue"])
	assert r.returncode == 1 and sock in r.stderr, r.stderr
	r = run(["-f", str(tmp_path / "missing.conf"), "show", "queue"])
	assert r.returncode == 1, r
	assert "missing.conf" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("args,message", [
    (["hold", "xyz"],
	"invalid id 'xyz': expected 16 hex digits or 'all'"),
    (["remove", "0123456789abcde"],
	"invalid id '0123456789abcde': expected 16 hex digits or 'all'"),
    (["schedule", "0123456789abcdef0"],
	"invalid id '0123456789abcdef0': expected 16 hex digits or 'all'"),
    (["show", "message", "all"],
	"invalid id 'all': expected 16 hex digits"),
    (["hold"], "hold: missing argument: an id or 'all'"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["show", "everything"], "unknown command 'show everything'"),
    (["pause", "everything"],
	"pause: expected smtp or delivery, not 'everything'"),
    (["show", "queue", "--openmetrics"],
	"--openmetrics: not supported by 'show queue'"),
    ([], "missing command"),
])
def test_usage_errors(tmp_path, args, message):
	r = run(["-s", str(tmp_path / "none.sock")] + args)
	assert r.returncode == 2 and r.stdout == "", r
	assert r.stderr == "posternctl: %s\n%s" % (message, USAGE), r.stderr


def test_malformed_reply(tmp_path):
	"""A server that answers with a frame no decoder accepts."""
	path = str(tmp_path / "fake.sock")
	srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	srv.bind(path)
	srv.listen(4)
	replies = [
	    # an ENVELOPE frame with a 2-byte payload
	    struct.pack("=BBHIQ", 1, 0, 120, 2, 0) + b"xx",
	    # a STAT frame where show queue expects envelopes
	    struct.pack("=BBHIQ", 1, 0, 122, 13, 0) + struct.pack("=I", 1) +
		b"a" + struct.pack("=q", 1),
	    # no frame at all
	    b"\xee" * 32,
	]

	def serve():
		for reply in replies:
			c, _ = srv.accept()
			with c:
				c.recv(4096)
				c.sendall(reply)

	t = threading.Thread(target=serve, daemon=True)
	t.start()
	try:
		for _ in replies:
			r = run(["-s", path, "show", "queue"])
			assert r.returncode == 1 and r.stdout == "", r
			assert r.stderr == "posternctl: malformed reply from the " \
			    "server\n", r.stderr
	finally:
		t.join(5)
		srv.close()


def test_stats_sessions_memory_latency(mta):
	"""smtpd's session counters, each process's memory and delivery
	latency percentiles reach show stats."""
	tok = new_token("stat2")
	mta.send(SENDER, [ALICE], make_message(tok))
	mta.maildir("alice").wait_for(tok, inst=mta)
	deadline = time.monotonic() + 8
	while True:
		s = stats(mta)
		if s.get("smtp_sessions_total", 0) >= 1 and \
		    s.get("memory_smtpd_kib", 0) > 0 or \
		    time.monotonic() > deadline:
			break
		time.sleep(0.2)
	assert s["smtp_sessions_total"] >= 1, s
	assert s["smtp_sessions"] >= 0 and s["tls_sessions"] == 0, s
	for proc in ("posternd", "smtpd", "queue", "tlsd"):
		assert s["memory_%s_kib" % proc] > 0, s
	assert 0 <= s["delivery_latency_p50_seconds"] <= \
	    s["delivery_latency_p90_seconds"] <= \
	    s["delivery_latency_p99_seconds"] < 60, s
