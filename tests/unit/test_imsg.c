/*
 * test_imsg.c: the imsg framing, descriptor passing and strict payload
 * decoding, and every inter-process message decoder in proto.c.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "imsg.h"
#include "proto.h"

struct pair {
	int		 sv[2];
	struct imsgbuf	 w, r;
};

static int
pair_setup(void **state)
{
	struct pair	*p = calloc(1, sizeof(*p));

	assert_non_null(p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->sv), 0);
	fcntl(p->sv[1], F_SETFL, O_NONBLOCK);
	imsgbuf_init(&p->w, p->sv[0]);
	imsgbuf_init(&p->r, p->sv[1]);
	*state = p;
	return 0;
}

static int
pair_teardown(void **state)
{
	struct pair	*p = *state;

	imsgbuf_clear(&p->w);
	imsgbuf_clear(&p->r);
	close(p->sv[0]);
	close(p->sv[1]);
	free(p);
	return 0;
}

/* Read until one frame is complete. */
static int
pair_get(struct pair *p, struct imsg *m)
{
	int	 rv, tries = 0;

	while ((rv = imsg_get(&p->r, m)) == 0 && tries++ < 100) {
		if (imsgbuf_read(&p->r) == -1 && errno != EAGAIN)
			return -1;
	}
	return rv;
}

static void
test_roundtrip(void **state)
{
	struct pair	*p = *state;
	struct imsg	 m;

	assert_int_equal(imsg_compose(&p->w, 7, 0x1122334455667788ULL, -1,
	    "hello", 5), 0);
	assert_int_equal(imsgbuf_queued(&p->w), 16 + 5);
	assert_int_equal(imsgbuf_flush(&p->w), 0);
	assert_int_equal(imsgbuf_queued(&p->w), 0);
	assert_int_equal(pair_get(p, &m), 1);
	assert_int_equal(m.hdr.type, 7);
	assert_true(m.hdr.id == 0x1122334455667788ULL);
	assert_int_equal(m.hdr.len, 5);
	assert_memory_equal(m.data, "hello", 5);
	assert_int_equal(m.fd, -1);
	imsg_free(&m);
	/* Nothing more. */
	assert_int_equal(imsg_get(&p->r, &m), 0);
}

static void
test_many_frames_one_write(void **state)
{
	struct pair	*p = *state;
	struct imsg	 m;
	uint32_t	 i, v;

	for (i = 0; i < 500; i++)
		assert_int_equal(imsg_compose(&p->w, 1, i, -1, &i,
		    sizeof(i)), 0);
	assert_int_equal(imsgbuf_flush(&p->w), 0);
	for (i = 0; i < 500; i++) {
		assert_int_equal(pair_get(p, &m), 1);
		assert_int_equal(m.hdr.id, i);
		memcpy(&v, m.data, sizeof(v));
		assert_int_equal(v, i);
		imsg_free(&m);
	}
}

