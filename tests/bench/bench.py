#!/usr/bin/python3
"""
bench.py: measure Postern and Postfix side by side on this machine.

Both MTAs get the same work.  Plaintext: durable acceptance of N messages
sent by smtp-source(1), local delivery of each into a Maildir owned by
_postern_dev, and M idle SMTP sessions for the memory cost of one.  TLS
(SMTPS, TLS 1.2, one self-signed ECDSA P-256 certificate for both): full
and resumed handshakes per second from tlsload.c, the memory of idle TLS
sessions, and durable acceptance over SMTPS with the same delivery
checks.  Rounds alternate between the two; medians and the
Postern/Postfix ratio go to stdout and to
tests/bench/results/latest.{txt,json}.  --only picks MTAs and scenarios
(e.g. --only tls, --only postern,tls-full).
SECURITY: runs as root.  Everything it creates lives under /tmp/pbench-*
(Postern, and the certificate, key and compiled client of the TLS
scenarios) or /tmp/pfbench-* (a private Postfix instance with its own
config, queue and data directories); it never reads or changes
/etc/postfix, never starts the system Postfix, connects only to
127.0.0.1, and signals only processes it started itself, checked by pid
and start time.
"""

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import pwd
import resource
import shutil
import signal
import shlex
import socket
import ssl
import statistics
import threading
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
RESULTS = os.path.join(HERE, "results")
TLSLOAD_SRC = os.path.join(HERE, "tlsload.c")

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

	def __init__(self, prefix, keep, tls=None):
		self.dir = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
		os.chmod(self.dir, 0o755)
		self.keep = keep
		self.port = free_port()
		self.tls = tls
		self.tls_port = None
		if tls is not None:
			self.tls_port = free_port()
			while self.tls_port == self.port:
				self.tls_port = free_port()
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

	def wait_tls_ready(self, timeout=20.0):
		"""Poll the SMTPS port until a TLS handshake and 220 succeed."""
		if self.tls is None:
			return
		deadline = time.monotonic() + timeout
		last = "no attempt"
		while time.monotonic() < deadline:
			self.check_alive()
			try:
				with tls_connect(self.tls, self.tls_port, 5) as s:
					code, buf = read_reply(s, b"")
					if code == "220":
						s.sendall(b"QUIT\r\n")
						read_reply(s, buf)
						return
					last = "greeting %s" % code
			except (OSError, ssl.SSLError) as e:
				last = str(e)
			time.sleep(0.1)
		raise BenchError("%s: SMTPS port %d not ready within %.0fs (%s)"
		    "\n%s" % (self.name, self.tls_port, timeout, last,
		    self.log_tail()))

	def log_problems(self):
		"""Log lines that look like trouble: warnings, errors, panics."""
		words = ("warn", "error", "fatal", "panic", "fail", "abort",
		    "denied", "reject", "defer", "bounce", "lost")
		return [l for l in self.log_text().splitlines() if
		    any(w in l.lower() for w in words)]

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

	def __init__(self, build, keep, tls=None):
		super().__init__("pbench-", keep, tls)
		self.build = build
		self.mkdir_dev("maildir")
		self.maildir = self.path("maildir", RCPT_USER)
		self.conf_path = self.path("postern.conf")
		self.log_path = self.path("posternd.log")
		self.proc = None
		if tls is None:
			listen = "listen on 127.0.0.1 port %d\n" % self.port
		else:
			# STARTTLS where Postfix has smtpd_tls_security_level
			# may, and the SMTPS port the TLS scenarios use.
			listen = (
			    'pki "%s" cert "%s" key "%s"\n'
			    'listen on 127.0.0.1 port %d tls pki "%s"\n'
			    'listen on 127.0.0.1 port %d smtps pki "%s"\n' %
			    (DOMAIN, tls.cert, tls.key, self.port, DOMAIN,
			    self.tls_port, DOMAIN))
		with open(self.conf_path, "w") as f:
			f.write(
			    'hostname "bench.postern"\n'
			    'queue "%s"\n'
			    "max-message-size 35M\n"
			    "%s"
			    'action "local" maildir "%s/%%{user}" user "%s"\n'
			    'match from any for domain "%s" action "local"\n' %
			    (self.path("spool"), listen, self.path("maildir"),
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
		self.wait_tls_ready()
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

# Only in the instances of the TLS scenarios: smtpd(8) loading a key
# would change the plaintext numbers (idle memory above all).
MAIN_CF_TLS = """\
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_session_cache_database = btree:${{data_directory}}/smtpd_scache
"""

MASTER_CF_TLS = """\
127.0.0.1:{port} inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
"""


class Postfix(Instance):
	"""A private Postfix: postfix -c DIR/etc start, virtual Maildirs."""

	name = "postfix"

	def __init__(self, keep, tls=None):
		super().__init__("pfbench-", keep, tls)
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
			if tls is not None:
				f.write(MAIN_CF_TLS.format(cert=tls.cert,
				    key=tls.key))
		with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
			f.write(MASTER_CF.format(port=self.port))
			if tls is not None:
				f.write(MASTER_CF_TLS.format(port=self.tls_port))
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
		self.wait_tls_ready()
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


def open_idle(inst, i, tls, sources=1):
	"""One session left idle: greeted, EHLO answered (over SMTPS if tls)."""
	if tls:
		s = tls_connect(inst.tls, inst.tls_port, 30,
		    source_addr(i, sources))
	else:
		s = socket.create_connection(("127.0.0.1", inst.port),
		    timeout=30)
	try:
		s.settimeout(30)
		code, buf = read_reply(s, b"")
		if code != "220":
			raise OSError("greeting %s" % code)
		s.sendall(b"EHLO client%d.bench.test\r\n" % i)
		code, buf = read_reply(s, buf)
		if code != "250":
			raise OSError("EHLO reply %s" % code)
	except BaseException:
		s.close()
		raise
	return s


def run_memory(inst, args, tls):
	"""
	PSS of the instance before and with N idle EHLO'd sessions, in
	plaintext (opened one after the other) or over SMTPS (opened by
	args.tls_clients threads: Postfix forks and initialises TLS in an
	smtpd per session, which takes long one at a time).
	"""
	res = {"mta": inst.name, "ok": False}
	count = args.tls_idle if tls else args.idle
	inst.start()
	time.sleep(1.0)
	before, ubefore, nbefore = inst.mem_total()
	socks = []
	t0 = time.monotonic()
	try:
		errors = []
		if tls:
			with concurrent.futures.ThreadPoolExecutor(
			    args.tls_clients) as ex:
				futs = [ex.submit(open_idle, inst, i, True,
				    tls_sources(args, args.tls_clients)) for i in
				    range(count)]
				for i, f in enumerate(futs):
					try:
						socks.append(f.result())
					except OSError as e:
						errors.append((i, e))
		else:
			for i in range(count):
				try:
					socks.append(open_idle(inst, i, False))
				except OSError as e:
					errors.append((i, e))
					break
		if errors:
			raise BenchError("%s: idle %ssession %d of %d: %s%s\n%s" % (
			    inst.name, "TLS " if tls else "", errors[0][0] + 1,
			    count, errors[0][1], " (and %d more failed)" %
			    (len(errors) - 1) if len(errors) > 1 else "",
			    inst.log_tail()))
		open_s = time.monotonic() - t0
		time.sleep(1.0)
		inst.check_alive()
		after, uafter, nafter = inst.mem_total()
		if tls:
			# Before we drop the sessions, which servers log.
			log_notes(inst, res, "idle TLS sessions")
		# Every session must still be open: a closed one reads EOF.
		for s in socks:
			s.setblocking(False)
			try:
				if s.recv(1) == b"":
					raise BenchError("%s: an idle session was "
					    "closed by the server\n%s" % (inst.name,
					    inst.log_tail()))
			except (BlockingIOError, ssl.SSLWantReadError):
				pass
			except OSError as e:
				raise BenchError("%s: an idle session failed: %s"
				    "\n%s" % (inst.name, e, inst.log_tail()))
	finally:
		for s in socks:
			with contextlib.suppress(OSError):
				s.close()
	res.update(pss_before_kib=before, pss_after_kib=after,
	    procs_before=nbefore, procs_after=nafter,
	    open_s=open_s, uss_before_kib=ubefore, uss_after_kib=uafter,
	    kib_per_session=(after - before) / count,
	    uss_kib_per_session=(uafter - ubefore) / count, ok=True)
	return res


# ---------------------------------------------------------------- TLS

class TlsKit:
	"""
	What every TLS scenario shares: one self-signed ECDSA P-256
	certificate for bench.test used by both MTAs, and the load client
	tlsload.c compiled next to it.
	"""

	def __init__(self, keep):
		self.keep = keep
		self.dir = tempfile.mkdtemp(prefix="pbench-tls-", dir="/tmp")
		os.chmod(self.dir, 0o755)
		self.cert = os.path.join(self.dir, "ec.crt")
		self.key = os.path.join(self.dir, "ec.key")
		self.client = os.path.join(self.dir, "tlsload")
		old = os.umask(0o077)
		try:
			run_cmd(["openssl", "req", "-x509", "-newkey", "ec",
			    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			    "-days", "30", "-subj", "/CN=" + DOMAIN,
			    "-addext", "subjectAltName=DNS:" + DOMAIN,
			    "-keyout", self.key, "-out", self.cert])
		finally:
			os.umask(old)
		os.chmod(self.key, 0o600)
		os.chmod(self.cert, 0o644)
		run_cmd(["cc", "-O2", "-std=gnu11", "-Wall", "-Wextra",
		    "-Wno-unused-parameter", "-o", self.client, TLSLOAD_SRC,
		    "-lssl", "-lcrypto", "-pthread"])
		ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
		ctx.load_verify_locations(self.cert)
		ctx.minimum_version = ssl.TLSVersion.TLSv1_2
		ctx.maximum_version = ssl.TLSVersion.TLSv1_2
		self.ctx = ctx

	def remove(self, failed):
		if self.keep or failed:
			say("  (kept %s)" % self.dir)
			return
		shutil.rmtree(self.dir, ignore_errors=True)


def ensure_libssl():
	"""The OpenSSL headers tlsload.c is compiled against."""
	r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "libssl-dev"],
	    capture_output=True, text=True, env=CMD_ENV)
	if r.returncode == 0 and r.stdout.strip() == "install ok installed":
		return
	say("libssl-dev is not installed: installing it")
	env = dict(CMD_ENV, DEBIAN_FRONTEND="noninteractive")
	subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
	subprocess.run(["apt-get", "install", "-y", "-q", "libssl-dev"],
	    check=True, env=env)


