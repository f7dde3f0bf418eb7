"""
test_sendmail.py: posternctl's sendmail(8) face (invoked through links
named sendmail, mailq and newaliases) against the running daemon's local
submission socket, as programs and users on the host use it.
With no daemon, a message is kept in the spool's offline drop directory
through a setgid _postern_drop copy of posternctl.
SECURITY: the tests run as root; the non-root cases drop to nobody with
setpriv.  Every file lives in the instance's /tmp/postern-test-* directory.
"""

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import time

import pytest

import postern_harness as H

POSTERNCTL = os.path.join(H.BUILD, "posternctl")
ALICE = "alice@test.postern"
BOB = "bob@test.postern"
CAROL = "carol@test.postern"
SETTLE = 10.0


@pytest.fixture(scope="module", autouse=True)
def built():
	if not os.access(POSTERNCTL, os.X_OK):
		pytest.fail("%s: not built" % POSTERNCTL, pytrace=False)


@pytest.fixture
def mta(instance_factory):
	"""A daemon with a submission socket and a control socket in its
	directory, and links sendmail, mailq, newaliases to posternctl."""
	inst = instance_factory()
	inst.sock = inst.path("postern.sock")
	inst.ctlsock = inst.path("control.sock")
	inst.extra_global = [
	    'control "%s"' % inst.ctlsock,
	    'listen on socket path "%s"' % inst.sock,
	]
	inst.write_config(inst.config_text())
	for name in ("sendmail", "mailq", "newaliases"):
		os.symlink(POSTERNCTL, inst.path(name))
	inst.start()
	deadline = time.monotonic() + SETTLE
	while not os.path.exists(inst.sock):
		if time.monotonic() > deadline:
			pytest.fail("posternd made no socket at %s (is 'listen on "
			    "socket' served?)\nlog tail:\n%s" % (inst.sock,
			    inst.log_tail()), pytrace=False)
		time.sleep(0.05)
	return inst


def run(inst, name, args=(), input=b"", user=None, env=None, timeout=20):
	"""DIR/name ARGS with POSTERN_SOCKET and POSTERN_CONF set for inst."""
	cmd = [inst.path(name)] + list(args)
	if user is not None:
		cmd = ["setpriv", "--reuid", user, "--regid", "nogroup",
		    "--clear-groups", "--"] + cmd
	e = dict(os.environ)
	e["POSTERN_SOCKET"] = inst.sock
	e["POSTERN_CONF"] = inst.conf_path
	e["TZ"] = "UTC"
	if env:
		e.update(env)
	return subprocess.run(cmd, input=input, capture_output=True,
	    timeout=timeout, env=e)


def ok(r):
	assert r.returncode == 0 and r.stderr == b"", "exit %d\nstdout:\n%s" \
	    "\nstderr:\n%s" % (r.returncode, r.stdout.decode(errors="replace"),
	    r.stderr.decode(errors="replace"))
	return r.stdout


def header_section(msg):
	"""The header of a delivered message (after the trace fields)."""
	_, rest = H.strip_trace(msg)
	return rest.split(b"\n\n", 1)[0] + b"\n"


def test_t_as_nobody(mta):
	"""sendmail -t as a user: Bcc stripped, Date/Message-ID/From added."""
	tok = H.new_token("sm-t")
	msg = ("To: Alice <%s>\nBcc: %s\nSubject: %s\n\nHello from nobody.\n"
	    % (ALICE, BOB, tok)).encode()
	ok(run(mta, "sendmail", ["-t"], msg, user="nobody"))
	for user in ("alice", "bob"):
		got = mta.maildir(user).wait_for(tok, inst=mta)[0]
		hdr = header_section(got)
		assert b"Bcc" not in got and BOB.encode() not in hdr, got
		assert re.search(rb"(?m)^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), "
		    rb"\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000$", hdr), \
		    hdr
		assert re.search(rb"(?m)^Message-ID: <[0-9a-f]{32}@[^>]+>$",
		    hdr), hdr
		assert re.search(rb"(?m)^From: nobody(@\S+)?$", hdr), hdr
		assert b"\nHello from nobody.\n" in got
		trace, _ = H.strip_trace(got)
		assert trace.return_path.split("@")[0] == "nobody", trace


