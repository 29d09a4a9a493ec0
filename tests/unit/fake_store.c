/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_store: an in-memory object store for the filesystem's unit tests
 * (see fake_store.h).
 */
#include "fake_store.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "upload.h"

struct fobj {
	char *key;
	char *data;
	size_t len;
	char etag[80];
	struct fobj *next;
};

struct fpart {
	int no;
	char *data;
	size_t len;
	char etag[40];
};

struct fupload {
	char *key;
	char id[40];
	time_t initiated;
	struct fpart *parts;
	size_t n_parts;
	struct fupload *next;
};

struct job {
	void (*run)(struct fake_store *fs, struct job *j);
	s3_done_fn done;
	void *user;
	/* get / head */
	char *key;
	uint64_t off, len;
	char if_match[80];
	void *buf;
	size_t cap;
	/* part */
	char upload_id[40];
	int part_no;
	const void *data;
	struct s3_part *out;
	struct job *next;
};

struct fake_store {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fobj *objs;
	struct fupload *ups;
	int next_id;
	struct fake_faults f;
	int calls[FAKE_N_OPS];
	size_t bytes_got;
	size_t list_page; /* most keys a ListObjectsV2 page holds (0: 1000) */
	/* the async worker */
	struct job *head, *tail;
	int running;
	bool stop;
	bool paused; /* fake_pause(): queued calls wait */
	pthread_t worker;
};

