"""
test_durability.py: the durability rule seen from outside.  Messages are
sent, every Postern process is killed with SIGKILL right after some 250,
the daemon is restarted on the same spool, and then: every acknowledged
message is delivered exactly once, a message whose terminator was never
sent is never delivered, and a message that was in flight when the
processes died (terminator sent, no reply read) is delivered at most once.
"""

import os
import threading
import time

import postern_harness as H
from postern_harness import (SMTPSession, dot_stuff, make_message,
    new_token, strip_trace)

SENDER = "sender@client.test"
ALICE = "alice@test.postern"


class Outcome:
	"""What the clients observed, per token."""

	def __init__(self):
		self.lock = threading.Lock()
		self.acked = {}		# token -> queue id: a 250 was read
		self.uncertain = set()	# terminator sent, no reply read
		self.never = set()	# terminator never sent
		self.errors = []	# unexpected failures before the kill
		self.killed = threading.Event()

	def kill(self, inst):
		"""Kill every process of inst now; called with the lock held."""
		self.killed.set()
		try:
			inst.kill9_all()
		except Exception as e:
			self.errors.append("kill -9 failed: %s" % e)

	def ack(self, tok, reply):
		with self.lock:
			self.acked[tok] = H.queue_id(reply)
			return len(self.acked)


def check_delivery(inst, out, user="alice", timeout=20):
	"""Wait for the acknowledged messages, then count every token."""
	md = inst.maildir(user)
	print("%d acknowledged, %d in flight, %d unterminated" % (
	    len(out.acked), len(out.uncertain), len(out.never)))
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		if all(md.count(t) for t in out.acked):
			break
		time.sleep(0.1)
	inst.barrier(users=(user,))
	time.sleep(1.0)		# room for a duplicate to show up
	problems = []
	for t, qid in sorted(out.acked.items()):
		n = md.count(t)
		if n != 1:
			problems.append("acknowledged %s (queued as %s): delivered "
			    "%d times" % (t, qid, n))
	for t in sorted(out.uncertain):
		n = md.count(t)
		if n > 1:
			problems.append("in-flight %s: delivered %d times" % (t, n))
	for t in sorted(out.never):
		n = md.count(t)
		if n:
			problems.append("unterminated %s: delivered %d times" %
			    (t, n))
	# every delivered copy is intact
	for t in out.acked:
		for _, raw in md.find(t):
			_, rest = strip_trace(raw)
			if t.encode() not in rest or not rest.endswith(
			    b"Second line.\n"):
				problems.append("%s delivered damaged" % t)
	assert not problems, "%d acknowledged, %d in flight, %d unterminated:"\
	    "\n  %s" % (len(out.acked), len(out.uncertain), len(out.never),
	    "\n  ".join(problems))


def open_mid_data(inst, tok):
	"""A session left inside DATA: body sent, terminator not."""
	s = SMTPSession(inst.port)
	s.ehlo()
	s.mail(SENDER)
	s.rcpt(ALICE)
	s.ok("DATA", 354)
	s.send(dot_stuff(make_message(tok)))
	return s


def test_kill9_after_tenth_ack(instance):
	inst = instance
	base = new_token("dur")
	tokens = ["%s-%03d" % (base, i) for i in range(30)]
	pending = list(tokens)
	out = Outcome()
	mid_tok = new_token("middata")
	out.never.add(mid_tok)
	mid = open_mid_data(inst, mid_tok)

	def worker():
		while True:
			with out.lock:
				if out.killed.is_set() or not pending:
					return
				tok = pending.pop(0)
			sent_dot = False
			try:
				with SMTPSession(inst.port, timeout=5) as s:
					s.ehlo()
					s.mail(SENDER)
					s.rcpt(ALICE)
					s.ok("DATA", 354)
					s.send(dot_stuff(make_message(tok)) + b".\r\n")
					sent_dot = True
					r = s.expect(250, "2.0.0")
				n = out.ack(tok, r)
				if n == 10:
					with out.lock:
						out.kill(inst)
			except Exception as e:
				with out.lock:
					if not out.killed.is_set():
						out.errors.append("%s: %s" % (tok, e))
						return
					(out.uncertain if sent_dot else out.never).add(tok)
				return

	threads = [threading.Thread(target=worker) for _ in range(3)]
	for t in threads:
		t.start()
	for t in threads:
		t.join(60)
	mid.close()
	assert not out.errors, "unexpected failures:\n" + \
	    "\n".join(out.errors)
	assert out.killed.is_set(), "never reached 10 acknowledgements"
	assert len(out.acked) >= 10

	inst.restart()
	for tok in list(pending):	# the rest, sent after the restart
		with SMTPSession(inst.port) as s:
			s.ehlo()
			qid = s.transaction(SENDER, [ALICE], make_message(tok))
		out.acked[tok] = qid
	check_delivery(inst, out)