def source_addr(i, n):
	"""The i-th of n loopback source addresses 127.0.0.1 ... 127.0.0.n."""
	return "127.0.0.%d" % (1 + i % max(1, n))


def tls_connect(tls, port, timeout, source="127.0.0.1"):
	"""A TLS 1.2 connection to the SMTPS port, handshake done."""
	raw = socket.create_connection(("127.0.0.1", port), timeout=timeout,
	    source_address=(source, 0))
	try:
		return tls.ctx.wrap_socket(raw, server_hostname=DOMAIN)
	except BaseException:
		raw.close()
		raise


def stat_sample():
	"""(total, idle + iowait) jiffies of all CPUs from /proc/stat."""
	with open("/proc/stat") as f:
		v = [int(x) for x in f.readline().split()[1:]]
	return sum(v), v[3] + v[4]


def busy_between(a, b):
	return 1.0 - (b[1] - a[1]) / max(1, b[0] - a[0])


def parse_tlsload(line):
	"""("start"|"end"|"done", {key: value}) of one line of tlsload."""
	words = shlex.split(line)
	if not words:
		return None, {}
	out = {}
	for w in words[1:]:
		k, _, v = w.partition("=")
		if k in ("time", "cpu"):
			out[k] = float(v)
		elif k == "params":
			out[k] = v
		else:
			out[k] = int(v)
	return words[0], out


