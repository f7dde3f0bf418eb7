"""
tls_support.py: what the TLS integration tests need beside the harness:
a test PKI made with the openssl(1) command line, a posternd instance
with STARTTLS, tls-require and SMTPS listeners, TLS SMTP clients, memory
and descriptor inspection of the TLS process, hostile ClientHellos, a
private Postfix instance and a testssl.sh runner.
SECURITY: runs as root like the rest of the suite; every file it makes
lives in the instance's /tmp/postern-test-* directory, it signals only
processes it started, and it reads process memory only of the instance
under test.
"""

import contextlib
import select
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import postern_harness as H

HOSTNAME = H.HOSTNAME
OTHER_NAME = "other.test"
SENDER = "sender@client.test"
ALICE = "alice@test.postern"

# Received: header of a message that arrived over TLS (the contract).
TLS_WITH_RE = re.compile(
    r"with (?P<proto>ESMTPS|UTF8SMTPS) \(TLSv1\.2:(?P<suite>ECDHE-(?:ECDSA|RSA)"
    r"-[A-Z0-9-]+)\)")
TLS_RECEIVED_RE = re.compile(
    r"Received: from (?P<helo>\S+) \(\[127\.0\.0\.1\]\) "
    r"by test\.postern \(Postern\) with (?P<proto>ESMTPS|UTF8SMTPS) "
    r"\(TLSv1\.2:(?P<suite>ECDHE-(?:ECDSA|RSA)-[A-Z0-9-]+)\) "
    r"id (?P<id>[^\s;]+)(?: for <(?P<rcpt>[^>]*)>)?; (?P<date>.+)")


# ---------------------------------------------------------------- PKI

def openssl(*args, cwd=None, input=None):
	"""Run openssl(1); its stdout as bytes, or AssertionError with stderr."""
	r = subprocess.run(["openssl"] + list(args), cwd=cwd, input=input,
	    capture_output=True, timeout=60)
	if r.returncode != 0:
		raise H.HarnessError("openssl %s: exit %d\n%s" % (" ".join(args),
		    r.returncode, r.stderr.decode(errors="replace")))
	return r.stdout


def _der_tlv(buf, pos):
	"""(tag, value start, value end) of the DER element at pos."""
	tag = buf[pos]
	n = buf[pos + 1]
	pos += 2
	if n & 0x80:
		k = n & 0x7f
		n = int.from_bytes(buf[pos:pos + k], "big")
		pos += k
	return tag, pos, pos + n


def _der_children(buf, start, end):
	"""[(tag, value bytes)] of the elements of a constructed value."""
	out = []
	pos = start
	while pos < end:
		tag, s, e = _der_tlv(buf, pos)
		out.append((tag, buf[s:e]))
		pos = e
	return out


