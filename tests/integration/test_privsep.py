"""
test_privsep.py: privilege separation as ps(1) and /proc show it: who runs
each process, where it is chrooted, that it cannot regain privileges, the
spool layout, fail-closed supervision, and the refusal of an unsafe spool.
"""

import os
import pwd
import signal
import socket
import stat
import subprocess

import time

import pytest

import postern_harness as H

CHILDREN = {
    "postern-smtpd": "_postern_smtpd",
    "postern-tlsd": "_postern_tlsd",
    "postern-queue": "_postern_queue",
}


@pytest.fixture(scope="module")
def mta():
	# One TLS worker, so each program has exactly one process here; the
	# pool is checked by test_tls_worker_pool.
	with H.running_instance(extra_global=["tls workers 1"]) as inst:
		yield inst


def child_pids(inst):
	return {kind: inst.child_pid(kind) for kind in CHILDREN}


def test_process_users(mta):
	pids = child_pids(mta)
	users = H.ps_users(list(pids.values()) + [mta.proc.pid])
	assert users.get(mta.proc.pid) == "root", "posternd runs as %r" % \
	    users.get(mta.proc.pid)
	for kind, user in CHILDREN.items():
		assert users.get(pids[kind]) == user, "%s (pid %d) runs as %r, " \
		    "not %s" % (kind, pids[kind], users.get(pids[kind]), user)
		uid = pwd.getpwnam(user).pw_uid
		real, eff, saved, fs = map(int, H.proc_status(pids[kind])[
		    "Uid"].split())
		assert (real, eff, saved, fs) == (uid,) * 4, "%s Uid: %r" % (
		    kind, (real, eff, saved, fs))


def test_groups_dropped(mta):
	for kind, pid in child_pids(mta).items():
		st = H.proc_status(pid)
		gids = [int(g) for g in st["Gid"].split()]
		groups = [int(g) for g in st["Groups"].split()]
		assert 0 not in gids, "%s runs with gid 0: %r" % (kind, gids)
		assert 0 not in groups, "%s keeps supplementary group 0: %r" % (
		    kind, groups)


def test_chroots(mta):
	pids = child_pids(mta)
	want = {
	    "postern-smtpd": os.path.join(mta.spool, "empty"),
	    "postern-tlsd": os.path.join(mta.spool, "empty"),
	    "postern-queue": mta.spool,
	}
	for kind, root in want.items():
		got = os.readlink("/proc/%d/root" % pids[kind])
		assert got == root, "%s chrooted to %r, not %r" % (kind, got, root)
	assert os.readlink("/proc/%d/root" % mta.proc.pid) == "/"


def test_no_new_privs_and_no_capabilities(mta):
	for kind, pid in child_pids(mta).items():
		st = H.proc_status(pid)
		assert st.get("NoNewPrivs") == "1", "%s NoNewPrivs: %r" % (kind,
		    st.get("NoNewPrivs"))
		for cap in ("CapEff", "CapPrm"):
			assert int(st[cap], 16) == 0, "%s %s: %s" % (kind, cap,
			    st[cap])


def test_spool_layout(mta):
	st = os.stat(mta.spool)
	assert (st.st_uid, st.st_gid) == (0, 0)
	assert stat.S_IMODE(st.st_mode) == 0o711, oct(st.st_mode)
	q = os.path.join(mta.spool, "queue")
	st = os.stat(q)
	assert st.st_uid == pwd.getpwnam("_postern_queue").pw_uid
	assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
	assert os.path.isfile(os.path.join(q, "queue.db"))
	with open(os.path.join(q, "queue.db"), "rb") as f:
		assert f.read(16) == b"SQLite format 3\0"
	e = os.path.join(mta.spool, "empty")
	st = os.stat(e)
	assert st.st_uid == 0
	assert not st.st_mode & 0o022, "empty chroot writable: %o" % \
	    st.st_mode
	assert os.listdir(e) == [], "the chroot of smtpd/tlsd is not empty"


def test_child_death_fails_closed(instance):
	inst = instance
	os.kill(inst.child_pid("postern-smtpd"), signal.SIGKILL)
	try:
		rc = inst.proc.wait(5)
	except subprocess.TimeoutExpired:
		raise AssertionError("posternd still running 5 s after its "
		    "smtpd child was killed") from None
	assert rc > 0, "posternd exit status %d (non-zero exit expected, not "\
	    "a signal)" % rc
	left = inst.wait_gone(5)
	assert not left, "children left after the parent exited:\n" + \
	    inst.describe_processes()
	with pytest.raises(OSError):
		socket.create_connection(("127.0.0.1", inst.port), timeout=2)


@pytest.mark.parametrize("mode,owner", [(0o777, "root"), (0o1777, "root"),
    (0o731, "root"), (0o711, H.DEV_USER)],
    ids=["world-writable", "sticky-world-writable", "group-writable",
    "not-root-owned"])
def test_refuses_unsafe_spool(instance_factory, mode, owner):
	inst = instance_factory()
	os.mkdir(inst.spool)
	os.chmod(inst.spool, mode)
	pw = pwd.getpwnam(owner)
	os.chown(inst.spool, pw.pw_uid, pw.pw_gid if owner != "root" else 0)
	inst.start(wait=False)
	try:
		rc = inst.proc.wait(10)
	except subprocess.TimeoutExpired:
		raise AssertionError("posternd started with an unsafe spool (mode "
		    "%o owner %s)" % (mode, owner)) from None
	assert rc == 1, "exit status %d" % rc
	log = inst.log_text()
	msg = [l for l in log.splitlines() if not l.startswith("=====")]
	assert msg, "no message on stderr"
	assert not os.path.exists(os.path.join(inst.spool, "queue")), \
	    "posternd used the unsafe spool"


def test_tls_worker_pool():
	"""tls workers N runs N tlsd processes, each as _postern_tlsd."""
	with H.running_instance(extra_global=["tls workers 3"]) as inst:
		# Each worker drops to its user right after exec: wait for it.
		deadline = time.monotonic() + 5
		while True:
			pids = inst.children().get("postern-tlsd", [])
			users = H.ps_users(pids)
			if (len(pids) == 3 and all(users.get(p) == "_postern_tlsd"
			    for p in pids)) or time.monotonic() > deadline:
				break
			time.sleep(0.05)
		assert len(pids) == 3, inst.describe_processes()
		assert all(users.get(p) == "_postern_tlsd" for p in pids), users
