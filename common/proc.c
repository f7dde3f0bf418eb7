/*
 * proc.c: privilege drop and configuration shipping shared by the
 * Postern processes.
 * SECURITY: proc_sandbox runs as root and must leave the process with no
 * way back: chroot, setresgid/setresuid, no_new_privs, checked each.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "proto.h"

#define CONF_CHUNK	(IMSG_MAXPAYLOAD - 8192)

struct conf_file {
	char		 path[4096];
	uint8_t		 kind;
	char		*data;
	size_t		 len;
};

struct conf_wire {
	struct conf_file	*files;
	size_t			 nfiles;
	size_t			 total;
};

void
proc_sandbox(const char *user, const char *root)
{
	struct passwd	*pw;
	struct stat	 st;
	struct rlimit	 rl;
	uid_t		 uid;
	gid_t		 gid;

	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user %s", user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0)
		fatalx("user %s must not be root", user);
	if (stat(root, &st) == -1)
		fatal("stat %s", root);
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		fatalx("%s: chroot must be a directory owned by root and "
		    "not writable by group or others", root);
	if (chroot(root) == -1)
		fatal("chroot %s", root);
	if (chdir("/") == -1)
		fatal("chdir /");
	if (setgroups(1, &gid) == -1)
		fatal("setgroups");
	if (setresgid(gid, gid, gid) == -1)
		fatal("setresgid");
	if (setresuid(uid, uid, uid) == -1)
		fatal("setresuid");
	if (setuid(0) != -1 || geteuid() == 0)
		fatalx("privileges could be regained");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl) == -1)
		fatal("setrlimit(RLIMIT_CORE)");
	log_debug("event=sandbox user=%s uid=%u root=%s", user, (unsigned)uid,
	    root);
}

/* Send one file's bytes as as many blobs as it takes. */
static int
proc_conf_send_file(struct imsgbuf *ib, uint8_t kind, const char *path,
    const char *text, size_t len)
{
	struct imsg_payload	 p;
	struct msg_conf_blob	 b;
	size_t			 off = 0;
	int			 rv;

	memset(&b, 0, sizeof(b));
	b.kind = kind;
	if (strlcpy(b.path, path, sizeof(b.path)) >= sizeof(b.path))
		return -1;
	do {
		b.data = (const uint8_t *)text + off;
		b.len = len - off > CONF_CHUNK ? CONF_CHUNK : len - off;
		imsg_payload_init(&p);
		proto_enc_conf_blob(&p, &b);
		rv = imsg_compose_payload(ib, IMSG_CONF_BLOB, 0, -1, &p);
		imsg_payload_free(&p);
		if (rv == -1)
			return -1;
		off += b.len;
	} while (off < len);
	return 0;
}

int
proc_conf_send(struct imsgbuf *ib, const char *fname, const char *text,
    size_t len, const struct postern_conf *conf,
    const struct conf_macro *macros, size_t nmacros)
{
	struct imsg_payload	 p;
	struct msg_conf_end	*e;
	struct table		*t;
	char			 err[CONF_ERRLEN];
	char			*data;
	size_t			 dlen, i;
	int			 rv;

	if (proc_conf_send_file(ib, 0, fname, text, len) == -1)
		return -1;
	TAILQ_FOREACH(t, &conf->tables, entry) {
		if (t->source != TABLE_FILE)
			continue;
		if (config_load_file(NULL, t->path, &data, &dlen, err,
		    sizeof(err)) == -1) {
			log_warnx("table %s: %s", t->name, err);
			return -1;
		}
		rv = proc_conf_send_file(ib, 1, t->path, data, dlen);
		free(data);
		if (rv == -1)
			return -1;
	}
	if (nmacros > PROTO_MAXMACROS)
		return -1;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	e->nmacros = nmacros;
	for (i = 0; i < nmacros; i++) {
		if (strlcpy(e->name[i], macros[i].name, sizeof(e->name[i])) >=
		    sizeof(e->name[i]) ||
		    strlcpy(e->value[i], macros[i].value,
		    sizeof(e->value[i])) >= sizeof(e->value[i])) {
			free(e);
			return -1;
		}
	}
	imsg_payload_init(&p);
	proto_enc_conf_end(&p, e);
	free(e);
	rv = imsg_compose_payload(ib, IMSG_CONF_END, 0, -1, &p);
	imsg_payload_free(&p);
	return rv;
}

