"""
test_smtp.py: the SMTP server as a client sees it: reply codes, extensions,
pipelining, CHUNKING, dot-stuffing, limits, smuggling, and what lands in
the maildir.  One module-scoped daemon serves the tests that do not disturb
each other; each test uses its own token to find its message.
"""

import hashlib
import signal
import smtplib
import socket
import subprocess
import time

import pytest

import postern_harness as H
from postern_harness import (SMTPSession, assert_bytes_equal,
    assert_delivered, expected_delivery, make_message, new_token,
    strip_trace)

ALICE = "alice@test.postern"
BOB = "bob@test.postern"
SENDER = "sender@client.test"


@pytest.fixture(scope="module")
def mta():
	with H.running_instance() as inst:
		yield inst


@pytest.fixture(scope="module")
def mta_short_timeout():
	with H.running_instance(timeout="2s") as inst:
		yield inst


def session(inst, ehlo=True):
	s = SMTPSession(inst.port)
	s.check(s.greeting, 220)
	if ehlo:
		s.ehlo()
	return s


# ---------------------------------------------------------------- greeting

def test_greeting(mta):
	with SMTPSession(mta.port) as s:
		g = s.greeting
		assert g.code == 220 and len(g.raw) == 1, g
		assert g.raw[0].startswith("220 test.postern ESMTP Postern"), g


def test_ehlo_extensions(mta):
	with session(mta, ehlo=False) as s:
		r = s.ok("EHLO client.test", 250)
		assert r.raw[0].startswith("250-test.postern Hello"), r
		assert all(l.startswith("250-") for l in r.raw[:-1]), r
		assert r.raw[-1] == "250 HELP", r
		ext = r.lines[1:]
		for want in ("PIPELINING", "SIZE 12582912", "8BITMIME",
		    "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING"):
			assert want in ext, "%s not advertised: %r" % (want, r)
		keywords = {l.split()[0].upper() for l in ext}
		assert keywords == {"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8",
		    "ENHANCEDSTATUSCODES", "CHUNKING", "HELP"}, (
		    "unexpected extensions (DSN, STARTTLS and AUTH must not be "
		    "advertised here): %r" % r)


def test_helo(mta):
	with session(mta, ehlo=False) as s:
		r = s.ok("HELO client.test", 250)
		assert len(r.raw) == 1 and r.raw[0].startswith(
		    "250 test.postern"), r


EHLO = "EHLO client.test"
MAIL = "MAIL FROM:<%s>" % SENDER
RCPT = "RCPT TO:<%s>" % ALICE

