"""
postern_harness.py: run the real posternd on loopback and talk to it.

Everything here observes the daemon from the outside, as a user would:
raw SMTP over TCP, files in maildirs, /proc and ps.  Nothing is mocked.
SECURITY: the tests run as root; every directory a test creates lives under
/tmp/postern-test-*, and only processes of the instance the test started
are ever signalled.
"""

import atexit
import contextlib
import email.utils
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(os.environ.get("POSTERN_BUILD") or
    os.path.join(HERE, "..", "..", "build"))
PROGRAMS = ("posternd", "postern-smtpd", "postern-tlsd", "postern-queue")
SYSTEM_USERS = ("_postern_smtpd", "_postern_tlsd", "_postern_queue",
    "_postern_dev")
DEV_USER = "_postern_dev"

HOSTNAME = "test.postern"
MAX_SIZE = 12 * 1024 * 1024		# "max-message-size 12M"
MAX_RCPT = 50
MAX_ERRORS = 5
LOCAL_USERS = ("alice", "bob", "carol", "postmaster")
DEFAULT_ALIASES = "team: alice, bob\nboss: carol\n"

# How long a delivery may take after the 250 (delivery is asynchronous).
DELIVERY_TIMEOUT = 10.0
# Settle time before a negative check ("nothing else was delivered").
GRACE = 0.5
# The configuration line that makes temporary failures retry quickly.
RETRY_CONF = "queue retry-min 1s"
# Patterns that a log line about a temporary failure should match.
DEFERRAL_RE = r"(?i)defer|tempfail|temporar|retry|try again"

QUEUED_RE = re.compile(r"(?i)queued as ([0-9a-f]{16})\b")


class HarnessError(Exception):
	"""The environment, not the daemon's SMTP behaviour, went wrong."""


def new_token(prefix="tok"):
	"""A unique marker to find one test's message among all the others."""
	return "%s-%s" % (prefix, uuid.uuid4().hex[:16])


def free_port():
	"""A TCP port on 127.0.0.1 that nobody listens on right now."""
	with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def preflight():
	"""Everything the suite needs before the first daemon starts."""
	problems = []
	if os.geteuid() != 0:
		problems.append("the integration tests must run as root")
	for p in PROGRAMS:
		path = os.path.join(BUILD, p)
		if not os.access(path, os.X_OK):
			problems.append("%s: not built (POSTERN_BUILD=%s)" %
			    (path, BUILD))
	for u in SYSTEM_USERS:
		try:
			pwd.getpwnam(u)
		except KeyError:
			problems.append("system user %s missing (make users)" % u)
	if shutil.which("swaks") is None:
		problems.append("swaks not installed")
	return problems


# ---------------------------------------------------------------- /proc

def _read(path, mode="r"):
	with open(path, mode) as f:
		return f.read()


def proc_stat(pid):
	"""(state, ppid, pgrp, session, starttime) of pid, or None."""
	try:
		data = _read("/proc/%d/stat" % pid, "rb")
	except OSError:
		return None
	rp = data.rindex(b")")
	f = data[rp + 2:].split()
	return (f[0].decode(), int(f[1]), int(f[2]), int(f[3]), int(f[19]))


def all_procs():
	"""pid -> proc_stat for every process on the host."""
	out = {}
	for name in os.listdir("/proc"):
		if not name.isdigit():
			continue
		st = proc_stat(int(name))
		if st is not None:
			out[int(name)] = st
	return out


def proc_exe(pid):
	"""Basename of the program pid runs, or "" if unknown."""
	try:
		exe = os.readlink("/proc/%d/exe" % pid)
	except OSError:
		try:
			argv0 = _read("/proc/%d/cmdline" % pid, "rb").split(
			    b"\0")[0].decode(errors="replace")
		except OSError:
			return ""
		return os.path.basename(argv0.split(":")[0].split()[0]
		    if argv0.strip() else "")
	if exe.endswith(" (deleted)"):
		exe = exe[:-len(" (deleted)")]
	return os.path.basename(exe)


def proc_status(pid):
	"""/proc/PID/status as a dict of strings."""
	out = {}
	for line in _read("/proc/%d/status" % pid).splitlines():
		k, _, v = line.partition(":")
		out[k] = v.strip()
	return out


