#!/usr/bin/python3
"""
bench.py: measure Postern and Postfix side by side on this machine.

Both MTAs get the same work: durable acceptance of N messages sent in
plaintext by smtp-source(1), local delivery of each into a Maildir owned
by _postern_dev, and M idle SMTP sessions for the memory cost of one.
Rounds alternate between the two; medians and the Postern/Postfix ratio
go to stdout and to tests/bench/results/latest.{txt,json}.
SECURITY: runs as root.  Everything it creates lives under /tmp/pbench-*
(Postern) or /tmp/pfbench-* (a private Postfix instance with its own
config, queue and data directories); it never reads or changes
/etc/postfix, never starts the system Postfix, and signals only processes
it started itself, checked by pid and start time.
"""

import argparse
import contextlib
import datetime
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
RESULTS = os.path.join(HERE, "results")

POSTERN_PROGRAMS = ("posternd", "postern-smtpd", "postern-queue",
    "postern-tlsd")
POSTERN_USERS = ("_postern_smtpd", "_postern_tlsd", "_postern_queue",
    "_postern_dev")
DEV_USER = "_postern_dev"
SENDER = "bench@bench.test"
RCPT_USER = "user"
DOMAIN = "bench.test"
RCPT = "%s@%s" % (RCPT_USER, DOMAIN)
MAX_SIZE = 35 * 1024 * 1024

SBIN = "/usr/sbin"
SMTP_SOURCE = os.path.join(SBIN, "smtp-source")
POSTFIX = os.path.join(SBIN, "postfix")
POSTCONF = os.path.join(SBIN, "postconf")
CMD_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C",
    "LC_ALL": "C"}

NOFILE_WANT = 8192
POLL = 0.1		# seconds between Maildir counts
GRACE = 1.0		# settle time before the final (duplicate) count
QUIET = 0.2		# CPU share others may use for results to count as clean


class BenchError(Exception):
	"""The environment or an MTA failed; the message says what was seen."""


def say(msg):
	print(msg, flush=True)


def loud(msg):
	print("\n!!! %s\n" % msg.replace("\n", "\n!!! "), file=sys.stderr,
	    flush=True)


# ---------------------------------------------------------------- host

def run_cmd(argv, timeout=120, check=True):
	"""Run a command with a clean environment; CompletedProcess."""
	r = subprocess.run(argv, stdin=subprocess.DEVNULL,
	    capture_output=True, text=True, timeout=timeout, env=CMD_ENV)
	if check and r.returncode != 0:
		raise BenchError("%s: exit %d\n%s%s" % (" ".join(argv),
		    r.returncode, r.stdout, r.stderr))
	return r


def cpu_busy(seconds=1.0):
	"""Share of all CPUs busy over the next seconds, other programs' work."""
	def sample():
		with open("/proc/stat") as f:
			v = [int(x) for x in f.readline().split()[1:]]
		return sum(v), v[3] + v[4]		# total, idle + iowait
	t0, i0 = sample()
	time.sleep(seconds)
	t1, i1 = sample()
	return 1.0 - (i1 - i0) / max(1, t1 - t0)


def host_info():
	"""What the numbers depend on: CPU, kernel, filesystem of /tmp, load."""
	model = "unknown"
	with contextlib.suppress(OSError):
		with open("/proc/cpuinfo") as f:
			for line in f:
				if line.startswith("model name"):
					model = line.split(":", 1)[1].strip()
					break
	try:
		nproc = int(run_cmd(["nproc"]).stdout.strip())
	except (BenchError, ValueError, OSError):
		nproc = len(os.sched_getaffinity(0))
	fstype, best = "unknown", ""
	with contextlib.suppress(OSError):
		with open("/proc/self/mounts") as f:
			for line in f:
				fl = line.split()
				if len(fl) >= 3 and ("/tmp/" + "x").startswith(
				    fl[1].rstrip("/") + "/") and \
				    len(fl[1]) >= len(best):
					best, fstype = fl[1], fl[2]
	pf = "unknown"
	with contextlib.suppress(BenchError, OSError):
		pf = run_cmd([POSTCONF, "-d", "-h", "mail_version"]).stdout.strip()
	return {
	    "date": datetime.datetime.now(datetime.timezone.utc).strftime(
		"%Y-%m-%dT%H:%M:%SZ"),
	    "nproc": nproc,
	    "cpu": model,
	    "kernel": os.uname().release,
	    "tmp_fs": fstype,
	    "postfix_version": pf,
	    "loadavg_start": [round(x, 2) for x in os.getloadavg()],
	    "cpu_busy_start": round(cpu_busy(), 3),
	}


