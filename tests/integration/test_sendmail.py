"""
test_sendmail.py: posternctl's sendmail(8) face (invoked through links
named sendmail, mailq and newaliases) against the running daemon's local
submission socket, as programs and users on the host use it.
SECURITY: the tests run as root; the non-root cases drop to nobody with
setpriv.  Every file lives in the instance's /tmp/postern-test-* directory.
"""

import os
import re
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


def test_daemon_not_running(tmp_path):
	"""No daemon: exit 69 (EX_UNAVAILABLE), the message is not lost
	silently."""
	link = tmp_path / "sendmail"
	link.symlink_to(POSTERNCTL)
	sock = str(tmp_path / "none.sock")
	r = subprocess.run([str(link), ALICE], input=b"Subject: x\n\nbody\n",
	    capture_output=True, timeout=10,
	    env=dict(os.environ, POSTERN_SOCKET=sock))
	assert r.returncode == 69, r
	assert r.stderr.decode() == ("sendmail: cannot reach posternd at %s: "
	    "No such file or directory (message not sent)\n" % sock)


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