def ps_users(pids):
	"""pid -> user name as ps(1) shows it."""
	if not pids:
		return {}
	r = subprocess.run(["ps", "-o", "user:32=,pid=", "-p",
	    ",".join(str(p) for p in pids)], capture_output=True, text=True,
	    timeout=10)
	out = {}
	for line in r.stdout.splitlines():
		f = line.split()
		if len(f) == 2:
			out[int(f[1])] = f[0]
	return out


# ---------------------------------------------------------------- instance

_INSTANCES = []


def _stop_all_at_exit():
	"""Last resort: no daemon of ours outlives the test run."""
	for inst in _INSTANCES:
		if inst.proc is not None:
			with contextlib.suppress(Exception):
				inst.cleanup()


atexit.register(_stop_all_at_exit)


def instances_for_report(since):
	"""Instances running now or stopped after monotonic time since."""
	return [i for i in _INSTANCES if i.started_at is not None and
	    (i.stopped_at is None or i.stopped_at >= since)]


class Instance:
	"""
	One posternd with its own directory, spool, port, config and log.
	The directory is /tmp/postern-test-XXXX (0755) so that _postern_dev
	can reach the maildirs under it.
	"""

	def __init__(self, timeout="30s", aliases=DEFAULT_ALIASES,
	    extra_global=(), extra_actions=(), extra_matches=(),
	    listen_extra=""):
		self.dir = tempfile.mkdtemp(prefix="postern-test-", dir="/tmp")
		os.chmod(self.dir, 0o755)
		dev = pwd.getpwnam(DEV_USER)
		for sub in ("maildir", "mbox"):
			p = os.path.join(self.dir, sub)
			os.mkdir(p, 0o755)
			os.chown(p, dev.pw_uid, dev.pw_gid)
		self.spool = os.path.join(self.dir, "spool")
		self.aliases_path = os.path.join(self.dir, "aliases")
		self.write_aliases(aliases)
		self.port = free_port()
		self.conf_path = os.path.join(self.dir, "postern.conf")
		self.log_path = os.path.join(self.dir, "posternd.log")
		self.timeout = timeout
		self.extra_global = list(extra_global)
		self.extra_actions = list(extra_actions)
		self.extra_matches = list(extra_matches)
		self.listen_extra = listen_extra
		self.write_config(self.config_text())
		self.proc = None
		self.args = ()
		self.known = {}		# pid -> starttime of every process seen
		self.sids = set()	# session ids of our posternd runs
		self.started_at = None
		self.stopped_at = None
		self.final_log = None
		self._maildirs = {}
		self._lock = threading.Lock()
		_INSTANCES.append(self)

	# ---- files

	def config_text(self):
		"""The base configuration of the suite, plus this instance's extras."""
		d = self.dir
		lines = [
		    'hostname "%s"' % HOSTNAME,
		    'queue "%s"' % self.spool,
		    "max-message-size 12M",
		    "max-recipients %d" % MAX_RCPT,
		    "max-errors %d" % MAX_ERRORS,
		    "timeout %s" % self.timeout,
		]
		lines += self.extra_global
		lines += [
		    "listen on 127.0.0.1 port %d%s" % (self.port,
			self.listen_extra),
		    'table vusers { "alice", "bob", "carol", "postmaster" }',
		    "table aliases file:%s/aliases" % d,
		    'action "local" maildir "%s/maildir/%%{user}" user "%s" '
			"virtual <vusers> alias <aliases>" % (d, DEV_USER),
		]
		lines += self.extra_actions
		lines += [
		    'match from any for domain { "test.postern", "localhost" } '
			'action "local"',
		]
		lines += self.extra_matches
		return "\n".join(lines) + "\n"

	def write_config(self, text):
		with open(self.conf_path, "w") as f:
			f.write(text)

	def write_aliases(self, text):
		tmp = self.aliases_path + ".new"
		with open(tmp, "w") as f:
			f.write(text)
		os.chmod(tmp, 0o644)
		os.rename(tmp, self.aliases_path)

	def path(self, *parts):
		return os.path.join(self.dir, *parts)

	def maildir(self, user):
		"""The Maildir of a virtual user of the "local" action."""
		return self.maildir_at(self.path("maildir", user))

	def maildir_at(self, path):
		with self._lock:
			md = self._maildirs.get(path)
			if md is None:
				md = self._maildirs[path] = Maildir(path)
			return md

	# ---- log

	def log_bytes(self):
		if self.final_log is not None:
			return self.final_log
		try:
			return _read(self.log_path, "rb")
		except OSError:
			return b""

	def log_text(self, since=0):
		return self.log_bytes()[since:].decode(errors="replace")

	def log_offset(self):
		return len(self.log_bytes())

	def log_tail(self, lines=60, since=0):
		text = self.log_text(since)
		return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

	def _note(self, msg):
		with contextlib.suppress(OSError), open(self.log_path, "ab") as f:
			f.write(("===== harness: %s =====\n" % msg).encode())

	def wait_log(self, pattern, timeout=10.0, since=0):
		"""Wait for a log line matching pattern; the match, or raise."""
		rx = re.compile(pattern)
		deadline = time.monotonic() + timeout
		while True:
			m = rx.search(self.log_text(since))
			if m:
				return m
			if time.monotonic() > deadline:
				raise AssertionError("no log line matching %r within "
				    "%.0fs; log tail:\n%s" % (pattern, timeout,
				    self.log_tail()))
			time.sleep(0.05)

	# ---- processes

	def start(self, args=(), wait=True, timeout=15.0):
		"""Start posternd -d -v -f CONF; wait until it greets on the port."""
		if self.proc is not None and self.proc.poll() is None:
			raise HarnessError("instance already running")
		self.args = tuple(args)
		cmd = [os.path.join(BUILD, "posternd"), "-d", "-v", "-f",
		    self.conf_path] + list(args)
		self._note("start %s" % " ".join(cmd))
		logf = open(self.log_path, "ab")
		try:
			self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
			    stdout=logf, stderr=logf, start_new_session=True,
			    cwd=self.dir)
		finally:
			logf.close()
		self.sids.add(self.proc.pid)
		self.started_at = time.monotonic()
		self.stopped_at = None
		self.final_log = None
		if wait:
			self.wait_ready(timeout)
		return self

	def restart(self, timeout=15.0):
		return self.start(self.args, wait=True, timeout=timeout)

	def wait_ready(self, timeout=15.0):
		"""Poll until the listener answers 220; raise with the log if not."""
		deadline = time.monotonic() + timeout
		last = None
		while time.monotonic() < deadline:
			rc = self.proc.poll()
			if rc is not None:
				raise HarnessError("posternd exited with status %s "
				    "before it was ready; log tail:\n%s" %
				    (rc, self.log_tail()))
			try:
				with socket.create_connection(("127.0.0.1",
				    self.port), timeout=2) as s:
					s.settimeout(3)
					data = b""
					while b"\n" not in data:
						chunk = s.recv(512)
						if not chunk:
							break
						data += chunk
					if data.startswith(b"220"):
						try:
							s.sendall(b"QUIT\r\n")
						except OSError:
							pass
						self.scan()
						return
					last = "greeting %r" % data
			except OSError as e:
				last = str(e)
			time.sleep(0.05)
		raise HarnessError("posternd not ready on port %d within %.0fs "
		    "(%s); log tail:\n%s" % (self.port, timeout, last,
		    self.log_tail()))

	def alive(self):
		return self.proc is not None and self.proc.poll() is None

	def scan(self):
		"""
		Live (non-zombie) pids of this instance: posternd, everything
		below it, everything in its session that runs a postern program,
		and every process seen before that still exists.
		"""
		procs = all_procs()
		roots = set()
		if self.proc is not None and self.proc.returncode is None:
			roots.add(self.proc.pid)
		for pid, start in list(self.known.items()):
			st = procs.get(pid)
			if st is not None and st[4] == start:
				roots.add(pid)
		for pid, st in procs.items():
			if st[3] in self.sids and proc_exe(pid).startswith(
			    "postern"):
				roots.add(pid)
		children = {}
		for pid, st in procs.items():
			children.setdefault(st[1], []).append(pid)
		found = set()
		todo = list(roots)
		while todo:
			pid = todo.pop()
			if pid in found or pid not in procs:
				continue
			found.add(pid)
			todo.extend(children.get(pid, ()))
		for pid in found:
			self.known[pid] = procs[pid][4]
		return sorted(p for p in found if procs[p][0] != "Z")

	def children(self):
		"""kind -> [pid] for the running instance (kind: program name)."""
		out = {}
		for pid in self.scan():
			out.setdefault(proc_exe(pid), []).append(pid)
		return out

	def child_pid(self, kind, timeout=5.0):
		"""The pid of the one process running program kind."""
		deadline = time.monotonic() + timeout
		while True:
			pids = [p for p in self.children().get(kind, ())
			    if p != self.proc.pid]
			if len(pids) == 1:
				return pids[0]
			if time.monotonic() > deadline:
				raise AssertionError("expected one %s process, found "
				    "%r; processes:\n%s" % (kind, pids,
				    self.describe_processes()))
			time.sleep(0.05)

	def describe_processes(self):
		pids = self.scan()
		users = ps_users(pids)
		lines = []
		for pid in pids:
			st = proc_stat(pid)
			lines.append("pid=%d ppid=%s user=%s exe=%s" % (pid,
			    st[1] if st else "?", users.get(pid, "?"),
			    proc_exe(pid)))
		return "\n".join(lines) or "(no processes)"

	def _reap(self, timeout):
		if self.proc is None:
			return None
		try:
			return self.proc.wait(timeout)
		except subprocess.TimeoutExpired:
			return None

	def wait_gone(self, timeout=5.0):
		"""Wait until no process of the instance is left; leftovers."""
		deadline = time.monotonic() + timeout
		while True:
			left = self.scan()
			if not left or time.monotonic() > deadline:
				return left
			time.sleep(0.05)

	def kill9_all(self):
		"""SIGKILL every process of the instance at once, as a crash would."""
		pids = self.scan()
		if self.proc is not None and self.proc.poll() is None:
			with contextlib.suppress(ProcessLookupError):
				os.killpg(self.proc.pid, signal.SIGKILL)
		for pid in pids:
			with contextlib.suppress(ProcessLookupError):
				os.kill(pid, signal.SIGKILL)
		self._reap(5)
		left = self.wait_gone(5)
		self._stopped()
		self._note("killed -9: %s" % " ".join(map(str, pids)))
		if left:
			raise HarnessError("processes survived SIGKILL: %r" % left)

	def signal(self, sig):
		self.proc.send_signal(sig)

	def stop(self, timeout=10.0):
		"""SIGTERM posternd, then SIGKILL whatever is left; exit status."""
		rc = None
		if self.proc is not None:
			if self.proc.poll() is None:
				with contextlib.suppress(ProcessLookupError):
					self.proc.send_signal(signal.SIGTERM)
			rc = self._reap(timeout)
		left = self.scan()
		if self.proc is not None and self.proc.poll() is None:
			with contextlib.suppress(ProcessLookupError):
				os.killpg(self.proc.pid, signal.SIGKILL)
		for pid in left:
			with contextlib.suppress(ProcessLookupError):
				os.kill(pid, signal.SIGKILL)
		self._reap(5)
		self.wait_gone(5)
		if self.proc is not None:
			self._note("stopped, status %s, leftovers %r" % (rc, left))
		self._stopped()
		return rc

	def _stopped(self):
		if self.stopped_at is None and self.started_at is not None:
			self.stopped_at = time.monotonic()

	def cleanup(self):
		"""Stop everything and remove the directory (unless POSTERN_KEEP)."""
		try:
			self.stop()
		finally:
			self.final_log = self.log_bytes()
			if os.environ.get("POSTERN_KEEP"):
				return
			shutil.rmtree(self.dir, ignore_errors=True)

	# ---- mail

	def session(self, **kw):
		return SMTPSession(self.port, **kw)

	def send(self, sender, rcpts, data, **kw):
		"""One message in its own connection; returns the queue id."""
		return send_mail(self.port, sender, rcpts, data, **kw)

	def barrier(self, users=("alice",)):
		"""
		Send one sentinel message to users and wait until each has it:
		whatever was queued before it has had its chance to be delivered.
		"""
		tok = new_token("barrier")
		rcpts = ["%s@%s" % (u, HOSTNAME) for u in users]
		self.send("barrier@client.test", rcpts, make_message(tok))
		for u in users:
			self.maildir(u).wait_for(tok, inst=self)
		time.sleep(GRACE)