def run_tlsload(inst, extra, timeout):
	"""
	Run tlsload against the SMTPS port of inst.  At each line it prints
	the instance's CPU counters and /proc/stat are sampled at once, so the
	MTA's CPU is booked over exactly the client's window.  Returns
	{tag: (client values, cpu snapshot, stat sample)} and stderr.
	"""
	argv = [inst.tls.client, "-p", str(inst.tls_port), "-C", inst.tls.cert,
	    "-n", DOMAIN, "-f", SENDER, "-t", RCPT] + [str(a) for a in extra]
	errpath = inst.path("tlsload.stderr")
	marks = {}
	with open(errpath, "w+b") as errf:
		p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
		    stdout=subprocess.PIPE, stderr=errf, text=True, env=CMD_ENV,
		    cwd="/tmp")
		watchdog = threading.Timer(timeout, p.kill)
		watchdog.start()
		try:
			for line in p.stdout:
				snap, st = inst.cpu_snapshot(), stat_sample()
				tag, vals = parse_tlsload(line)
				if tag is not None:
					marks[tag] = (vals, snap, st)
			rc = p.wait()
		finally:
			watchdog.cancel()
			if p.poll() is None:
				p.kill()
				p.wait()
			p.stdout.close()
		errf.seek(0)
		err = errf.read().decode(errors="replace")
	if rc != 0 or "done" not in marks:
		raise BenchError("%s: exit %s%s\n%s\n%s" % (" ".join(argv), rc,
		    " (killed after %ds)" % timeout if rc == -signal.SIGKILL
		    else "", err, inst.log_tail()))
	return marks, err


def tls_sources(args, threads):
	"""How many source addresses threads TLS clients use."""
	return min(threads, 250) if args.tls_sources == 0 else \
	    args.tls_sources


def log_notes(inst, res, what):
	"""Book the instance's suspicious log lines into res["notes"]."""
	bad = inst.log_problems()
	if bad:
		res.setdefault("notes", []).append("%s %s: %d suspicious log "
		    "line(s) in %s, first: %s" % (inst.name, what, len(bad),
		    inst.log_path, " | ".join(l.strip() for l in bad[:3])))


def run_tls_handshakes(inst, args):
	"""
	Full and/or resumed handshakes per second on one instance: tlsload
	with args.tls_clients threads for args.tls_seconds after a warm-up.
	"""
	res = {"mta": inst.name, "ok": False}
	inst.start()
	modes = [m for m in ("full", "resume") if "tls-" + m in args.scenarios]
	nproc = os.cpu_count() or 1
	for mode in modes:
		marks, err = run_tlsload(inst, ["-m", mode, "-c",
		    args.tls_clients, "-a", tls_sources(args, args.tls_clients),
		    "-w", args.tls_warmup, "-d",
		    args.tls_seconds], args.tls_seconds + args.tls_warmup + 120)
		if "start" not in marks or "end" not in marks:
			raise BenchError("tlsload printed no start/end marks\n%s" %
			    err)
		(s, cs, ss), (e, ce, se) = marks["start"], marks["end"]
		done = marks["done"][0]
		n = e["conns"] - s["conns"]
		dt = e["time"] - s["time"]
		if n <= 0 or dt <= 0:
			raise BenchError("%s %s handshakes: none completed in "
			    "%.1fs (%d failed)\n%s\n%s" % (inst.name, mode, dt,
			    done["failed"], err, inst.log_tail()))
		mta_cpu, by_prog = cpu_used(cs, ce)
		client_cpu = e["cpu"] - s["cpu"]
		res[mode + "_rate"] = n / dt
		res[mode + "_mta_cpu_ms"] = mta_cpu * 1000.0 / n
		res[mode + "_client_cpu_ms"] = client_cpu * 1000.0 / n
		res[mode + "_client_share"] = client_cpu / (dt * nproc)
		res[mode + "_mta_share"] = mta_cpu / (dt * nproc)
		res[mode + "_busy"] = busy_between(ss, se)
		res[mode + "_reused_pct"] = 100.0 * (e["reused"] -
		    s["reused"]) / n
		res[mode + "_conns"] = done["conns"]
		res[mode + "_failed"] = done["failed"]
		res[mode + "_params"] = done.get("params", "")
		res[mode + "_cpu_s_by_program"] = by_prog
		if done["failed"]:
			res.setdefault("notes", []).append("%s %s handshakes: %d "
			    "of %d connections failed; client said: %s" %
			    (inst.name, mode, done["failed"], done["failed"] +
			    done["conns"], " | ".join(err.splitlines()[:3])))
		if mode == "full" and e["reused"]:
			res.setdefault("notes", []).append("%s: %d sessions "
			    "resumed although none was offered" % (inst.name,
			    e["reused"]))
	inst.check_alive()
	log_notes(inst, res, "handshakes")
	res["ok"] = True
	return res


