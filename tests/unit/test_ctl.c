/*
 * test_ctl.c: unit tests for posternctl's formatters (ctl/ctl_format.c):
 * ids, ages, sizes, terminal and JSON escaping, the queue table line,
 * JSON envelopes, headers, statistics as text, JSON and OpenMetrics, the
 * monitor line; and the reply reader (ctl/ctl_client.c) on a socketpair.
 * SECURITY: test code; exact bytes are compared, so any unescaped
 * control character or misplaced column fails.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../ctl/ctl.h"

#define NOW	1700000000LL

/* ---------------------------------------------------------------- ids */

static void
test_parse_id(void **state)
{
	uint64_t	 id = 99;

	assert_int_equal(ctl_parse_id("all", &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(ctl_parse_id("0123456789abcdef", &id), 0);
	assert_true(id == 0x0123456789abcdefULL);
	assert_int_equal(ctl_parse_id("FFFFFFFFFFFFFFFF", &id), 0);
	assert_true(id == UINT64_MAX);
	assert_int_equal(ctl_parse_id("00000000000000A1", &id), 0);
	assert_true(id == 0xa1);

	id = 7;
	assert_int_equal(ctl_parse_id("0123456789abcde", &id), -1);
	assert_int_equal(ctl_parse_id("0123456789abcdef0", &id), -1);
	assert_int_equal(ctl_parse_id("0123456789abcdeg", &id), -1);
	assert_int_equal(ctl_parse_id("xyz", &id), -1);
	assert_int_equal(ctl_parse_id("", &id), -1);
	assert_int_equal(ctl_parse_id("ALL", &id), -1);
	assert_int_equal(ctl_parse_id("all ", &id), -1);
	assert_int_equal(ctl_parse_id(" 123456789abcdef", &id), -1);
	assert_int_equal(ctl_parse_id("0x23456789abcdef", &id), -1);
	assert_int_equal(ctl_parse_id("-123456789abcdef", &id), -1);
	/* zero means "all" on the wire: only the word says it */
	assert_int_equal(ctl_parse_id("0000000000000000", &id), -1);
	assert_int_equal(id, 7);
}

/* ---------------------------------------------------------------- values */

#define AGE(s, want) do {						\
	char b_[CTL_SHORTLEN];						\
	assert_int_equal(ctl_fmt_age(b_, sizeof(b_), (s)), 0);		\
	assert_string_equal(b_, (want));				\
} while (0)

static void
test_fmt_age(void **state)
{
	char	 small[3];

	AGE(0, "0s");
	AGE(45, "45s");
	AGE(59, "59s");
	AGE(60, "1m");
	AGE(12 * 60 + 59, "12m");
	AGE(3599, "59m");
	AGE(3600, "1h");
	AGE(3 * 3600 + 1800, "3h");
	AGE(86399, "23h");
	AGE(86400, "1d");
	AGE(2 * 86400 + 7 * 3600, "2d");
	AGE(400 * 86400, "400d");
	AGE(-5, "0s");
	AGE(INT64_MIN, "0s");
	AGE(INT64_MAX, "106751991167300d");
	/* does not fit: refused and empty, not cut */
	assert_int_equal(ctl_fmt_age(small, sizeof(small), 45), -1);
	assert_string_equal(small, "");
	assert_int_equal(ctl_fmt_age(small, sizeof(small), 5), 0);
	assert_string_equal(small, "5s");
	assert_int_equal(ctl_fmt_age(small, 0, 5), -1);
}

#define SIZE(n, want) do {						\
	char b_[CTL_SHORTLEN];						\
	assert_int_equal(ctl_fmt_size(b_, sizeof(b_), (n)), 0);		\
	assert_string_equal(b_, (want));				\
} while (0)