VERB_CASES = [
    # id, commands that must succeed first, command, code, enhanced code
    ("noop", [EHLO], "NOOP", 250, "2.0.0"),
    ("rset", [EHLO], "RSET", 250, "2.0.0"),
    ("rset-in-transaction", [EHLO, MAIL, RCPT], "RSET", 250, "2.0.0"),
    ("vrfy", [EHLO], "VRFY alice", 252, "2.1.5"),
    ("expn", [EHLO], "EXPN team", 502, "5.5.1"),
    ("help", [EHLO], "HELP", 214, None),
    ("unknown-command", [EHLO], "FROBNICATE now", 500, "5.5.1"),
    ("mail", [EHLO], MAIL, 250, "2.1.0"),
    ("mail-after-helo", ["HELO client.test"], MAIL, 250, "2.1.0"),
    ("mail-null-sender", [EHLO], "MAIL FROM:<>", 250, "2.1.0"),
    ("mail-body-8bitmime", [EHLO], MAIL + " BODY=8BITMIME", 250, "2.1.0"),
    ("mail-size-at-limit", [EHLO], MAIL + " SIZE=12582912", 250, "2.1.0"),
    ("rcpt", [EHLO, MAIL], RCPT, 250, "2.1.5"),
    ("data", [EHLO, MAIL, RCPT], "DATA", 354, None),
    ("lowercase-verbs", ["ehlo client.test", "mail from:<%s>" % SENDER],
	"rcpt to:<%s>" % ALICE, 250, "2.1.5"),
    ("mail-before-ehlo", [], MAIL, 503, "5.5.1"),
    ("rcpt-before-mail", [EHLO], RCPT, 503, "5.5.1"),
    ("data-before-mail", [EHLO], "DATA", 503, "5.5.1"),
    ("data-before-rcpt", [EHLO, MAIL], "DATA", 503, "5.5.1"),
    ("nested-mail", [EHLO, MAIL], "MAIL FROM:<other@client.test>", 503,
	"5.5.1"),
    ("ehlo-without-domain", [], "EHLO", 501, "5.5.4"),
    ("helo-without-domain", [], "HELO", 501, "5.5.4"),
    ("mail-no-argument", [EHLO], "MAIL", 501, "5.5.4"),
    ("mail-empty-path", [EHLO], "MAIL FROM:", 501, "5.5.4"),
    ("mail-bad-size-value", [EHLO], MAIL + " SIZE=lots", 501, "5.5.4"),
    ("rcpt-no-argument", [EHLO, MAIL], "RCPT", 501, "5.5.4"),
    # A malformed mailbox is "mailbox syntax incorrect" (RFC 5321 4.2.2).
    ("mail-syntax", [EHLO], "MAIL FROM:<sender@client.test", 553, "5.1.7"),
    ("rcpt-syntax", [EHLO, MAIL], "RCPT TO:<alice@test.postern", 553,
	"5.1.3"),
    ("unknown-user", [EHLO, MAIL], "RCPT TO:<nosuchuser@test.postern>", 550,
	"5.1.1"),
    ("relay", [EHLO, MAIL], "RCPT TO:<x@example.com>", 550, "5.7.1"),
    ("mail-size-over-limit", [EHLO], MAIL + " SIZE=12582913", 552, "5.3.4"),
    ("dsn-ret", [EHLO], MAIL + " RET=FULL", 555, "5.5.4"),
    ("dsn-envid", [EHLO], MAIL + " ENVID=abc123", 555, "5.5.4"),
    ("dsn-notify", [EHLO, MAIL], RCPT + " NOTIFY=NEVER", 555, "5.5.4"),
    ("dsn-orcpt", [EHLO, MAIL], RCPT + " ORCPT=rfc822;alice@test.postern",
	555, "5.5.4"),
    ("utf8-sender-without-smtputf8", [EHLO],
	"MAIL FROM:<j\u00f6s\u00e9@ex\u00e4mple.org>", 553, "5.6.7"),
    ("utf8-rcpt-without-smtputf8", [EHLO, MAIL],
	"RCPT TO:<j\u00f6s\u00e9@test.postern>", 553, "5.6.7"),
]


@pytest.mark.parametrize("setup,command,code,enh",
    [c[1:] for c in VERB_CASES], ids=[c[0] for c in VERB_CASES])
def test_verb_reply(mta, setup, command, code, enh):
	with session(mta, ehlo=False) as s:
		for c in setup:
			r = s.cmd(c)
			assert r.code < 400, "setup %r failed: %r\n%s" % (c, r,
			    s.history())
		s.ok(command, code, enh)
		# the session is still usable after the reply
		if code != 354:
			s.ok("NOOP", 250, "2.0.0")


def test_quit_closes_connection(mta):
	with session(mta) as s:
		s.ok("QUIT", 221, "2.0.0")
		assert s.closed(), "connection still open after 221"


# ---------------------------------------------------------------- pipelining

def test_pipelining(mta):
	tok = new_token("pipe")
	data = make_message(tok, to="alice, bob")
	with session(mta) as s:
		s.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\n"
		    "DATA\r\n" % (SENDER, ALICE, BOB))
		s.expect(250, "2.1.0")
		s.expect(250, "2.1.5")
		s.expect(250, "2.1.5")
		s.expect(354)
		s.send(data + b".\r\n")
		H.queue_id(s.expect(250, "2.0.0"))
		s.ok("QUIT", 221)
	for u in ("alice", "bob"):
		assert_delivered(mta, u, tok, data)


def test_pipelining_with_refused_recipient(mta):
	tok = new_token("pipe-mixed")
	data = make_message(tok)
	with session(mta) as s:
		s.send("MAIL FROM:<%s>\r\nRCPT TO:<nosuchuser@test.postern>\r\n"
		    "RCPT TO:<%s>\r\nDATA\r\n" % (SENDER, ALICE))
		s.expect(250, "2.1.0")
		s.expect(550, "5.1.1")
		s.expect(250, "2.1.5")
		s.expect(354)
		s.send(data + b".\r\n")
		s.expect(250, "2.0.0")
	assert_delivered(mta, "alice", tok, data)


# ---------------------------------------------------------------- CHUNKING

def bdat_message(tok):
	# BDAT content is not dot-unstuffed: these lines arrive as they are.
	return make_message(tok, body="..two dots\r\n.\r\n...\r\n.leading\r\n"
	    "last\r\n")