class PKI:
	"""
	A test CA and three leaf certificates under DIR/tls (mode 0700):
	test.postern with an ECDSA P-256 and an RSA 2048 key, other.test
	with an ECDSA key.  Keys are PEM (PKCS#8), mode 0600.
	"""

	def __init__(self, directory):
		self.dir = directory
		os.makedirs(directory, mode=0o700, exist_ok=True)
		os.chmod(directory, 0o700)
		p = lambda n: os.path.join(directory, n)
		self.ca_crt, self.ca_key = p("ca.crt"), p("ca.key")
		self.ec_crt, self.ec_key = p("ec.crt"), p("ec.key")
		self.rsa_crt, self.rsa_key = p("rsa.crt"), p("rsa.key")
		self.other_crt, self.other_key = p("other.crt"), p("other.key")
		self._make()

	def _make(self):
		d = self.dir
		ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
		openssl("req", "-x509", *ec, "-nodes", "-days", "365",
		    "-subj", "/O=Postern tests/CN=Postern Test CA",
		    "-addext", "basicConstraints=critical,CA:TRUE",
		    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
		    "-keyout", self.ca_key, "-out", self.ca_crt, cwd=d)
		for name, key, crt, newkey, ku in (
		    (HOSTNAME, self.ec_key, self.ec_crt, ec, "digitalSignature"),
		    (HOSTNAME, self.rsa_key, self.rsa_crt,
			["-newkey", "rsa:2048"],
			"digitalSignature,keyEncipherment"),
		    (OTHER_NAME, self.other_key, self.other_crt, ec,
			"digitalSignature")):
			ext = crt + ".ext"
			with open(ext, "w") as f:
				f.write("basicConstraints=critical,CA:FALSE\n"
				    "keyUsage=critical,%s\n"
				    "extendedKeyUsage=serverAuth\n"
				    "subjectAltName=DNS:%s\n"
				    # testssl.sh rates a certificate without
				    # CRL or OCSP URI as HIGH; nothing fetches it.
				    "crlDistributionPoints=URI:http://ca.test/"
				    "postern-test.crl\n" % (ku, name))
			csr = crt + ".csr"
			openssl("req", "-new", *newkey, "-nodes",
			    "-subj", "/CN=%s" % name, "-keyout", key, "-out", csr,
			    cwd=d)
			openssl("x509", "-req", "-in", csr, "-CA", self.ca_crt,
			    "-CAkey", self.ca_key, "-set_serial",
			    str(random.getrandbits(63)), "-days", "365",
			    "-sha256", "-extfile", ext, "-out", crt, cwd=d)
		for f in os.listdir(d):
			path = os.path.join(d, f)
			os.chmod(path, 0o600 if f.endswith(".key") else 0o644)

	def conf_lines(self):
		"""The pki statements of the contract."""
		return [
		    'pki "%s" cert "%s" key "%s"' % (HOSTNAME, self.ec_crt,
			self.ec_key),
		    'pki "%s" cert "%s" key "%s"' % (HOSTNAME, self.rsa_crt,
			self.rsa_key),
		    'pki "%s" cert "%s" key "%s"' % (OTHER_NAME, self.other_crt,
			self.other_key),
		]

	def ec_scalar(self, key=None):
		"""The raw 32-byte private scalar of an EC key file."""
		der = openssl("ec", "-in", key or self.ec_key, "-outform", "DER",
		    "-no_public")
		_, s, e = _der_tlv(der, 0)
		kids = _der_children(der, s, e)
		# ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, ...}
		assert kids[0] == (0x02, b"\x01") and kids[1][0] == 0x04, kids[:2]
		assert len(kids[1][1]) == 32, len(kids[1][1])
		return kids[1][1]

	def rsa_secrets(self):
		"""Name -> big-endian bytes of d, p, q, dp, dq, qinv of the RSA key."""
		der = openssl("rsa", "-in", self.rsa_key, "-outform", "DER",
		    "-traditional")
		_, s, e = _der_tlv(der, 0)
		kids = _der_children(der, s, e)
		names = ("version", "n", "e", "d", "p", "q", "dp", "dq", "qinv")
		assert len(kids) == 9 and all(t == 0x02 for t, _ in kids), \
		    "unexpected RSAPrivateKey DER"
		return {n: v.lstrip(b"\0") for n, (_, v) in zip(names, kids)
		    if n not in ("version", "n", "e")}

	def pkcs8(self, key):
		return openssl("pkey", "-in", key, "-outform", "DER")

	def needles(self):
		"""
		label -> bytes that betray a private key: the EC scalars, 24-byte
		fragments of the RSA CRT values and of each PKCS#8 DER, and a
		line of each PEM file.
		"""
		out = {}
		for label, key in (("ec", self.ec_key), ("other", self.other_key)):
			out["%s scalar" % label] = self.ec_scalar(key)
		for n, v in self.rsa_secrets().items():
			mid = len(v) // 2
			out["rsa %s[%d:%d]" % (n, mid - 12, mid + 12)] = \
			    v[mid - 12:mid + 12]
		for label, key in (("ec", self.ec_key), ("rsa", self.rsa_key),
		    ("other", self.other_key)):
			der = self.pkcs8(key)
			if label == "rsa":
				lo = len(der) // 2 - 12
			else:
				# The OCTET STRING header and most of the scalar.
				lo = der.index(self.ec_scalar(key)) - 4
			out["%s pkcs8[%d:%d]" % (label, lo, lo + 24)] = \
			    der[lo:lo + 24]
			with open(key, "rb") as f:
				lines = [l for l in f.read().splitlines()
				    if l and not l.startswith(b"-----")]
			out["%s PEM line 2" % label] = lines[1][:48]
		return out


# ---------------------------------------------------------------- instance