static void
test_fmt_size(void **state)
{
	char	 small[5];

	SIZE(0, "0B");
	SIZE(512, "512B");
	SIZE(1023, "1023B");
	SIZE(1024, "1.0K");
	SIZE(4096, "4.0K");
	SIZE(1536, "1.5K");
	SIZE(10188, "9.9K");
	SIZE(10189, "10K");		/* 9.95K rounds to 10 */
	SIZE(12 * 1024, "12K");
	SIZE(1023 * 1024, "1023K");
	SIZE(1048575, "1.0M");		/* 1023.999K is not "1024K" */
	SIZE(1048576, "1.0M");
	SIZE(1572864, "1.5M");
	SIZE(35ULL << 20, "35M");
	SIZE(5ULL << 30, "5.0G");
	SIZE(3ULL << 40, "3.0T");
	SIZE(1ULL << 50, "1.0P");
	SIZE(1ULL << 60, "1.0E");
	SIZE(UINT64_MAX, "16E");
	assert_int_equal(ctl_fmt_size(small, sizeof(small), 4096), 0);
	assert_string_equal(small, "4.0K");
	assert_int_equal(ctl_fmt_size(small, 4, 4096), -1);
	assert_string_equal(small, "");
}

static void
test_fmt_next(void **state)
{
	char	 b[CTL_SHORTLEN];

	assert_int_equal(ctl_fmt_next(b, sizeof(b), NOW, NOW), 0);
	assert_string_equal(b, "now");
	assert_int_equal(ctl_fmt_next(b, sizeof(b), NOW - 100, NOW), 0);
	assert_string_equal(b, "now");
	assert_int_equal(ctl_fmt_next(b, sizeof(b), 0, NOW), 0);
	assert_string_equal(b, "now");
	assert_int_equal(ctl_fmt_next(b, sizeof(b), NOW + 30, NOW), 0);
	assert_string_equal(b, "30s");
	assert_int_equal(ctl_fmt_next(b, sizeof(b), NOW + 3600, NOW), 0);
	assert_string_equal(b, "1h");
	assert_int_equal(ctl_fmt_next(b, sizeof(b), INT64_MAX, -10), 0);
	assert_string_equal(b, "106751991167300d");
	/* what a broken server sends cannot overflow */
	assert_int_equal(ctl_fmt_next(b, sizeof(b), INT64_MAX, INT64_MIN), 0);
	assert_string_equal(b, "106751991167300d");

	assert_string_equal(ctl_state_name(CTL_STATE_PENDING), "pending");
	assert_string_equal(ctl_state_name(CTL_STATE_INFLIGHT), "in-flight");
	assert_string_equal(ctl_state_name(CTL_STATE_DEFERRED), "deferred");
	assert_string_equal(ctl_state_name(CTL_STATE_HELD), "held");
	assert_string_equal(ctl_state_name(9), "?");
}

/* ---------------------------------------------------------------- escaping */

#define JSON(in, want) do {						\
	struct ctl_buf b_;						\
	ctl_buf_init(&b_);						\
	ctl_escape_json(&b_, (in));					\
	assert_false(b_.failed);					\
	assert_string_equal(ctl_buf_str(&b_), (want));			\
	ctl_buf_free(&b_);						\
} while (0)

static void
test_escape_json(void **state)
{
	struct ctl_buf	 b;

	JSON("", "\"\"");
	JSON("plain text", "\"plain text\"");
	JSON("a\"b", "\"a\\\"b\"");
	JSON("back\\slash", "\"back\\\\slash\"");
	JSON("\\\"", "\"\\\\\\\"\"");
	JSON("line\r\nnext\ttab", "\"line\\u000d\\u000anext\\u0009tab\"");
	JSON("\x01\x1f\x7f\x1b[31m", "\"\\u0001\\u001f\\u007f\\u001b[31m\"");
	JSON("/", "\"/\"");
	/* UTF-8 passes through, 2, 3 and 4 byte forms */
	JSON("\xc3\xa9t\xc3\xa9", "\"\xc3\xa9t\xc3\xa9\"");
	JSON("\xe2\x82\xac \xf0\x9f\x93\xa8",
	    "\"\xe2\x82\xac \xf0\x9f\x93\xa8\"");
	JSON("\xe2\x80\xa8", "\"\xe2\x80\xa8\"");
	/* not UTF-8: one replacement per byte, the rest stays */
	JSON("a\xff" "b", "\"a\\ufffdb\"");
	JSON("\xc0\xaf", "\"\\ufffd\\ufffd\"");			/* overlong */
	JSON("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");	/* surrogate */
	JSON("\xc3", "\"\\ufffd\"");				/* truncated */
	JSON("\xe2\x82" "x", "\"\\ufffd\\ufffdx\"");

	/* bytes with NUL inside */
	ctl_buf_init(&b);
	ctl_escape_json_bytes(&b, (const uint8_t *)"a\0b", 3);
	assert_string_equal(ctl_buf_str(&b), "\"a\\u0000b\"");
	ctl_buf_free(&b);
}