def ensure_postfix():
	"""Install the postfix package (no configuration) if it is missing."""
	r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "postfix"],
	    capture_output=True, text=True, env=CMD_ENV)
	if r.returncode == 0 and r.stdout.strip() == "install ok installed":
		return
	say("postfix is not installed: installing it (no configuration)")
	env = dict(CMD_ENV, DEBIAN_FRONTEND="noninteractive")
	sel = "postfix postfix/main_mailer_type select No configuration\n"
	subprocess.run(["debconf-set-selections"], input=sel, text=True,
	    check=True, env=env)
	subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
	subprocess.run(["apt-get", "install", "-y", "-q", "postfix"],
	    check=True, env=env)


def ensure_users():
	"""The system users Postern needs, created as "make users" does."""
	for u in POSTERN_USERS:
		try:
			pwd.getpwnam(u)
		except KeyError:
			say("creating system user %s" % u)
			run_cmd(["useradd", "--system", "--no-create-home",
			    "--home-dir", "/nonexistent", "--shell",
			    "/usr/sbin/nologin", u])


def raise_nofile():
	"""Room for the idle sessions; started MTAs inherit the same limit."""
	soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
	want = NOFILE_WANT if hard == resource.RLIM_INFINITY else \
	    min(hard, NOFILE_WANT)
	if soft == resource.RLIM_INFINITY or soft >= want:
		return soft
	resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
	return want


def free_port():
	"""A TCP port on 127.0.0.1 that nobody listens on right now."""
	with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
	"""
	dict of name, ppid, pgrp, session, state, start time and CPU ticks
	(own, and of reaped children); None if pid is gone.
	"""
	try:
		with open("/proc/%d/stat" % pid, "rb") as f:
			data = f.read()
	except OSError:
		return None
	lp, rp = data.index(b"("), data.rindex(b")")
	f = data[rp + 2:].split()
	return {"name": data[lp + 1:rp].decode(errors="replace"),
	    "state": f[0].decode(), "ppid": int(f[1]), "pgrp": int(f[2]),
	    "session": int(f[3]), "start": int(f[19]),
	    "self": int(f[11]) + int(f[12]), "reaped": int(f[13]) + int(f[14])}


def all_procs():
	out = {}
	for name in os.listdir("/proc"):
		if name.isdigit():
			st = proc_stat(int(name))
			if st is not None:
				out[int(name)] = st
	return out


def tree(procs, roots):
	"""roots and all their descendants present in procs."""
	children = {}
	for pid, st in procs.items():
		children.setdefault(st["ppid"], []).append(pid)
	found, todo = set(), [p for p in roots if p in procs]
	while todo:
		pid = todo.pop()
		if pid not in found:
			found.add(pid)
			todo.extend(children.get(pid, ()))
	return found


def mem_kib(pid):
	"""
	(PSS, USS) of pid in KiB, (0, 0) if it is gone.  PSS shares each
	page among its users; USS (private pages only) is the cross-check that
	other programs mapping the same libraries cannot move.
	"""
	pss = uss = 0
	try:
		with open("/proc/%d/smaps_rollup" % pid) as f:
			for line in f:
				if line.startswith("Pss:"):
					pss = int(line.split()[1])
				elif line.startswith(("Private_Clean:",
				    "Private_Dirty:")):
					uss += int(line.split()[1])
	except (OSError, ValueError):
		return 0, 0
	return pss, uss


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_used(before, after):
	"""
	(total seconds, {program: seconds}) the instance used between two
	snapshots.  The time of a child that exited in between shows up in
	its parent's "reaped" counter and is booked as "PARENT (reaped
	children)", minus what that child had used before the first snapshot.
	"""
	use = {}

	def book(name, ticks):
		use[name] = use.get(name, 0) + ticks

	for pid, st in after.items():
		old = before.get(pid)
		if old is not None and old["start"] != st["start"]:
			old = None
		book(st["name"], st["self"] - (old["self"] if old else 0))
		book(st["name"] + " (reaped children)", st["reaped"] -
		    (old["reaped"] if old else 0))
	for pid, st in before.items():
		new = after.get(pid)
		if new is not None and new["start"] == st["start"]:
			continue
		parent = after.get(st["ppid"])
		name = parent["name"] if parent else st["name"]
		book(name + " (reaped children)", -(st["self"] + st["reaped"]))
	total = sum(use.values()) / CLK_TCK
	return total, {k: v / CLK_TCK for k, v in sorted(use.items(),
	    key=lambda kv: -kv[1]) if v > 0}


# ---------------------------------------------------------------- instances

