"""
test_config_cli.py: posternd -n (check the configuration) and -D macros,
as an administrator runs them: exit status and file:line:col messages.
"""

import os
import re
import subprocess

import pytest

import postern_harness as H


def posternd(*args):
	return subprocess.run([os.path.join(H.BUILD, "posternd")] + list(args),
	    capture_output=True, text=True, timeout=15)


@pytest.fixture
def conf(instance_factory):
	"""A not started instance: its directory and base config."""
	return instance_factory()


def lines_of(inst):
	return inst.config_text().splitlines()


def test_check_good_config(conf):
	r = posternd("-n", "-f", conf.conf_path)
	assert r.returncode == 0, "posternd -n on the base config: exit %d\n%s" \
	    % (r.returncode, r.stderr)
	assert not os.path.exists(conf.spool) or \
	    not os.listdir(conf.spool), "-n must not set up the spool"


def _find(lines, prefix):
	for i, l in enumerate(lines):
		if l.startswith(prefix):
			return i
	raise AssertionError("no line starting with %r" % prefix)


def bad_unknown_keyword(lines):
	lines.insert(3, "frobnicate yes")
	return 4, 1

def bad_size(lines):
	i = _find(lines, "max-message-size")
	lines[i] = "max-message-size 12Q"
	return i + 1, len("max-message-size ") + 1

def bad_missing_action(lines):
	i = _find(lines, "match from any")
	lines[i] = lines[i].replace('action "local"', 'action "nosuch"')
	return i + 1, None

def bad_unterminated_string(lines):
	i = _find(lines, "hostname")
	lines[i] = 'hostname "test.postern'
	return i + 1, None

def bad_undefined_table(lines):
	i = _find(lines, "action \"local\"")
	lines[i] = lines[i].replace("<vusers>", "<nosuchtable>")
	return i + 1, None

def bad_port(lines):
	i = _find(lines, "listen on")
	lines[i] = "listen on 127.0.0.1 port 99999"
	return i + 1, None

def bad_duration(lines):
	i = _find(lines, "timeout")
	lines[i] = "timeout 30 parsecs"
	return i + 1, None


BAD = [bad_unknown_keyword, bad_size, bad_missing_action,
    bad_unterminated_string, bad_undefined_table, bad_port, bad_duration]


@pytest.mark.parametrize("breaker", BAD,
    ids=[f.__name__[4:] for f in BAD])
def test_check_bad_config(conf, breaker):
	lines = lines_of(conf)
	line, col = breaker(lines)
	conf.write_config("\n".join(lines) + "\n")
	r = posternd("-n", "-f", conf.conf_path)
	assert r.returncode == 1, "exit %d on a bad config\nstderr: %s" % (
	    r.returncode, r.stderr)
	m = re.search(re.escape(conf.conf_path) + r":(\d+):(\d+): \S",
	    r.stderr)
	assert m, "no 'file:line:col: message' on stderr:\n%s" % r.stderr
	assert int(m.group(1)) == line, "error at line %s, expected %d:\n%s" \
	    % (m.group(1), line, r.stderr)
	if col is not None:
		assert int(m.group(2)) == col, "error at column %s, expected " \
		    "%d:\n%s" % (m.group(2), col, r.stderr)


def test_missing_config_file(conf):
	r = posternd("-n", "-f", conf.path("nonexistent.conf"))
	assert r.returncode == 1
	assert "nonexistent.conf" in r.stderr


def macro_config(inst):
	return inst.config_text().replace('queue "%s"' % inst.spool,
	    'queue "$spool"')


def test_macro_check(conf):
	conf.write_config(macro_config(conf))
	r = posternd("-n", "-f", conf.conf_path, "-D",
	    "spool=" + conf.path("spool2"))
	assert r.returncode == 0, "exit %d\n%s" % (r.returncode, r.stderr)


def test_macro_undefined(conf):
	conf.write_config(macro_config(conf))
	r = posternd("-n", "-f", conf.conf_path)
	assert r.returncode == 1, "undefined macro accepted: exit %d\n%s" % (
	    r.returncode, r.stderr)
	line = _find(lines_of(conf), "queue") + 1
	assert re.search(re.escape(conf.conf_path) + r":%d:\d+: \S" % line,
	    r.stderr), r.stderr


def test_macro_runs_daemon(conf):
	spool = conf.path("spool2")
	conf.write_config(macro_config(conf))
	conf.spool = spool		# the harness's view of where it is
	conf.start(args=["-D", "spool=" + spool])
	assert os.path.isdir(os.path.join(spool, "queue")), \
	    "the -D spool was not used"
	tok = H.new_token("macro")
	data = H.make_message(tok)
	conf.send("sender@client.test", ["alice@test.postern"], data)
	H.assert_delivered(conf, "alice", tok, data)