#define TEXT(in, want) do {						\
	struct ctl_buf b_;						\
	ctl_buf_init(&b_);						\
	ctl_escape_text(&b_, (in));					\
	assert_false(b_.failed);					\
	assert_string_equal(ctl_buf_str(&b_), (want));			\
	ctl_buf_free(&b_);						\
} while (0)

static void
test_escape_text(void **state)
{
	TEXT("", "");
	TEXT("451 4.2.0 try later", "451 4.2.0 try later");
	TEXT("a\\b", "a\\\\b");
	TEXT("a\tb\rc\nd", "a\\tb\\rc\\nd");
	TEXT("\x1b[2J\x07\x7f", "\\x1B[2J\\x07\\x7F");
	TEXT("\xc3\xa9t\xc3\xa9 \xf0\x9f\x93\xa8", "\xc3\xa9t\xc3\xa9 "
	    "\xf0\x9f\x93\xa8");
	/* C1 controls (U+0085, U+009B CSI) are controls too */
	TEXT("x\xc2\x85y\xc2\x9b", "x\\xC2\\x85y\\xC2\\x9B");
	TEXT("\xc2\xa0", "\xc2\xa0");		/* U+00A0 is printable */
	TEXT("\xff\xc0\xaf", "\\xFF\\xC0\\xAF");
	TEXT("\"quoted\"", "\"quoted\"");
}

static void
test_text_columns(void **state)
{
	assert_int_equal(ctl_text_columns("", 0), 0);
	assert_int_equal(ctl_text_columns("abc", 3), 3);
	assert_int_equal(ctl_text_columns("\xc3\xa9t\xc3\xa9", 5), 3);
	assert_int_equal(ctl_text_columns("\xf0\x9f\x93\xa8!", 5), 2);
}

/* ---------------------------------------------------------------- table */

static struct msg_ctl_envelope
sample_envelope(void)
{
	struct msg_ctl_envelope	 e;

	memset(&e, 0, sizeof(e));
	e.evpid = 0x0123456789abcdefULL;
	e.msgid = 0x0123456700000000ULL;
	strlcpy(e.sender, "bob@example.org", sizeof(e.sender));
	strlcpy(e.rcpt, "carol@test.postern", sizeof(e.rcpt));
	e.state = CTL_STATE_DEFERRED;
	e.attempts = 3;
	e.ctime = NOW - 2 * 3600 - 5;
	e.next_try = NOW + 12 * 60;
	e.size = 4096;
	strlcpy(e.last_error, "450 4.2.0 mailbox \x1b[1mbusy\r\n",
	    sizeof(e.last_error));
	return e;
}