class Instance:
	"""Common part: a temp directory, a port, the processes we started."""

	name = "?"

	def __init__(self, prefix, keep):
		self.dir = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
		os.chmod(self.dir, 0o755)
		self.keep = keep
		self.port = free_port()
		self.known = {}		# pid -> start time, for safe cleanup
		dev = pwd.getpwnam(DEV_USER)
		self.uid, self.gid = dev.pw_uid, dev.pw_gid

	def path(self, *parts):
		return os.path.join(self.dir, *parts)

	def mkdir_dev(self, sub):
		"""A directory owned by the delivery user."""
		p = self.path(sub)
		os.mkdir(p, 0o755)
		os.chown(p, self.uid, self.gid)
		return p

	def roots(self, procs):
		raise NotImplementedError

	def pids(self):
		"""Live processes of this instance (and remember them)."""
		procs = all_procs()
		found = tree(procs, self.roots(procs))
		found = {p for p in found if procs[p]["state"] != "Z"}
		for p in found:
			self.known[p] = procs[p]["start"]
		return found

	def mem_total(self):
		"""(sum of PSS, sum of USS in KiB, process count) of the instance."""
		pids = self.pids()
		mem = [mem_kib(p) for p in pids]
		return sum(m[0] for m in mem), sum(m[1] for m in mem), len(pids)

	def cpu_snapshot(self):
		"""pid -> proc_stat of the instance, for cpu_used()."""
		procs = all_procs()
		return {p: procs[p] for p in tree(procs, self.roots(procs))}


	def wait_ready(self, timeout=20.0):
		"""Poll the port until it greets with 220."""
		deadline = time.monotonic() + timeout
		last = "no attempt"
		while time.monotonic() < deadline:
			self.check_alive()
			try:
				with socket.create_connection(("127.0.0.1",
				    self.port), timeout=2) as s:
					s.settimeout(5)
					data = b""
					while b"\n" not in data:
						chunk = s.recv(512)
						if not chunk:
							break
						data += chunk
					if data.startswith(b"220"):
						with contextlib.suppress(OSError):
							s.sendall(b"QUIT\r\n")
							s.recv(512)
						return
					last = "greeting %r" % data
			except OSError as e:
				last = str(e)
			time.sleep(0.05)
		raise BenchError("%s not ready on port %d within %.0fs (%s)\n%s" %
		    (self.name, self.port, timeout, last, self.log_tail()))

	def kill_leftovers(self):
		"""SIGKILL every remembered process that still is the same one."""
		for pid, start in list(self.known.items()):
			st = proc_stat(pid)
			if st is not None and st["start"] == start and \
			    st["state"] != "Z":
				with contextlib.suppress(ProcessLookupError):
					os.kill(pid, signal.SIGKILL)

	def leftovers(self):
		out = []
		for pid, start in self.known.items():
			st = proc_stat(pid)
			if st is not None and st["start"] == start and \
			    st["state"] != "Z":
				out.append(pid)
		return out

	def wait_gone(self, timeout):
		deadline = time.monotonic() + timeout
		while self.leftovers() and time.monotonic() < deadline:
			time.sleep(0.05)
		return self.leftovers()

	def remove(self, failed):
		if self.keep or failed:
			say("  (kept %s)" % self.dir)
			return
		shutil.rmtree(self.dir, ignore_errors=True)

	def log_text(self):
		try:
			with open(self.log_path, "rb") as f:
				return f.read().decode(errors="replace")
		except OSError:
			return ""

	def log_tail(self, n=25):
		lines = self.log_text().splitlines()
		bad = [l for l in lines[:-n] if any(w in l.lower() for w in
		    ("fatal", "error", "warn", "panic", "defer", "bounce",
		    "reject"))]
		out = "--- %s: last %d log lines (%s) ---\n" % (self.name,
		    min(n, len(lines)), self.log_path)
		out += "\n".join(lines[-n:]) or "(empty log)"
		if bad:
			out += "\n--- %s: %d earlier warning/error lines, first 15 " \
			    "---\n" % (self.name, len(bad))
			out += "\n".join(bad[:15])
		return out