def run_tls_accept(inst, args):
	"""Durable acceptance of args.tls_messages over SMTPS, then delivery."""
	res = {"mta": inst.name, "ok": False}
	inst.start()
	timeout = max(300, args.tls_messages / 10)
	common = ["-m", "smtp", "-s", args.size, "-k", args.tls_per_conn]
	if args.warmup > 0:
		th = min(args.tls_sessions, args.warmup)
		marks, err = run_tlsload(inst, common + ["-c", th, "-a",
		    tls_sources(args, th), "-N", args.warmup], timeout)
		done = marks["done"][0]
		if done["failed"] or done["messages"] != args.warmup:
			raise BenchError("%s: TLS warm-up: %d of %d messages "
			    "accepted\n%s\n%s" % (inst.name, done["messages"],
			    args.warmup, err, inst.log_tail()))
		dl, n = wait_delivered(inst, args.warmup, args.stall)
		if dl is None:
			raise BenchError("%s: TLS warm-up: %d of %d messages in "
			    "%s, no progress for %ds\n%s" % (inst.name, n,
			    args.warmup, inst.maildir, args.stall, inst.log_tail()))
	expected = args.warmup + args.tls_messages
	t0 = time.monotonic()
	marks, err = run_tlsload(inst, common + ["-c", args.tls_sessions,
	    "-a", tls_sources(args, args.tls_sessions), "-N",
	    args.tls_messages], timeout)
	(s, cs, ss), (d, cd, sd) = marks["start"], marks["done"]
	if d["failed"] or d["messages"] != args.tls_messages:
		raise BenchError("%s: %d of %d messages accepted over SMTPS, "
		    "%d connection(s) failed\n%s\n%s" % (inst.name,
		    d["messages"], args.tls_messages, d["failed"], err,
		    inst.log_tail()))
	sec = d["time"] - s["time"]
	res["accept_s"] = sec
	res["accept_rate"] = args.tls_messages / sec
	res["client_cpu_ms_per_msg"] = (d["cpu"] - s["cpu"]) * 1000.0 / \
	    args.tls_messages
	res["client_share"] = (d["cpu"] - s["cpu"]) / (sec *
	    (os.cpu_count() or 1))
	res["busy"] = busy_between(ss, sd)
	res["mta_share"] = cpu_used(cs, cd)[0] / (sec * (os.cpu_count() or 1))
	res["params"] = d.get("params", "")
	dl, n = wait_delivered(inst, expected, args.stall)
	if dl is None:
		raise BenchError("%s: %d of %d TLS messages in %s (after %d "
		    "warm-up), no progress for %ds\n%s" % (inst.name,
		    n - args.warmup, args.tls_messages, inst.maildir,
		    args.warmup, args.stall, inst.log_tail()))
	total, by_prog = cpu_used(cs, inst.cpu_snapshot())
	res["cpu_ms_per_msg"] = total * 1000.0 / args.tls_messages
	res["cpu_s_by_program"] = by_prog
	res["deliver_s"] = dl - t0
	res["deliver_rate"] = args.tls_messages / res["deliver_s"]
	time.sleep(GRACE)
	problems = check_maildir(inst, expected, args.size)
	if problems:
		raise BenchError("\n".join(problems) + "\n" + inst.log_tail())
	log_notes(inst, res, "SMTPS accept")
	res["ok"] = True
	return res


RUNNERS = {
    "throughput": lambda inst, args: run_throughput(inst, args),
    "memory": lambda inst, args: run_memory(inst, args, False),
    "tls-handshake": run_tls_handshakes,
    "tls-memory": lambda inst, args: run_memory(inst, args, True),
    "tls-accept": run_tls_accept,
}


def one(kind, what, args, failures, notes):
	"""Run one measurement on a fresh instance; its result dict or None."""
	tls = args.tls if what.startswith("tls-") else None
	inst = Postern(args.build, args.keep, tls) if kind == "postern" else \
	    Postfix(args.keep, tls)
	failed = False
	try:
		res = RUNNERS[what](inst, args)
		for n in res.get("notes", ()):
			loud("NOTE: " + n)
			notes.append(n)
		return res
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