/* The table of header + rows as ctl_fmt_row writes it. */
static char *
table_of(const struct msg_ctl_envelope *e, size_t n, size_t maxcols)
{
	struct ctl_row	 head, *rows;
	struct ctl_buf	 b;
	size_t		 width[CTL_NCOLS], i;
	char		*s;

	memset(width, 0, sizeof(width));
	assert_int_equal(ctl_row_header(&head), 0);
	ctl_row_widths(&head, width);
	rows = calloc(n, sizeof(*rows));
	assert_non_null(rows);
	for (i = 0; i < n; i++) {
		assert_int_equal(ctl_row_envelope(&rows[i], &e[i], NOW), 0);
		ctl_row_widths(&rows[i], width);
	}
	ctl_buf_init(&b);
	ctl_fmt_row(&b, &head, width, maxcols);
	for (i = 0; i < n; i++) {
		ctl_fmt_row(&b, &rows[i], width, maxcols);
		ctl_row_free(&rows[i]);
	}
	ctl_row_free(&head);
	free(rows);
	assert_false(b.failed);
	s = strdup(ctl_buf_str(&b));
	ctl_buf_free(&b);
	return s;
}

static void
test_envelope_line(void **state)
{
	struct msg_ctl_envelope	 e = sample_envelope();
	char			*t;

	t = table_of(&e, 1, 0);
	assert_string_equal(t,
	    "ID                AGE  SIZE  SENDER           RECIPIENT           "
	    "STATE     ATTEMPTS  NEXT  ERROR\n"
	    "0123456789abcdef   2h  4.0K  bob@example.org  carol@test.postern  "
	    "deferred         3  12m   450 4.2.0 mailbox \\x1B[1mbusy\\r\\n\n");
	free(t);
}

static void
test_envelope_line_states(void **state)
{
	struct msg_ctl_envelope	 e[3];
	char			*t;

	e[0] = sample_envelope();
	e[0].sender[0] = '\0';		/* null sender */
	e[0].state = CTL_STATE_PENDING;
	e[0].attempts = 0;
	e[0].next_try = NOW - 1;
	e[0].last_error[0] = '\0';
	e[0].size = 100;
	e[0].ctime = NOW;
	e[1] = sample_envelope();
	e[1].evpid = 0xfedcba9876543210ULL;
	e[1].state = CTL_STATE_HELD;
	e[1].attempts = 12;
	strlcpy(e[1].rcpt, "\xc3\xa9t\xc3\xa9@test.postern",
	    sizeof(e[1].rcpt));
	e[1].ctime = NOW + 50;		/* clock skew: age 0 */
	e[2] = sample_envelope();
	e[2].evpid = 1;
	e[2].state = CTL_STATE_INFLIGHT;
	e[2].last_error[0] = '\0';
	e[2].ctime = NOW - 3 * 86400;
	e[2].size = 35ULL << 20;
	t = table_of(e, 3, 0);
	assert_string_equal(t,
	    "ID                AGE  SIZE  SENDER           RECIPIENT           "
	    "STATE      ATTEMPTS  NEXT  ERROR\n"
	    "0123456789abcdef   0s  100B  <>               carol@test.postern  "
	    "pending           0  now   -\n"
	    "fedcba9876543210   0s  4.0K  bob@example.org  \xc3\xa9t\xc3\xa9"
	    "@test.postern    held             12  -     450 4.2.0 mailbox "
	    "\\x1B[1mbusy\\r\\n\n"
	    "0000000000000001   3d   35M  bob@example.org  carol@test.postern  "
	    "in-flight         3  -     -\n");
	free(t);
}

static void
test_envelope_line_cut(void **state)
{
	struct msg_ctl_envelope	 e = sample_envelope();
	char			*t;

	strlcpy(e.last_error, "4.4.1 \xc3\xa9\xc3\xa9\xc3\xa9 timeout",
	    sizeof(e.last_error));
	/* the ERROR cell starts after column 92: keep 7 of its characters */
	t = table_of(&e, 1, 92 + 7);
	assert_string_equal(t,
	    "ID                AGE  SIZE  SENDER           RECIPIENT           "
	    "STATE     ATTEMPTS  NEXT  ERROR\n"
	    "0123456789abcdef   2h  4.0K  bob@example.org  carol@test.postern  "
	    "deferred         3  12m   4.4.1 \xc3\xa9\n");
	free(t);
	/* a cut inside the padding leaves no trailing blanks */
	t = table_of(&e, 1, 18);
	assert_string_equal(t, "ID\n0123456789abcdef\n");
	free(t);
}