class Postern(Instance):
	"""posternd -d -f CONF in its own session, delivering to maildir/USER."""

	name = "postern"

	def __init__(self, build, keep):
		super().__init__("pbench-", keep)
		self.build = build
		self.mkdir_dev("maildir")
		self.maildir = self.path("maildir", RCPT_USER)
		self.conf_path = self.path("postern.conf")
		self.log_path = self.path("posternd.log")
		self.proc = None
		with open(self.conf_path, "w") as f:
			f.write(
			    'hostname "bench.postern"\n'
			    'queue "%s"\n'
			    "max-message-size 35M\n"
			    "listen on 127.0.0.1 port %d\n"
			    'action "local" maildir "%s/%%{user}" user "%s"\n'
			    'match from any for domain "%s" action "local"\n' %
			    (self.path("spool"), self.port, self.path("maildir"),
			    DEV_USER, DOMAIN))

	def roots(self, procs):
		if self.proc is None:
			return set()
		sid = self.proc.pid
		return {p for p, st in procs.items() if p == sid or
		    st["session"] == sid}

	def start(self):
		cmd = [os.path.join(self.build, "posternd"), "-d", "-f",
		    self.conf_path]
		with open(self.log_path, "ab") as logf:
			self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
			    stdout=logf, stderr=logf, start_new_session=True,
			    cwd=self.dir)
		self.known[self.proc.pid] = proc_stat(self.proc.pid)["start"] \
		    if proc_stat(self.proc.pid) else 0
		self.wait_ready()
		self.pids()

	def check_alive(self):
		rc = self.proc.poll()
		if rc is not None:
			raise BenchError("posternd exited with status %s\n%s" %
			    (rc, self.log_tail()))

	def stop(self):
		"""SIGTERM posternd, then SIGKILL whatever is left."""
		if self.proc is None:
			return []
		self.pids()
		if self.proc.poll() is None:
			with contextlib.suppress(ProcessLookupError):
				self.proc.send_signal(signal.SIGTERM)
			try:
				self.proc.wait(10)
			except subprocess.TimeoutExpired:
				pass
		left = self.wait_gone(5)
		if left or self.proc.poll() is None:
			self.kill_leftovers()
			if self.proc.poll() is None:
				with contextlib.suppress(ProcessLookupError):
					os.killpg(self.proc.pid, signal.SIGKILL)
			with contextlib.suppress(subprocess.TimeoutExpired):
				self.proc.wait(5)
			self.wait_gone(5)
		return left