@contextlib.contextmanager
def running_instance(**kw):
	"""An Instance started for the duration of the with block."""
	inst = Instance(**kw)
	try:
		inst.start()
		yield inst
	finally:
		inst.cleanup()


# ---------------------------------------------------------------- maildir

class Maildir:
	"""A maildir read from outside; files in new/ and cur/ are cached."""

	def __init__(self, path):
		self.path = path
		self._cache = {}

	def messages(self):
		"""[(path, bytes)] of every delivered message, in name order."""
		out = []
		for sub in ("new", "cur"):
			d = os.path.join(self.path, sub)
			try:
				names = sorted(os.listdir(d))
			except (FileNotFoundError, NotADirectoryError):
				continue
			for n in names:
				p = os.path.join(d, n)
				if p not in self._cache:
					try:
						self._cache[p] = _read(p, "rb")
					except FileNotFoundError:
						continue
				out.append((p, self._cache[p]))
		return out

	def find(self, token):
		"""[(path, bytes)] of the messages that contain token."""
		if isinstance(token, str):
			token = token.encode()
		return [(p, b) for p, b in self.messages() if token in b]

	def count(self, token):
		return len(self.find(token))

	def wait_for(self, token, count=1, timeout=DELIVERY_TIMEOUT, inst=None):
		"""Wait until at least count messages contain token; their bytes."""
		deadline = time.monotonic() + timeout
		while True:
			found = self.find(token)
			if len(found) >= count:
				return [b for _, b in found]
			if time.monotonic() > deadline:
				msg = ("%s: %d message(s) containing %r after %.0fs, "
				    "expected %d" % (self.path, len(found), token,
				    timeout, count))
				if inst is not None:
					msg += "\nlog tail:\n" + inst.log_tail()
				raise AssertionError(msg)
			time.sleep(0.05)