static void md5_hex(const void *d, size_t n, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;

	EVP_Digest(d, n, md, &ml, EVP_md5(), NULL);
	for (unsigned i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void set_e(struct s3_error *e, enum s3_err code, const char *msg)
{
	memset(e, 0, sizeof(*e));
	e->err = code;
	snprintf(e->message, sizeof(e->message), "fake: %s", msg);
}

/* Whether this call of @op fails on purpose (fs->lock held); @err filled if so. */
static bool fault_locked(struct fake_store *fs, enum fake_op op, struct s3_error *err)
{
	struct fake_fault *f = &fs->f.op[op];
	if (!f->times)
		return false;
	if (f->after > 0) {
		f->after--;
		return false;
	}
	if (f->times > 0)
		f->times--;
	set_e(err, f->err ? f->err : S3_ERR_SERVER, "injected failure");
	err->http_status = f->http_status;
	return true;
}

static struct fobj *find_obj(struct fake_store *fs, const char *key)
{
	for (struct fobj *o = fs->objs; o; o = o->next)
		if (!strcmp(o->key, key))
			return o;
	return NULL;
}

static struct fupload *find_up(struct fake_store *fs, const char *id)
{
	for (struct fupload *u = fs->ups; u; u = u->next)
		if (!strcmp(u->id, id))
			return u;
	return NULL;
}

static void put_locked(struct fake_store *fs, const char *key, const void *data, size_t len,
                       const char *etag)
{
	struct fobj *o = find_obj(fs, key);

	if (!o) {
		o = calloc(1, sizeof(*o));
		o->key = strdup(key);
		o->next = fs->objs;
		fs->objs = o;
	}
	free(o->data);
	o->data = malloc(len ? len : 1);
	memcpy(o->data, data, len);
	o->len = len;
	if (etag)
		snprintf(o->etag, sizeof(o->etag), "%s", etag);
	else
		md5_hex(data, len, o->etag);
}

/* ---- the worker that completes async calls ---- */

static void *worker_main(void *arg)
{
	struct fake_store *fs = arg;

	pthread_mutex_lock(&fs->lock);
	for (;;) {
		struct job *j = fs->paused && !fs->stop ? NULL : fs->head;

		if (!j) {
			if (fs->stop)
				break;
			pthread_cond_wait(&fs->cond, &fs->lock);
			continue;
		}
		fs->head = j->next;
		if (!fs->head)
			fs->tail = NULL;
		fs->running++;
		pthread_mutex_unlock(&fs->lock);
		j->run(fs, j);
		free(j->key);
		free(j);
		pthread_mutex_lock(&fs->lock);
		fs->running--;
		pthread_cond_broadcast(&fs->cond);
	}
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

static void queue(struct fake_store *fs, struct job *j)
{
	pthread_mutex_lock(&fs->lock);
	j->next = NULL;
	if (fs->tail)
		fs->tail->next = j;
	else
		fs->head = j;
	fs->tail = j;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
}

void fake_drain(struct fake_store *fs)
{
	pthread_mutex_lock(&fs->lock);
	while (fs->head || fs->running)
		pthread_cond_wait(&fs->cond, &fs->lock);
	pthread_mutex_unlock(&fs->lock);
}

/* ---- the table ---- */

static int f_head(void *ctx, const char *key, struct s3_object_info *info, struct s3_error *err)
{
	struct fake_store *fs = ctx;
	struct fobj *o;
	int r = -1;

	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_HEAD]++;
	o = find_obj(fs, key);
	if (fault_locked(fs, FAKE_HEAD, err)) {
		/* as asked */
	} else if (fs->f.fail_head > 0) {
		fs->f.fail_head--;
		set_e(err, S3_ERR_NETWORK, "head: network down");
	} else if (o) {
		if (info) {
			memset(info, 0, sizeof(*info));
			info->size = o->len;
			info->mtime = time(NULL);
			snprintf(info->etag, sizeof(info->etag), "%s", o->etag);
		}
		memset(err, 0, sizeof(*err));
		r = 0;
	} else {
		set_e(err, S3_ERR_NO_SUCH_KEY, "no such key");
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static void run_head(struct fake_store *fs, struct job *j)
{
	struct s3_object_info info;
	struct s3_error e;

	f_head(fs, j->key, &info, &e);
	j->done(j->user, &e, 0, e.err == S3_OK ? &info : NULL);
}

static int f_head_async(void *ctx, const char *key, s3_done_fn done, void *user,
                        struct s3_error *err)
{
	struct job *j = calloc(1, sizeof(*j));

	j->run = run_head;
	j->done = done;
	j->user = user;
	j->key = strdup(key);
	queue(ctx, j);
	memset(err, 0, sizeof(*err));
	return 0;
}

static int cmp_obj_key(const void *a, const void *b)
{
	return strcmp((*(struct fobj *const *)a)->key, (*(struct fobj *const *)b)->key);
}

/* strcmp() of the @n bytes at @item (no NUL among them) with @s. */
static int cmp_item(const char *item, size_t n, const char *s)
{
	int c = strncmp(item, s, n);

	if (c)
		return c;
	return s[n] ? -1 : 0; /* equal so far: @s has n bytes, and is longer or the same */
}

/*
 * One ListObjectsV2 page as S3 makes it: matching keys in byte order,
 * keys that share a prefix up to the delimiter rolled into one
 * CommonPrefix, each counted once against max-keys, and a continuation
 * token (the last item given) when more remain.
 */
static int f_list(void *ctx, const struct s3_list_params *p, struct s3_list_page *page,
                  struct s3_error *err)
{
	struct fake_store *fs = ctx;
	const char *pre = p->prefix ? p->prefix : "";
	const char *after = p->continuation_token ? p->continuation_token : p->start_after;
	const char *delim = p->delimiter && p->delimiter[0] ? p->delimiter : NULL;
	size_t pl = strlen(pre);
	size_t max = p->max_keys > 0 && p->max_keys < 1000 ? (size_t)p->max_keys : 1000;
	struct fobj **v = NULL;
	size_t nv = 0, count = 0;
	const char *last = NULL;
	size_t last_len = 0;
	bool last_prefix = false;

	memset(page, 0, sizeof(*page));
	memset(err, 0, sizeof(*err));
	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_LIST]++;
	if (fault_locked(fs, FAKE_LIST, err)) {
		pthread_mutex_unlock(&fs->lock);
		return -1;
	}
	if (fs->list_page && fs->list_page < max)
		max = fs->list_page;
	for (struct fobj *o = fs->objs; o; o = o->next)
		if (!strncmp(o->key, pre, pl))
			nv++;
	v = calloc(nv ? nv : 1, sizeof(*v));
	nv = 0;
	for (struct fobj *o = fs->objs; o; o = o->next)
		if (!strncmp(o->key, pre, pl))
			v[nv++] = o;
	qsort(v, nv, sizeof(*v), cmp_obj_key);
	for (size_t i = 0; i < nv; i++) {
		struct fobj *o = v[i];
		const char *d = delim ? strstr(o->key + pl, delim) : NULL;
		size_t n = d ? (size_t)(d - o->key) + strlen(delim) : strlen(o->key);

		if (after && cmp_item(o->key, n, after) <= 0)
			continue;
		if (d && last_prefix && last_len == n && !strncmp(last, o->key, n))
			continue; /* rolled into the prefix just given */
		if (count == max) {
			page->truncated = true;
			break;
		}
		count++;
		last = o->key;
		last_len = n;
		last_prefix = d != NULL;
		if (d) {
			page->prefixes = realloc(page->prefixes,
			                         (page->n_prefixes + 1) * sizeof(*page->prefixes));
			page->prefixes[page->n_prefixes++] = strndup(o->key, n);
			continue;
		}
		page->entries =
		    realloc(page->entries, (page->n_entries + 1) * sizeof(*page->entries));
		memset(&page->entries[page->n_entries], 0, sizeof(page->entries[0]));
		page->entries[page->n_entries].key = strdup(o->key);
		page->entries[page->n_entries].size = o->len;
		page->entries[page->n_entries].mtime = time(NULL);
		snprintf(page->entries[page->n_entries].etag, 80, "%s", o->etag);
		page->n_entries++;
	}
	if (page->truncated)
		page->next_token = strndup(last, last_len);
	pthread_mutex_unlock(&fs->lock);
	free(v);
	return 0;
}

/* GET of [off, off+len) (len 0: to the end) into buf; 0 or -1. */
static int get_locked(struct fake_store *fs, const char *key, uint64_t off, uint64_t len,
                      const char *if_match, void *buf, size_t cap, size_t *got,
                      struct s3_object_info *info, struct s3_error *err)
{
	struct fobj *o = find_obj(fs, key);
	uint64_t end;

	fs->calls[FAKE_GET]++;
	*got = 0;
	if (fault_locked(fs, FAKE_GET, err))
		return -1;
	if (!o) {
		set_e(err, S3_ERR_NO_SUCH_KEY, "no such key");
		return -1;
	}
	if (if_match && if_match[0] && strcmp(if_match, o->etag)) {
		set_e(err, S3_ERR_PRECONDITION, "precondition failed");
		return -1;
	}
	if (off >= o->len && !(off == 0 && o->len == 0)) {
		set_e(err, S3_ERR_INVALID_RANGE, "invalid range");
		return -1;
	}
	end = len ? off + len : o->len;
	if (end > o->len)
		end = o->len;
	if (fs->f.get_short > 0 && end > off) {
		/* what the engine makes of a body shorter than its range, after retries */
		fs->f.get_short--;
		set_e(err, S3_ERR_PROTOCOL, "the reply's body is short of its range");
		return -1;
	}
	if (end - off > cap) {
		set_e(err, S3_ERR_INVALID_RANGE, "larger than the buffer");
		return -1;
	}
	memcpy(buf, o->data + off, end - off);
	*got = end - off;
	fs->bytes_got += *got;
	if (info) {
		memset(info, 0, sizeof(*info));
		info->size = o->len;
		snprintf(info->etag, sizeof(info->etag), "%s", o->etag);
	}
	memset(err, 0, sizeof(*err));
	return 0;
}

static int f_get(void *ctx, const char *key, uint64_t off, uint64_t len, const char *if_match,
                 void *buf, size_t cap, size_t *got, struct s3_object_info *info,
                 struct s3_error *err)
{
	struct fake_store *fs = ctx;
	size_t g = 0;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = get_locked(fs, key, off, len, if_match, buf, cap, &g, info, err);
	pthread_mutex_unlock(&fs->lock);
	if (got)
		*got = g;
	return r;
}

static void run_get(struct fake_store *fs, struct job *j)
{
	struct s3_object_info info;
	struct s3_error e;
	size_t got = 0;

	pthread_mutex_lock(&fs->lock);
	get_locked(fs, j->key, j->off, j->len, j->if_match, j->buf, j->cap, &got, &info, &e);
	pthread_mutex_unlock(&fs->lock);
	j->done(j->user, &e, got, e.err == S3_OK ? &info : NULL);
}

static int f_get_async(void *ctx, const char *key, uint64_t off, uint64_t len, const char *if_match,
                       void *buf, size_t cap, s3_done_fn done, void *user, struct s3_error *err)
{
	struct job *j = calloc(1, sizeof(*j));

	j->run = run_get;
	j->done = done;
	j->user = user;
	j->key = strdup(key);
	j->off = off;
	j->len = len;
	snprintf(j->if_match, sizeof(j->if_match), "%s", if_match ? if_match : "");
	j->buf = buf;
	j->cap = cap;
	queue(ctx, j);
	memset(err, 0, sizeof(*err));
	return 0;
}

static int f_put(void *ctx, const char *key, const void *data, size_t len,
                 const struct s3_obj_meta *meta, char *etag_out, struct s3_error *err)
{
	struct fake_store *fs = ctx;

	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_PUT]++;
	if (fault_locked(fs, FAKE_PUT, err)) {
		pthread_mutex_unlock(&fs->lock);
		return -1;
	}
	put_locked(fs, key, data, len, NULL);
	if (etag_out)
		snprintf(etag_out, 80, "%s", find_obj(fs, key)->etag);
	pthread_mutex_unlock(&fs->lock);
	memset(err, 0, sizeof(*err));
	return 0;
}

static void run_put(struct fake_store *fs, struct job *j)
{
	struct s3_error e;

	memset(&e, 0, sizeof(e));
	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_PUT]++;
	if (!fault_locked(fs, FAKE_PUT, &e))
		put_locked(fs, j->key, j->data, (size_t)j->len, NULL);
	pthread_mutex_unlock(&fs->lock);
	j->done(j->user, &e, 0, NULL);
}

static int f_put_async(void *ctx, const char *key, const void *data, size_t len, s3_done_fn done,
                       void *user, struct s3_error *err)
{
	struct job *j = calloc(1, sizeof(*j));

	j->run = run_put;
	j->done = done;
	j->user = user;
	j->key = strdup(key);
	j->data = data;
	j->len = len;
	queue(ctx, j);
	memset(err, 0, sizeof(*err));
	return 0;
}

static int f_create(void *ctx, const char *key, const struct s3_obj_meta *meta, char **upload_id,
                    struct s3_error *err)
{
	struct fake_store *fs = ctx;
	struct fupload *u = calloc(1, sizeof(*u));
	int r = 0;

	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_CREATE]++;
	if (fault_locked(fs, FAKE_CREATE, err)) {
		pthread_mutex_unlock(&fs->lock);
		free(u);
		*upload_id = NULL;
		return -1;
	}
	u->key = strdup(key);
	snprintf(u->id, sizeof(u->id), "up-%d", ++fs->next_id);
	u->initiated = time(NULL);
	u->next = fs->ups;
	fs->ups = u;
	if (fs->f.lose_create > 0) {
		fs->f.lose_create--;
		set_e(err, S3_ERR_NETWORK, "create: reply lost");
		err->outcome_unknown = true;
		*upload_id = NULL;
		r = -1;
	} else {
		*upload_id = strdup(u->id);
		memset(err, 0, sizeof(*err));
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static void run_part(struct fake_store *fs, struct job *j)
{
	struct s3_error e;
	struct fupload *u;

	memset(&e, 0, sizeof(e));
	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_PART]++;
	u = find_up(fs, j->upload_id);
	if (fault_locked(fs, FAKE_PART, &e)) {
		/* as asked */
	} else if (!u) {
		set_e(&e, S3_ERR_NO_SUCH_UPLOAD, "no such upload");
	} else if (fs->f.fail_part == j->part_no) {
		fs->f.fail_part = 0;
		set_e(&e, S3_ERR_SERVER, "part failed for good");
	} else {
		struct fpart *p = NULL;

		for (size_t i = 0; i < u->n_parts; i++)
			if (u->parts[i].no == j->part_no)
				p = &u->parts[i];
		if (!p) {
			u->parts = realloc(u->parts, (u->n_parts + 1) * sizeof(*u->parts));
			p = &u->parts[u->n_parts++];
			memset(p, 0, sizeof(*p));
		}
		free(p->data);
		p->no = j->part_no;
		p->len = j->len;
		p->data = malloc(j->len ? j->len : 1);
		memcpy(p->data, j->data, j->len);
		md5_hex(j->data, j->len, p->etag);
		snprintf(j->out->etag, sizeof(j->out->etag), "%s", p->etag);
	}
	pthread_mutex_unlock(&fs->lock);
	j->done(j->user, &e, 0, NULL);
}

static int f_part_async(void *ctx, const char *key, const char *upload_id, int part_no,
                        const void *data, size_t len, struct s3_part *out, s3_done_fn done,
                        void *user, struct s3_error *err)
{
	struct job *j = calloc(1, sizeof(*j));

	memset(out, 0, sizeof(*out));
	out->part_no = part_no;
	out->size = len;
	j->run = run_part;
	j->done = done;
	j->user = user;
	j->key = strdup(key);
	snprintf(j->upload_id, sizeof(j->upload_id), "%s", upload_id);
	j->part_no = part_no;
	j->data = data;
	j->len = len;
	j->out = out;
	queue(ctx, j);
	memset(err, 0, sizeof(*err));
	return 0;
}

static int f_part_copy(void *ctx, const char *key, const char *upload_id, int part_no,
                       const char *src_key, uint64_t off, uint64_t len, char *etag_out,
                       struct s3_error *err)
{
	struct fake_store *fs = ctx;
	struct fupload *u;
	struct fobj *o;
	int r = -1;

	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_PART_COPY]++;
	u = find_up(fs, upload_id);
	o = find_obj(fs, src_key);
	if (fault_locked(fs, FAKE_PART_COPY, err)) {
		/* as asked */
	} else if (!u || !o || off + len > o->len) {
		set_e(err, S3_ERR_INVALID_ARGUMENT, "bad copy");
	} else {
		struct fpart *p;

		u->parts = realloc(u->parts, (u->n_parts + 1) * sizeof(*u->parts));
		p = &u->parts[u->n_parts++];
		memset(p, 0, sizeof(*p));
		p->no = part_no;
		p->len = len;
		p->data = malloc(len ? len : 1);
		memcpy(p->data, o->data + off, len);
		md5_hex(p->data, len, p->etag);
		snprintf(etag_out, 80, "%s", p->etag);
		memset(err, 0, sizeof(*err));
		r = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static void up_free(struct fupload *u)
{
	for (size_t i = 0; i < u->n_parts; i++)
		free(u->parts[i].data);
	free(u->parts);
	free(u->key);
	free(u);
}

static void up_remove_locked(struct fake_store *fs, struct fupload *u)
{
	for (struct fupload **pp = &fs->ups; *pp; pp = &(*pp)->next) {
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	}
	up_free(u);
}

static int f_complete(void *ctx, const char *key, const char *upload_id,
                      const struct s3_part *parts, size_t n, char *etag_out, struct s3_error *err)
{
	struct fake_store *fs = ctx;
	struct fupload *u;
	char *data = NULL, etag[80];
	const char **etags = NULL;
	size_t len = 0;
	int r = -1;

	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_COMPLETE]++;
	u = find_up(fs, upload_id);
	if (fault_locked(fs, FAKE_COMPLETE, err))
		goto out;
	if (fs->f.fail_complete_net > 0) {
		fs->f.fail_complete_net--;
		set_e(err, S3_ERR_NETWORK, "complete: connection reset before it was read");
		err->outcome_unknown = true;
		goto out;
	}
	if (!u) {
		set_e(err, S3_ERR_NO_SUCH_UPLOAD, "no such upload");
		goto out;
	}
	etags = calloc(n ? n : 1, sizeof(*etags));
	for (size_t i = 0; i < n; i++) {
		struct fpart *p = NULL;

		for (size_t k = 0; k < u->n_parts; k++)
			if (u->parts[k].no == parts[i].part_no)
				p = &u->parts[k];
		if (!p || strcmp(p->etag, parts[i].etag)) {
			set_e(err, S3_ERR_INVALID_PART, "invalid part");
			goto out;
		}
		data = realloc(data, len + p->len + 1);
		memcpy(data + len, p->data, p->len);
		len += p->len;
		etags[i] = p->etag;
	}
	upload_etag_of_parts(etags, n, etag);
	put_locked(fs, key, data ? data : "", len, etag);
	up_remove_locked(fs, u);
	if (fs->f.lose_complete > 0) {
		fs->f.lose_complete--;
		set_e(err, S3_ERR_NETWORK, "complete: reply lost");
		err->outcome_unknown = true;
		goto out;
	}
	snprintf(etag_out, 80, "%s",
	         fs->f.wrong_etag ? "0123456789abcdef0123456789abcdef-1" : etag);
	memset(err, 0, sizeof(*err));
	r = 0;
out:
	pthread_mutex_unlock(&fs->lock);
	free(data);
	free(etags);
	return r;
}

static int f_abort(void *ctx, const char *key, const char *upload_id, struct s3_error *err)
{
	struct fake_store *fs = ctx;
	struct fupload *u;
	int r = -1;

	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_ABORT]++;
	u = find_up(fs, upload_id);
	if (fault_locked(fs, FAKE_ABORT, err)) {
		/* as asked */
	} else if (fs->f.fail_abort > 0) {
		fs->f.fail_abort--;
		set_e(err, S3_ERR_NETWORK, "abort: network down");
	} else if (!u) {
		set_e(err, S3_ERR_NO_SUCH_UPLOAD, "no such upload");
	} else {
		up_remove_locked(fs, u);
		memset(err, 0, sizeof(*err));
		r = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int f_list_parts(void *ctx, const char *key, const char *upload_id, struct s3_part **parts,
                        size_t *n, struct s3_error *err)
{
	struct fake_store *fs = ctx;
	struct fupload *u;
	int r = -1;

	*parts = NULL;
	*n = 0;
	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_LIST_PARTS]++;
	u = find_up(fs, upload_id);
	if (fault_locked(fs, FAKE_LIST_PARTS, err)) {
		/* as asked */
	} else if (!u) {
		set_e(err, S3_ERR_NO_SUCH_UPLOAD, "no such upload");
	} else {
		*parts = calloc(u->n_parts + 1, sizeof(**parts));
		for (size_t i = 0; i < u->n_parts; i++) {
			(*parts)[i].part_no = u->parts[i].no;
			(*parts)[i].size = u->parts[i].len;
			snprintf((*parts)[i].etag, 80, "%s", u->parts[i].etag);
		}
		*n = u->n_parts;
		memset(err, 0, sizeof(*err));
		r = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int f_list_uploads(void *ctx, const char *prefix, struct s3_upload_entry **ups, size_t *n,
                          struct s3_error *err)
{
	struct fake_store *fs = ctx;
	size_t k = 0;

	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_LIST_UPLOADS]++;
	if (fault_locked(fs, FAKE_LIST_UPLOADS, err)) {
		pthread_mutex_unlock(&fs->lock);
		*ups = NULL;
		*n = 0;
		return -1;
	}
	*ups = calloc(1, sizeof(**ups));
	for (struct fupload *u = fs->ups; u; u = u->next) {
		if (prefix && strncmp(u->key, prefix, strlen(prefix)))
			continue;
		*ups = realloc(*ups, (k + 1) * sizeof(**ups));
		(*ups)[k].key = strdup(u->key);
		(*ups)[k].upload_id = strdup(u->id);
		(*ups)[k].initiated = u->initiated;
		k++;
	}
	*n = k;
	pthread_mutex_unlock(&fs->lock);
	memset(err, 0, sizeof(*err));
	return 0;
}

static int f_copy(void *ctx, const char *src, const char *dst, const char *src_if_match,
                  const struct s3_obj_meta *meta, char *etag_out, struct s3_error *err)
{
	struct fake_store *fs = ctx;
	struct fobj *o;
	int r = -1;

	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_COPY]++;
	o = find_obj(fs, src);
	if (fault_locked(fs, FAKE_COPY, err)) {
		/* as asked */
	} else if (!o) {
		set_e(err, S3_ERR_NO_SUCH_KEY, "no such key");
	} else if (src_if_match && src_if_match[0] && strcmp(src_if_match, o->etag)) {
		set_e(err, S3_ERR_PRECONDITION, "precondition failed");
	} else {
		char *d = malloc(o->len ? o->len : 1);
		size_t len = o->len;

		memcpy(d, o->data, len);
		put_locked(fs, dst, d, len, NULL);
		free(d);
		if (etag_out)
			snprintf(etag_out, 80, "%s", find_obj(fs, dst)->etag);
		memset(err, 0, sizeof(*err));
		r = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static void delete_locked(struct fake_store *fs, const char *key)
{
	for (struct fobj **pp = &fs->objs; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->key, key)) {
			struct fobj *o = *pp;

			*pp = o->next;
			free(o->key);
			free(o->data);
			free(o);
			return;
		}
	}
}

static int f_del(void *ctx, const char *key, struct s3_error *err)
{
	struct fake_store *fs = ctx;
	int r = -1;

	pthread_mutex_lock(&fs->lock);
	fs->calls[FAKE_DELETE]++;
	if (!fault_locked(fs, FAKE_DELETE, err)) {
		delete_locked(fs, key);
		memset(err, 0, sizeof(*err));
		r = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static const struct fs_backend_ops fake_ops = {
    .head = f_head,
    .head_async = f_head_async,
    .list = f_list,
    .get = f_get,
    .get_async = f_get_async,
    .put = f_put,
    .put_async = f_put_async,
    .create = f_create,
    .upload_part_async = f_part_async,
    .upload_part_copy = f_part_copy,
    .complete = f_complete,
    .abort = f_abort,
    .list_parts = f_list_parts,
    .list_uploads = f_list_uploads,
    .copy = f_copy,
    .del = f_del,
};

struct fake_store *fake_store_new(void)
{
	struct fake_store *fs = calloc(1, sizeof(*fs));

	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->cond, NULL);
	pthread_create(&fs->worker, NULL, worker_main, fs);
	return fs;
}

void fake_store_free(struct fake_store *fs)
{
	pthread_mutex_lock(&fs->lock);
	fs->stop = true;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
	pthread_join(fs->worker, NULL);
	while (fs->objs) {
		struct fobj *o = fs->objs;

		fs->objs = o->next;
		free(o->key);
		free(o->data);
		free(o);
	}
	while (fs->ups) {
		struct fupload *u = fs->ups;

		fs->ups = u->next;
		up_free(u);
	}
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->cond);
	free(fs);
}

struct fs_backend fake_backend(struct fake_store *fs, long budget_ms)
{
	struct fs_backend b = {.ops = &fake_ops, .ctx = fs};

	retry_policy_defaults(&b.retry);
	b.retry.budget_ms = budget_ms;
	return b;
}

struct fake_faults *fake_faults(struct fake_store *fs)
{
	return &fs->f;
}

void fake_fail_op(struct fake_store *fs, enum fake_op op, int after, int times, enum s3_err err,
                  long http_status)
{
	pthread_mutex_lock(&fs->lock);
	fs->f.op[op].after = after;
	fs->f.op[op].times = times;
	fs->f.op[op].err = err;
	fs->f.op[op].http_status = http_status;
	pthread_mutex_unlock(&fs->lock);
}

void fake_pause(struct fake_store *fs, bool paused)
{
	pthread_mutex_lock(&fs->lock);
	fs->paused = paused;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
}

size_t fake_queued(struct fake_store *fs)
{
	size_t n = 0;

	pthread_mutex_lock(&fs->lock);
	for (struct job *j = fs->head; j; j = j->next)
		n++;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

size_t fake_count_prefix(struct fake_store *fs, const char *prefix)
{
	size_t n = 0;

	pthread_mutex_lock(&fs->lock);
	for (struct fobj *o = fs->objs; o; o = o->next)
		n += !strncmp(o->key, prefix, strlen(prefix));
	pthread_mutex_unlock(&fs->lock);
	return n;
}

void fake_set_list_page(struct fake_store *fs, size_t n)
{
	pthread_mutex_lock(&fs->lock);
	fs->list_page = n;
	pthread_mutex_unlock(&fs->lock);
}

void fake_put(struct fake_store *fs, const char *key, const void *data, size_t len)
{
	pthread_mutex_lock(&fs->lock);
	put_locked(fs, key, data, len, NULL);
	pthread_mutex_unlock(&fs->lock);
}

char *fake_get(struct fake_store *fs, const char *key, size_t *len)
{
	struct fobj *o;
	char *d = NULL;

	pthread_mutex_lock(&fs->lock);
	o = find_obj(fs, key);
	if (o) {
		d = malloc(o->len + 1);
		memcpy(d, o->data, o->len);
		*len = o->len;
	}
	pthread_mutex_unlock(&fs->lock);
	return d;
}

bool fake_etag(struct fake_store *fs, const char *key, char *out)
{
	struct fobj *o;

	pthread_mutex_lock(&fs->lock);
	o = find_obj(fs, key);
	if (o)
		snprintf(out, 80, "%s", o->etag);
	pthread_mutex_unlock(&fs->lock);
	return o != NULL;
}

void fake_delete(struct fake_store *fs, const char *key)
{
	pthread_mutex_lock(&fs->lock);
	delete_locked(fs, key);
	pthread_mutex_unlock(&fs->lock);
}

size_t fake_open_uploads(struct fake_store *fs)
{
	size_t n = 0;

	pthread_mutex_lock(&fs->lock);
	for (struct fupload *u = fs->ups; u; u = u->next)
		n++;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

int fake_calls(struct fake_store *fs, enum fake_op op)
{
	int n;

	pthread_mutex_lock(&fs->lock);
	n = fs->calls[op];
	pthread_mutex_unlock(&fs->lock);
	return n;
}

size_t fake_bytes_got(struct fake_store *fs)
{
	size_t n;

	pthread_mutex_lock(&fs->lock);
	n = fs->bytes_got;
	pthread_mutex_unlock(&fs->lock);
	return n;
}