struct conf_wire *
proc_conf_wire_new(void)
{
	return calloc(1, sizeof(struct conf_wire));
}

void
proc_conf_wire_free(struct conf_wire *w)
{
	size_t	 i;

	if (w == NULL)
		return;
	for (i = 0; i < w->nfiles; i++)
		free(w->files[i].data);
	free(w->files);
	free(w);
}

void
proc_conf_wire_blob(struct conf_wire *w, struct imsg *m)
{
	struct msg_conf_blob	 b;
	struct conf_file	*f = NULL, *nf;
	char			*nd;
	size_t			 i;

	if (proto_dec_conf_blob(m, &b) == -1)
		fatalx("malformed IMSG_CONF_BLOB");
	if (b.len > 64 * 1024 * 1024 - w->total)
		fatalx("configuration too large");
	for (i = 0; i < w->nfiles; i++)
		if (strcmp(w->files[i].path, b.path) == 0)
			f = &w->files[i];
	if (f == NULL) {
		if ((nf = reallocarray(w->files, w->nfiles + 1,
		    sizeof(*nf))) == NULL)
			fatal("conf wire");
		w->files = nf;
		f = &w->files[w->nfiles++];
		memset(f, 0, sizeof(*f));
		strlcpy(f->path, b.path, sizeof(f->path));
		f->kind = b.kind;
	}
	if ((nd = realloc(f->data, f->len + b.len + 1)) == NULL)
		fatal("conf wire");
	f->data = nd;
	memcpy(f->data + f->len, b.data, b.len);
	f->len += b.len;
	f->data[f->len] = '\0';
	w->total += b.len;
}

/* Loader for children: table files come from what the parent shipped. */
static int
proc_conf_wire_load(void *arg, const char *path, char **text, size_t *len,
    char *err, size_t errsz)
{
	struct conf_wire	*w = arg;
	size_t			 i;

	for (i = 0; i < w->nfiles; i++) {
		if (w->files[i].kind != 1 || strcmp(w->files[i].path, path))
			continue;
		if ((*text = malloc(w->files[i].len + 1)) == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		memcpy(*text, w->files[i].data, w->files[i].len);
		(*text)[w->files[i].len] = '\0';
		*len = w->files[i].len;
		return 0;
	}
	snprintf(err, errsz, "%s: not shipped by the parent", path);
	return -1;
}

struct postern_conf *
proc_conf_wire_end(struct conf_wire *w, struct imsg *m, char *err,
    size_t errsz)
{
	struct msg_conf_end	*e;
	struct conf_macro	 macros[PROTO_MAXMACROS];
	struct postern_conf	*conf;
	size_t			 i;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		fatal("conf wire");
	if (proto_dec_conf_end(m, e) == -1)
		fatalx("malformed IMSG_CONF_END");
	for (i = 0; i < e->nmacros; i++) {
		macros[i].name = e->name[i];
		macros[i].value = e->value[i];
	}
	conf = NULL;
	for (i = 0; i < w->nfiles; i++) {
		if (w->files[i].kind != 0)
			continue;
		conf = config_parse(w->files[i].path, w->files[i].data,
		    w->files[i].len, macros, e->nmacros, proc_conf_wire_load, w,
		    err, errsz);
		break;
	}
	if (i == w->nfiles)
		snprintf(err, errsz, "no configuration received");
	free(e);
	return conf;
}

const char *
proc_id(uint64_t id, char buf[17])
{
	snprintf(buf, 17, "%016llx", (unsigned long long)id);
	return buf;
}