# (what, key in that result, label, format).  The label says which way
# is better; rows of the same "what" come from the same runs.
METRICS = (
    ("throughput", "accept_rate", "accept rate, msg/s (higher is better)",
	"%.0f"),
    ("throughput", "deliver_s", "time until all in Maildir, s (lower)",
	"%.2f"),
    ("throughput", "deliver_rate", "end-to-end rate, msg/s (higher)", "%.0f"),
    ("throughput", "cpu_ms_per_msg", "MTA CPU per message, ms (lower)",
	"%.2f"),
    ("memory", "kib_per_session", "PSS per idle session, KiB (lower)",
	"%.1f"),
    ("memory", "uss_kib_per_session", "private (USS) per idle session, KiB",
	"%.1f"),
    ("memory", "pss_before_kib", "PSS of the idle instance, KiB (lower)",
	"%.0f"),
    ("tls-handshake", "full_rate", "TLS: full handshakes/s (higher)",
	"%.0f"),
    ("tls-handshake", "full_mta_cpu_ms",
	"TLS: MTA CPU per full handshake, ms (lower)", "%.2f"),
    ("tls-handshake", "resume_rate",
	"TLS: connections/s offering resumption (higher)", "%.0f"),
    ("tls-handshake", "resume_reused_pct",
	"TLS: of those, resumed, % (higher)", "%.1f"),
    ("tls-handshake", "resume_mta_cpu_ms",
	"TLS: MTA CPU per such connection, ms (lower)", "%.2f"),
    ("tls-memory", "kib_per_session",
	"TLS: PSS per idle SMTPS session, KiB (lower)", "%.1f"),
    ("tls-memory", "uss_kib_per_session",
	"TLS: private (USS) per idle SMTPS session, KiB", "%.1f"),
    ("tls-memory", "pss_before_kib",
	"TLS: PSS of the idle instance, KiB (lower)", "%.0f"),
    ("tls-accept", "accept_rate", "TLS: SMTPS accept rate, msg/s (higher)",
	"%.0f"),
    ("tls-accept", "deliver_s",
	"TLS: time until all in Maildir, s (lower)", "%.2f"),
    ("tls-accept", "cpu_ms_per_msg",
	"TLS: MTA CPU per SMTPS message, ms (lower)", "%.2f"),
)

WHATS = ("throughput", "memory", "tls-handshake", "tls-memory",
    "tls-accept")

# --only words: MTAs, groups of scenarios, single scenarios.
SCENARIOS = ("throughput", "memory", "tls-full", "tls-resume", "tls-memory",
    "tls-accept")
GROUPS = {
    "plain": ("throughput", "memory"),
    "tls": ("tls-full", "tls-resume", "tls-memory", "tls-accept"),
    "tls-handshake": ("tls-full", "tls-resume"),
}


def what_selected(what, args):
	"""Whether the runs of this kind are part of the bench."""
	if what == "tls-handshake":
		return bool({"tls-full", "tls-resume"} & args.scenarios)
	return what in args.scenarios


def medians(results):
	"""(what, key) -> mta -> (median, [values])."""
	out = {}
	for what, key, _, _ in METRICS:
		for mta, runs in results.get(what, {}).items():
			vals = [r[key] for r in runs if r and key in r]
			if vals:
				out.setdefault((what, key), {})[mta] = (
				    statistics.median(vals), vals)
	return out


def bottleneck(r, mode, nproc):
	"""One line on who limited a handshake run: the CPUs, the client?"""
	busy = r[mode + "_busy"]
	cs, ms = r[mode + "_client_share"], r[mode + "_mta_share"]
	others = max(0.0, busy - cs - ms)
	head = "CPUs %.0f%% busy: client %.0f%%, MTA %.0f%%, others %.0f%% " \
	    "of %d" % (100 * busy, 100 * cs, 100 * ms, 100 * others, nproc)
	ceiling = nproc * 1000.0 / max(1e-6, r[mode + "_mta_cpu_ms"])
	if others >= 0.15:
		return head + "; other programs took CPU: the rate is noisy, " \
		    "compare the MTA CPU per connection instead"
	if busy < 0.9:
		return head + "; not CPU-bound: the MTA's own latency or " \
		    "concurrency set the rate, not the client"
	if cs >= 0.5 * ms:
		return head + "; CPU-bound and the client took a large share " \
		    "that the MTA could not use (the MTA's CPU per connection " \
		    "alone would allow ~%.0f/s)" % ceiling
	return head + "; CPU-bound, mostly by the MTA (~%.0f/s at most)" % \
	    ceiling


def tls_others(results):
	"""CPU share of other programs during each timed TLS run."""
	out = []
	for r in (r for runs in results.get("tls-handshake", {}).values()
	    for r in runs if r):
		for mode in ("full", "resume"):
			if mode + "_busy" in r:
				out.append(max(0.0, r[mode + "_busy"] -
				    r[mode + "_client_share"] -
				    r[mode + "_mta_share"]))
	for r in (r for runs in results.get("tls-accept", {}).values()
	    for r in runs if r):
		out.append(max(0.0, r["busy"] - r["client_share"] -
		    r["mta_share"]))
	return out


