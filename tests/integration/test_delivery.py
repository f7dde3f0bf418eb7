"""
test_delivery.py: what lands where: recipients, aliases, postmaster,
refusals, the trace headers, maildir for a system user, mbox, alias reload
on SIGHUP, and retry after a temporary local failure.
"""

import os
import pwd
import re
import signal
import subprocess
import time

import pytest

import postern_harness as H
from postern_harness import (SMTPSession, assert_bytes_equal,
    assert_delivered, expected_delivery, make_message, new_token,
    strip_trace)

SENDER = "sender@client.test"
ALICE = "alice@test.postern"

MBOX_ACTION = 'action "box" mbox "%s/mbox/%%{user}" user "_postern_dev"'
MBOX_MATCH = 'match from any for domain "mbox.test" action "box"'


@pytest.fixture(scope="module")
def mta():
	inst = H.Instance()
	inst.extra_actions = [MBOX_ACTION % inst.dir]
	inst.extra_matches = [MBOX_MATCH]
	inst.write_config(inst.config_text())
	try:
		inst.start()
		yield inst
	finally:
		inst.cleanup()


# ---------------------------------------------------------------- trace

@pytest.mark.parametrize("greet,proto", [("EHLO", "ESMTP"), ("HELO", "SMTP")])
def test_trace_headers(mta, greet, proto):
	tok = new_token("trace")
	data = make_message(tok)
	mta.send(SENDER, [ALICE], data,
	    helo="helo.client.test" if greet == "HELO" else None)
	trace = assert_delivered(mta, "alice", tok, data)
	assert trace.return_path == SENDER, trace
	assert trace.delivered_to == ALICE, trace
	rcv = H.parse_received(trace.received)
	assert rcv["proto"] == proto, trace
	assert rcv["helo"] == ("helo.client.test" if greet == "HELO" else
	    "client.test"), trace
	assert rcv["rcpt"] == ALICE, "single recipient: 'for <%s>' expected: " \
	    "%s" % (ALICE, trace.received)


def test_null_sender(mta):
	tok = new_token("null")
	data = make_message(tok, sender="MAILER-DAEMON@client.test")
	mta.send("", [ALICE], data)
	trace = assert_delivered(mta, "alice", tok, data)
	assert trace.return_path == "", trace


def test_maildir_file_properties(mta):
	tok = new_token("props")
	mta.send(SENDER, [ALICE], make_message(tok))
	md = mta.maildir("alice")
	md.wait_for(tok, inst=mta)
	(path, _), = md.find(tok)
	assert os.path.dirname(path) == os.path.join(md.path, "new"), path
	assert ":" not in os.path.basename(path), path
	dev = pwd.getpwnam(H.DEV_USER)
	st = os.stat(path)
	assert st.st_uid == dev.pw_uid, "delivered file owned by uid %d, " \
	    "not %s" % (st.st_uid, H.DEV_USER)
	assert not st.st_mode & 0o002, "delivered file world-writable"
	for sub in ("tmp", "new", "cur"):
		d = os.path.join(md.path, sub)
		assert os.path.isdir(d), "%s missing" % d
		assert os.stat(d).st_uid == dev.pw_uid
	# nothing is left behind in tmp/ once delivery is done
	deadline = time.monotonic() + 5
	while os.listdir(os.path.join(md.path, "tmp")) and \
	    time.monotonic() < deadline:
		time.sleep(0.05)
	assert os.listdir(os.path.join(md.path, "tmp")) == []


# ---------------------------------------------------------------- recipients

def test_multiple_recipients(mta):
	tok = new_token("multi")
	data = make_message(tok, to="alice, bob, carol")
	mta.send(SENDER, [ALICE, "bob@test.postern", "carol@test.postern"], data)
	for u in ("alice", "bob", "carol"):
		trace = assert_delivered(mta, u, tok, data)
		assert trace.delivered_to == "%s@test.postern" % u, trace
		rcv = H.parse_received(trace.received)
		assert rcv["rcpt"] is None, "'for' clause with three " \
		    "recipients: %s" % trace.received
	mta.barrier(users=("alice", "bob", "carol"))
	for u in ("alice", "bob", "carol"):
		assert mta.maildir(u).count(tok) == 1, "%s: %d copies" % (u,
		    mta.maildir(u).count(tok))
	assert mta.maildir("postmaster").count(tok) == 0


@pytest.mark.parametrize("alias,users", [("team", ("alice", "bob")),
    ("boss", ("carol",))])
def test_alias_expansion(mta, alias, users):
	tok = new_token("alias-" + alias)
	data = make_message(tok, to="%s@test.postern" % alias)
	mta.send(SENDER, ["%s@test.postern" % alias], data)
	for u in users:
		assert_delivered(mta, u, tok, data)
	mta.barrier(users=("alice", "bob", "carol"))
	for u in ("alice", "bob", "carol"):
		want = 1 if u in users else 0
		assert mta.maildir(u).count(tok) == want, "%s: %d copies of " \
		    "mail to %s" % (u, mta.maildir(u).count(tok), alias)