MASTER_CF = """\
# Generated by tests/bench/bench.py: a private instance, nothing chrooted.
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
# Generated by tests/bench/bench.py: a private Postfix instance doing the
# same work as Postern: virtual(8) Maildir delivery as _postern_dev.
compatibility_level = 3.6
config_directory = {d}/etc
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
    POSTLOG_SERVICE POSTLOG_HOSTNAME
myhostname = bench.postfix
mydomain = bench.postfix
myorigin = $myhostname
mydestination =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
disable_dns_lookups = yes
smtp_host_lookup = native
smtpd_peername_lookup = no
default_process_limit = 600
smtpd_client_connection_count_limit = 0
message_size_limit = {max_size}
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {d}/pfmail
virtual_mailbox_maps = texthash:{d}/etc/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""


class Postfix(Instance):
	"""A private Postfix: postfix -c DIR/etc start, virtual Maildirs."""

	name = "postfix"

	def __init__(self, keep):
		super().__init__("pfbench-", keep)
		self.conf_dir = self.path("etc")
		os.mkdir(self.conf_dir, 0o755)
		os.mkdir(self.path("queue"), 0o755)
		os.mkdir(self.path("data"), 0o700)
		pf = pwd.getpwnam("postfix")
		os.chown(self.path("data"), pf.pw_uid, pf.pw_gid)
		self.mkdir_dev("pfmail")
		self.maildir = self.path("pfmail", RCPT_USER)
		self.log_path = self.path("maillog")
		self.master = None
		with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
			f.write(MAIN_CF.format(d=self.dir, max_size=MAX_SIZE,
			    domain=DOMAIN, uid=self.uid, gid=self.gid))
		with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
			f.write(MASTER_CF.format(port=self.port))
		with open(os.path.join(self.conf_dir, "vmailbox"), "w") as f:
			f.write("%s %s/\n" % (RCPT, RCPT_USER))

	def postfix(self, verb, check=True):
		return run_cmd([POSTFIX, "-c", self.conf_dir, verb], check=check)

	def roots(self, procs):
		if self.master is None:
			return set()
		m, start = self.master
		st = procs.get(m)
		if st is None or st["start"] != start:
			return set()
		return {p for p, s in procs.items() if p == m or
		    s["pgrp"] == m}

	def start(self):
		r = self.postfix("start", check=False)
		if r.returncode != 0:
			raise BenchError("postfix -c %s start: exit %d\n%s%s\n%s" %
			    (self.conf_dir, r.returncode, r.stdout, r.stderr,
			    self.log_tail()))
		try:
			with open(self.path("queue", "pid", "master.pid")) as f:
				pid = int(f.read().split()[0])
		except (OSError, ValueError, IndexError) as e:
			raise BenchError("postfix master pid: %s\n%s" %
			    (e, self.log_tail()))
		st = proc_stat(pid)
		if st is None:
			raise BenchError("postfix master %d is gone\n%s" %
			    (pid, self.log_tail()))
		self.master = (pid, st["start"])
		self.known[pid] = st["start"]
		self.wait_ready()
		self.pids()

	def check_alive(self):
		if self.master is None:
			raise BenchError("postfix master not started")
		st = proc_stat(self.master[0])
		if st is None or st["start"] != self.master[1] or \
		    st["state"] == "Z":
			raise BenchError("postfix master exited\n%s" %
			    self.log_tail())

	def stop(self):
		"""postfix stop, then abort, then SIGKILL whatever is left."""
		if self.master is None:
			return []
		self.pids()
		r = self.postfix("stop", check=False)
		left = self.wait_gone(5)
		if left:
			self.postfix("abort", check=False)
			left = self.wait_gone(5)
		if left:
			self.kill_leftovers()
			self.wait_gone(5)
		if r.returncode != 0 and left:
			loud("postfix -c %s stop: exit %d: %s%s" % (self.conf_dir,
			    r.returncode, r.stdout, r.stderr))
		return left


# ---------------------------------------------------------------- work

def smtp_source(port, messages, sessions, size, timeout):
	"""Run smtp-source; (seconds, CompletedProcess)."""
	argv = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages),
	    "-l", str(size), "-f", SENDER, "-t", RCPT,
	    "127.0.0.1:%d" % port]
	t0 = time.monotonic()
	r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
	    text=True, timeout=timeout, env=CMD_ENV, cwd="/tmp")
	return time.monotonic() - t0, r, " ".join(argv)


def maildir_files(md):
	"""Paths of the delivered messages (new/ and cur/) of a Maildir."""
	out = []
	for sub in ("new", "cur"):
		d = os.path.join(md, sub)
		with contextlib.suppress(FileNotFoundError):
			with os.scandir(d) as it:
				out.extend(e.path for e in it if not
				    e.name.startswith("."))
	return out


def maildir_count(md):
	n = 0
	for sub in ("new", "cur"):
		with contextlib.suppress(FileNotFoundError):
			with os.scandir(os.path.join(md, sub)) as it:
				n += sum(1 for e in it if not e.name.startswith("."))
	return n


def wait_delivered(inst, expected, stall):
	"""
	Poll the Maildir until it holds expected messages; the monotonic time
	that happened, or None if no progress was made for stall seconds.
	"""
	last, last_change = -1, time.monotonic()
	while True:
		n = maildir_count(inst.maildir)
		now = time.monotonic()
		if n >= expected:
			return now, n
		if n != last:
			last, last_change = n, now
		elif now - last_change > stall:
			return None, n
		inst.check_alive()
		time.sleep(POLL)


def check_maildir(inst, expected, size):
	"""Exact count, nothing left in tmp/, no file shorter than the body."""
	problems = []
	files = maildir_files(inst.maildir)
	if len(files) != expected:
		problems.append("%s: %d messages in %s, expected %d" % (inst.name,
		    len(files), inst.maildir, expected))
	tmp = []
	with contextlib.suppress(FileNotFoundError):
		tmp = os.listdir(os.path.join(inst.maildir, "tmp"))
	if tmp:
		problems.append("%s: %d files left in %s/tmp" % (inst.name,
		    len(tmp), inst.maildir))
	short = 0
	for p in files:
		with contextlib.suppress(FileNotFoundError):
			if os.stat(p).st_size < size:
				short += 1
	if short:
		problems.append("%s: %d delivered files shorter than the %d-byte "
		    "body" % (inst.name, short, size))
	return problems


def run_throughput(inst, args):
	"""One timed run on a fresh instance; dict of results."""
	res = {"mta": inst.name, "ok": False}
	inst.start()
	timeout = max(300, args.messages / 20)
	if args.warmup > 0:
		sec, r, cmd = smtp_source(inst.port, args.warmup,
		    min(args.sessions, args.warmup), args.size, timeout)
		if r.returncode != 0:
			raise BenchError("warm-up failed: %s: exit %d\n%s%s\n%s" %
			    (cmd, r.returncode, r.stdout, r.stderr, inst.log_tail()))
		done, n = wait_delivered(inst, args.warmup, args.stall)
		if done is None:
			raise BenchError("%s: warm-up: %d of %d messages in %s, no "
			    "progress for %ds\n%s" % (inst.name, n, args.warmup,
			    inst.maildir, args.stall, inst.log_tail()))
	expected = args.warmup + args.messages
	cpu0 = inst.cpu_snapshot()
	t0 = time.monotonic()
	sec, r, cmd = smtp_source(inst.port, args.messages, args.sessions,
	    args.size, timeout)
	if r.returncode != 0:
		raise BenchError("%s: exit %d after %.1fs\n%s%s\n%s" % (cmd,
		    r.returncode, sec, r.stdout, r.stderr, inst.log_tail()))
	res["accept_s"] = sec
	res["accept_rate"] = args.messages / sec
	done, n = wait_delivered(inst, expected, args.stall)
	if done is None:
		raise BenchError("%s: %d of %d messages in %s (after %d warm-up), "
		    "no progress for %ds\n%s" % (inst.name, n - args.warmup,
		    args.messages, inst.maildir, args.warmup, args.stall,
		    inst.log_tail()))
	total, by_prog = cpu_used(cpu0, inst.cpu_snapshot())
	res["cpu_ms_per_msg"] = total * 1000.0 / args.messages
	res["cpu_s_by_program"] = by_prog
	res["deliver_s"] = done - t0
	res["deliver_rate"] = args.messages / (done - t0)
	time.sleep(GRACE)
	problems = check_maildir(inst, expected, args.size)
	if problems:
		raise BenchError("\n".join(problems) + "\n" + inst.log_tail())
	res["ok"] = True
	return res


def read_reply(sock, buf):
	"""Read one complete SMTP reply; (code, rest of buffer)."""
	while True:
		while b"\n" in buf:
			line, buf = buf.split(b"\n", 1)
			if len(line) >= 4 and line[3:4] != b"-":
				return line[:3].decode(errors="replace"), buf
			if len(line) < 4:
				return line.decode(errors="replace"), buf
		chunk = sock.recv(4096)
		if not chunk:
			raise OSError("connection closed by server")
		buf += chunk


def run_memory(inst, args):
	"""PSS of the instance before and with N idle EHLO'd sessions."""
	res = {"mta": inst.name, "ok": False}
	inst.start()
	time.sleep(1.0)
	before, ubefore, nbefore = inst.mem_total()
	socks = []
	t0 = time.monotonic()
	try:
		for i in range(args.idle):
			try:
				s = socket.create_connection(("127.0.0.1",
				    inst.port), timeout=30)
				socks.append(s)
				s.settimeout(30)
				code, buf = read_reply(s, b"")
				if code != "220":
					raise OSError("greeting %s" % code)
				s.sendall(b"EHLO client%d.bench.test\r\n" % i)
				code, buf = read_reply(s, buf)
				if code != "250":
					raise OSError("EHLO reply %s" % code)
			except OSError as e:
				raise BenchError("%s: idle session %d of %d: %s\n%s" %
				    (inst.name, i + 1, args.idle, e, inst.log_tail()))
		open_s = time.monotonic() - t0
		time.sleep(1.0)
		inst.check_alive()
		after, uafter, nafter = inst.mem_total()
		# Every session must still be open: a closed one reads EOF.
		for s in socks:
			s.setblocking(False)
			try:
				if s.recv(1) == b"":
					raise BenchError("%s: an idle session was "
					    "closed by the server\n%s" % (inst.name,
					    inst.log_tail()))
			except BlockingIOError:
				pass
	finally:
		for s in socks:
			with contextlib.suppress(OSError):
				s.close()
	res.update(pss_before_kib=before, pss_after_kib=after,
	    procs_before=nbefore, procs_after=nafter,
	    open_s=open_s, uss_before_kib=ubefore, uss_after_kib=uafter,
	    kib_per_session=(after - before) / args.idle,
	    uss_kib_per_session=(uafter - ubefore) / args.idle, ok=True)
	return res