def test_bdat_single_chunk(mta):
	tok = new_token("bdat1")
	data = bdat_message(tok)
	with session(mta) as s:
		s.mail(SENDER)
		s.rcpt(ALICE)
		s.send(b"BDAT %d LAST\r\n" % len(data) + data)
		r = s.expect(250, "2.0.0")
		H.queue_id(r)
		s.ok("QUIT", 221)
	assert_delivered(mta, "alice", tok, data)


def test_bdat_chunk_boundary_inside_crlf(mta):
	tok = new_token("bdat2")
	data = bdat_message(tok)
	cut = data.index(b"\r\n", 40) + 1	# chunk 1 ends with CR, 2 with LF
	with session(mta) as s:
		s.mail(SENDER)
		s.rcpt(ALICE)
		s.send(b"BDAT %d\r\n" % cut + data[:cut])
		s.expect(250, "2.0.0")
		rest = data[cut:]
		mid = len(rest) // 2
		s.send(b"BDAT %d\r\n" % mid + rest[:mid])
		s.expect(250, "2.0.0")
		s.send(b"BDAT %d LAST\r\n" % (len(rest) - mid) + rest[mid:])
		H.queue_id(s.expect(250, "2.0.0"))
	assert_delivered(mta, "alice", tok, data)


def test_bdat_zero_last(mta):
	tok = new_token("bdat0")
	data = bdat_message(tok)
	with session(mta) as s:
		s.mail(SENDER)
		s.rcpt(ALICE)
		s.send(b"BDAT %d\r\n" % len(data) + data)
		s.expect(250, "2.0.0")
		s.send(b"BDAT 0 LAST\r\n")
		H.queue_id(s.expect(250, "2.0.0"))
	assert_delivered(mta, "alice", tok, data)


def test_bdat_pipelined(mta):
	tok = new_token("bdatpipe")
	data = bdat_message(tok)
	a, b = data[:100], data[100:]
	with session(mta) as s:
		s.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nBDAT %d\r\n%sBDAT %d "
		    b"LAST\r\n%s" % (SENDER.encode(), ALICE.encode(), len(a), a,
		    len(b), b))
		s.expect(250, "2.1.0")
		s.expect(250, "2.1.5")
		s.expect(250, "2.0.0")
		H.queue_id(s.expect(250, "2.0.0"))
		s.ok("NOOP", 250)
	assert_delivered(mta, "alice", tok, data)


# ---------------------------------------------------------------- size

@pytest.mark.parametrize("size_param", [False, True],
    ids=["no-size-param", "understated-size-param"])
def test_data_over_size_limit(mta, size_param):
	tok = new_token("toobig")
	line = b"x" * 1022 + b"\r\n"
	body = line * (13 * 1024)		# 13 MiB
	data = make_message(tok, body=body)
	with session(mta) as s:
		s.mail(SENDER, "SIZE=1000" if size_param else "")
		s.rcpt(ALICE)
		s.ok("DATA", 354)
		s.send(data + b".\r\n")
		s.expect(552, "5.3.4")
		# the whole DATA was read: the next reply is the NOOP's
		s.ok("NOOP", 250, "2.0.0")
		s.ok("QUIT", 221)
	mta.barrier()
	assert mta.maildir("alice").count(tok) == 0, "oversized message delivered"


def test_ten_mib_body(mta):
	tok = new_token("big")
	lines = []
	i = 0
	size = 0
	while size < 10 * 1024 * 1024:
		l = ("%08d " % i).encode() + hashlib.sha256(
		    str(i).encode()).hexdigest().encode() + b" ." * 8 + b"\r\n"
		lines.append(l)
		size += len(l)
		i += 1
	data = make_message(tok, body=b"".join(lines))
	with session(mta) as s:
		s.transaction(SENDER, [ALICE], data)
	got = mta.maildir("alice").wait_for(tok, timeout=20, inst=mta)
	trace, rest = strip_trace(got[0])
	want = expected_delivery(data)
	assert len(rest) == len(want)
	assert_bytes_equal(rest, want)


# ---------------------------------------------------------------- dot-stuffing

DOT_CASES = [
    # id, body as sent on the wire (already stuffed), body as delivered
    ("lone-dot", b"before\r\n..\r\nafter\r\n", b"before\n.\nafter\n"),
    ("two-dots", b"...\r\n", b"..\n"),
    ("three-dots", b"....\r\n", b"...\n"),
    ("dot-text", b"..hidden\r\n...more\r\n", b".hidden\n..more\n"),
    ("dot-last-line", b"text\r\n..\r\n", b"text\n.\n"),
    ("space-dot", b" .\r\n .. \r\n", b" .\n .. \n"),
    # RFC 5321 4.5.2: a receiver deletes the first of any leading period
    ("unstuffed-dot-text", b".oops\r\n", b"oops\n"),
]