def test_alias_and_member_together(mta):
	tok = new_token("alias-dup")
	data = make_message(tok)
	mta.send(SENDER, ["team@test.postern", ALICE], data)
	assert_delivered(mta, "bob", tok, data)
	assert_delivered(mta, "alice", tok, data)
	mta.barrier(users=("alice", "bob"))
	assert mta.maildir("alice").count(tok) in (1, 2)


@pytest.mark.parametrize("rcpt", ["postmaster@test.postern", "postmaster",
    "Postmaster", "POSTMASTER@test.postern"])
def test_postmaster(mta, rcpt):
	tok = new_token("pm")
	data = make_message(tok, to=rcpt)
	with SMTPSession(mta.port) as s:
		s.ehlo()
		s.mail(SENDER)
		s.ok("RCPT TO:<%s>" % rcpt, 250, "2.1.5")
		s.data(data)
	assert_delivered(mta, "postmaster", tok, data)


@pytest.mark.parametrize("rcpt", ["alice@TEST.POSTERN", "alice@localhost",
    "alice@Localhost"])
def test_domain_variants(mta, rcpt):
	tok = new_token("dom")
	data = make_message(tok, to=rcpt)
	mta.send(SENDER, [rcpt], data)
	assert_delivered(mta, "alice", tok, data)


@pytest.mark.parametrize("rcpt", ["nosuchuser@test.postern",
    "nosuchuser@localhost", "alicex@test.postern"])
def test_unknown_user(mta, rcpt):
	with SMTPSession(mta.port) as s:
		s.ehlo()
		s.mail(SENDER)
		s.ok("RCPT TO:<%s>" % rcpt, 550, "5.1.1")


@pytest.mark.parametrize("rcpt", ["x@example.com", "alice@sub.test.postern",
    "alice@test.postern.example.com", "alice@mbox.test.example.com"])
def test_relay_refused(mta, rcpt):
	with SMTPSession(mta.port) as s:
		s.ehlo()
		s.mail(SENDER)
		s.ok("RCPT TO:<%s>" % rcpt, 550, "5.7.1")
		s.ok("DATA", 503, "5.5.1")


def test_refused_and_accepted_recipients(mta):
	tok = new_token("mixed")
	data = make_message(tok)
	with SMTPSession(mta.port) as s:
		s.ehlo()
		s.mail(SENDER)
		s.ok("RCPT TO:<x@example.com>", 550, "5.7.1")
		s.ok("RCPT TO:<nosuchuser@test.postern>", 550, "5.1.1")
		s.rcpt(ALICE)
		s.data(data)
	trace = assert_delivered(mta, "alice", tok, data)
	assert H.parse_received(trace.received)["rcpt"] == ALICE


# ---------------------------------------------------------------- mbox

def test_mbox_delivery(mta):
	toks = [new_token("mbox"), new_token("mbox")]
	msgs = [
	    make_message(toks[0], to="alice@mbox.test",
		body="From the start\r\nplain\r\n From not at start\r\n"
		"..stuffed\r\nFrom again\r\n"),
	    make_message(toks[1], to="alice@mbox.test",
		body="second message\r\n"),
	]
	for m in msgs:
		mta.send(SENDER, ["alice@mbox.test"], m)
	path = mta.path("mbox", "alice")
	deadline = time.monotonic() + H.DELIVERY_TIMEOUT
	content = b""
	while time.monotonic() < deadline:
		try:
			with open(path, "rb") as f:
				content = f.read()
		except FileNotFoundError:
			content = b""
		if all(t.encode() in content for t in toks):
			break
		time.sleep(0.05)
	assert all(t.encode() in content for t in toks), \
	    "mbox %s lacks the messages; log:\n%s" % (path, mta.log_tail())
	st = os.stat(path)
	assert st.st_uid == pwd.getpwnam(H.DEV_USER).pw_uid
	# split on From_ lines: each starts a message, after a blank line
	starts = [m.start() for m in re.finditer(rb"(?m)^From ", content)]
	assert len(starts) == 2, "expected two From_ lines:\n%r" % content
	assert starts[0] == 0
	parts = [content[starts[0]:starts[1]], content[starts[1]:]]
	for part, msg in zip(parts, msgs):
		nl = part.index(b"\n")
		from_ = part[:nl].decode()
		assert re.fullmatch(r"From sender@client\.test \S.*", from_), \
		    from_
		body = part[nl + 1:]
		if body.startswith(b"Return-Path: "):
			_, body = strip_trace(body)
		want = re.sub(rb"(?m)^From ", b">From ",
		    expected_delivery(msg)) + b"\n"
		assert_bytes_equal(body, want, "mbox message")