class TLSInstance(H.Instance):
	"""
	The base instance of the suite (a plain listener on .port) plus the
	contract's PKI and three TLS listeners: .port_tls (STARTTLS),
	.port_smtps (implicit TLS) and .port_require (tls-require).
	"""

	def __init__(self, tls_global=(), **kw):
		super().__init__(**kw)
		self.pki = PKI(self.path("tls"))
		used = {self.port}
		ports = []
		while len(ports) < 3:
			p = H.free_port()
			if p not in used:
				used.add(p)
				ports.append(p)
		self.port_tls, self.port_smtps, self.port_require = ports
		self.extra_global = self.extra_global + self.pki.conf_lines() + \
		    list(tls_global) + [
		    'listen on 127.0.0.1 port %d tls pki "%s"' % (self.port_tls,
			HOSTNAME),
		    'listen on 127.0.0.1 port %d smtps pki "%s"' % (
			self.port_smtps, HOSTNAME),
		    'listen on 127.0.0.1 port %d tls-require pki "%s"' % (
			self.port_require, HOSTNAME),
		]
		self.write_config(self.config_text())

	def start_env(self, env, **kw):
		"""start() with extra environment variables for posternd."""
		with environ(env):
			return self.start(**kw)

	def wait_ready(self, timeout=15.0):
		"""Ready on the plain port, and SMTPS greets inside TLS."""
		super().wait_ready(timeout)
		deadline = time.monotonic() + timeout
		ctx = client_context(verify=False)
		while True:
			try:
				with TLSSession(self.port_smtps, ctx, implicit=True,
				    timeout=5) as s:
					if s.greeting.code == 220:
						s.send(b"QUIT\r\n")
						return
					last = repr(s.greeting)
			except (OSError, AssertionError) as e:
				last = str(e)
			if self.proc.poll() is not None or \
			    time.monotonic() > deadline:
				raise H.HarnessError("no TLS greeting on the SMTPS "
				    "port %d (%s); log tail:\n%s" % (self.port_smtps,
				    last, self.log_tail()))
			time.sleep(0.1)

	def tlsd_pids(self, timeout=5.0):
		"""Every postern-tlsd process of the instance (at least one)."""
		deadline = time.monotonic() + timeout
		while True:
			pids = [p for p in self.children().get("postern-tlsd", ())
			    if p != self.proc.pid]
			if pids:
				return pids
			if time.monotonic() > deadline:
				raise AssertionError("no postern-tlsd process; "
				    "processes:\n%s" % self.describe_processes())
			time.sleep(0.05)


@contextlib.contextmanager
def environ(env):
	"""Set environment variables for the duration of the with block."""
	old = {k: os.environ.get(k) for k in env}
	os.environ.update(env)
	try:
		yield
	finally:
		for k, v in old.items():
			if v is None:
				os.environ.pop(k, None)
			else:
				os.environ[k] = v


@contextlib.contextmanager
def running_tls_instance(**kw):
	"""A started TLSInstance for the duration of the with block."""
	inst = TLSInstance(**kw)
	try:
		inst.start()
		yield inst
	finally:
		inst.cleanup()


# ---------------------------------------------------------------- clients

def client_context(ca=None, verify=True):
	"""A client SSLContext that trusts only the test CA (or nothing)."""
	ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
	if verify:
		ctx.load_verify_locations(cafile=ca)
		ctx.check_hostname = True
		ctx.verify_mode = ssl.CERT_REQUIRED
	else:
		ctx.check_hostname = False
		ctx.verify_mode = ssl.CERT_NONE
	return ctx


class TLSSession(H.SMTPSession):
	"""
	SMTPSession that can run STARTTLS, or start in TLS (implicit=True).
	After the handshake .tls is the SSLSocket (version(), cipher()).
	"""

	def __init__(self, port, ctx, server_hostname=HOSTNAME, implicit=False,
	    session=None, **kw):
		self.ctx = ctx
		self.server_hostname = server_hostname
		self.tls = None
		super().__init__(port, greeting=False, **kw)
		try:
			if implicit:
				self.handshake(session=session)
			self.greeting = self.reply()
		except BaseException:
			self.close()
			raise

	def handshake(self, session=None):
		"""Wrap the connection in TLS now; nothing may be buffered."""
		if self.buf:
			raise AssertionError("cleartext received before the TLS "
			    "handshake: %r; transcript:\n%s" % (self.buf,
			    self.history()))
		self.tls = self.ctx.wrap_socket(self.sock,
		    server_hostname=self.server_hostname, session=session)
		self.sock = self.tls
		self._log("TLS", "%s %s" % (self.tls.version(), self.tls.cipher()))
		return self.tls

	def starttls(self, session=None):
		self.ok("STARTTLS", 220, "2.0.0")
		return self.handshake(session=session)