# ---------------------------------------------------------------- messages

def make_message(token, to="alice@test.postern", subject="test", body=None,
    sender="sender@client.test", extra_headers=()):
	"""An RFC 5322 message in wire form (CRLF) that carries token."""
	hdrs = [
	    "From: Test Sender <%s>" % sender,
	    "To: %s" % to,
	    "Subject: %s %s" % (subject, token),
	    "Message-ID: <%s@client.test>" % token,
	    "Date: %s" % email.utils.formatdate(localtime=False),
	]
	hdrs += list(extra_headers)
	if body is None:
		body = "Hello, this is %s.\r\nSecond line.\r\n" % token
	return ("\r\n".join(hdrs) + "\r\n\r\n").encode() + (
	    body.encode() if isinstance(body, str) else body)


def dot_stuff(data):
	"""RFC 5321 4.5.2 transparency for CRLF-separated lines."""
	lines = data.split(b"\r\n")
	return b"\r\n".join(b"." + l if l.startswith(b".") else l
	    for l in lines)


def expected_delivery(data):
	"""What the mailbox holds for wire text data (CRLF -> LF)."""
	if data and not data.endswith(b"\r\n"):
		data += b"\r\n"
	return data.replace(b"\r\n", b"\n")


class Trace:
	"""The three header fields Postern prepends on local delivery."""

	def __init__(self, return_path, delivered_to, received):
		self.return_path = return_path
		self.delivered_to = delivered_to
		self.received = received	# unfolded

	def __repr__(self):
		return "Trace(%r, %r, %r)" % (self.return_path,
		    self.delivered_to, self.received)