def one(kind, what, args, failures):
	"""Run one measurement on a fresh instance; its result dict or None."""
	inst = Postern(args.build, args.keep) if kind == "postern" else \
	    Postfix(args.keep)
	failed = False
	try:
		return run_throughput(inst, args) if what == "throughput" else \
		    run_memory(inst, args)
	except BenchError as e:
		failed = True	# keep the directory for the post-mortem
		msg = "%s %s FAILED: %s" % (kind, what, e)
		loud(msg)
		failures.append(msg)
		return None
	finally:
		left = inst.stop()
		if left:
			msg = "%s: processes still running after stop: %r" % (
			    kind, left)
			loud(msg)
			failures.append(msg)
		inst.remove(failed)


# ---------------------------------------------------------------- report

METRICS = (
    ("accept_rate", "throughput", "accept rate, msg/s (higher is better)",
	"%.0f"),
    ("deliver_s", "throughput", "time until all in Maildir, s (lower)",
	"%.2f"),
    ("deliver_rate", "throughput", "end-to-end rate, msg/s (higher)", "%.0f"),
    ("cpu_ms_per_msg", "throughput", "MTA CPU per message, ms (lower)",
	"%.2f"),
    ("kib_per_session", "memory", "PSS per idle session, KiB (lower)",
	"%.1f"),
    ("uss_kib_per_session", "memory", "private (USS) per idle session, KiB",
	"%.1f"),
    ("pss_before_kib", "memory", "PSS of the idle instance, KiB (lower)",
	"%.0f"),
)