static void
test_fd_passing(void **state)
{
	struct pair	*p = *state;
	struct imsg	 m;
	int		 pfd[2];
	char		 buf[8];

	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(imsg_compose(&p->w, 2, 0, -1, "a", 1), 0);
	assert_int_equal(imsg_compose(&p->w, 3, 0, pfd[0], "b", 1), 0);
	assert_int_equal(imsg_compose(&p->w, 4, 0, -1, "c", 1), 0);
	assert_int_equal(imsgbuf_flush(&p->w), 0);
	assert_int_equal(pair_get(p, &m), 1);
	assert_int_equal(m.hdr.type, 2);
	assert_int_equal(m.fd, -1);
	imsg_free(&m);
	assert_int_equal(pair_get(p, &m), 1);
	assert_int_equal(m.hdr.type, 3);
	assert_true(m.fd >= 0);
	assert_int_equal(write(pfd[1], "xyz", 3), 3);
	assert_int_equal(read(m.fd, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "xyz", 3);
	imsg_free(&m);
	assert_int_equal(pair_get(p, &m), 1);
	assert_int_equal(m.hdr.type, 4);
	assert_int_equal(m.fd, -1);
	imsg_free(&m);
	close(pfd[1]);
}

static void
test_oversize_compose_refused(void **state)
{
	struct pair	*p = *state;
	char		*big = calloc(1, IMSG_MAXPAYLOAD + 1);

	assert_non_null(big);
	assert_int_equal(imsg_compose(&p->w, 1, 0, -1, big,
	    IMSG_MAXPAYLOAD + 1), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(imsgbuf_queued(&p->w), 0);
	assert_int_equal(imsg_compose(&p->w, 1, 0, -1, big, IMSG_MAXPAYLOAD),
	    0);
	free(big);
}

/* Raw bytes that are not a valid frame must be reported, not used. */
static void
write_raw_hdr(struct pair *p, uint8_t version, uint8_t flags, uint32_t len)
{
	struct imsg_hdr	 h;

	memset(&h, 0, sizeof(h));
	h.version = version;
	h.flags = flags;
	h.type = 1;
	h.len = len;
	assert_int_equal(write(p->sv[0], &h, sizeof(h)), sizeof(h));
}

static void
test_bad_version(void **state)
{
	struct pair	*p = *state;
	struct imsg	 m;

	write_raw_hdr(p, 9, 0, 0);
	assert_int_equal(pair_get(p, &m), -1);
}

static void
test_bad_flags(void **state)
{
	struct pair	*p = *state;
	struct imsg	 m;

	write_raw_hdr(p, IMSG_VERSION, 0x80, 0);
	assert_int_equal(pair_get(p, &m), -1);
}

static void
test_bad_length(void **state)
{
	struct pair	*p = *state;
	struct imsg	 m;

	write_raw_hdr(p, IMSG_VERSION, 0, IMSG_MAXPAYLOAD + 1);
	assert_int_equal(pair_get(p, &m), -1);
}

static void
test_fd_flag_without_fd(void **state)
{
	struct pair	*p = *state;
	struct imsg	 m;

	write_raw_hdr(p, IMSG_VERSION, IMSG_FLAG_FD, 0);
	assert_int_equal(pair_get(p, &m), -1);
}

static void
test_short_frame_waits(void **state)
{
	struct pair	*p = *state;
	struct imsg	 m;

	write_raw_hdr(p, IMSG_VERSION, 0, 10);
	assert_int_equal(write(p->sv[0], "12345", 5), 5);
	assert_int_equal(imsgbuf_read(&p->r), 21);
	assert_int_equal(imsg_get(&p->r, &m), 0);
	assert_int_equal(write(p->sv[0], "67890", 5), 5);
	assert_int_equal(pair_get(p, &m), 1);
	assert_memory_equal(m.data, "1234567890", 10);
	imsg_free(&m);
}

/* Build an imsg in memory from a payload, as the receiver sees it. */
static void
payload_imsg(struct imsg *m, uint16_t type, const struct imsg_payload *p)
{
	memset(m, 0, sizeof(*m));
	m->hdr.version = IMSG_VERSION;
	m->hdr.type = type;
	m->hdr.len = p->len;
	m->fd = -1;
	m->data = malloc(p->len + 1);
	assert_non_null(m->data);
	memcpy(m->data, p->buf, p->len);
}

static void
test_payload_fields(void **state)
{
	struct imsg_payload	 p;
	struct imsg		 m;
	uint8_t			 u8;
	uint32_t		 u32;
	uint64_t		 u64;
	int64_t			 i64;
	char			 s[8], *dup;
	const uint8_t		*d;
	size_t			 dl;

	imsg_payload_init(&p);
	imsg_add_u8(&p, 200);
	imsg_add_u32(&p, 0xdeadbeef);
	imsg_add_u64(&p, 1ULL << 40);
	imsg_add_i64(&p, -5);
	imsg_add_string(&p, "abc");
	imsg_add_string(&p, "defgh");
	imsg_add_data(&p, "\0\1\2", 3);
	payload_imsg(&m, 1, &p);
	imsg_payload_free(&p);

	assert_int_equal(imsg_get_u8(&m, &u8), 0);
	assert_int_equal(u8, 200);
	assert_int_equal(imsg_get_u32(&m, &u32), 0);
	assert_int_equal(u32, 0xdeadbeef);
	assert_int_equal(imsg_get_u64(&m, &u64), 0);
	assert_true(u64 == 1ULL << 40);
	assert_int_equal(imsg_get_i64(&m, &i64), 0);
	assert_true(i64 == -5);
	/* "abc" needs 4 bytes with its NUL: a 3-byte buffer refuses it. */
	assert_int_equal(imsg_get_string(&m, s, 3), -1);
	assert_int_equal(imsg_get_string(&m, s, 4), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(imsg_get_strdup(&m, &dup, 64), 0);
	assert_string_equal(dup, "defgh");
	free(dup);
	assert_int_equal(imsg_end(&m), -1);	/* data still unread */
	assert_int_equal(imsg_get_data(&m, &d, &dl), 0);
	assert_int_equal(dl, 3);
	assert_memory_equal(d, "\0\1\2", 3);
	assert_int_equal(imsg_end(&m), 0);
	/* Reading past the end fails. */
	assert_int_equal(imsg_get_u8(&m, &u8), -1);
	imsg_free(&m);
}

static void
test_string_with_nul_refused(void **state)
{
	struct imsg_payload	 p;
	struct imsg		 m;
	char			 s[16];

	imsg_payload_init(&p);
	imsg_add_data(&p, "a\0b", 3);
	payload_imsg(&m, 1, &p);
	imsg_payload_free(&p);
	assert_int_equal(imsg_get_string(&m, s, sizeof(s)), -1);
	imsg_free(&m);
}

static void
test_string_length_beyond_payload(void **state)
{
	struct imsg_payload	 p;
	struct imsg		 m;
	char			 s[16];

	imsg_payload_init(&p);
	imsg_add_u32(&p, 1000);		/* claims 1000 bytes, has 2 */
	imsg_add_u8(&p, 'x');
	imsg_add_u8(&p, 'y');
	payload_imsg(&m, 1, &p);
	imsg_payload_free(&p);
	assert_int_equal(imsg_get_string(&m, s, sizeof(s)), -1);
	imsg_free(&m);
}

static void
test_payload_overflow(void **state)
{
	struct imsg_payload	 p;
	struct pair		*pp = *state;
	char			*big = calloc(1, IMSG_MAXPAYLOAD);

	assert_non_null(big);
	imsg_payload_init(&p);
	imsg_add_data(&p, big, IMSG_MAXPAYLOAD - 8);
	assert_int_equal(p.overflow, 0);
	imsg_add_data(&p, big, 16);
	assert_int_equal(p.overflow, 1);
	assert_int_equal(imsg_compose_payload(&pp->w, 1, 0, -1, &p), -1);
	imsg_payload_free(&p);
	free(big);
}

static void
test_proto_smtp_mail(void **state)
{
	struct imsg_payload	 p;
	struct imsg		 m;
	struct msg_smtp_mail	 in, out;

	memset(&in, 0, sizeof(in));
	in.local = 1;
	strlcpy(in.client, "127.0.0.1", sizeof(in.client));
	strlcpy(in.helo, "client.example", sizeof(in.helo));
	strlcpy(in.sender, "a@b.example", sizeof(in.sender));
	in.smtputf8 = 1;
	in.body = 2;
	in.size = 12345;
	imsg_payload_init(&p);
	proto_enc_smtp_mail(&p, &in);
	payload_imsg(&m, IMSG_SMTP_MAIL, &p);
	assert_int_equal(proto_dec_smtp_mail(&m, &out), 0);
	assert_int_equal(out.local, 1);
	assert_string_equal(out.client, "127.0.0.1");
	assert_string_equal(out.helo, "client.example");
	assert_string_equal(out.sender, "a@b.example");
	assert_string_equal(out.auth_user, "");
	assert_int_equal(out.smtputf8, 1);
	assert_int_equal(out.body, 2);
	assert_int_equal(out.size, 12345);
	imsg_free(&m);

	/* One trailing byte makes it malformed. */
	imsg_add_u8(&p, 0);
	payload_imsg(&m, IMSG_SMTP_MAIL, &p);
	assert_int_equal(proto_dec_smtp_mail(&m, &out), -1);
	imsg_free(&m);
	/* Every truncation is malformed too. */
	while (p.len > 1) {
		p.len -= 2;
		payload_imsg(&m, IMSG_SMTP_MAIL, &p);
		assert_int_equal(proto_dec_smtp_mail(&m, &out), -1);
		imsg_free(&m);
	}
	imsg_payload_free(&p);
}

static void
test_proto_result_reply_checked(void **state)
{
	struct imsg_payload	 p;
	struct imsg		 m;
	struct msg_smtp_result	 r, out;

	memset(&r, 0, sizeof(r));
	r.ok = 0;
	strlcpy(r.reply, "550 5.1.1 <x@y>: User unknown", sizeof(r.reply));
	imsg_payload_init(&p);
	proto_enc_smtp_result(&p, &r);
	payload_imsg(&m, IMSG_SMTP_RCPT_RESULT, &p);
	assert_int_equal(proto_dec_smtp_result(&m, &out), 0);
	assert_string_equal(out.reply, r.reply);
	imsg_free(&m);
	imsg_payload_free(&p);

	/* A refusal whose reply is not "4xx/5xx text" is malformed. */
	strlcpy(r.reply, "250 ok", sizeof(r.reply));
	imsg_payload_init(&p);
	proto_enc_smtp_result(&p, &r);
	payload_imsg(&m, IMSG_SMTP_RCPT_RESULT, &p);
	assert_int_equal(proto_dec_smtp_result(&m, &out), -1);
	imsg_free(&m);
	imsg_payload_free(&p);

	strlcpy(r.reply, "550 a\r\n250 smuggled", sizeof(r.reply));
	imsg_payload_init(&p);
	proto_enc_smtp_result(&p, &r);
	payload_imsg(&m, IMSG_SMTP_RCPT_RESULT, &p);
	assert_int_equal(proto_dec_smtp_result(&m, &out), -1);
	imsg_free(&m);
	imsg_payload_free(&p);
}

static void
test_proto_deliver(void **state)
{
	struct imsg_payload		 p;
	struct imsg			 m;
	struct msg_deliver_local	 d, out;
	struct msg_deliver_result	 r, rout;

	memset(&d, 0, sizeof(d));
	strlcpy(d.action, "local", sizeof(d.action));
	strlcpy(d.mailbox, "alice", sizeof(d.mailbox));
	strlcpy(d.rcpt, "alice@example.org", sizeof(d.rcpt));
	d.ctime = 1700000000;
	imsg_payload_init(&p);
	proto_enc_deliver_local(&p, &d);
	payload_imsg(&m, IMSG_DELIVER_LOCAL, &p);
	assert_int_equal(proto_dec_deliver_local(&m, &out), 0);
	assert_string_equal(out.mailbox, "alice");
	assert_string_equal(out.sender, "");
	assert_true(out.ctime == 1700000000);
	imsg_free(&m);
	imsg_payload_free(&p);

	/* An empty mailbox is malformed. */
	d.mailbox[0] = '\0';
	imsg_payload_init(&p);
	proto_enc_deliver_local(&p, &d);
	payload_imsg(&m, IMSG_DELIVER_LOCAL, &p);
	assert_int_equal(proto_dec_deliver_local(&m, &out), -1);
	imsg_free(&m);
	imsg_payload_free(&p);

	memset(&r, 0, sizeof(r));
	r.status = 7;	/* not a status */
	imsg_payload_init(&p);
	proto_enc_deliver_result(&p, &r);
	payload_imsg(&m, IMSG_DELIVER_RESULT, &p);
	assert_int_equal(proto_dec_deliver_result(&m, &rout), -1);
	imsg_free(&m);
	imsg_payload_free(&p);
}

/* tlsd's handshake report goes into Received: headers: no CR/LF. */
static void
test_proto_tls_handshake_checked(void **state)
{
	struct imsg_payload		 p;
	struct imsg			 m;
	struct msg_tls_handshake	 h, out;

	memset(&h, 0, sizeof(h));
	strlcpy(h.version, "TLSv1.2", sizeof(h.version));
	strlcpy(h.suite, "ECDHE-ECDSA-AES128-GCM-SHA256", sizeof(h.suite));
	strlcpy(h.sni, "mx.example.org", sizeof(h.sni));
	imsg_payload_init(&p);
	proto_enc_tls_handshake(&p, &h);
	payload_imsg(&m, IMSG_TLS_HANDSHAKE, &p);
	assert_int_equal(proto_dec_tls_handshake(&m, &out), 0);
	assert_string_equal(out.suite, "ECDHE-ECDSA-AES128-GCM-SHA256");
	assert_string_equal(out.sni, "mx.example.org");
	imsg_free(&m);
	imsg_payload_free(&p);

	strlcpy(h.suite, "X\r\nReceived: forged", sizeof(h.suite));
	imsg_payload_init(&p);
	proto_enc_tls_handshake(&p, &h);
	payload_imsg(&m, IMSG_TLS_HANDSHAKE, &p);
	assert_int_equal(proto_dec_tls_handshake(&m, &out), -1);
	imsg_free(&m);
	imsg_payload_free(&p);
}

static void
test_proto_tls_open_mode(void **state)
{
	struct imsg_payload	 p;
	struct imsg		 m;
	struct msg_tls_open	 o, out;

	memset(&o, 0, sizeof(o));
	o.mode = 3;	/* neither server nor client */
	imsg_payload_init(&p);
	proto_enc_tls_open(&p, &o);
	payload_imsg(&m, IMSG_TLS_OPEN, &p);
	assert_int_equal(proto_dec_tls_open(&m, &out), -1);
	imsg_free(&m);
	imsg_payload_free(&p);
}

static void
test_proto_unknown_type(void **state)
{
	struct imsg	 m;

	memset(&m, 0, sizeof(m));
	m.hdr.type = 999;
	m.fd = -1;
	assert_int_equal(proto_decode_any(&m), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, pair_setup,
		    pair_teardown),
		cmocka_unit_test_setup_teardown(test_many_frames_one_write,
		    pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_fd_passing, pair_setup,
		    pair_teardown),
		cmocka_unit_test_setup_teardown(test_oversize_compose_refused,
		    pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_bad_version, pair_setup,
		    pair_teardown),
		cmocka_unit_test_setup_teardown(test_bad_flags, pair_setup,
		    pair_teardown),
		cmocka_unit_test_setup_teardown(test_bad_length, pair_setup,
		    pair_teardown),
		cmocka_unit_test_setup_teardown(test_fd_flag_without_fd,
		    pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_short_frame_waits,
		    pair_setup, pair_teardown),
		cmocka_unit_test(test_payload_fields),
		cmocka_unit_test(test_string_with_nul_refused),
		cmocka_unit_test(test_string_length_beyond_payload),
		cmocka_unit_test_setup_teardown(test_payload_overflow,
		    pair_setup, pair_teardown),
		cmocka_unit_test(test_proto_smtp_mail),
		cmocka_unit_test(test_proto_result_reply_checked),
		cmocka_unit_test(test_proto_deliver),
		cmocka_unit_test(test_proto_tls_handshake_checked),
		cmocka_unit_test(test_proto_tls_open_mode),
		cmocka_unit_test(test_proto_unknown_type),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