def tls_session(inst, port, ca=None, implicit=False, ehlo=True, **kw):
	"""A TLSSession on port, greeted, after STARTTLS unless implicit."""
	ctx = kw.pop("ctx", None) or client_context(ca or inst.pki.ca_crt)
	s = TLSSession(port, ctx, implicit=implicit, **kw)
	s.check(s.greeting, 220)
	if not implicit:
		s.ehlo()
		s.starttls()
	if ehlo:
		s.ehlo()
	return s


def ehlo_keywords(reply):
	"""The set of EHLO keywords of a 250 EHLO reply, upper case."""
	return {l.split()[0].upper() for l in reply.lines[1:] if l.strip()}


def hello_bytes(server_hostname=HOSTNAME, ciphers=None):
	"""A real ClientHello (the first TLS record) as the ssl module makes it."""
	ctx = client_context(verify=False)
	if ciphers:
		ctx.set_ciphers(ciphers)
	inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
	obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
	with contextlib.suppress(ssl.SSLWantReadError):
		obj.do_handshake()
	data = out.read()
	assert data[:1] == b"\x16", data[:16]
	return data


def tls_received(raw):
	"""(Trace, dict of TLS_RECEIVED_RE groups) of a delivered file."""
	trace, _ = H.strip_trace(raw)
	m = TLS_RECEIVED_RE.fullmatch(trace.received)
	if m is None:
		raise AssertionError("Received header of a message received over "
		    "TLS does not match the contract:\n  %s\nexpected like:\n  "
		    "Received: from HELO ([127.0.0.1]) by test.postern (Postern) "
		    "with ESMTPS (TLSv1.2:ECDHE-ECDSA-AES128-GCM-SHA256) id ID "
		    "for <rcpt>; DATE" % trace.received)
	return trace, m.groupdict()


# ---------------------------------------------------------------- s_client

def s_client(port, args=(), input=b"Q\n", timeout=20):
	"""openssl s_client -connect 127.0.0.1:port ARGS; (rc, stdout text)."""
	cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
	cmd += list(args)
	r = subprocess.run(cmd, input=input, capture_output=True,
	    timeout=timeout)
	out = r.stdout.decode(errors="replace")
	return r.returncode, out + "\n--- stderr ---\n" + \
	    r.stderr.decode(errors="replace")


def server_cert_info(s_client_output):
	"""(subject CN, key type "EC"|"RSA") of the first PEM cert in output."""
	m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
	    s_client_output, re.S)
	if m is None:
		raise AssertionError("no server certificate in s_client output:\n"
		    + s_client_output[-3000:])
	text = openssl("x509", "-noout", "-subject", "-text",
	    input=m.group(0).encode()).decode()
	cn = re.search(r"subject=.*?CN\s*=\s*([^,\n/]+)", text)
	if "id-ecPublicKey" in text:
		kind = "EC"
	elif "rsaEncryption" in text:
		kind = "RSA"
	else:
		kind = "?"
	return (cn.group(1).strip() if cn else None), kind


class Interactive:
	"""A child process driven line by line on stdin/stdout, with deadlines."""

	def __init__(self, cmd, timeout=15):
		self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
		    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
		self.buf = b""
		self.out = b""
		self.timeout = timeout

	def send(self, line):
		self.proc.stdin.write(line.encode() + b"\n")
		self.proc.stdin.flush()

	def expect(self, pattern):
		"""Read until a line matches pattern; return the match."""
		rx = re.compile(pattern.encode() if isinstance(pattern, str)
		    else pattern, re.M)
		deadline = time.monotonic() + self.timeout
		fd = self.proc.stdout.fileno()
		while True:
			m = rx.search(self.buf)
			if m:
				self.buf = self.buf[m.end():]
				return m
			left = deadline - time.monotonic()
			if left <= 0:
				raise AssertionError("no %r within %ds; output:\n%s" %
				    (pattern, self.timeout,
				    self.out.decode(errors="replace")[-3000:]))
			r, _, _ = select.select([fd], [], [], left)
			if r:
				chunk = os.read(fd, 65536)
				if not chunk:
					raise AssertionError("%r: process ended before "
					    "%r; output:\n%s" % (self.proc.args[:2],
					    pattern, self.out.decode(
					    errors="replace")[-3000:]))
				self.buf += chunk
				self.out += chunk

	def close(self):
		with contextlib.suppress(Exception):
			self.proc.stdin.close()
		try:
			self.proc.wait(5)
		except subprocess.TimeoutExpired:
			self.proc.kill()
			self.proc.wait(5)