def test_cron_invocation(mta):
	"""The way Debian's cron mails a job's output: sendmail -FCronDaemon
	-i -B8BITMIME -oem USER, as that user, message on stdin."""
	tok = H.new_token("sm-cron")
	msg = ("From: root (Cron Daemon)\nTo: alice\nSubject: Cron <alice@host> "
	    "run-parts %s\n\nOutput of the job: caf\xc3\xa9\n" % tok).encode(
	    "latin-1")
	ok(run(mta, "sendmail", ["-FCronDaemon", "-i", "-B8BITMIME", "-oem",
	    "alice"], msg, user="nobody"))
	got = mta.maildir("alice").wait_for(tok, inst=mta)[0]
	assert b"Output of the job: caf\xc3\xa9\n" in got, got
	trace, _ = H.strip_trace(got)
	assert trace.return_path.split("@")[0] == "nobody", trace


@pytest.mark.skipif(shutil.which("s-nail") is None, reason="no s-nail")
def test_s_nail(mta):
	"""A mail user agent: s-nail hands the message to our sendmail."""
	tok = H.new_token("sm-mua")
	env = dict(os.environ, POSTERN_SOCKET=mta.sock,
	    POSTERN_CONF=mta.conf_path, HOME="/nonexistent", MAILRC="/dev/null")
	r = subprocess.run(["setpriv", "--reuid", "nobody", "--regid",
	    "nogroup", "--clear-groups", "--", "s-nail", "-n", "-#",
	    "-S", "mta=" + mta.path("sendmail"), "-s", "subject " + tok,
	    ALICE], input=b"Sent with s-nail.\n", capture_output=True,
	    timeout=20, env=env)
	assert r.returncode == 0, r
	got = mta.maildir("alice").wait_for(tok, inst=mta)[0]
	assert b"Sent with s-nail." in got, got


def test_f_and_arguments(mta):
	"""sendmail -f sender rcpt < msg keeps the message's own fields."""
	tok = H.new_token("sm-f")
	msg = H.make_message(tok).replace(b"\r\n", b"\n")
	ok(run(mta, "sendmail", ["-f", "sender@client.test", ALICE], msg))
	got = mta.maildir("alice").wait_for(tok, inst=mta)[0]
	trace, rest = H.strip_trace(got)
	assert trace.return_path == "sender@client.test"
	assert trace.delivered_to == ALICE
	# Nothing added: the message had Date, Message-ID and From.
	assert rest == msg, rest


def test_dot_rules(mta):
	"""A lone "." ends the message without -i; with -oi it is a line."""
	tok1, tok2 = H.new_token("sm-dot"), H.new_token("sm-oi")
	body = "Subject: %s\n\nbefore\n..two\n.\nafter\n"
	ok(run(mta, "sendmail", [ALICE], (body % tok1).encode()))
	ok(run(mta, "sendmail", ["-oi", ALICE], (body % tok2).encode()))
	got1 = mta.maildir("alice").wait_for(tok1, inst=mta)[0]
	got2 = mta.maildir("alice").wait_for(tok2, inst=mta)[0]
	assert got1.endswith(b"\n\nbefore\n..two\n"), got1
	assert got2.endswith(b"\n\nbefore\n..two\n.\nafter\n"), got2


def test_bs_session(mta):
	"""sendmail -bs relays an SMTP session on stdin/stdout."""
	tok = H.new_token("sm-bs")
	p = subprocess.Popen([mta.path("sendmail"), "-bs"],
	    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
	    stderr=subprocess.PIPE, env=dict(os.environ,
	    POSTERN_SOCKET=mta.sock))

	def reply():
		lines = []
		while True:
			line = p.stdout.readline()
			assert line, "closed after %r" % lines
			lines.append(line)
			if line[3:4] != b"-":
				return lines

	def cmd(line, code):
		p.stdin.write(line + b"\r\n")
		p.stdin.flush()
		r = reply()
		assert r[-1].startswith(b"%d" % code), (line, r)
		return r

	try:
		assert reply()[-1].startswith(b"220")
		cmd(b"EHLO client.test", 250)
		cmd(b"MAIL FROM:<bs@client.test>", 250)
		cmd(b"RCPT TO:<%s>" % ALICE.encode(), 250)
		cmd(b"DATA", 354)
		cmd(b"Subject: " + tok.encode() + b"\r\n\r\nvia -bs\r\n.", 250)
		cmd(b"QUIT", 221)
		p.stdin.close()
		assert p.wait(timeout=10) == 0
		assert p.stderr.read() == b""
	finally:
		if p.poll() is None:
			p.kill()
			p.wait()
	got = mta.maildir("alice").wait_for(tok, inst=mta)[0]
	assert H.strip_trace(got)[0].return_path == "bs@client.test"
	assert got.endswith(b"\n\nvia -bs\n")