static void
test_envelope_long_sender(void **state)
{
	struct msg_ctl_envelope	 e[2];
	char			*t;
	size_t			 i;

	e[0] = sample_envelope();
	e[1] = sample_envelope();
	for (i = 0; i < 60; i++)
		e[0].sender[i] = 'x';
	e[0].sender[60] = '\0';
	e[0].last_error[0] = '\0';
	e[1].last_error[0] = '\0';
	t = table_of(e, 2, 0);
	/* the column stops at 40; the long cell pushes its own line only */
	assert_string_equal(t,
	    "ID                AGE  SIZE  SENDER                              "
	    "      RECIPIENT           STATE     ATTEMPTS  NEXT  ERROR\n"
	    "0123456789abcdef   2h  4.0K  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxx  carol@test.postern  deferred         3"
	    "  12m   -\n"
	    "0123456789abcdef   2h  4.0K  bob@example.org                     "
	    "      carol@test.postern  deferred         3  12m   -\n");
	free(t);
}

static void
test_json_envelope(void **state)
{
	struct msg_ctl_envelope	 e = sample_envelope();
	struct ctl_buf		 b;

	strlcpy(e.sender, "\"odd\\\"@example.org", sizeof(e.sender));
	strlcpy(e.rcpt, "\xc3\xa9t\xc3\xa9@test.postern", sizeof(e.rcpt));
	ctl_buf_init(&b);
	ctl_json_envelope(&b, &e, NOW);
	assert_false(b.failed);
	assert_string_equal(ctl_buf_str(&b),
	    "{\"id\": \"0123456789abcdef\", "
	    "\"message_id\": \"0123456700000000\", "
	    "\"age_seconds\": 7205, \"size\": 4096, "
	    "\"sender\": \"\\\"odd\\\\\\\"@example.org\", "
	    "\"recipient\": \"\xc3\xa9t\xc3\xa9@test.postern\", "
	    "\"state\": \"deferred\", \"attempts\": 3, "
	    "\"next_try\": 1700000720, "
	    "\"last_error\": \"450 4.2.0 mailbox "
	    "\\u001b[1mbusy\\u000d\\u000a\"}");
	ctl_buf_free(&b);

	/* the null sender is "" for programs, held has its next_try */
	e = sample_envelope();
	e.sender[0] = '\0';
	e.last_error[0] = '\0';
	e.state = CTL_STATE_HELD;
	e.ctime = NOW + 10;
	ctl_buf_init(&b);
	ctl_json_envelope(&b, &e, NOW);
	assert_string_equal(ctl_buf_str(&b),
	    "{\"id\": \"0123456789abcdef\", "
	    "\"message_id\": \"0123456700000000\", "
	    "\"age_seconds\": 0, \"size\": 4096, \"sender\": \"\", "
	    "\"recipient\": \"carol@test.postern\", \"state\": \"held\", "
	    "\"attempts\": 3, \"next_try\": 1700000720, \"last_error\": \"\"}");
	ctl_buf_free(&b);

	/* an absurd creation time saturates instead of overflowing */
	e.ctime = INT64_MIN;
	e.next_try = INT64_MIN;
	e.size = UINT64_MAX;
	ctl_buf_init(&b);
	ctl_json_envelope(&b, &e, NOW);
	assert_non_null(strstr(ctl_buf_str(&b), "\"age_seconds\": "
	    "9223372036854775807, \"size\": 18446744073709551615, "));
	assert_non_null(strstr(ctl_buf_str(&b),
	    "\"next_try\": -9223372036854775808, "));
	ctl_buf_free(&b);
}

#define HEADERS(in, want) do {						\
	struct ctl_buf b_;						\
	ctl_buf_init(&b_);						\
	ctl_fmt_headers(&b_, (const uint8_t *)(in), sizeof(in) - 1);	\
	assert_string_equal(ctl_buf_str(&b_), (want));			\
	ctl_buf_free(&b_);						\
} while (0)