# ---------------------------------------------------------------- /proc

def unix_socket_inodes():
	"""Inodes of every AF_UNIX socket of the host's network namespace."""
	inodes = set()
	with open("/proc/net/unix") as f:
		next(f)
		for line in f:
			fields = line.split()
			if len(fields) >= 7:
				inodes.add(fields[6])
	return inodes


def fd_table(pid):
	"""[(fd, link target, flags)] of pid's open descriptors."""
	out = []
	base = "/proc/%d/fd" % pid
	for fd in sorted(os.listdir(base), key=int):
		try:
			target = os.readlink(os.path.join(base, fd))
			with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
				info = f.read()
		except FileNotFoundError:
			continue
		m = re.search(r"^flags:\s*([0-7]+)", info, re.M)
		out.append((int(fd), target, int(m.group(1), 8) if m else None))
	return out


MEMSCAN_CHUNK = 16 * 1024 * 1024
MEMSCAN_MAX_MAPPING = 4 * 1024 * 1024 * 1024


def memory_search(pid, needles):
	"""
	label -> number of hits of each needle in pid's readable private and
	shared mappings (read through /proc/PID/mem as root), and the number
	of bytes read, so that a caller can see the scan was not vacuous.
	"""
	hits = {label: 0 for label in needles}
	total = 0
	with open("/proc/%d/maps" % pid) as maps, \
	    open("/proc/%d/mem" % pid, "rb", 0) as mem:
		for line in maps:
			f = line.split()
			if f[1][0] != "r":
				continue
			if len(f) > 5 and f[5] in ("[vvar]", "[vvar_vclock]",
			    "[vsyscall]"):
				continue
			lo, hi = (int(x, 16) for x in f[0].split("-"))
			# Sanitizer shadow and reserve regions span terabytes of
			# address space that holds no data of ours.
			if hi - lo > MEMSCAN_MAX_MAPPING:
				continue
			keep = max(len(n) for n in needles.values()) - 1
			tail = b""
			pos = lo
			while pos < hi:
				try:
					mem.seek(pos)
					chunk = mem.read(min(MEMSCAN_CHUNK, hi - pos))
				except (OSError, ValueError, OverflowError):
					break
				if not chunk:
					break
				total += len(chunk)
				data = tail + chunk
				for label, n in needles.items():
					hits[label] += data.count(n)
				# Keep the end, so a needle across chunks is found
				# once and one inside the kept tail is not recounted.
				tail = data[-keep:] if keep > 0 else b""
				for label, n in needles.items():
					hits[label] -= tail.count(n)
				pos += len(chunk)
			for label, n in needles.items():
				hits[label] += tail.count(n)
	return hits, total


# ---------------------------------------------------------------- hostile