def render(host, args, med, results, failures, notes):
	sel = args.scenarios
	lines = [
	    "Postern vs Postfix %s -- %s" % (host["postfix_version"],
		host["date"]),
	    "host: nproc=%d, cpu=%s, kernel=%s, /tmp on %s, "
		"CPU busy at start %.0f%%, load average %s" % (host["nproc"],
		host["cpu"], host["kernel"], host["tmp_fs"],
		100 * host["cpu_busy_start"],
		" ".join("%.2f" % x for x in host["loadavg_start"])),
	]
	if {"throughput", "memory"} & sel:
		lines.append("plaintext: %d messages x %d-byte body, %d parallel "
		    "sessions (smtp-source, one message per connection), 1 "
		    "recipient, local Maildir delivery; %d warm-up messages; %d "
		    "idle EHLO'd sessions" % (args.messages, args.size,
		    args.sessions, args.warmup, args.idle))
	if any(s.startswith("tls-") for s in sel):
		lines.append("TLS: SMTPS (implicit TLS), TLS 1.2 client "
		    "(tests/bench/tlsload.c, OpenSSL), ECDSA P-256 certificate "
		    "shared by both; clients connect from %s; "
		    "handshakes: %d clients, 220 + QUIT per "
		    "connection, %gs after %gs warm-up, resumption offers each "
		    "client's first session; %d idle SMTPS sessions after EHLO; "
		    "accept: %d messages x %d bytes over %d sessions, %d per "
		    "connection, %d warm-up; Postern with its default tls "
		    "workers (one per CPU), Postfix with an smtpd per session "
		    "and the tlsmgr session cache" % (
		    "127.0.0.1 only" if args.tls_sources == 1 else
		    "127.0.0.1 to 127.0.0.%d" % args.tls_sources
		    if args.tls_sources else "one loopback address each",
		    args.tls_clients,
		    args.tls_seconds, args.tls_warmup, args.tls_idle,
		    args.tls_messages, args.size, args.tls_sessions,
		    args.tls_per_conn, args.warmup))
	lines += ["median of %d round(s), rounds alternate the MTAs' order" %
	    args.rounds, ""]
	if host["cpu_busy_start"] > QUIET:
		lines += ["WARNING: other programs kept %.0f%% of the CPUs busy "
		    "when the bench started: the numbers are noisy." %
		    (100 * host["cpu_busy_start"]), ""]
	others = tls_others(results)
	if others and statistics.mean(others) > QUIET:
		lines += ["WARNING: other programs used %.0f%% of the CPUs on "
		    "average (up to %.0f%%) during the timed TLS runs: the "
		    "rates are noisy, the CPU per connection or message less "
		    "so." % (100 * statistics.mean(others), 100 * max(others)),
		    ""]
	rows = [m for m in METRICS if what_selected(m[0], args) and not (
	    m[1].startswith("full_") and "tls-full" not in sel) and not (
	    m[1].startswith("resume_") and "tls-resume" not in sel)]
	w = max(len(m[2]) for m in rows) if rows else 10
	lines.append("%-*s  %10s  %10s  %15s" % (w, "metric", "Postern",
	    "Postfix", "Postern/Postfix"))
	lines.append("-" * (w + 41))
	for what, key, label, fmt in rows:
		row = med.get((what, key), {})
		cells = []
		for mta in ("postern", "postfix"):
			v = row.get(mta, (None,))[0]
			cells.append(fmt % v if v is not None else "FAILED" if
			    getattr(args, mta) else "-")
		pn = row.get("postern", (None,))[0]
		pf = row.get("postfix", (None,))[0]
		ratio = "%.2f" % (pn / pf) if pn is not None and pf else "-"
		lines.append("%-*s  %10s  %10s  %15s" % (w, label, cells[0],
		    cells[1], ratio))
	lines += ["", "per round:"]
	for what, key, label, fmt in rows:
		row = med.get((what, key), {})
		for mta in ("postern", "postfix"):
			if mta in row:
				lines.append("  %-14s %-20s %-8s %s" % (what, key, mta,
				    " ".join(fmt % v for v in row[mta][1])))

	nproc = host["nproc"]
	hs = results.get("tls-handshake", {})
	acc = results.get("tls-accept", {})
	if hs or acc:
		lines += ["", "TLS client and CPU (is the client the "
		    "bottleneck?):"]
	for mta, runs in hs.items():
		for i, r in enumerate(runs):
			if not r:
				continue
			for mode in ("full", "resume"):
				if mode + "_rate" not in r:
					continue
				lines.append("  %-8s %d %-6s %s; client %.2f ms, MTA "
				    "%.2f ms per connection; %d done, %d failed; %s" %
				    (mta, i + 1, mode, bottleneck(r, mode, nproc),
				    r[mode + "_client_cpu_ms"],
				    r[mode + "_mta_cpu_ms"], r[mode + "_conns"],
				    r[mode + "_failed"], r[mode + "_params"]))
	for mta, runs in acc.items():
		for i, r in enumerate(runs):
			if r:
				others = max(0.0, r["busy"] - r["client_share"] -
				    r["mta_share"])
				lines.append("  %-8s %d accept CPUs %.0f%% busy: client "
				    "%.0f%%, MTA %.0f%%, others %.0f%% of %d; client "
				    "%.2f ms per message%s; %s" % (mta, i + 1,
				    100 * r["busy"], 100 * r["client_share"],
				    100 * r["mta_share"], 100 * others, nproc,
				    r["client_cpu_ms_per_msg"], "; other programs "
				    "took CPU: noisy" if others >= 0.15 else "",
				    r["params"]))

	lines += ["", "MTA CPU seconds by program during each timed run:"]
	for what, sub in (("throughput", ""), ("tls-accept", ""),
	    ("tls-handshake", "full_"), ("tls-handshake", "resume_")):
		for mta, runs in results.get(what, {}).items():
			for i, r in enumerate(runs):
				k = sub + "cpu_s_by_program"
				if r and k in r:
					lines.append("  %-14s %-8s %d: %s" % (
					    what if not sub else "tls-" + sub[:-1],
					    mta, i + 1, ", ".join("%s %.1f" % kv for
					    kv in r[k].items())))
	lines.append("load average at end: %s" % " ".join("%.2f" % x for x in
	    host.get("loadavg_end", ())))
	if notes:
		lines += ["", "NOTES: things that looked wrong (%d):" %
		    len(notes)]
		lines += ["  " + n for n in notes]
	if failures:
		lines += ["", "FAILURES (%d):" % len(failures)]
		lines += ["  " + f.splitlines()[0] for f in failures]
	return "\n".join(lines) + "\n"