@pytest.mark.parametrize("wire,want", [c[1:] for c in DOT_CASES],
    ids=[c[0] for c in DOT_CASES])
def test_dot_unstuffing(mta, wire, want):
	tok = new_token("dot")
	head = make_message(tok, body=b"")
	with session(mta) as s:
		s.mail(SENDER)
		s.rcpt(ALICE)
		s.ok("DATA", 354)
		s.send(head + wire + b".\r\n")
		s.expect(250, "2.0.0")
	got = mta.maildir("alice").wait_for(tok, inst=mta)
	_, rest = strip_trace(got[0])
	assert_bytes_equal(rest, expected_delivery(head) + want)


def test_smtplib_body_without_final_newline(mta):
	tok = new_token("smtplib")
	msg = make_message(tok, body=".hidden\r\n..two\r\nlast line, no newline")
	with smtplib.SMTP("127.0.0.1", mta.port, local_hostname="client.test",
	    timeout=10) as c:
		refused = c.sendmail(SENDER, [ALICE], msg)
		assert refused == {}
	assert_delivered(mta, "alice", tok, msg)	# + final LF


def test_smtplib_lone_dot_line(mta):
	tok = new_token("smtplib-dot")
	msg = make_message(tok, body="a\r\n.\r\nb\r\n.")
	with smtplib.SMTP("127.0.0.1", mta.port, local_hostname="client.test",
	    timeout=10) as c:
		assert c.sendmail(SENDER, [ALICE], msg) == {}
	assert_delivered(mta, "alice", tok, msg)


# ---------------------------------------------------------------- 8 bit, UTF-8

EIGHT_BIT = bytes(b for b in range(0x80, 0x100)) + b"\r\n" + \
    "caf\u00e9 \u00fcber \u65e5\u672c\u8a9e\r\n".encode()


@pytest.mark.parametrize("params", ["BODY=8BITMIME", ""],
    ids=["body-8bitmime", "no-body-param"])
def test_8bit_body(mta, params):
	tok = new_token("8bit")
	data = make_message(tok, body=b"eight bit:\r\n" + EIGHT_BIT,
	    extra_headers=("Content-Type: text/plain; charset=utf-8",
	    "Content-Transfer-Encoding: 8bit"))
	with session(mta) as s:
		s.transaction(SENDER, [ALICE], data, params)
	assert_delivered(mta, "alice", tok, data)