# ---------------------------------------------------------------- system user

SYS_USER = "_postern_t1"


@pytest.fixture
def system_user(instance_factory):
	"""An instance whose "sys" action delivers to ~/Maildir of SYS_USER."""
	inst = instance_factory(extra_actions=['action "sys" maildir "~/Maildir"'],
	    extra_matches=['match from any for domain "sys.test" action "sys"'])
	deadline = time.monotonic() + 30
	while True:
		try:
			old = pwd.getpwnam(SYS_USER)
		except KeyError:
			break
		if not old.pw_dir.startswith("/tmp/postern-test-"):
			pytest.skip("user %s exists and is not ours" % SYS_USER)
		if not os.path.exists(old.pw_dir):
			# left over by a run that was killed: its home is gone
			subprocess.run(["userdel", SYS_USER], capture_output=True)
			continue
		if time.monotonic() > deadline:	# another run is using it
			pytest.skip("user %s in use by another test run (%s)" %
			    (SYS_USER, old.pw_dir))
		time.sleep(0.5)
	home = inst.path("home", "u1")
	os.mkdir(inst.path("home"), 0o755)
	subprocess.run(["useradd", "--system", "--home-dir", home,
	    "--create-home", "--shell", "/usr/sbin/nologin", SYS_USER],
	    check=True, capture_output=True)
	try:
		inst.start()
		yield inst, home
		inst.stop()
	finally:
		subprocess.run(["userdel", "-r", SYS_USER], capture_output=True)


def test_system_user_maildir(system_user):
	inst, home = system_user
	pw = pwd.getpwnam(SYS_USER)
	tok = new_token("sys")
	rcpt = "%s@sys.test" % SYS_USER
	data = make_message(tok, to=rcpt)
	with SMTPSession(inst.port) as s:
		s.ehlo()
		s.mail(SENDER)
		s.ok("RCPT TO:<nosuchuser@sys.test>", 550, "5.1.1")
		s.rcpt(rcpt)
		s.data(data)
	md = inst.maildir_at(os.path.join(home, "Maildir"))
	trace = assert_delivered(inst, None, tok, data, maildir=md)
	assert trace.delivered_to == rcpt, trace
	(path, _), = md.find(tok)
	assert os.stat(path).st_uid == pw.pw_uid, "file not owned by %s" % \
	    SYS_USER
	for d in ("", "new", "tmp", "cur"):
		p = os.path.join(home, "Maildir", d)
		assert os.stat(p).st_uid == pw.pw_uid, "%s not owned by %s" % (
		    p, SYS_USER)


# ---------------------------------------------------------------- reload

def test_sighup_reloads_aliases(instance):
	tok1 = new_token("before-hup")
	data1 = make_message(tok1, to="boss@test.postern")
	instance.send(SENDER, ["boss@test.postern"], data1)
	assert_delivered(instance, "carol", tok1, data1)

	instance.write_aliases("team: alice, bob\nboss: bob\n")
	off = instance.log_offset()
	instance.signal(signal.SIGHUP)
	try:
		instance.wait_log(r"(?i)reload", timeout=3, since=off)
		time.sleep(0.3)
	except AssertionError:
		time.sleep(1)
	assert instance.alive(), "posternd died on SIGHUP:\n" + \
	    instance.log_tail()

	tok2 = new_token("after-hup")
	data2 = make_message(tok2, to="boss@test.postern")
	instance.send(SENDER, ["boss@test.postern"], data2)
	assert_delivered(instance, "bob", tok2, data2)
	instance.barrier(users=("carol",))
	assert instance.maildir("carol").count(tok2) == 0, \
	    "boss still goes to carol after the reload"


# ---------------------------------------------------------------- retry

def test_temporary_failure_is_retried(instance_factory):
	inst = instance_factory(extra_global=[H.RETRY_CONF])
	blocker = inst.path("maildir", "carol")
	with open(blocker, "w") as f:
		f.write("not a maildir\n")
	inst.start()
	tok = new_token("retry")
	data = make_message(tok, to="carol@test.postern")
	off = inst.log_offset()
	inst.send(SENDER, ["carol@test.postern"], data)
	inst.wait_log(H.DEFERRAL_RE, timeout=10, since=off)
	assert os.path.isfile(blocker), "the daemon replaced the blocking file"
	os.unlink(blocker)
	md = inst.maildir("carol")
	md.wait_for(tok, timeout=15, inst=inst)
	assert_delivered(inst, "carol", tok, data)
	inst.barrier(users=("carol",))
	assert md.count(tok) == 1, "%d copies after retry" % md.count(tok)