def test_mailq_lists_queued(mta):
	"""mailq (and sendmail -bp) show a message kept by pause delivery."""
	r = subprocess.run([POSTERNCTL, "-f", mta.conf_path, "pause",
	    "delivery"], capture_output=True, text=True, timeout=20)
	assert r.returncode == 0, r
	try:
		tok = H.new_token("sm-q")
		ok(run(mta, "sendmail", ["-f", "queued@client.test", CAROL],
		    ("Subject: %s\n\nwait\n" % tok).encode()))
		deadline = time.monotonic() + SETTLE
		while True:
			out = ok(run(mta, "mailq")).decode()
			if CAROL in out:
				break
			assert time.monotonic() < deadline, out
			time.sleep(0.1)
		assert "queued@client.test" in out, out
		assert out.splitlines()[0].split()[0] == "ID", out
		out2 = ok(run(mta, "sendmail", ["-bp"])).decode()
		assert CAROL in out2, out2
	finally:
		subprocess.run([POSTERNCTL, "-f", mta.conf_path, "resume",
		    "delivery"], capture_output=True, timeout=20)
	mta.maildir("carol").wait_for(tok, inst=mta)


def test_newaliases_reloads(mta):
	"""newaliases makes a changed aliases file take effect."""
	mta.write_aliases("team: carol\nboss: carol\n")
	assert ok(run(mta, "newaliases")) == b"newaliases: aliases reloaded\n"
	tok = H.new_token("sm-alias")
	ok(run(mta, "sendmail", ["team@test.postern"],
	    ("Subject: %s\n\nto the team\n" % tok).encode()))
	mta.maildir("carol").wait_for(tok, inst=mta)
	time.sleep(H.GRACE)
	assert mta.maildir("alice").count(tok) == 0
	assert mta.maildir("bob").count(tok) == 0


def test_rcpt_refused(mta):
	"""A refused recipient: its reply on stderr, exit 67 (EX_NOUSER)."""
	r = run(mta, "sendmail", ["nosuchuser@test.postern"],
	    b"Subject: x\n\nbody\n")
	assert r.returncode == 67, r
	assert re.fullmatch(rb"sendmail: nosuchuser@test\.postern: 5\d\d .*\n",
	    r.stderr), r.stderr


def test_daemon_not_running_no_drop_dir(tmp_path):
	"""No daemon and no offline drop directory: exit 75 (EX_TEMPFAIL),
	both reasons said, the message is not lost silently."""
	link = tmp_path / "sendmail"
	link.symlink_to(POSTERNCTL)
	sock = str(tmp_path / "none.sock")
	spool = str(tmp_path / "nospool")
	r = subprocess.run([str(link), ALICE], input=b"Subject: x\n\nbody\n",
	    capture_output=True, timeout=10,
	    env=dict(os.environ, POSTERN_SOCKET=sock, POSTERN_SPOOL=spool))
	assert r.returncode == 75, r
	assert r.stderr.decode() == ("sendmail: cannot reach posternd at %s: "
	    "No such file or directory (message not sent)\n"
	    "sendmail: cannot queue the message offline: cannot open "
	    "%s/offline: No such file or directory\n" % (sock, spool))


def test_bs_daemon_not_running(tmp_path):
	"""-bs cannot be kept offline: exit 69 (EX_UNAVAILABLE)."""
	link = tmp_path / "sendmail"
	link.symlink_to(POSTERNCTL)
	sock = str(tmp_path / "none.sock")
	r = subprocess.run([str(link), "-bs"], input=b"QUIT\r\n",
	    capture_output=True, timeout=10,
	    env=dict(os.environ, POSTERN_SOCKET=sock,
	    POSTERN_SPOOL=str(tmp_path)))
	assert r.returncode == 69, r
	assert r.stderr.decode() == ("sendmail: cannot reach posternd at %s: "
	    "No such file or directory\n" % sock)
	assert os.listdir(str(tmp_path)) == ["sendmail"]


# ---------------------------------------------------------------- offline

