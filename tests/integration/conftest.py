"""
conftest.py: fixtures for the Postern integration suite.

Run as root from this directory:
    POSTERN_BUILD=/abs/build /usr/bin/python3 -m pytest -q -x -p no:cacheprovider .
POSTERN_KEEP=1 keeps each instance's /tmp/postern-test-* directory (config,
spool, maildirs, posternd.log) for inspection.
SECURITY: tests run as root and signal only the processes of the instances
they started (process tree and session of each posternd).
"""

import signal
import time

import pytest

import postern_harness as H

# Hard limit per test phase, so that a hung daemon cannot hang the suite.
PHASE_LIMIT = 120


class PhaseTimeout(Exception):
	pass


def _alarm(signum, frame):
	raise PhaseTimeout("test phase exceeded %d s" % PHASE_LIMIT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
	item._postern_since = time.monotonic()
	item._postern_offsets = {id(i): i.log_offset() for i in
	    H.instances_for_report(item._postern_since)}
	old = signal.signal(signal.SIGALRM, _alarm)
	signal.alarm(PHASE_LIMIT)
	try:
		yield
	finally:
		signal.alarm(0)
		signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
	old = signal.signal(signal.SIGALRM, _alarm)
	signal.alarm(PHASE_LIMIT)
	try:
		yield
	finally:
		signal.alarm(0)
		signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
	old = signal.signal(signal.SIGALRM, _alarm)
	signal.alarm(PHASE_LIMIT)
	try:
		yield
	finally:
		signal.alarm(0)
		signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
	"""On failure, attach the log tail and processes of every instance."""
	outcome = yield
	rep = outcome.get_result()
	if not rep.failed:
		return
	since = getattr(item, "_postern_since", 0)
	offsets = getattr(item, "_postern_offsets", {})
	for inst in H.instances_for_report(since):
		try:
			procs = inst.describe_processes()
		except Exception as e:		# report what we can
			procs = "(cannot list: %s)" % e
		off = offsets.get(id(inst), 0)
		rep.sections.append(("posternd log%s, %s (port %d)" % (
		    " since the test started" if off else "", inst.dir,
		    inst.port), inst.log_tail(80, since=off)))
		rep.sections.append(("postern processes, %s" % inst.dir, procs))


@pytest.fixture(scope="session", autouse=True)
def preflight():
	problems = H.preflight()
	if problems:
		pytest.fail("integration suite cannot run:\n  " +
		    "\n  ".join(problems), pytrace=False)


@pytest.fixture
def instance_factory():
	"""make(**Instance kwargs) -> a new, not yet started Instance."""
	made = []

	def make(**kw):
		inst = H.Instance(**kw)
		made.append(inst)
		return inst

	yield make
	for inst in reversed(made):
		inst.cleanup()


@pytest.fixture
def instance(instance_factory):
	"""A started instance with the base configuration, for one test."""
	return instance_factory().start()


@pytest.fixture
def tls_instance_factory():
	"""make(**TLSInstance kwargs) -> a new, not yet started TLSInstance."""
	import tls_support

	made = []

	def make(**kw):
		inst = tls_support.TLSInstance(**kw)
		made.append(inst)
		return inst

	yield make
	for inst in reversed(made):
		inst.cleanup()