def hostile_hellos(rng, count):
	"""count byte strings a broken or malicious TLS client might send."""
	hello = hello_bytes()
	hello_rsa = hello_bytes(ciphers="ECDHE-RSA-AES128-GCM-SHA256")
	kinds = []
	for i in range(count):
		k = i % 10
		if k == 0:
			data = rng.randbytes(rng.randint(1, 600))
		elif k == 1:
			data = hello[:rng.randint(1, len(hello) - 1)]
		elif k == 2:
			data = hello_rsa[:rng.randint(1, len(hello_rsa) - 1)]
		elif k == 3:
			data = b""			# connect and close
		elif k == 4:
			# A handshake record header that announces too much.
			data = b"\x16\x03\x01" + rng.choice((b"\xff\xff",
			    b"\x40\x01", b"\x00\x00")) + rng.randbytes(
			    rng.randint(0, 64))
		elif k == 5:
			# A ClientHello with bytes flipped inside it.
			b = bytearray(hello)
			for _ in range(rng.randint(1, 8)):
				b[rng.randrange(5, len(b))] = rng.randrange(256)
			data = bytes(b)
		elif k == 6:
			# The right record length, a wrong handshake length.
			b = bytearray(hello)
			b[6:9] = rng.randbytes(3)
			data = bytes(b)
		elif k == 7:
			data = rng.choice((b"EHLO x\r\n", b"GET / HTTP/1.0\r\n\r\n",
			    b"\x80\x2e\x01\x00\x02" + rng.randbytes(40),
			    b"\x15\x03\x03\x00\x02\x02\x28"))
		elif k == 8:
			# A whole ClientHello, then garbage records.
			data = hello + b"\x17\x03\x03\x00\x20" + rng.randbytes(32)
		else:
			data = hello + rng.randbytes(rng.randint(1, 300))
		kinds.append((k, data))
	return kinds


def throw(port, data, linger=0.0):
	"""Connect, write data, maybe read a little, close."""
	s = socket.create_connection(("127.0.0.1", port), timeout=5)
	try:
		if data:
			with contextlib.suppress(OSError):
				s.sendall(data)
		if linger:
			s.settimeout(linger)
			with contextlib.suppress(OSError):
				s.recv(65536)
	finally:
		s.close()


# ---------------------------------------------------------------- Postfix

POSTFIX_MASTER_CF = """\
# A private Postfix for the Postern TLS tests: no chroot, own ports.
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


class PrivatePostfix:
	"""
	A Postfix of its own under DIR: config_directory DIR/etc,
	queue_directory DIR/spool, data_directory DIR/data, log DIR/maillog.
	It relays everything to [127.0.0.1]:relay_port with mandatory TLS.
	/etc/postfix is never written; only `postfix -c DIR/etc` is used.
	"""

	def __init__(self, directory, relay_port, ca, security="encrypt"):
		self.dir = directory
		self.etc = os.path.join(directory, "etc")
		self.spool = os.path.join(directory, "spool")
		self.data = os.path.join(directory, "data")
		self.maillog = os.path.join(directory, "maillog")
		self.port = H.free_port()
		self.started = False
		os.makedirs(self.etc, 0o755)
		os.makedirs(self.spool, 0o755)
		os.makedirs(self.data, 0o700)
		pf = subprocess.run(["id", "-u", "postfix"], capture_output=True,
		    text=True)
		if pf.returncode == 0:
			os.chown(self.data, int(pf.stdout), -1)
		main = {
		    "compatibility_level": "3.6",
		    "queue_directory": self.spool,
		    "data_directory": self.data,
		    "mail_owner": "postfix",
		    "myhostname": "pf.client.test",
		    "mydomain": "client.test",
		    "myorigin": "$myhostname",
		    "mydestination": "",
		    "inet_interfaces": "127.0.0.1",
		    "inet_protocols": "ipv4",
		    "mynetworks": "127.0.0.0/8",
		    "relayhost": "[127.0.0.1]:%d" % relay_port,
		    "smtp_tls_security_level": security,
		    "smtp_tls_CAfile": ca,
		    "smtp_tls_loglevel": "1",
		    "disable_dns_lookups": "yes",
		    "maillog_file": self.maillog,
		    "maillog_file_prefixes": "/tmp",
		    "alias_maps": "",
		    "alias_database": "",
		    "local_recipient_maps": "",
		    "smtpd_relay_restrictions":
			"permit_mynetworks, reject_unauth_destination",
		    "biff": "no",
		    "append_dot_mydomain": "no",
		    "smtputf8_enable": "no",
		    "smtp_connect_timeout": "10s",
		    "maximal_backoff_time": "10s",
		    "minimal_backoff_time": "5s",
		    "queue_run_delay": "5s",
		}
		with open(os.path.join(self.etc, "main.cf"), "w") as f:
			for k, v in main.items():
				f.write("%s = %s\n" % (k, v))
		with open(os.path.join(self.etc, "master.cf"), "w") as f:
			f.write(POSTFIX_MASTER_CF.format(port=self.port))

	def run(self, *args, timeout=60, input=None):
		r = subprocess.run(list(args), capture_output=True, timeout=timeout,
		    input=input)
		return r.returncode, (r.stdout + r.stderr).decode(
		    errors="replace")

	def start(self):
		rc, out = self.run("postfix", "-c", self.etc, "start")
		self.started = rc == 0
		if rc != 0:
			# postfix(1) writes its errors to stderr only on a tty.
			_, out2 = self.run("script", "-qec", "postfix -c %s check"
			    % self.etc, "/dev/null")
			out += out2
			raise H.HarnessError("postfix -c %s start: exit %d\n%s\n"
			    "maillog:\n%s" % (self.etc, rc, out, self.log()))
		# The pickup service must be listening before sendmail drops mail.
		deadline = time.monotonic() + 15
		while time.monotonic() < deadline:
			if os.path.exists(os.path.join(self.spool, "public",
			    "pickup")):
				return self
			time.sleep(0.1)
		raise H.HarnessError("postfix pickup did not appear; maillog:\n"
		    + self.log())

	def sendmail(self, sender, rcpts, data):
		"""Inject data with this Postfix's sendmail -C DIR/etc."""
		rc, out = self.run("/usr/sbin/sendmail", "-C", self.etc, "-f",
		    sender, "-i", "--", *rcpts, input=data)
		if rc != 0:
			raise AssertionError("postfix sendmail: exit %d\n%s" %
			    (rc, out))

	def log(self):
		try:
			with open(self.maillog, errors="replace") as f:
				return f.read()[-6000:]
		except OSError as e:
			return "(no maillog: %s)" % e

	def stop(self):
		if not self.started:
			return
		rc, _ = self.run("postfix", "-c", self.etc, "stop", timeout=30)
		if rc != 0:
			self.run("postfix", "-c", self.etc, "abort", timeout=30)
		# Wait for the master to go; abort if it lingers.
		pidfile = os.path.join(self.spool, "pid", "master.pid")
		deadline = time.monotonic() + 10
		while time.monotonic() < deadline:
			try:
				with open(pidfile) as f:
					pid = int(f.read().strip())
				os.kill(pid, 0)
			except (OSError, ValueError):
				break
			time.sleep(0.1)
		else:
			self.run("postfix", "-c", self.etc, "abort", timeout=30)
		self.started = False