def strip_trace(raw):
	"""
	Split a delivered file into its Trace (Return-Path, Delivered-To,
	folded Received) and the rest, which must be the message as sent.
	"""
	def bad(why):
		raise AssertionError("delivered file does not start with "
		    "Return-Path, Delivered-To, Received (%s); it starts:\n%r" %
		    (why, raw[:600]))

	pos = 0
	lines = []
	for want in (b"Return-Path: ", b"Delivered-To: ", b"Received: "):
		nl = raw.find(b"\n", pos)
		if nl < 0:
			bad("truncated")
		line = raw[pos:nl]
		if not line.startswith(want):
			bad("expected %r" % want)
		lines.append(line)
		pos = nl + 1
	while raw[pos:pos + 1] in (b" ", b"\t"):
		nl = raw.find(b"\n", pos)
		if nl < 0:
			bad("truncated Received")
		lines[2] += b" " + raw[pos:nl].strip()
		pos = nl + 1
	rp = lines[0][len(b"Return-Path: "):].decode(errors="replace")
	m = re.fullmatch(r"<(.*)>", rp)
	if not m:
		bad("Return-Path %r not in angle brackets" % rp)
	dt = lines[1][len(b"Delivered-To: "):].decode(errors="replace").strip()
	if dt.startswith("<") and dt.endswith(">"):
		dt = dt[1:-1]
	rcv = re.sub(r"\s+", " ", lines[2].decode(errors="replace"))
	return Trace(m.group(1), dt, rcv), raw[pos:]