static void
test_headers(void **state)
{
	HEADERS("", "");
	HEADERS("Received: from a\r\n\tby b; now\r\nSubject: x\r\n",
	    "Received: from a\n\tby b; now\nSubject: x\n");
	HEADERS("Subject: no end", "Subject: no end\n");
	HEADERS("Bare: lf\nCr: in\rside\r\n", "Bare: lf\nCr: in\\rside\n");
	HEADERS("X: \x1b]0;title\x07\r\n", "X: \\x1B]0;title\\x07\n");
	HEADERS("X: a\0b\r\n", "X: a\\x00b\n");
	HEADERS("Subject: \xc3\xa9\xff\r\n", "Subject: \xc3\xa9\\xFF\n");
	HEADERS("\r\n\r\n", "\n\n");
}

/* ---------------------------------------------------------------- stats */

static const struct msg_ctl_stat stats[] = {
	{ "uptime_seconds", 3601 },
	{ "messages_received_total", 42 },
	{ "envelopes_pending", 0 },
	{ "deliveries_failed_total", 1 },
	{ "oldest_age_seconds", -1 },
	{ "total", 5 },
	{ "smtp_sessions", 7 },
};
#define NSTATS	(sizeof(stats) / sizeof(stats[0]))

static void
test_stats_text_json(void **state)
{
	struct ctl_buf	 b;
	int64_t		 v = 0;

	ctl_buf_init(&b);
	ctl_fmt_stats_text(&b, stats, NSTATS);
	assert_string_equal(ctl_buf_str(&b),
	    "uptime_seconds: 3601\n"
	    "messages_received_total: 42\n"
	    "envelopes_pending: 0\n"
	    "deliveries_failed_total: 1\n"
	    "oldest_age_seconds: -1\n"
	    "total: 5\n"
	    "smtp_sessions: 7\n");
	ctl_buf_reset(&b);
	ctl_fmt_stats_json(&b, stats, NSTATS);
	assert_string_equal(ctl_buf_str(&b),
	    "{\"uptime_seconds\": 3601, \"messages_received_total\": 42, "
	    "\"envelopes_pending\": 0, \"deliveries_failed_total\": 1, "
	    "\"oldest_age_seconds\": -1, \"total\": 5, "
	    "\"smtp_sessions\": 7}\n");
	ctl_buf_reset(&b);
	ctl_fmt_stats_json(&b, stats, 0);
	assert_string_equal(ctl_buf_str(&b), "{}\n");
	ctl_buf_free(&b);

	assert_int_equal(ctl_stat_find(stats, NSTATS, "total", &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(ctl_stat_find(stats, NSTATS, "nothing", &v), -1);
}

static void
test_stats_openmetrics(void **state)
{
	struct ctl_buf		 b;
	struct msg_ctl_stat	 odd[2];

	ctl_buf_init(&b);
	ctl_fmt_stats_openmetrics(&b, stats, NSTATS);
	assert_string_equal(ctl_buf_str(&b),
	    "# TYPE postern_uptime_seconds gauge\n"
	    "postern_uptime_seconds 3601\n"
	    "# TYPE postern_messages_received counter\n"
	    "postern_messages_received_total 42\n"
	    "# TYPE postern_envelopes_pending gauge\n"
	    "postern_envelopes_pending 0\n"
	    "# TYPE postern_deliveries_failed counter\n"
	    "postern_deliveries_failed_total 1\n"
	    "# TYPE postern_oldest_age_seconds gauge\n"
	    "postern_oldest_age_seconds -1\n"
	    "# TYPE postern_total gauge\n"
	    "postern_total 5\n"
	    "# TYPE postern_smtp_sessions gauge\n"
	    "postern_smtp_sessions 7\n"
	    "# EOF\n");
	ctl_buf_reset(&b);
	ctl_fmt_stats_openmetrics(&b, stats, 0);
	assert_string_equal(ctl_buf_str(&b), "# EOF\n");

	/* a name the decoder would refuse never reaches the output */
	memset(odd, 0, sizeof(odd));
	strlcpy(odd[0].name, "bad name\n# EOF", sizeof(odd[0].name));
	strlcpy(odd[1].name, "_total", sizeof(odd[1].name));
	odd[1].value = 2;
	ctl_buf_reset(&b);
	ctl_fmt_stats_openmetrics(&b, odd, 2);
	assert_string_equal(ctl_buf_str(&b),
	    "# TYPE postern__total gauge\npostern__total 2\n# EOF\n");
	ctl_buf_free(&b);
}

static void
test_monitor(void **state)
{
	static const struct msg_ctl_stat s1[] = {
		{ "messages_received_total", 100 },
		{ "messages_delivered_total", 90 },
		{ "deliveries_deferred_total", 5 },
		{ "envelopes_pending", 3 },
		{ "envelopes_inflight", 2 },
		{ "envelopes_deferred", 4 },
		{ "envelopes_held", 1 },
	};
	static const struct msg_ctl_stat s2[] = {
		{ "messages_received_total", 130 },
		{ "messages_delivered_total", 80 },	/* restarted */
		{ "deliveries_deferred_total", 6 },
		{ "envelopes_deferred", 5 },
		{ "smtp_sessions", 12 },
	};
	struct ctl_sample	 a, b;
	struct ctl_buf		 out;

	setenv("TZ", "UTC", 1);
	tzset();
	ctl_sample_from_stats(&a, s1, sizeof(s1) / sizeof(s1[0]), 10.0);
	assert_int_equal(a.queue, 10);
	assert_int_equal(a.sessions, -1);
	ctl_sample_from_stats(&b, s2, sizeof(s2) / sizeof(s2[0]), 12.0);
	assert_int_equal(b.queue, 5);
	assert_int_equal(b.sessions, 12);

	ctl_buf_init(&out);
	ctl_fmt_monitor_header(&out, 0);
	ctl_fmt_monitor_line(&out, NOW, &a, &b, 0);
	ctl_fmt_monitor_header(&out, 1);
	ctl_fmt_monitor_line(&out, NOW + 1, &a, &b, 1);
	ctl_fmt_monitor_line(&out, NOW + 2, &a, &a, 1);
	assert_string_equal(ctl_buf_str(&out),
	    "TIME        RECV/S   DELIV/S   DEFER/S  DEFERRED     QUEUE\n"
	    "22:13:20      15.0       0.0       0.5         5         5\n"
	    "TIME        RECV/S   DELIV/S   DEFER/S  DEFERRED     QUEUE  "
	    "SESSIONS\n"
	    "22:13:21      15.0       0.0       0.5         5         5        "
	    "12\n"
	    "22:13:22       0.0       0.0       0.0         4        10        "
	    " 0\n");
	ctl_buf_free(&out);
}

static void
test_buf_limit(void **state)
{
	struct ctl_buf	 b;

	ctl_buf_init(&b);
	ctl_buf_puts(&b, "abc");
	ctl_buf_printf(&b, "%0300d|", 7);
	assert_false(b.failed);
	assert_int_equal(b.len, 3 + 301);
	assert_int_equal(ctl_buf_str(&b)[303], '|');
	/* past the limit: refused, and it stays refused */
	b.len = CTL_BUF_MAX;
	ctl_buf_add(&b, "x", 1);
	assert_true(b.failed);
	b.len = 3;
	ctl_buf_add(&b, "x", 1);
	assert_true(b.failed);
	assert_int_equal(b.len, 3);
	ctl_buf_reset(&b);
	assert_false(b.failed);
	assert_string_equal(ctl_buf_str(&b), "");
	ctl_buf_free(&b);
	assert_string_equal(ctl_buf_str(&b), "");
}

/* ---------------------------------------------------------------- reader */

/* A connection whose far end is sp[1]. */
static void
conn_pair(struct ctl_conn *c, int sp[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	memset(c, 0, sizeof(*c));
	c->fd = sp[0];
	c->timeout = 2000;
	imsgbuf_init(&c->ib, sp[0]);
}

static void
test_reader(void **state)
{
	struct ctl_conn		 c;
	struct imsgbuf		 srv;
	struct imsg_payload	 p;
	struct msg_ctl_end	 end = { 1, 3, "" }, got;
	struct msg_ctl_id	 id;
	struct imsg		 m;
	char			 err[256];
	int			 sp[2];
	uint8_t			 junk[16];

	/* a request goes out whole; the END comes back whole */
	conn_pair(&c, sp);
	imsgbuf_init(&srv, sp[1]);
	imsg_payload_init(&p);
	id.id = 0x42;
	proto_enc_ctl_id(&p, &id);
	assert_int_equal(ctl_request(&c, IMSG_CTL_HOLD, &p), 0);
	imsg_payload_free(&p);
	assert_true(imsgbuf_read(&srv) > 0);
	assert_int_equal(imsg_get(&srv, &m), 1);
	assert_int_equal(m.hdr.type, IMSG_CTL_HOLD);
	assert_int_equal(proto_dec_ctl_id(&m, &id), 0);
	assert_true(id.id == 0x42);
	imsg_free(&m);
	imsg_payload_init(&p);
	proto_enc_ctl_end(&p, &end);
	assert_int_equal(imsg_compose_payload(&srv, IMSG_CTL_END, 0, -1, &p),
	    0);
	imsg_payload_free(&p);
	assert_int_equal(imsgbuf_flush(&srv), 0);
	assert_int_equal(ctl_next(&c, &m, err, sizeof(err)), 1);
	assert_int_equal(m.hdr.type, IMSG_CTL_END);
	assert_int_equal(proto_dec_ctl_end(&m, &got), 0);
	assert_int_equal(got.ok, 1);
	assert_int_equal(got.count, 3);
	imsg_free(&m);

	/* the server goes away before its reply ends */
	imsgbuf_clear(&srv);
	close(sp[1]);
	assert_int_equal(ctl_next(&c, &m, err, sizeof(err)), -1);
	assert_string_equal(err,
	    "posternd closed the connection before the end of its reply");
	ctl_close(&c);

	/* bytes that are no frame */
	conn_pair(&c, sp);
	memset(junk, 0xee, sizeof(junk));
	assert_int_equal(write(sp[1], junk, sizeof(junk)), sizeof(junk));
	assert_int_equal(ctl_next(&c, &m, err, sizeof(err)), -1);
	assert_string_equal(err, "malformed reply from the server");
	ctl_close(&c);
	close(sp[1]);

	/* silence: a bounded wait */
	conn_pair(&c, sp);
	c.timeout = 50;
	assert_int_equal(ctl_next(&c, &m, err, sizeof(err)), -1);
	assert_string_equal(err, "no reply from posternd within 0 seconds");
	ctl_close(&c);
	close(sp[1]);

	/* connecting to nothing says why */
	assert_int_equal(ctl_connect(&c, "/nonexistent/control.sock"), -1);
	assert_int_equal(errno, ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_id),
		cmocka_unit_test(test_fmt_age),
		cmocka_unit_test(test_fmt_size),
		cmocka_unit_test(test_fmt_next),
		cmocka_unit_test(test_escape_json),
		cmocka_unit_test(test_escape_text),
		cmocka_unit_test(test_text_columns),
		cmocka_unit_test(test_envelope_line),
		cmocka_unit_test(test_envelope_line_states),
		cmocka_unit_test(test_envelope_line_cut),
		cmocka_unit_test(test_envelope_long_sender),
		cmocka_unit_test(test_json_envelope),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_stats_text_json),
		cmocka_unit_test(test_stats_openmetrics),
		cmocka_unit_test(test_monitor),
		cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