def summary(what, r):
	"""The progress lines printed after one run."""
	if what == "throughput" or what == "tls-accept":
		out = ["  accepted %.0f msg/s, all delivered after %.2fs "
		    "(%.0f msg/s), CPU %.2f ms/msg" % (r["accept_rate"],
		    r["deliver_s"], r["deliver_rate"], r["cpu_ms_per_msg"])]
		if what == "tls-accept":
			out.append("  client CPU %.2f ms/msg (%.0f%% of the "
			    "machine), machine %.0f%% busy, %s" % (
			    r["client_cpu_ms_per_msg"], 100 * r["client_share"],
			    100 * r["busy"], r["params"]))
		out.append("  CPU seconds: %s" % ", ".join("%s %.1f" % kv
		    for kv in r["cpu_s_by_program"].items()))
		return out
	if what == "tls-handshake":
		out = []
		for mode in ("full", "resume"):
			if mode + "_rate" in r:
				out.append("  %s: %.0f conn/s, %.1f%% resumed, MTA "
				    "CPU %.2f ms, client CPU %.2f ms per "
				    "connection, machine %.0f%% busy, %d failed; %s" %
				    (mode, r[mode + "_rate"],
				    r[mode + "_reused_pct"],
				    r[mode + "_mta_cpu_ms"],
				    r[mode + "_client_cpu_ms"],
				    100 * r[mode + "_busy"], r[mode + "_failed"],
				    r[mode + "_params"]))
		return out
	return ["  %.1f KiB/session PSS (%d -> %d KiB), %.1f USS, %d -> %d "
	    "processes, opened in %.1fs" % (r["kib_per_session"],
	    r["pss_before_kib"], r["pss_after_kib"], r["uss_kib_per_session"],
	    r["procs_before"], r["procs_after"], r["open_s"])]


def parse_only(ap, text):
	"""--only a,b,c: (MTAs, scenarios) selected, every default if none."""
	mtas, scen = set(), set()
	for w in (x.strip() for x in (text or "").split(",")):
		if not w:
			continue
		if w in ("postern", "postfix"):
			mtas.add(w)
		elif w in GROUPS:
			scen.update(GROUPS[w])
		elif w in SCENARIOS:
			scen.add(w)
		else:
			ap.error("--only: unknown word %r (MTAs: postern postfix; "
			    "groups: %s; scenarios: %s)" % (w, " ".join(GROUPS),
			    " ".join(SCENARIOS)))
	return mtas or {"postern", "postfix"}, scen or set(SCENARIOS)