RECEIVED_RE = re.compile(
    r"Received: from (?P<helo>\S+) \(\[127\.0\.0\.1\]\) "
    r"by test\.postern \(Postern\) with (?P<proto>ESMTP|SMTP|UTF8SMTP) "
    r"id (?P<id>[^\s;]+)(?: for <(?P<rcpt>[^>]*)>)?; (?P<date>.+)")


def parse_received(received):
	"""Fields of Postern's Received header; AssertionError if malformed."""
	m = RECEIVED_RE.fullmatch(received)
	if m is None:
		raise AssertionError("Received header does not match the "
		    "contract:\n  %s\nexpected like:\n  Received: from HELO "
		    "([127.0.0.1]) by test.postern (Postern) with ESMTP id ID "
		    "for <rcpt>; DATE" % received)
	d = m.groupdict()
	if email.utils.parsedate_tz(d["date"]) is None:
		raise AssertionError("Received date %r is not an RFC 5322 date"
		    % d["date"])
	return d


def assert_bytes_equal(got, want, what="message"):
	"""Byte comparison whose failure shows where the two differ."""
	if got == want:
		return
	n = 0
	while n < min(len(got), len(want)) and got[n] == want[n]:
		n += 1
	lo = max(0, n - 80)
	raise AssertionError("%s differs at byte %d (got %d bytes, expected "
	    "%d)\n got: %r\nwant: %r" % (what, n, len(got), len(want),
	    got[lo:n + 80], want[lo:n + 80]))


def assert_delivered(inst, user, token, data, count=1, maildir=None):
	"""
	Wait for the message carrying token in user's maildir and check that
	it is data (wire form) byte for byte; returns its Trace.
	"""
	md = maildir or inst.maildir(user)
	got = md.wait_for(token, count=count, inst=inst)
	trace, rest = strip_trace(got[0])
	assert_bytes_equal(rest, expected_delivery(data),
	    "message delivered to %s" % md.path)
	return trace


# ---------------------------------------------------------------- SMTP

class ConnectionClosed(AssertionError):
	pass


class Reply:
	"""One SMTP reply, possibly multi-line."""

	def __init__(self, lines):
		self.raw = lines		# list of str, without CRLF
		self.code = int(lines[0][:3])
		self.lines = [l[4:] for l in lines]
		m = re.match(r"(\d\.\d{1,3}\.\d{1,3})\b", self.lines[0])
		self.enh = m.group(1) if m else None

	@property
	def text(self):
		return "\n".join(self.lines)

	def __repr__(self):
		return " | ".join(self.raw)