def test_smtputf8_message(mta):
	tok = new_token("utf8")
	sender = "j\u00f6s\u00e9@ex\u00e4mple.org"
	data = ("From: J\u00f6s\u00e9 <%s>\r\nTo: alice@test.postern\r\n"
	    "Subject: Gr\u00fc\u00dfe \u65e5\u672c %s\r\n"
	    "Message-ID: <%s@ex\u00e4mple.org>\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	    "H\u00e9llo w\u00f6rld \u2603\r\n" % (sender, tok, tok)).encode()
	with session(mta) as s:
		s.mail(sender, "SMTPUTF8 BODY=8BITMIME")
		s.rcpt(ALICE)
		s.data(data)
	got = mta.maildir("alice").wait_for(tok, inst=mta)
	trace, rest = strip_trace(got[0])
	assert_bytes_equal(rest, expected_delivery(data))
	assert trace.return_path == sender, trace
	assert H.parse_received(trace.received)["proto"] == "UTF8SMTP", trace


def test_empty_body(mta):
	sender = "%s@client.test" % new_token("empty")
	with session(mta) as s:
		s.mail(sender)
		s.rcpt("carol@test.postern")
		s.ok("DATA", 354)
		s.send(b".\r\n")
		qid = H.queue_id(s.expect(250, "2.0.0"))
	md = mta.maildir("carol")
	deadline = time.monotonic() + H.DELIVERY_TIMEOUT
	while True:
		found = [b for _, b in md.messages() if
		    b.startswith(b"Return-Path: <%s>" % sender.encode())]
		if found or time.monotonic() > deadline:
			break
		time.sleep(0.05)
	assert len(found) == 1, "empty message (queue id %s) not delivered " \
	    "once: %d copies\n%s" % (qid, len(found), mta.log_tail())
	trace, rest = strip_trace(found[0])
	assert rest == b"", "empty body delivered as %r" % rest[:200]


# ---------------------------------------------------------------- limits

def test_long_command_line(mta):
	with session(mta) as s:
		s.ok("NOOP " + "x" * 500, 250, "2.0.0")
		s.ok("NOOP " + "x" * 2100, 500, "5.5.2")
		s.ok("NOOP", 250, "2.0.0")


@pytest.mark.parametrize("line", [b"NOOP\nNOOP\r\n", b"NOOP\rNOOP\r\n",
    b"MAIL FROM:<a@b>\nRCPT TO:<alice@test.postern>\r\n"],
    ids=["bare-lf", "bare-cr", "bare-lf-in-mail"])
def test_command_with_bare_newline(mta, line):
	with session(mta) as s:
		s.send(line)
		s.expect(500, "5.5.2")
		# exactly one reply for that line: the next one is for this NOOP
		s.ok("NOOP", 250, "2.0.0")
		s.ok("RCPT TO:<%s>" % ALICE, 503, "5.5.1")


def test_max_recipients(mta):
	with session(mta) as s:
		s.mail(SENDER)
		for _ in range(H.MAX_RCPT):
			s.rcpt(ALICE)
		s.ok("RCPT TO:<%s>" % BOB, 452, "4.5.3")
		s.ok("RSET", 250, "2.0.0")


def test_max_errors(mta):
	with session(mta) as s:
		for _ in range(H.MAX_ERRORS):
			s.ok("FROB", 500, "5.5.1")
		# the 421 may follow the fifth error at once or answer the next
		# command; either way it is the next reply and then EOF
		try:
			s.send("FROB\r\n")
		except OSError:
			pass
		s.expect(421, "4.7.0")
		assert s.closed(), "connection open after 421"


def test_idle_timeout(mta_short_timeout):
	with SMTPSession(mta_short_timeout.port) as s:
		s.check(s.greeting, 220)
		t0 = time.monotonic()
		s.sock.settimeout(10)
		s.expect(421, "4.4.2")
		elapsed = time.monotonic() - t0
		assert 1.5 <= elapsed <= 6, "421 after %.1f s with timeout 2s" % \
		    elapsed
		assert s.closed(), "connection open after 421"


def test_idle_timeout_in_data(mta_short_timeout):
	inst = mta_short_timeout
	tok = new_token("timeout-data")
	with SMTPSession(inst.port) as s:
		s.ehlo()
		s.mail(SENDER)
		s.rcpt(ALICE)
		s.ok("DATA", 354)
		s.send(make_message(tok))
		s.sock.settimeout(10)
		s.expect(421, "4.4.2")
		assert s.closed()
	inst.barrier()
	assert inst.maildir("alice").count(tok) == 0


# ---------------------------------------------------------------- sessions

def test_multiple_messages_one_session(mta):
	toks = [new_token("multi") for _ in range(3)]
	msgs = [make_message(t) for t in toks]
	ids = []
	with session(mta) as s:
		for m in msgs:
			ids.append(s.transaction(SENDER, [ALICE], m))
		s.ok("QUIT", 221)
	assert len(set(ids)) == 3, "queue ids not distinct: %r" % ids
	for t, m in zip(toks, msgs):
		assert_delivered(mta, "alice", t, m)


def test_rset_discards_transaction(mta):
	tok = new_token("discarded")
	keep = new_token("kept")
	with session(mta) as s:
		# envelope only, then RSET
		s.mail("%s@client.test" % tok)
		s.rcpt(ALICE)
		s.ok("RSET", 250, "2.0.0")
		s.ok("DATA", 503, "5.5.1")		# no transaction left
		# content already transferred with BDAT, then RSET
		s.mail("%s@client.test" % tok)
		s.rcpt(ALICE)
		chunk = make_message(tok)
		s.send(b"BDAT %d\r\n" % len(chunk) + chunk)
		s.expect(250, "2.0.0")
		s.ok("RSET", 250, "2.0.0")
		s.ok("BDAT 0 LAST", 503, "5.5.1")	# nothing to finish
		# a later transaction in the same session is delivered
		s.transaction(SENDER, [ALICE], make_message(keep))
		s.ok("QUIT", 221)
	mta.maildir("alice").wait_for(keep, inst=mta)
	mta.barrier()
	assert mta.maildir("alice").count(tok) == 0, \
	    "a reset transaction was delivered"


@pytest.mark.parametrize("args", [[], ["--pipeline"]],
    ids=["plain", "pipeline"])
def test_swaks(mta, args):
	tok = new_token("swaks")
	r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % mta.port,
	    "--to", ALICE, "--from", SENDER, "--helo", "client.test",
	    "--header", "Subject: swaks %s" % tok, "--body",
	    "Body of %s\n.leading dot\n" % tok, "--timeout", "10"] + args,
	    capture_output=True, text=True, timeout=30)
	assert r.returncode == 0, "swaks exit %d\n%s\n%s" % (r.returncode,
	    r.stdout[-3000:], r.stderr[-2000:])
	got = mta.maildir("alice").wait_for(tok, inst=mta)
	assert len(got) == 1
	_, rest = strip_trace(got[0])
	assert b"\n.leading dot\n" in rest