DROP_GROUP = "_postern_drop"
QUEUE_USER = "_postern_queue"
HAVE_DROP_IMPORT = os.path.exists(os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..", "..", "queue", "queue_drop.c"))


def parse_drop(data):
	"""The fields of a drop file (common/drop.h), checked as drop_parse
	does: (sender, [rcpt], body)."""
	magic = b"POSTERN-DROP 1\n"
	assert data.startswith(magic), data[:40]
	head, sep, body = data[len(magic):].partition(b"\n\n")
	assert sep, "header not terminated"
	lines = head.split(b"\n")
	if lines[0] == b"sender":
		sender = ""
	else:
		assert lines[0].startswith(b"sender "), lines[0]
		sender = lines[0][7:].decode()
		assert sender
	rcpts = []
	for line in lines[1:]:
		assert line.startswith(b"rcpt ") and len(line) > 5, line
		rcpts.append(line[5:].decode())
	for a in [sender] + rcpts:
		assert len(a.encode()) < 600
		assert not re.search(r"[\x00-\x20\x7f<>]", a), a
	assert 1 <= len(rcpts) <= 1000
	# CRLF line ends only, no bare CR or LF.
	assert b"\r" not in body.replace(b"\r\n", b""), body
	assert b"\n" not in body.replace(b"\r\n", b""), body
	return sender, rcpts, body


def offline_layout(inst):
	"""SPOOL (root, 0711) and SPOOL/offline (_postern_queue:_postern_drop,
	1730) as posternd makes them; a setgid _postern_drop copy of
	posternctl with a sendmail link.  Returns (offline dir, link)."""
	if os.environ.get("POSTERN_SANITIZED"):
		# A setgid program runs in secure mode: the sanitizer runtime
		# cannot read ASAN_OPTIONS nor ptrace itself for its leak check,
		# and fails the run.  The plain build covers the setgid path.
		pytest.skip("setgid copy of a sanitizer build")
	if subprocess.run(["getent", "group", DROP_GROUP],
	    capture_output=True).returncode != 0:
		subprocess.run(["groupadd", "--system", DROP_GROUP], check=True)
	gid = grp.getgrnam(DROP_GROUP).gr_gid
	quid = pwd.getpwnam(QUEUE_USER).pw_uid
	os.makedirs(inst.spool, exist_ok=True)
	os.chown(inst.spool, 0, 0)
	os.chmod(inst.spool, 0o711)
	offline = os.path.join(inst.spool, "offline")
	os.mkdir(offline)
	os.chown(offline, quid, gid)
	os.chmod(offline, 0o1730)
	bindir = inst.path("bin")
	os.mkdir(bindir, 0o755)
	copy = os.path.join(bindir, "posternctl")
	shutil.copyfile(POSTERNCTL, copy)
	os.chown(copy, 0, gid)
	os.chmod(copy, 0o2755)
	link = os.path.join(bindir, "sendmail")
	os.symlink("posternctl", link)
	return offline, link


def run_offline(inst, link, args, msg, user="nobody"):
	"""link ARGS < msg as user, no daemon, the spool of inst."""
	cmd = ["setpriv", "--reuid", user, "--regid", "nogroup",
	    "--clear-groups", "--", link] + list(args)
	env = dict(os.environ, POSTERN_SOCKET=inst.path("postern.sock"),
	    POSTERN_CONF=inst.conf_path, POSTERN_SPOOL=inst.spool, TZ="UTC")
	return subprocess.run(cmd, input=msg, capture_output=True,
	    timeout=20, env=env)


def drop_files(offline):
	return sorted(os.listdir(offline))


def test_offline_drop_as_nobody(instance_factory):
	"""No daemon: sendmail -t as nobody is accepted (exit 0, silent) and
	kept as one m* file of SPOOL/offline owned by nobody, in drop form:
	header fixed, Bcc stripped, CRLF, not dot-stuffed."""
	inst = instance_factory()
	offline, link = offline_layout(inst)
	tok = H.new_token("sm-off")
	msg = ("To: Alice <%s>\nBcc: %s\nSubject: %s\n\nbefore\n.\n"
	    "..two\nafter\n" % (ALICE, BOB, tok)).encode()
	r = run_offline(inst, link, ["-t", "-oi"], msg)
	assert r.returncode == 0 and r.stderr == b"" and r.stdout == b"", r
	names = drop_files(offline)
	assert len(names) == 1 and re.fullmatch(r"m[0-9a-f]{16}", names[0]), \
	    names
	st = os.lstat(os.path.join(offline, names[0]))
	assert st.st_uid == pwd.getpwnam("nobody").pw_uid
	assert st.st_gid == grp.getgrnam(DROP_GROUP).gr_gid
	assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
	with open(os.path.join(offline, names[0]), "rb") as f:
		sender, rcpts, body = parse_drop(f.read())
	assert sender == "nobody"
	assert rcpts == [ALICE, BOB]
	hdr, _, text = body.partition(b"\r\n\r\n")
	assert b"Bcc" not in hdr and BOB.encode() not in hdr, hdr
	assert re.search(rb"(?m)^Date: [A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} "
	    rb"\d{4} \d\d:\d\d:\d\d \+0000\r$", hdr), hdr
	assert re.search(rb"(?m)^Message-ID: <[0-9a-f]{32}@[^>]+>\r$", hdr), hdr
	assert re.search(rb"(?m)^From: nobody\r$", hdr), hdr
	assert ("Subject: %s" % tok).encode() in hdr
	assert text == b"before\r\n.\r\n..two\r\nafter\r\n", text


def test_offline_drop_verbose_null_sender(instance_factory):
	"""-v says where the message went; -f "" is kept as the null
	sender."""
	inst = instance_factory()
	offline, link = offline_layout(inst)
	r = run_offline(inst, link, ["-v", "-f", "", CAROL],
	    b"From: x@client.test\nSubject: bounce\n\nbody\n")
	names = drop_files(offline)
	assert r.returncode == 0 and len(names) == 1, (r, names)
	assert r.stderr.decode() == ("sendmail: posternd is not running: "
	    "message queued offline as %s\n" % names[0])
	with open(os.path.join(offline, names[0]), "rb") as f:
		sender, rcpts, body = parse_drop(f.read())
	assert (sender, rcpts) == ("", [CAROL])
	assert body.endswith(b"Subject: bounce\r\n\r\nbody\r\n"), body


def test_offline_drop_needs_setgid(instance_factory):
	"""Without the setgid bit a user cannot write the drop directory:
	exit 75, both reasons said, nothing left behind."""
	inst = instance_factory()
	offline, link = offline_layout(inst)
	os.chmod(os.path.join(inst.path("bin"), "posternctl"), 0o755)
	r = run_offline(inst, link, [ALICE], b"Subject: x\n\nbody\n")
	assert r.returncode == 75, r
	assert r.stderr.decode() == ("sendmail: cannot reach posternd at %s: "
	    "No such file or directory (message not sent)\n"
	    "sendmail: cannot queue the message offline: cannot create a file "
	    "in %s: Permission denied\n" % (inst.path("postern.sock"),
	    offline))
	assert drop_files(offline) == []


@pytest.mark.skipif(not HAVE_DROP_IMPORT, reason="queue/queue_drop.c (the "
    "import of offline drops) is not in the tree yet")
def test_offline_drop_delivered_at_start(instance_factory):
	"""A message kept offline is delivered once posternd starts, and the
	drop directory is empty afterwards."""
	inst = instance_factory()
	offline, link = offline_layout(inst)
	tok = H.new_token("sm-offdel")
	r = run_offline(inst, link, [ALICE], ("Subject: %s\n\nkept offline\n"
	    % tok).encode())
	assert r.returncode == 0 and r.stderr == b"", r
	assert len(drop_files(offline)) == 1
	inst.start()
	got = inst.maildir("alice").wait_for(tok, inst=inst)[0]
	trace, rest = H.strip_trace(got)
	assert trace.return_path.split("@")[0] == "nobody", trace
	assert rest.endswith(b"\n\nkept offline\n"), rest
	deadline = time.monotonic() + SETTLE
	while drop_files(offline) != []:
		assert time.monotonic() < deadline, drop_files(offline)
		time.sleep(0.1)


def test_usage_errors(tmp_path):
	link = tmp_path / "sendmail"
	link.symlink_to(POSTERNCTL)
	for args, msg in ((["-q"], "unknown option -q"),
	    (["-bd"], "-bd: mode not supported"),
	    ([], "no recipients given")):
		r = subprocess.run([str(link)] + args, input=b"",
		    capture_output=True, timeout=10,
		    env=dict(os.environ, POSTERN_SOCKET=str(tmp_path / "x")))
		assert r.returncode == 64, (args, r)
		assert r.stderr.decode().startswith("sendmail: %s\n" % msg), \
		    r.stderr