# ---------------------------------------------------------------- testssl

def testssl_path():
	return shutil.which("testssl") or shutil.which("testssl.sh")


def run_testssl(outdir, label, target, extra=(), timeout=150):
	"""
	Run testssl.sh against target; (findings, summary text, seconds).
	Findings are the entries of its flat JSON file; the summary (its
	stdout) stays in outdir/testssl-LABEL.txt.
	"""
	exe = testssl_path()
	jsonfile = os.path.join(outdir, "testssl-%s.json" % label)
	txt = os.path.join(outdir, "testssl-%s.txt" % label)
	for p in (jsonfile, txt):
		with contextlib.suppress(FileNotFoundError):
			os.unlink(p)
	cmd = [exe, "--quiet", "--color", "0", "--warnings", "batch",
	    "--fast", "--jsonfile", jsonfile] + list(extra) + [target]
	t0 = time.monotonic()
	with open(txt, "wb") as out:
		out.write(("$ %s\n" % " ".join(cmd)).encode())
		out.flush()
		proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
		    stderr=subprocess.STDOUT, cwd=outdir, start_new_session=True)
	try:
		rc = proc.wait(timeout)
	except subprocess.TimeoutExpired:
		# testssl.sh is a tree of bash and openssl processes.
		with contextlib.suppress(ProcessLookupError):
			os.killpg(proc.pid, signal.SIGKILL)
		proc.wait(10)
		rc = "killed after %d s" % timeout
	secs = time.monotonic() - t0
	with open(txt, errors="replace") as f:
		summary = f.read()
	summary += "\n(exit status %s, %.0f s)\n" % (rc, secs)
	if not isinstance(rc, int):
		raise AssertionError("testssl.sh did not finish in %d s; output:"
		    "\n%s" % (timeout, summary))
	try:
		with open(jsonfile) as f:
			findings = json.load(f)
	except (OSError, ValueError) as e:
		raise AssertionError("testssl.sh wrote no JSON (%s); output:\n%s"
		    % (e, summary))
	return findings, summary, secs