# ---------------------------------------------------------------- bare LF/CR

@pytest.mark.parametrize("how", ["data", "bdat"])
@pytest.mark.parametrize("bad", [b"bare\nlf\r\n", b"bare\rcr\r\n"],
    ids=["bare-lf", "bare-cr"])
def test_bare_newline_in_content_refused(mta, how, bad):
	tok = new_token("bare")
	data = make_message(tok, body=b"first\r\n" + bad + b"last\r\n")
	with session(mta) as s:
		s.mail(SENDER)
		s.rcpt(ALICE)
		if how == "data":
			s.ok("DATA", 354)
			s.send(data + b".\r\n")
		else:
			s.send(b"BDAT %d LAST\r\n" % len(data) + data)
		s.expect(550, "5.6.0")
		# the session continues in sync
		s.ok("NOOP", 250, "2.0.0")
	mta.barrier()
	assert mta.maildir("alice").count(tok) == 0, \
	    "message with a bare CR/LF was delivered"


SMUGGLE_SEPS = [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r"]


@pytest.mark.parametrize("sep", SMUGGLE_SEPS,
    ids=[repr(s)[2:-1] for s in SMUGGLE_SEPS])
def test_smtp_smuggling(mta, sep):
	outer = new_token("outer")
	inner = new_token("smuggled")
	data = (b"From: <sender@client.test>\r\nTo: <alice@test.postern>\r\n"
	    b"Subject: outer " + outer.encode() + b"\r\n\r\nhello" + sep +
	    b"MAIL FROM:<x@y>\r\nRCPT TO:<bob@test.postern>\r\nDATA\r\n"
	    b"From: <x@y>\r\nSubject: smuggled " + inner.encode() +
	    b"\r\n\r\nevil\r\n")
	with session(mta) as s:
		s.mail(SENDER)
		s.rcpt(ALICE)
		s.ok("DATA", 354)
		s.send(data + b"\r\n.\r\n")
		r = s.reply()
		# the next reply answers QUIT: nothing was run as commands
		q = s.cmd("QUIT")
	s.check(r, 550, "5.6.0", what="end of data with a bare CR/LF")
	s.check(q, 221, "2.0.0", what="QUIT after the smuggling attempt")
	mta.barrier(users=("alice", "bob"))
	n_outer = mta.maildir("alice").count(outer) + \
	    mta.maildir("bob").count(outer)
	n_inner = mta.maildir("alice").count(inner) + \
	    mta.maildir("bob").count(inner)
	assert n_outer + n_inner <= 1, "smuggling produced %d messages" % (
	    n_outer + n_inner)
	assert mta.maildir("bob").count(inner) == 0, "bob got the smuggled mail"
	assert n_outer + n_inner == 0, "refused message delivered"


# ---------------------------------------------------------------- SIGTERM

@pytest.mark.parametrize("where", ["after-ehlo", "in-data"])
def test_sigterm_with_open_session(instance, where):
	with SMTPSession(instance.port) as s:
		s.ehlo()
		if where == "in-data":
			s.mail(SENDER)
			s.rcpt(ALICE)
			s.ok("DATA", 354)
			s.send(b"Subject: unfinished\r\n\r\nbody\r\n")
		time.sleep(0.2)
		instance.signal(signal.SIGTERM)
		s.expect(421, "4.3.2")
		assert s.closed(), "connection open after 421"
	rc = instance.proc.wait(10)
	assert rc == 0, "posternd exited %s after SIGTERM" % rc
	left = instance.wait_gone(5)
	assert not left, "processes left after SIGTERM: %s" % \
	    instance.describe_processes()
	with pytest.raises(OSError):
		socket.create_connection(("127.0.0.1", instance.port), timeout=2)