class SMTPSession:
	"""A raw SMTP client that keeps a transcript for failure messages."""

	def __init__(self, port, host="127.0.0.1", timeout=10.0,
	    greeting=True):
		self.sock = socket.create_connection((host, port), timeout=timeout)
		self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
		self.buf = b""
		self.transcript = []
		self.greeting = self.reply() if greeting else None

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()

	def close(self):
		with contextlib.suppress(OSError):
			self.sock.close()

	def _log(self, who, data):
		if isinstance(data, bytes):
			data = repr(data[:200]) + (" ...(%d bytes)" % len(data)
			    if len(data) > 200 else "")
		self.transcript.append("%s: %s" % (who, data))
		del self.transcript[:-40]

	def history(self):
		return "\n".join(self.transcript)

	def send(self, data):
		if isinstance(data, str):
			data = data.encode()
		self._log("C", data)
		self.sock.sendall(data)

	def readline(self):
		while b"\r\n" not in self.buf:
			try:
				chunk = self.sock.recv(65536)
			except socket.timeout:
				raise AssertionError("timed out waiting for a reply;"
				    " transcript:\n" + self.history()) from None
			except ConnectionResetError:
				chunk = b""
			if not chunk:
				raise ConnectionClosed("connection closed by server"
				    " (pending %r); transcript:\n%s" % (self.buf,
				    self.history()))
			self.buf += chunk
		line, _, self.buf = self.buf.partition(b"\r\n")
		text = line.decode("utf-8", errors="replace")
		self._log("S", text)
		if not re.match(r"\d{3}([ -]|$)", text):
			raise AssertionError("malformed reply line %r; transcript:"
			    "\n%s" % (text, self.history()))
		return text

	def reply(self):
		lines = [self.readline()]
		while lines[-1][3:4] == "-":
			lines.append(self.readline())
		return Reply(lines)

	def check(self, r, code, enh=None, contains=None, what=""):
		ok = r.code == code and (enh is None or r.enh == enh) and (
		    contains is None or contains.lower() in r.text.lower())
		if not ok:
			raise AssertionError("%sexpected %s%s%s, got %r; "
			    "transcript:\n%s" % (what and what + ": ", code,
			    " " + enh if enh else "",
			    " containing %r" % contains if contains else "", r,
			    self.history()))
		return r

	def expect(self, code, enh=None, contains=None):
		"""Read one reply and check it."""
		return self.check(self.reply(), code, enh, contains)

	def cmd(self, line):
		if isinstance(line, str):
			line = line.encode()
		self.send(line + b"\r\n")
		return self.reply()

	def ok(self, line, code, enh=None, contains=None):
		"""Send a command line and check its reply."""
		r = self.cmd(line)
		return self.check(r, code, enh, contains, what=repr(line))

	def closed(self, timeout=5.0):
		"""True if the server closes the connection (EOF) within timeout."""
		self.sock.settimeout(timeout)
		try:
			while True:
				chunk = self.sock.recv(65536)
				if not chunk:
					return True
				self.buf += chunk
				self._log("S(after)", chunk)
				return False
		except ConnectionResetError:
			return True
		except socket.timeout:
			return False

	def ehlo(self, name="client.test"):
		return self.ok("EHLO " + name, 250)

	def mail(self, sender, params=""):
		return self.ok("MAIL FROM:<%s>%s" % (sender,
		    " " + params if params else ""), 250, "2.1.0")

	def rcpt(self, rcpt, params=""):
		return self.ok("RCPT TO:<%s>%s" % (rcpt,
		    " " + params if params else ""), 250, "2.1.5")

	def data(self, data, stuff=True):
		"""DATA, the stuffed body, the terminator; returns the queue id."""
		self.ok("DATA", 354)
		body = dot_stuff(data) if stuff else data
		if body and not body.endswith(b"\r\n"):
			body += b"\r\n"
		self.send(body + b".\r\n")
		return queue_id(self.expect(250, "2.0.0"))

	def transaction(self, sender, rcpts, data, mail_params=""):
		self.mail(sender, mail_params)
		for r in rcpts:
			self.rcpt(r)
		return self.data(data)


def queue_id(reply):
	"""The id of a "250 2.0.0 Ok: queued as ID" reply."""
	m = QUEUED_RE.search(reply.text)
	if m is None:
		raise AssertionError("no 'queued as <16 hex digits>' in %r" %
		    reply)
	return m.group(1)


def send_mail(port, sender, rcpts, data, helo=None, mail_params=""):
	"""One message over a new connection (EHLO unless helo given)."""
	with SMTPSession(port) as s:
		s.check(s.greeting, 220)
		if helo:
			s.ok("HELO " + helo, 250)
		else:
			s.ehlo()
		qid = s.transaction(sender, rcpts, data, mail_params)
		s.ok("QUIT", 221, "2.0.0")
	return qid