def medians(results):
	"""metric -> mta -> (median, [values])."""
	out = {}
	for key, what, _, _ in METRICS:
		for mta in ("postern", "postfix"):
			vals = [r[key] for r in results[what][mta] if r and key in r]
			if vals:
				out.setdefault(key, {})[mta] = (
				    statistics.median(vals), vals)
	return out


def render(host, args, med, results, failures):
	lines = [
	    "Postern vs Postfix %s -- %s" % (host["postfix_version"],
		host["date"]),
	    "host: nproc=%d, cpu=%s, kernel=%s, /tmp on %s, "
		"CPU busy at start %.0f%%, load average %s" % (host["nproc"],
		host["cpu"], host["kernel"], host["tmp_fs"],
		100 * host["cpu_busy_start"],
		" ".join("%.2f" % x for x in host["loadavg_start"])),
	    "work: %d messages x %d-byte body, %d parallel plaintext sessions "
		"(smtp-source, one message per connection), 1 recipient, "
		"local Maildir delivery; %d warm-up messages; %d idle EHLO'd "
		"sessions; median of %d round(s)" % (args.messages, args.size,
		args.sessions, args.warmup, args.idle, args.rounds),
	    "",
	]
	if host["cpu_busy_start"] > QUIET:
		lines += ["WARNING: other programs kept %.0f%% of the CPUs busy "
		    "when the bench started: the numbers are noisy." %
		    (100 * host["cpu_busy_start"]), ""]
	w = max(len(m[2]) for m in METRICS)
	lines.append("%-*s  %10s  %10s  %15s" % (w, "metric", "Postern",
	    "Postfix", "Postern/Postfix"))
	lines.append("-" * (w + 41))
	for key, what, label, fmt in METRICS:
		row = med.get(key, {})
		cells = []
		for mta in ("postern", "postfix"):
			v = row.get(mta, (None,))[0]
			if v is not None:
				cells.append(fmt % v)
			elif not getattr(args, mta) or (what == "memory" and
			    args.idle == 0):
				cells.append("-")
			else:
				cells.append("FAILED")
		pn = row.get("postern", (None,))[0]
		pf = row.get("postfix", (None,))[0]
		ratio = "%.2f" % (pn / pf) if pn is not None and pf else "-"
		lines.append("%-*s  %10s  %10s  %15s" % (w, label, cells[0],
		    cells[1], ratio))
	lines += ["", "per round:"]
	for key, _, label, fmt in METRICS:
		row = med.get(key, {})
		for mta in ("postern", "postfix"):
			if mta in row:
				lines.append("  %-20s %-8s %s" % (key, mta,
				    " ".join(fmt % v for v in row[mta][1])))
	lines += ["", "MTA CPU seconds by program during each timed run:"]
	for mta, runs in results["throughput"].items():
		for i, r in enumerate(runs):
			if r:
				lines.append("  %-8s %d: %s" % (mta, i + 1, ", ".join(
				    "%s %.1f" % kv for kv in
				    r["cpu_s_by_program"].items())))
	lines.append("load average at end: %s" % " ".join("%.2f" % x for x in
	    host.get("loadavg_end", ())))
	if failures:
		lines += ["", "FAILURES (%d):" % len(failures)]
		lines += ["  " + f.splitlines()[0] for f in failures]
	return "\n".join(lines) + "\n"