def test_kill9_in_pipelined_sessions(instance):
	inst = instance
	out = Outcome()

	def envelope():
		return ("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER,
		    ALICE)).encode()

	def session_run(toks, kill_after):
		nxt = 0		# first message whose terminator was not sent
		inflight = None	# terminator sent, reply not read yet
		try:
			with SMTPSession(inst.port, timeout=5) as s:
				s.ehlo()
				s.send(envelope())
				s.expect(250, "2.1.0")
				s.expect(250, "2.1.5")
				s.expect(354)
				for idx, tok in enumerate(toks):
					last = idx + 1 == len(toks)
					payload = dot_stuff(make_message(tok)) + b".\r\n"
					if not last:	# pipelined after the terminator
						payload += envelope()
					s.send(payload)
					inflight, nxt = tok, idx + 1
					out.ack(tok, s.expect(250, "2.0.0"))
					inflight = None
					if kill_after and idx + 1 == kill_after:
						with out.lock:
							out.kill(inst)
						break
					if out.killed.is_set():
						break
					if not last:
						s.expect(250, "2.1.0")
						s.expect(250, "2.1.5")
						s.expect(354)
		except Exception as e:
			with out.lock:
				if not out.killed.is_set():
					out.errors.append("%s: %s" % (toks[nxt - 1]
					    if nxt else toks[0], e))
				elif inflight is not None:
					out.uncertain.add(inflight)
		with out.lock:
			out.never.update(toks[nxt:])

	a = ["%s-%03d" % (aa, i) for aa in [new_token("pipeA")] for i in range(12)]
	b = ["%s-%03d" % (bb, i) for bb in [new_token("pipeB")] for i in range(40)]
	threads = [threading.Thread(target=session_run, args=(a, 8)),
	    threading.Thread(target=session_run, args=(b, 0))]
	for t in threads:
		t.start()
	for t in threads:
		t.join(60)
	assert not out.errors, "unexpected failures:\n" + \
	    "\n".join(out.errors)
	assert out.killed.is_set(), "the kill never happened"
	inst.restart()
	check_delivery(inst, out)


def test_undeliverable_survives_kill9(instance_factory):
	inst = instance_factory(extra_global=[H.RETRY_CONF])
	blocker = inst.path("maildir", "carol")
	with open(blocker, "w") as f:
		f.write("not a maildir\n")
	inst.start()
	out = Outcome()
	off = inst.log_offset()
	with SMTPSession(inst.port) as s:
		s.ehlo()
		for _ in range(3):
			tok = new_token("stuck")
			qid = s.transaction(SENDER, ["carol@test.postern"],
			    make_message(tok, to="carol@test.postern"))
			out.acked[tok] = qid
		s.ok("QUIT", 221)
	inst.wait_log(H.DEFERRAL_RE, timeout=10, since=off)
	md = inst.maildir("carol")
	assert md.messages() == []
	inst.kill9_all()
	os.unlink(blocker)
	inst.restart()
	check_delivery(inst, out, user="carol", timeout=20)


def test_kill9_right_after_delivery(instance):
	"""The crash window between the maildir rename and the queue's record."""
	inst = instance
	out = Outcome()
	tok = new_token("justdelivered")
	new = os.path.join(inst.maildir("alice").path, "new")
	before = set(os.listdir(new)) if os.path.isdir(new) else set()
	out.acked[tok] = inst.send(SENDER, [ALICE], make_message(tok))
	deadline = time.monotonic() + H.DELIVERY_TIMEOUT
	while time.monotonic() < deadline:
		try:
			if set(os.listdir(new)) - before:
				break
		except FileNotFoundError:
			pass
		time.sleep(0.0005)
	else:
		raise AssertionError("not delivered before the kill:\n" +
		    inst.log_tail())
	inst.kill9_all()
	inst.restart()
	check_delivery(inst, out)