def main():
	ap = argparse.ArgumentParser(description="Benchmark Postern against "
	    "a private Postfix instance on this machine.")
	ap.add_argument("--build", default=os.path.join(TOP, "build"),
	    help="directory holding posternd and its children")
	ap.add_argument("--rounds", type=int, default=3)
	ap.add_argument("--messages", type=int, default=5000)
	ap.add_argument("--sessions", type=int, default=20)
	ap.add_argument("--size", type=int, default=4096,
	    help="message body length in bytes (smtp-source -l; also the "
	    "SMTPS messages)")
	ap.add_argument("--warmup", type=int, default=100,
	    help="warm-up messages before each timed accept run")
	ap.add_argument("--idle", type=int, default=500,
	    help="idle sessions for the memory measurement (0: skip)")
	ap.add_argument("--tls-seconds", type=float, default=6.0,
	    help="timed seconds of each handshake run")
	ap.add_argument("--tls-warmup", type=float, default=1.0,
	    help="untimed seconds before each handshake run")
	ap.add_argument("--tls-clients", type=int, default=10,
	    help="concurrent handshaking clients")
	ap.add_argument("--tls-idle", type=int, default=200,
	    help="idle SMTPS sessions for the TLS memory measurement "
	    "(0: skip)")
	ap.add_argument("--tls-messages", type=int, default=2000,
	    help="messages of the SMTPS accept run")
	ap.add_argument("--tls-sessions", type=int, default=20,
	    help="concurrent SMTPS sessions of the accept run")
	ap.add_argument("--tls-per-conn", type=int, default=10,
	    help="messages per SMTPS connection in the accept run")
	ap.add_argument("--tls-sources", type=int, default=0,
	    help="loopback source addresses the TLS clients spread over "
	    "(127.0.0.1 to 127.0.0.N; default 0: one per client, as if each "
	    "were its own host)")
	ap.add_argument("--stall", type=int, default=30,
	    help="seconds without a new delivery before a run fails")
	ap.add_argument("--wait-quiet", type=int, default=30,
	    help="wait up to this many seconds for other programs to leave "
	    "the CPUs mostly idle before starting")
	ap.add_argument("--only", metavar="WORD[,WORD...]",
	    help="restrict the bench: MTAs (postern, postfix), groups (%s) "
	    "or scenarios (%s); default: everything" % (", ".join(GROUPS),
	    ", ".join(SCENARIOS)))
	ap.add_argument("--keep", action="store_true",
	    help="keep the temporary directories")
	ap.add_argument("--out", default=RESULTS,
	    help="directory for latest.txt and latest.json")
	args = ap.parse_args()
	args.build = os.path.abspath(args.build)
	mtas_sel, args.scenarios = parse_only(ap, args.only)
	args.postern = "postern" in mtas_sel
	args.postfix = "postfix" in mtas_sel
	for name in ("rounds", "messages", "sessions", "size", "tls_clients",
	    "tls_messages", "tls_sessions", "tls_per_conn"):
		if getattr(args, name) < 1:
			ap.error("--%s must be at least 1" % name.replace("_", "-"))
	if args.warmup < 0 or args.idle < 0 or args.tls_idle < 0 or \
	    args.stall < 1:
		ap.error("--warmup, --idle and --tls-idle must be >= 0, "
		    "--stall >= 1")
	if not (0 < args.tls_seconds <= 600 and 0 <= args.tls_warmup <= 60):
		ap.error("--tls-seconds must be in (0, 600], --tls-warmup in "
		    "[0, 60]")
	if args.tls_clients > 256 or args.tls_sessions > 256:
		ap.error("--tls-clients and --tls-sessions are at most 256")
	if not 0 <= args.tls_sources <= 250:
		ap.error("--tls-sources must be in [0, 250]")
	if args.idle == 0:
		args.scenarios.discard("memory")
	if args.tls_idle == 0:
		args.scenarios.discard("tls-memory")
	if not args.scenarios:
		ap.error("nothing to measure")

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
	want_tls = any(s.startswith("tls-") for s in args.scenarios)
	if want_tls:
		ensure_libssl()
	nofile = raise_nofile()
	need = max(args.idle if "memory" in args.scenarios else 0,
	    args.tls_idle if "tls-memory" in args.scenarios else 0)
	if nofile != resource.RLIM_INFINITY and nofile < need + 64:
		sys.exit("RLIMIT_NOFILE %d is too low for %d idle sessions" %
		    (nofile, need))
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
	say("scenarios: %s" % " ".join(s for s in SCENARIOS if s in
	    args.scenarios))

	mtas = [m for m in ("postern", "postfix") if getattr(args, m)]
	whats = [w for w in WHATS if what_selected(w, args)]
	results = {w: {m: [] for m in mtas} for w in whats}
	failures, notes = [], []
	args.tls = None
	tls_failed = False
	t_start = time.monotonic()
	try:
		if want_tls:
			args.tls = TlsKit(args.keep)
		for rnd in range(args.rounds):
			order = mtas if rnd % 2 == 0 else list(reversed(mtas))
			for what in whats:
				for mta in order:
					say("round %d/%d: %s %s" % (rnd + 1, args.rounds,
					    mta, what))
					r = one(mta, what, args, failures, notes)
					results[what][mta].append(r)
					if r:
						for line in summary(what, r):
							say(line)
					elif what.startswith("tls-"):
						tls_failed = True
	finally:
		if args.tls is not None:
			args.tls.remove(tls_failed)
	say("bench took %.0fs" % (time.monotonic() - t_start))
	host["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
	med = medians(results)
	text = render(host, args, med, results, failures, notes)
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
		    "idle", "only", "tls_seconds", "tls_warmup", "tls_clients",
		    "tls_idle", "tls_messages", "tls_sessions", "tls_per_conn",
		    "tls_sources")},
		    "scenarios": sorted(args.scenarios),
		    "median": {"%s:%s" % k: {m: v[0] for m, v in row.items()}
			for k, row in med.items()},
		    "rounds": results, "notes": notes, "failures": failures},
		    f, indent=1)
		f.write("\n")
	say("written: %s/latest.txt, %s/latest.json" % (args.out, args.out))
	if failures:
		loud("bench: %d FAILURE(S); see above and %s/latest.txt" %
		    (len(failures), args.out))
		sys.exit(1)


if __name__ == "__main__":
	main()