def main():
	ap = argparse.ArgumentParser(description="Benchmark Postern against "
	    "a private Postfix instance on this machine.")
	ap.add_argument("--build", default=os.path.join(TOP, "build"),
	    help="directory holding posternd and its children")
	ap.add_argument("--rounds", type=int, default=3)
	ap.add_argument("--messages", type=int, default=5000)
	ap.add_argument("--sessions", type=int, default=20)
	ap.add_argument("--size", type=int, default=4096,
	    help="message body length in bytes (smtp-source -l)")
	ap.add_argument("--warmup", type=int, default=100)
	ap.add_argument("--idle", type=int, default=500,
	    help="idle sessions for the memory measurement (0: skip)")
	ap.add_argument("--stall", type=int, default=30,
	    help="seconds without a new delivery before a run fails")
	ap.add_argument("--wait-quiet", type=int, default=30,
	    help="wait up to this many seconds for other programs to leave "
	    "the CPUs mostly idle before starting")
	ap.add_argument("--only", choices=("postern", "postfix"),
	    help="measure one MTA only")
	ap.add_argument("--keep", action="store_true",
	    help="keep the temporary directories")
	ap.add_argument("--out", default=RESULTS,
	    help="directory for latest.txt and latest.json")
	args = ap.parse_args()
	args.build = os.path.abspath(args.build)
	args.postern = args.only in (None, "postern")
	args.postfix = args.only in (None, "postfix")
	for name in ("rounds", "messages", "sessions", "size"):
		if getattr(args, name) < 1:
			ap.error("--%s must be at least 1" % name)
	if args.warmup < 0 or args.idle < 0 or args.stall < 1:
		ap.error("--warmup and --idle must be >= 0, --stall >= 1")

	if os.geteuid() != 0:
		sys.exit("bench.py must run as root")
	if args.postern:
		for p in POSTERN_PROGRAMS:
			if not os.access(os.path.join(args.build, p), os.X_OK):
				sys.exit("%s/%s: not built (make all)" %
				    (args.build, p))
	# SIGTERM runs the finally blocks that stop the instances.
	signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))
	ensure_postfix()
	ensure_users()
	nofile = raise_nofile()
	if nofile != resource.RLIM_INFINITY and nofile < args.idle + 64:
		sys.exit("RLIMIT_NOFILE %d is too low for %d idle sessions" %
		    (nofile, args.idle))
	deadline = time.monotonic() + args.wait_quiet
	while time.monotonic() < deadline:
		busy = cpu_busy(2.0)
		if busy <= QUIET:
			break
		say("waiting for a quieter machine: CPUs %.0f%% busy" %
		    (100 * busy))
	host = host_info()
	say("bench: %s, nproc=%d, %s, kernel %s; Postfix %s; build %s" % (
	    host["date"], host["nproc"], host["cpu"], host["kernel"],
	    host["postfix_version"], args.build))

	mtas = [m for m in ("postern", "postfix") if getattr(args, m)]
	results = {"throughput": {m: [] for m in mtas},
	    "memory": {m: [] for m in mtas}}
	failures = []
	for rnd in range(args.rounds):
		order = mtas if rnd % 2 == 0 else list(reversed(mtas))
		for mta in order:
			say("round %d/%d: %s throughput (%d messages)" % (rnd + 1,
			    args.rounds, mta, args.messages))
			r = one(mta, "throughput", args, failures)
			results["throughput"][mta].append(r)
			if r:
				say("  accepted %.0f msg/s, all delivered after "
				    "%.2fs (%.0f msg/s), CPU %.2f ms/msg" %
				    (r["accept_rate"], r["deliver_s"],
				    r["deliver_rate"], r["cpu_ms_per_msg"]))
				say("  CPU seconds: %s" % ", ".join("%s %.1f" % kv
				    for kv in r["cpu_s_by_program"].items()))
		if args.idle > 0:
			for mta in order:
				say("round %d/%d: %s memory (%d idle sessions)" %
				    (rnd + 1, args.rounds, mta, args.idle))
				r = one(mta, "memory", args, failures)
				results["memory"][mta].append(r)
				if r:
					say("  %.1f KiB/session PSS (%d -> %d KiB), "
					    "%.1f USS, %d -> %d processes, "
					    "opened in %.1fs" %
					    (r["kib_per_session"],
					    r["pss_before_kib"], r["pss_after_kib"],
					    r["uss_kib_per_session"],
					    r["procs_before"], r["procs_after"],
					    r["open_s"]))
	host["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
	med = medians(results)
	text = render(host, args, med, results, failures)
	say("")
	say(text)
	os.makedirs(args.out, exist_ok=True)
	with open(os.path.join(args.out, "latest.txt"), "w") as f:
		f.write(text)
		for msg in failures:
			f.write("\n" + msg + "\n")
	with open(os.path.join(args.out, "latest.json"), "w") as f:
		json.dump({"host": host, "args": {k: getattr(args, k) for k in
		    ("build", "rounds", "messages", "sessions", "size", "warmup",
		    "idle", "only")},
		    "median": {k: {m: v[0] for m, v in row.items()} for k, row in
			med.items()},
		    "rounds": results, "failures": failures}, f, indent=1)
		f.write("\n")
	say("written: %s/latest.txt, %s/latest.json" % (args.out, args.out))
	if failures:
		loud("bench: %d FAILURE(S); see above and %s/latest.txt" %
		    (len(failures), args.out))
		sys.exit(1)


if __name__ == "__main__":
	main()
