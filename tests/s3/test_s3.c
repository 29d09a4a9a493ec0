/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Suite s3: every S3 client operation against a real radosgw (scripts/rgw),
 * bytes compared, plus the errors a user meets. Needs HPCOPS_S3_* from
 * scripts/rgw's env file; exits 77 (skipped) without it unless
 * HPCOPS_REQUIRE_SERVERS=1.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "creds.h"
#include "log.h"
#include "s3.h"
#include "s3_test.h"
#include "util.h"
#include "xfer.h"

#define MIB (1024u * 1024u)

static struct {
	const char *endpoint, *region, *bucket, *ak, *sk, *rgw_dir;
	struct xfer_engine *xe;
	struct creds_provider *cp;
	struct s3_client *c;
	char pfx[64]; /* unique per run: every key of this run starts with it */
} g;

static const char *need_env(const char *name)
{
	const char *v = getenv(name);
	const char *req = getenv("HPCOPS_REQUIRE_SERVERS");

	if (v && v[0])
		return v;
	if (req && strcmp(req, "1") == 0) {
		fprintf(stderr,
		        "test_s3: %s is not set; start radosgw with scripts/rgw start DIR and "
		        "source DIR/env\n",
		        name);
		exit(1);
	}
	fprintf(stderr, "test_s3: %s not set: skipped (scripts/rgw start DIR; . DIR/env)\n", name);
	exit(77);
}

static struct s3_client *client_with(const char *bucket, struct creds_provider *cp,
                                     enum s3_checksum ck)
{
	struct s3_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.checksum = ck;
	cfg.endpoint = g.endpoint;
	cfg.region = g.region;
	cfg.bucket = bucket;
	cfg.force_path_style = true;
	cfg.creds = cp;
	cfg.xfer = g.xe;
	return s3_client_new(&cfg);
}

/* A client with the default checksum (CRC32C, which radosgw 16 takes and ignores). */
static struct s3_client *client_for(const char *bucket, struct creds_provider *cp)
{
	return client_with(bucket, cp, S3_CHECKSUM_CRC32C);
}

static void key_of(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void key_of(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(out, len, "%s", g.pfx);

	va_start(ap, fmt);
	vsnprintf(out + n, len - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Deterministic bytes, different per seed. */
static unsigned char *make_data(size_t len, uint64_t seed)
{
	unsigned char *p = malloc(len ? len : 1);
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;

	assert_non_null(p);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 24);
	}
	return p;
}

static void md5_raw(const void *d, size_t n, unsigned char out[16])
{
	unsigned int l = 16;

	assert_int_equal(EVP_Digest(d, n, out, &l, EVP_md5(), NULL), 1);
}

static void md5_hex(const void *d, size_t n, char out[33])
{
	unsigned char m[16];

	md5_raw(d, n, m);
	util_hex(m, 16, out);
}

static void expect_ok(int ret, const struct s3_error *e)
{
	char buf[512];

	if (ret != 0)
		fail_msg("S3 call failed: %s", s3_error_format(e, buf, sizeof(buf)));
}

static void put(const char *key, const void *d, size_t n)
{
	struct s3_error e;

	expect_ok(s3_put_object(g.c, key, d, n, NULL, &e), &e);
}

/* ---- async completion counting ---- */

struct waitgroup {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int pending;
	int failed;
	struct s3_error first;
};

static void wg_init(struct waitgroup *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->m, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void wg_add(struct waitgroup *w)
{
	pthread_mutex_lock(&w->m);
	w->pending++;
	pthread_mutex_unlock(&w->m);
}

static void wg_done(void *user, const struct s3_error *err, size_t got,
                    const struct s3_object_info *info)
{
	struct waitgroup *w = user;

	pthread_mutex_lock(&w->m);
	if (err->err != S3_OK && !w->failed++)
		w->first = *err;
	w->pending--;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->m);
}

static void wg_wait(struct waitgroup *w)
{
	char buf[512];

	pthread_mutex_lock(&w->m);
	while (w->pending)
		pthread_cond_wait(&w->cv, &w->m);
	pthread_mutex_unlock(&w->m);
	if (w->failed)
		fail_msg("%d async calls failed, first: %s", w->failed,
		         s3_error_format(&w->first, buf, sizeof(buf)));
	pthread_mutex_destroy(&w->m);
	pthread_cond_destroy(&w->cv);
}

/* ---- setup ---- */

static int setup(void **state)
{
	struct xfer_config xc;

	memset(&xc, 0, sizeof(xc));
	xc.max_connections = 16;
	g.xe = xfer_engine_new(&xc);
	g.cp = creds_provider_new_static(g.ak, g.sk, NULL);
	g.c = client_for(g.bucket, g.cp);
	if (!g.xe || !g.cp || !g.c)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	s3_client_free(g.c);
	creds_provider_free(g.cp);
	xfer_engine_free(g.xe);
	return 0;
}

/* ---- objects ---- */

static void test_put_get_head(void **state)
{
	size_t n = 3 * MIB + 17, got = 0;
	unsigned char *d = make_data(n, 1), *back = malloc(n + 100);
	char key[256], etag[80], md5[33];
	struct s3_object_info info;
	struct s3_error e;

	key_of(key, sizeof(key), "obj/put-get");
	expect_ok(s3_put_object(g.c, key, d, n, etag, &e), &e);
	md5_hex(d, n, md5);
	assert_string_equal(etag, md5);

	expect_ok(s3_head_object(g.c, key, &info, &e), &e);
	assert_int_equal(info.size, n);
	assert_string_equal(info.etag, md5);
	assert_true(info.mtime > time(NULL) - 3600 && info.mtime < time(NULL) + 3600);

	/* whole object (len 0 = to the end) into a larger buffer */
	memset(&info, 0, sizeof(info));
	expect_ok(s3_get_object(g.c, key, 0, 0, NULL, back, n + 100, &got, &info, &e), &e);
	assert_int_equal(got, n);
	assert_memory_equal(back, d, n);
	assert_int_equal(info.size, n);
	assert_string_equal(info.etag, md5);

	/* an empty object */
	key_of(key, sizeof(key), "obj/empty");
	expect_ok(s3_put_object(g.c, key, "", 0, etag, &e), &e);
	assert_string_equal(etag, "d41d8cd98f00b204e9800998ecf8427e");
	expect_ok(s3_head_object(g.c, key, &info, &e), &e);
	assert_int_equal(info.size, 0);
	/* a ranged read of an empty object gets 0 bytes, like read(2) at EOF */
	got = 99;
	expect_ok(s3_get_object(g.c, key, 0, 4096, NULL, back, n, &got, &info, &e), &e);
	assert_int_equal(got, 0);
	assert_int_equal(info.size, 0);
	/* ... but past its end it is an invalid range */
	assert_int_equal(s3_get_object(g.c, key, 10, 4096, NULL, back, n, &got, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_INVALID_RANGE);
	free(d);
	free(back);
}

static void test_ranges(void **state)
{
	size_t n = 1 * MIB + 5, got;
	unsigned char *d = make_data(n, 2), buf[4096];
	char key[256];
	struct s3_object_info info;
	struct s3_error e;
	unsigned char *big = malloc(n);

	key_of(key, sizeof(key), "obj/ranges");
	put(key, d, n);

	/* bytes=0-0 */
	memset(&info, 0, sizeof(info));
	expect_ok(s3_get_object(g.c, key, 0, 1, NULL, buf, sizeof(buf), &got, &info, &e), &e);
	assert_int_equal(got, 1);
	assert_int_equal(buf[0], d[0]);
	assert_int_equal(info.size, n); /* from Content-Range */

	/* the middle */
	expect_ok(s3_get_object(g.c, key, 500000, 3000, NULL, buf, sizeof(buf), &got, NULL, &e),
	          &e);
	assert_int_equal(got, 3000);
	assert_memory_equal(buf, d + 500000, 3000);

	/* to the end from an offset */
	expect_ok(s3_get_object(g.c, key, n - 100, 0, NULL, buf, sizeof(buf), &got, NULL, &e), &e);
	assert_int_equal(got, 100);
	assert_memory_equal(buf, d + n - 100, 100);

	/* a range running past the end gets what exists */
	expect_ok(s3_get_object(g.c, key, n - 10, 4000, NULL, buf, sizeof(buf), &got, NULL, &e),
	          &e);
	assert_int_equal(got, 10);
	assert_memory_equal(buf, d + n - 10, 10);

	/* the last byte */
	expect_ok(s3_get_object(g.c, key, n - 1, 1, NULL, buf, sizeof(buf), &got, NULL, &e), &e);
	assert_int_equal(got, 1);
	assert_int_equal(buf[0], d[n - 1]);

	/* an offset past the end */
	assert_int_equal(
	    s3_get_object(g.c, key, n + 10, 10, NULL, buf, sizeof(buf), &got, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_INVALID_RANGE);
	assert_int_equal(e.http_status, 416);

	/* the whole object into a buffer too small */
	assert_int_equal(s3_get_object(g.c, key, 0, 0, NULL, buf, sizeof(buf), &got, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_INVALID_RANGE);

	/* a range bigger than the buffer is refused before sending */
	assert_int_equal(s3_get_object(g.c, key, 0, 8192, NULL, buf, sizeof(buf), &got, NULL, &e),
	                 -1);
	assert_int_equal(e.err, S3_ERR_INVALID_ARGUMENT);

	/* whole object exactly fitting */
	expect_ok(s3_get_object(g.c, key, 0, n, NULL, big, n, &got, NULL, &e), &e);
	assert_int_equal(got, n);
	assert_memory_equal(big, d, n);
	free(big);
	free(d);
}

struct collect {
	unsigned char *buf;
	size_t len, cap;
	int resets;
	size_t stop_after; /* 0 = never */
};

static int collect_write(void *user, const void *data, size_t len)
{
	struct collect *c = user;

	if (c->stop_after && c->len + len > c->stop_after)
		return 1;
	assert_true(c->len + len <= c->cap);
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	return 0;
}

static void collect_reset(void *user)
{
	struct collect *c = user;

	c->len = 0;
	c->resets++;
}

static void test_get_stream(void **state)
{
	size_t n = 5 * MIB + 3;
	unsigned char *d = make_data(n, 3);
	struct collect col = {.buf = malloc(n), .cap = n};
	struct s3_sink sink = {.write = collect_write, .reset = collect_reset, .user = &col};
	struct s3_object_info info;
	struct s3_error e;
	char key[256];

	key_of(key, sizeof(key), "obj/stream");
	put(key, d, n);
	expect_ok(s3_get_object_stream(g.c, key, 0, 0, NULL, &sink, &info, &e), &e);
	assert_int_equal(col.len, n);
	assert_memory_equal(col.buf, d, n);
	assert_int_equal(info.size, n);

	/* a range, streamed */
	col.len = 0;
	expect_ok(s3_get_object_stream(g.c, key, 1000, 2 * MIB, NULL, &sink, NULL, &e), &e);
	assert_int_equal(col.len, 2 * MIB);
	assert_memory_equal(col.buf, d + 1000, 2 * MIB);

	/* the sink says stop */
	col.len = 0;
	col.stop_after = 100000;
	assert_int_equal(s3_get_object_stream(g.c, key, 0, 0, NULL, &sink, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_CANCELLED);

	/* a missing key: the error document never reaches the sink */
	col.len = 0;
	col.stop_after = 0;
	key_of(key, sizeof(key), "obj/stream-missing");
	assert_int_equal(s3_get_object_stream(g.c, key, 0, 0, NULL, &sink, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);
	assert_int_equal(col.len, 0);
	free(col.buf);
	free(d);
}

struct range_job {
	struct waitgroup *wg;
	unsigned char *buf;
	size_t got;
};

static void range_done(void *user, const struct s3_error *err, size_t got,
                       const struct s3_object_info *info)
{
	struct range_job *j = user;

	j->got = got;
	wg_done(j->wg, err, got, info);
}

static void test_get_async_parallel(void **state)
{
	enum { N = 8 };
	size_t n = 8 * MIB, chunk = MIB;
	unsigned char *d = make_data(n, 4);
	struct range_job jobs[N];
	struct waitgroup wg;
	struct s3_error e;
	char key[256];

	key_of(key, sizeof(key), "obj/async");
	put(key, d, n);
	wg_init(&wg);
	for (int i = 0; i < N; i++) {
		jobs[i].wg = &wg;
		jobs[i].buf = malloc(chunk);
		jobs[i].got = 0;
		wg_add(&wg);
		expect_ok(s3_get_object_async(g.c, key, (uint64_t)i * chunk, chunk, NULL,
		                              jobs[i].buf, chunk, range_done, &jobs[i], &e),
		          &e);
	}
	wg_wait(&wg);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].got, chunk);
		assert_memory_equal(jobs[i].buf, d + (size_t)i * chunk, chunk);
		free(jobs[i].buf);
	}
	free(d);
}

/*
 * An async call's outcome must survive its own submit. The callback may run
 * on the engine's thread before s3_*_async() returns, and callers (the
 * mount's lookup) pass the one struct the callback fills as the submit's
 * @err too: a submit that cleared @err after queueing turned a finished
 * 404 into S3_OK, and the mount showed (then deleted) a file that did not
 * exist. To lose the race on purpose the submitting thread runs at
 * SCHED_IDLE against busy threads, so it is preempted right after queueing.
 */
struct same_err {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool done;
	struct s3_error err;
};

static void same_err_done(void *user, const struct s3_error *err, size_t got,
                          const struct s3_object_info *info)
{
	struct same_err *w = user;

	pthread_mutex_lock(&w->m);
	w->err = *err;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->m);
}

static bool hog_stop; /* __atomic */

static void *hog(void *arg)
{
	volatile uint64_t x = 0;

	while (!__atomic_load_n(&hog_stop, __ATOMIC_RELAXED))
		x++;
	return NULL;
}

static void test_async_outcome_survives_submit(void **state)
{
	enum { ROUNDS = 300, HOGS = 2 };
	struct sched_param sp = {0}, old_sp;
	pthread_t hogs[HOGS];
	int old_policy, wrong = 0, first_wrong = 0;
	char key[256];

	key_of(key, sizeof(key), "missing/async-head");
	pthread_getschedparam(pthread_self(), &old_policy, &old_sp);
	__atomic_store_n(&hog_stop, false, __ATOMIC_RELAXED);
	for (int i = 0; i < HOGS; i++)
		assert_int_equal(pthread_create(&hogs[i], NULL, hog, NULL), 0);
	(void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	for (int i = 0; i < ROUNDS; i++) {
		struct same_err w = {.done = false};

		pthread_mutex_init(&w.m, NULL);
		pthread_cond_init(&w.cv, NULL);
		if (s3_head_object_async(g.c, key, same_err_done, &w, &w.err) == 0) {
			pthread_mutex_lock(&w.m);
			while (!w.done)
				pthread_cond_wait(&w.cv, &w.m);
			pthread_mutex_unlock(&w.m);
		}
		if (w.err.err != S3_ERR_NO_SUCH_KEY && !wrong++)
			first_wrong = (int)w.err.err;
		pthread_mutex_destroy(&w.m);
		pthread_cond_destroy(&w.cv);
	}
	(void)pthread_setschedparam(pthread_self(), old_policy, &old_sp);
	__atomic_store_n(&hog_stop, true, __ATOMIC_RELAXED);
	for (int i = 0; i < HOGS; i++)
		pthread_join(hogs[i], NULL);
	if (wrong)
		fail_msg("%d of %d async HEADs of a missing key ended as error %d, not NoSuchKey",
		         wrong, ROUNDS, first_wrong);
}

static void test_if_match(void **state)
{
	unsigned char *d = make_data(1000, 5), buf[1000];
	char key[256], etag[80];
	size_t got;
	struct s3_error e;

	key_of(key, sizeof(key), "obj/if-match");
	expect_ok(s3_put_object(g.c, key, d, 1000, etag, &e), &e);
	expect_ok(s3_get_object(g.c, key, 0, 1000, etag, buf, sizeof(buf), &got, NULL, &e), &e);
	assert_memory_equal(buf, d, 1000);
	assert_int_equal(s3_get_object(g.c, key, 0, 1000, "0123456789abcdef0123456789abcdef", buf,
	                               sizeof(buf), &got, NULL, &e),
	                 -1);
	assert_int_equal(e.err, S3_ERR_PRECONDITION);
	assert_int_equal(e.http_status, 412);
	free(d);
}

/* x-amz-meta-mtime written by PutObject, CreateMultipartUpload and CopyObject
 * REPLACE, read back by HEAD and GET: fractions and times before 1970. */
static void test_object_meta_mtime(void **state)
{
	const struct s3_obj_meta pos = {.has_mtime = true, .mtime = {1500000000, 123456789}};
	const struct s3_obj_meta neg = {.has_mtime = true, .mtime = {-2, 500000000}}; /* -1.5 s */
	struct s3_object_info info;
	struct s3_part part = {.part_no = 1};
	char key[256], etag[80], *uid = NULL;
	struct s3_error e;
	size_t got = 0;
	char back[8];

	key_of(key, sizeof(key), "meta/put");
	expect_ok(s3_put_object_meta(g.c, key, "abc", 3, &pos, etag, &e), &e);
	expect_ok(s3_head_object(g.c, key, &info, &e), &e);
	assert_true(info.meta.has_mtime);
	assert_int_equal(info.meta.mtime.tv_sec, 1500000000);
	assert_int_equal(info.meta.mtime.tv_nsec, 123456789);
	memset(&info, 0, sizeof(info));
	expect_ok(s3_get_object(g.c, key, 0, 0, NULL, back, sizeof(back), &got, &info, &e), &e);
	assert_true(info.meta.has_mtime);
	assert_int_equal(info.meta.mtime.tv_nsec, 123456789);

	/* rewritten in place (x-amz-copy-source-if-match is sent, but radosgw 16
	 * ignores it, so its refusal cannot be checked here) */
	expect_ok(s3_copy_object_meta(g.c, key, key, etag, &neg, NULL, &e), &e);
	expect_ok(s3_head_object(g.c, key, &info, &e), &e);
	assert_true(info.meta.has_mtime);
	assert_int_equal(info.meta.mtime.tv_sec, -2);
	assert_int_equal(info.meta.mtime.tv_nsec, 500000000);

	/* no metadata: none read back */
	key_of(key, sizeof(key), "meta/none");
	expect_ok(s3_put_object(g.c, key, "x", 1, NULL, &e), &e);
	expect_ok(s3_head_object(g.c, key, &info, &e), &e);
	assert_false(info.meta.has_mtime);

	/* a multipart object carries what CreateMultipartUpload said */
	key_of(key, sizeof(key), "meta/multipart");
	expect_ok(s3_create_multipart_meta(g.c, key, &pos, &uid, &e), &e);
	expect_ok(s3_upload_part(g.c, key, uid, 1, "part", 4, &part, &e), &e);
	expect_ok(s3_complete_multipart(g.c, key, uid, &part, 1, etag, &e), &e);
	free(uid);
	expect_ok(s3_head_object(g.c, key, &info, &e), &e);
	assert_true(info.meta.has_mtime);
	assert_int_equal(info.meta.mtime.tv_sec, 1500000000);
}

static void test_special_keys(void **state)
{
	static const char *const names[] = {
	    "sp/a b+c%d&e<f>'\"\xc3\xbc~=.txt",
	    "sp/x?y#z;w,v:u@t$s!r(q)p*o",
	    "sp/tab\there",
	};
	char key[512], dst[512];
	struct s3_list_page pg;
	struct s3_list_params lp;
	struct s3_error e;
	size_t got;
	char buf[64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		key_of(key, sizeof(key), "%s", names[i]);
		put(key, names[i], strlen(names[i]));
		expect_ok(s3_get_object(g.c, key, 0, 0, NULL, buf, sizeof(buf), &got, NULL, &e),
		          &e);
		assert_int_equal(got, strlen(names[i]));
		assert_memory_equal(buf, names[i], got);
	}
	memset(&lp, 0, sizeof(lp));
	key_of(key, sizeof(key), "sp/");
	lp.prefix = key;
	expect_ok(s3_list_objects(g.c, &lp, &pg, &e), &e);
	assert_int_equal(pg.n_entries, 3);
	for (size_t i = 0; i < pg.n_entries; i++) {
		bool found = false;

		for (size_t j = 0; j < 3; j++) {
			key_of(dst, sizeof(dst), "%s", names[j]);
			found |= strcmp(dst, pg.entries[i].key) == 0;
		}
		if (!found)
			fail_msg("listed key \"%s\" is none of those written", pg.entries[i].key);
	}
	s3_list_page_free(&pg);

	/* copy and delete with the same names */
	key_of(key, sizeof(key), "%s", names[0]);
	key_of(dst, sizeof(dst), "sp/copy of %s", names[0] + 3);
	expect_ok(s3_copy_object(g.c, key, dst, NULL, &e), &e);
	expect_ok(s3_get_object(g.c, dst, 0, 0, NULL, buf, sizeof(buf), &got, NULL, &e), &e);
	assert_int_equal(got, strlen(names[0]));
	assert_memory_equal(buf, names[0], got);
	expect_ok(s3_delete_object(g.c, dst, &e), &e);
	assert_int_equal(s3_head_object(g.c, dst, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);
}

static void test_copy_delete(void **state)
{
	size_t n = 2 * MIB + 1, got;
	unsigned char *d = make_data(n, 6), *back = malloc(n);
	char src[256], dst[256], etag[80], md5[33];
	const char *keys[3];
	char k1[256], k2[256], k3[256];
	size_t failed = 99;
	struct s3_error e;

	key_of(src, sizeof(src), "cp/src");
	key_of(dst, sizeof(dst), "cp/dst");
	put(src, d, n);
	expect_ok(s3_copy_object(g.c, src, dst, etag, &e), &e);
	md5_hex(d, n, md5);
	assert_string_equal(etag, md5);
	expect_ok(s3_get_object(g.c, dst, 0, 0, NULL, back, n, &got, NULL, &e), &e);
	assert_int_equal(got, n);
	assert_memory_equal(back, d, n);

	/* copy of a missing source */
	key_of(src, sizeof(src), "cp/missing");
	assert_int_equal(s3_copy_object(g.c, src, dst, etag, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);

	/* DeleteObject; deleting again is still success */
	expect_ok(s3_delete_object(g.c, dst, &e), &e);
	assert_int_equal(s3_head_object(g.c, dst, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);
	expect_ok(s3_delete_object(g.c, dst, &e), &e);

	/* DeleteObjects: two present, one missing (counts as deleted) */
	key_of(k1, sizeof(k1), "cp/d1");
	key_of(k2, sizeof(k2), "cp/d2 & <x>");
	key_of(k3, sizeof(k3), "cp/never-written");
	put(k1, "1", 1);
	put(k2, "2", 1);
	keys[0] = k1;
	keys[1] = k2;
	keys[2] = k3;
	expect_ok(s3_delete_objects(g.c, keys, 3, &failed, &e), &e);
	assert_int_equal(failed, 0);
	assert_int_equal(s3_head_object(g.c, k1, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);
	assert_int_equal(s3_head_object(g.c, k2, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);
	key_of(src, sizeof(src), "cp/src");
	expect_ok(s3_head_object(g.c, src, NULL, &e), &e); /* untouched */
	free(back);
	free(d);
}

/* ---- listing ---- */

static void test_list_pages_1500(void **state)
{
	enum { N = 1500 };
	static char keys[N][160];
	static char etags[N][80];
	const char *batch[1000];
	struct waitgroup wg;
	struct s3_list_params lp;
	struct s3_list_page pg;
	struct s3_error e;
	char prefix[128], token[1024] = "", after[160];
	static const char body[7] = "abcdefg";

	key_of(prefix, sizeof(prefix), "list/");
	wg_init(&wg);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%sk%05d", prefix, i);
		wg_add(&wg);
		expect_ok(s3_put_object_async(g.c, keys[i], body, (size_t)(i % 7), etags[i],
		                              wg_done, &wg, &e),
		          &e);
	}
	wg_wait(&wg);

	/*
	 * Pages of 1000 (the S3 maximum: 1000 + 500), then pages of 600
	 * (600 + 600 + 300: a token from a page that was itself continued),
	 * in key order with sizes and ETags as written.
	 */
	for (int round = 0; round < 2; round++) {
		int page_size = round == 0 ? 1000 : 600;
		size_t seen = 0, pages = 0;

		token[0] = '\0';
		do {
			size_t want;

			memset(&lp, 0, sizeof(lp));
			lp.prefix = prefix;
			lp.max_keys = page_size;
			lp.continuation_token = token[0] ? token : NULL;
			expect_ok(s3_list_objects(g.c, &lp, &pg, &e), &e);
			pages++;
			for (size_t i = 0; i < pg.n_entries; i++, seen++) {
				assert_true(seen < N);
				assert_string_equal(pg.entries[i].key, keys[seen]);
				assert_int_equal(pg.entries[i].size, seen % 7);
				assert_string_equal(pg.entries[i].etag, etags[seen]);
				assert_true(pg.entries[i].mtime > 0);
			}
			assert_int_equal(pg.n_prefixes, 0);
			if (pg.truncated)
				snprintf(token, sizeof(token), "%s", pg.next_token);
			else
				token[0] = '\0';
			want = N - (pages - 1) * (size_t)page_size;
			if (want > (size_t)page_size)
				want = (size_t)page_size;
			assert_int_equal(pg.n_entries, want);
			s3_list_page_free(&pg);
		} while (token[0]);
		assert_int_equal(pages, round == 0 ? 2 : 3);
		assert_int_equal(seen, N);
	}

	/* start-after */
	memset(&lp, 0, sizeof(lp));
	lp.prefix = prefix;
	snprintf(after, sizeof(after), "%sk01199", prefix);
	lp.start_after = after;
	lp.max_keys = 10;
	expect_ok(s3_list_objects(g.c, &lp, &pg, &e), &e);
	assert_int_equal(pg.n_entries, 10);
	assert_string_equal(pg.entries[0].key, keys[1200]);
	assert_true(pg.truncated);
	s3_list_page_free(&pg);

	/* a small page */
	memset(&lp, 0, sizeof(lp));
	lp.prefix = prefix;
	lp.max_keys = 1;
	expect_ok(s3_list_objects(g.c, &lp, &pg, &e), &e);
	assert_int_equal(pg.n_entries, 1);
	assert_true(pg.truncated);
	assert_non_null(pg.next_token);
	s3_list_page_free(&pg);

	/* clean up with DeleteObjects, 1000 keys a call */
	for (int i = 0; i < N; i += 1000) {
		size_t n = N - i < 1000 ? (size_t)(N - i) : 1000, failed = 1;

		for (size_t j = 0; j < n; j++)
			batch[j] = keys[i + (int)j];
		expect_ok(s3_delete_objects(g.c, batch, n, &failed, &e), &e);
		assert_int_equal(failed, 0);
	}
	memset(&lp, 0, sizeof(lp));
	lp.prefix = prefix;
	expect_ok(s3_list_objects(g.c, &lp, &pg, &e), &e);
	assert_int_equal(pg.n_entries, 0);
	assert_false(pg.truncated);
	s3_list_page_free(&pg);
}

static void test_list_delimiter(void **state)
{
	static const char *const rel[] = {"a/1", "a/2", "b/x/1", "c", "d e", "f/"};
	char prefix[128], key[256], want[256];
	struct s3_list_params lp;
	struct s3_list_page pg;
	struct s3_error e;
	char token[1024] = "";
	int pages = 0, n_pfx = 0, n_ent = 0;

	key_of(prefix, sizeof(prefix), "tree/");
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(key, sizeof(key), "%s%s", prefix, rel[i]);
		put(key, rel[i], strlen(rel[i]));
	}
	memset(&lp, 0, sizeof(lp));
	lp.prefix = prefix;
	lp.delimiter = "/";
	expect_ok(s3_list_objects(g.c, &lp, &pg, &e), &e);
	assert_int_equal(pg.n_prefixes, 3);
	snprintf(want, sizeof(want), "%sa/", prefix);
	assert_string_equal(pg.prefixes[0], want);
	snprintf(want, sizeof(want), "%sb/", prefix);
	assert_string_equal(pg.prefixes[1], want);
	snprintf(want, sizeof(want), "%sf/", prefix);
	assert_string_equal(pg.prefixes[2], want);
	assert_int_equal(pg.n_entries, 2);
	snprintf(want, sizeof(want), "%sc", prefix);
	assert_string_equal(pg.entries[0].key, want);
	assert_int_equal(pg.entries[0].size, 1);
	snprintf(want, sizeof(want), "%sd e", prefix);
	assert_string_equal(pg.entries[1].key, want);
	assert_false(pg.truncated);
	s3_list_page_free(&pg);

	/* one per page: prefixes and keys come through continuation too */
	do {
		memset(&lp, 0, sizeof(lp));
		lp.prefix = prefix;
		lp.delimiter = "/";
		lp.max_keys = 1;
		lp.continuation_token = token[0] ? token : NULL;
		expect_ok(s3_list_objects(g.c, &lp, &pg, &e), &e);
		pages++;
		n_pfx += (int)pg.n_prefixes;
		n_ent += (int)pg.n_entries;
		assert_true(pg.n_prefixes + pg.n_entries <= 1);
		snprintf(token, sizeof(token), "%s", pg.truncated ? pg.next_token : "");
		s3_list_page_free(&pg);
	} while (token[0] && pages < 20);
	assert_int_equal(n_pfx, 3);
	assert_int_equal(n_ent, 2);

	/* inside a "directory" */
	memset(&lp, 0, sizeof(lp));
	snprintf(key, sizeof(key), "%sb/", prefix);
	lp.prefix = key;
	lp.delimiter = "/";
	expect_ok(s3_list_objects(g.c, &lp, &pg, &e), &e);
	assert_int_equal(pg.n_entries, 0);
	assert_int_equal(pg.n_prefixes, 1);
	snprintf(want, sizeof(want), "%sb/x/", prefix);
	assert_string_equal(pg.prefixes[0], want);
	s3_list_page_free(&pg);

	/* bad max-keys is refused with a message */
	lp.max_keys = 5000;
	assert_int_equal(s3_list_objects(g.c, &lp, &pg, &e), -1);
	assert_int_equal(e.err, S3_ERR_INVALID_ARGUMENT);
}

/* ---- multipart ---- */

static void test_multipart_three_parts(void **state)
{
	size_t sz[3] = {5 * MIB, 5 * MIB, MIB + 3}, n = sz[0] + sz[1] + sz[2], got;
	unsigned char *d = make_data(n, 7), *back = malloc(n), md5s[48], m[16];
	char key[256], *uid = NULL, etag[80], want[64], hex[33];
	struct s3_part parts[3], *listed = NULL;
	size_t n_listed = 0;
	struct s3_object_info info;
	struct waitgroup wg;
	struct s3_error e;
	unsigned char buf[16];

	key_of(key, sizeof(key), "mp/three");
	expect_ok(s3_create_multipart(g.c, key, &uid, &e), &e);
	assert_non_null(uid);
	memset(parts, 0, sizeof(parts));
	/* part 1 blocking, parts 2 and 3 at once */
	parts[0].part_no = 1;
	expect_ok(s3_upload_part(g.c, key, uid, 1, d, sz[0], &parts[0], &e), &e);
	wg_init(&wg);
	for (int i = 1; i < 3; i++) {
		parts[i].part_no = i + 1;
		wg_add(&wg);
		expect_ok(s3_upload_part_async(g.c, key, uid, i + 1,
		                               d + (i == 1 ? sz[0] : sz[0] + sz[1]), sz[i],
		                               &parts[i], wg_done, &wg, &e),
		          &e);
	}
	wg_wait(&wg);
	for (int i = 0; i < 3; i++) {
		size_t off = i == 0 ? 0 : i == 1 ? sz[0] : sz[0] + sz[1];

		md5_raw(d + off, sz[i], md5s + 16 * i);
		util_hex(md5s + 16 * i, 16, hex);
		assert_string_equal(parts[i].etag, hex);
	}

	expect_ok(s3_list_parts(g.c, key, uid, &listed, &n_listed, &e), &e);
	assert_int_equal(n_listed, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(listed[i].part_no, i + 1);
		assert_int_equal(listed[i].size, sz[i]);
		assert_string_equal(listed[i].etag, parts[i].etag);
	}
	free(listed);

	expect_ok(s3_complete_multipart(g.c, key, uid, parts, 3, etag, &e), &e);
	/* the md5-N ETag: MD5 of the parts' binary MD5s, then "-3" */
	md5_raw(md5s, 48, m);
	util_hex(m, 16, hex);
	snprintf(want, sizeof(want), "%s-3", hex);
	assert_string_equal(etag, want);

	expect_ok(s3_head_object(g.c, key, &info, &e), &e);
	assert_int_equal(info.size, n);
	assert_string_equal(info.etag, want);
	expect_ok(s3_get_object(g.c, key, 0, 0, NULL, back, n, &got, NULL, &e), &e);
	assert_int_equal(got, n);
	assert_memory_equal(back, d, n);

	/* a range across the part 1/2 boundary */
	expect_ok(s3_get_object(g.c, key, sz[0] - 8, 16, NULL, buf, sizeof(buf), &got, NULL, &e),
	          &e);
	assert_int_equal(got, 16);
	assert_memory_equal(buf, d + sz[0] - 8, 16);
	/* exactly the first byte of part 3 */
	expect_ok(s3_get_object(g.c, key, sz[0] + sz[1], 1, NULL, buf, sizeof(buf), &got, NULL, &e),
	          &e);
	assert_int_equal(buf[0], d[sz[0] + sz[1]]);

	/* the upload is gone once complete (radosgw says NoSuchKey, AWS NoSuchUpload) */
	assert_int_equal(s3_list_parts(g.c, key, uid, &listed, &n_listed, &e), -1);
	assert_true(e.err == S3_ERR_NO_SUCH_UPLOAD || e.err == S3_ERR_NO_SUCH_KEY);
	free(uid);
	free(back);
	free(d);
}

static void test_upload_part_copy(void **state)
{
	/* new object = [old bytes 0..5 MiB) + [old bytes 5 MiB..end) + fresh tail */
	size_t n = 11 * MIB + 11, split = 5 * MIB, tail = 1000, got;
	unsigned char *d = make_data(n, 8), *t = make_data(tail, 9), *back = malloc(n + tail);
	char src[256], dst[256], *uid = NULL, etag[80];
	struct s3_part parts[3];
	struct s3_error e;

	key_of(src, sizeof(src), "upc/src");
	key_of(dst, sizeof(dst), "upc/dst");
	put(src, d, n);
	expect_ok(s3_create_multipart(g.c, dst, &uid, &e), &e);
	memset(parts, 0, sizeof(parts));
	parts[0].part_no = 1;
	expect_ok(s3_upload_part_copy(g.c, dst, uid, 1, src, 0, split, parts[0].etag, &e), &e);
	parts[1].part_no = 2;
	expect_ok(s3_upload_part_copy(g.c, dst, uid, 2, src, split, n - split, parts[1].etag, &e),
	          &e);
	parts[2].part_no = 3;
	expect_ok(s3_upload_part(g.c, dst, uid, 3, t, tail, &parts[2], &e), &e);
	expect_ok(s3_complete_multipart(g.c, dst, uid, parts, 3, etag, &e), &e);
	assert_non_null(strstr(etag, "-3"));
	expect_ok(s3_get_object(g.c, dst, 0, 0, NULL, back, n + tail, &got, NULL, &e), &e);
	assert_int_equal(got, n + tail);
	assert_memory_equal(back, d, n);
	assert_memory_equal(back + n, t, tail);
	free(uid);
	free(back);
	free(t);
	free(d);
}

static void test_abort_and_list_uploads(void **state)
{
	char key[256], prefix[128], *uid = NULL, *uid2 = NULL;
	struct s3_part pt;
	struct s3_upload_entry *ups = NULL;
	struct s3_part *parts = NULL;
	size_t n = 0, np = 0;
	struct s3_error e;
	int mine = 0;

	key_of(prefix, sizeof(prefix), "abort/");
	key_of(key, sizeof(key), "abort/obj one");
	expect_ok(s3_create_multipart(g.c, key, &uid, &e), &e);
	expect_ok(s3_create_multipart(g.c, key, &uid2, &e), &e);
	expect_ok(s3_upload_part(g.c, key, uid, 1, "hello", 5, &pt, &e), &e);

	expect_ok(s3_list_multipart_uploads(g.c, prefix, &ups, &n, &e), &e);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(ups[i].key, key);
		mine += strcmp(ups[i].upload_id, uid) == 0 || strcmp(ups[i].upload_id, uid2) == 0;
	}
	assert_int_equal(mine, 2);
	s3_upload_entries_free(ups, n);

	expect_ok(s3_abort_multipart(g.c, key, uid, &e), &e);
	expect_ok(s3_abort_multipart(g.c, key, uid2, &e), &e);
	expect_ok(s3_list_multipart_uploads(g.c, prefix, &ups, &n, &e), &e);
	assert_int_equal(n, 0);
	s3_upload_entries_free(ups, n);

	/* radosgw says NoSuchKey here, AWS NoSuchUpload */
	assert_int_equal(s3_list_parts(g.c, key, uid, &parts, &np, &e), -1);
	assert_true(e.err == S3_ERR_NO_SUCH_UPLOAD || e.err == S3_ERR_NO_SUCH_KEY);
	assert_int_equal(s3_upload_part(g.c, key, uid, 2, "x", 1, &pt, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_UPLOAD);
	/* nothing became visible */
	assert_int_equal(s3_head_object(g.c, key, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);
	free(uid);
	free(uid2);
}

/* ---- the errors a user meets ---- */

static void test_no_such_key_and_bucket(void **state)
{
	char key[256], buf[16], bucket[64];
	struct s3_client *nb;
	struct s3_list_params lp;
	struct s3_list_page pg;
	size_t got;
	struct s3_error e;

	key_of(key, sizeof(key), "missing/key");
	assert_int_equal(s3_get_object(g.c, key, 0, 1, NULL, buf, sizeof(buf), &got, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);
	assert_string_equal(e.code, "NoSuchKey");
	assert_int_equal(e.http_status, 404);
	assert_true(e.request_id[0] != '\0');

	/* HEAD 404 has no body */
	assert_int_equal(s3_head_object(g.c, key, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);
	assert_int_equal(e.http_status, 404);

	snprintf(bucket, sizeof(bucket), "hpcops-absent-%ld", (long)getpid());
	nb = client_for(bucket, g.cp);
	assert_non_null(nb);
	assert_int_equal(s3_get_object(nb, "k", 0, 1, NULL, buf, sizeof(buf), &got, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_BUCKET);
	assert_string_equal(e.code, "NoSuchBucket");
	memset(&lp, 0, sizeof(lp));
	assert_int_equal(s3_list_objects(nb, &lp, &pg, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_BUCKET);
	assert_int_equal(s3_put_object(nb, "k", "x", 1, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_BUCKET);
	s3_client_free(nb);
}

static void test_bad_credentials(void **state)
{
	struct creds_provider *wrong = creds_provider_new_static(g.ak, "not-the-secret", NULL);
	struct creds_provider *unknown =
	    creds_provider_new_static("AKIAUNKNOWNUNKNOWN00", g.sk, NULL);
	struct s3_client *c1 = client_for(g.bucket, wrong), *c2 = client_for(g.bucket, unknown);
	char key[256], buf[8];
	size_t got;
	struct s3_error e;

	assert_non_null(c1);
	assert_non_null(c2);
	key_of(key, sizeof(key), "creds/obj");
	put(key, "x", 1);
	assert_int_equal(s3_get_object(c1, key, 0, 1, NULL, buf, sizeof(buf), &got, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_SIGNATURE);
	assert_string_equal(e.code, "SignatureDoesNotMatch");
	assert_int_equal(e.http_status, 403);
	assert_int_equal(s3_put_object(c1, key, "y", 1, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_SIGNATURE);

	assert_int_equal(s3_get_object(c2, key, 0, 1, NULL, buf, sizeof(buf), &got, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_INVALID_ACCESS_KEY);
	assert_string_equal(e.code, "InvalidAccessKeyId");
	/* a HEAD has no body: 403 alone is access denied */
	assert_int_equal(s3_head_object(c2, key, NULL, &e), -1);
	assert_int_equal(e.http_status, 403);
	assert_int_equal(e.err, S3_ERR_ACCESS_DENIED);

	/* the object was not changed by the refused PUT */
	expect_ok(s3_get_object(g.c, key, 0, 1, NULL, buf, sizeof(buf), &got, NULL, &e), &e);
	assert_int_equal(buf[0], 'x');
	s3_client_free(c1);
	s3_client_free(c2);
	creds_provider_free(wrong);
	creds_provider_free(unknown);
}

static void test_other_user_access_denied(void **state)
{
	const char *root =
	    getenv("HPCOPS_SOURCE_ROOT") ? getenv("HPCOPS_SOURCE_ROOT") : HPCOPS_TEST_SOURCE_ROOT;
	char cmd[1024], ak[128] = "", sk[128] = "", key[256], buf[8];
	struct creds_provider *cp;
	struct s3_client *c;
	size_t got;
	struct s3_error e;
	FILE *f;

	if (!g.rgw_dir)
		fail_msg("HPCOPS_RGW_DIR is not set: source the env file of scripts/rgw start");
	snprintf(cmd, sizeof(cmd), "'%s/scripts/rgw' user '%s' hpcops-other 2>/dev/null", root,
	         g.rgw_dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%127s %127s", ak, sk), 2);
	assert_int_equal(pclose(f), 0);
	cp = creds_provider_new_static(ak, sk, NULL);
	c = client_for(g.bucket, cp);
	key_of(key, sizeof(key), "denied/obj");
	put(key, "z", 1);
	assert_int_equal(s3_get_object(c, key, 0, 1, NULL, buf, sizeof(buf), &got, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_ACCESS_DENIED);
	assert_string_equal(e.code, "AccessDenied");
	assert_int_equal(s3_head_object(c, key, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_ACCESS_DENIED);
	s3_client_free(c);
	creds_provider_free(cp);
}

static void test_entity_too_small(void **state)
{
	char key[256], *uid = NULL;
	struct s3_part parts[2];
	struct s3_upload_entry *ups;
	size_t n;
	struct s3_error e;

	key_of(key, sizeof(key), "small/parts");
	expect_ok(s3_create_multipart(g.c, key, &uid, &e), &e);
	memset(parts, 0, sizeof(parts));
	parts[0].part_no = 1;
	parts[1].part_no = 2;
	expect_ok(
	    s3_upload_part(g.c, key, uid, 1, "first part, far under 5 MiB", 27, &parts[0], &e), &e);
	expect_ok(s3_upload_part(g.c, key, uid, 2, "last", 4, &parts[1], &e), &e);
	assert_int_equal(s3_complete_multipart(g.c, key, uid, parts, 2, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_ENTITY_TOO_SMALL);
	assert_string_equal(e.code, "EntityTooSmall");

	/* a wrong ETag is an invalid part */
	strcpy(parts[1].etag, "00000000000000000000000000000000");
	assert_int_equal(s3_complete_multipart(g.c, key, uid, parts, 2, NULL, &e), -1);
	assert_true(e.err == S3_ERR_INVALID_PART || e.err == S3_ERR_ENTITY_TOO_SMALL);

	expect_ok(s3_abort_multipart(g.c, key, uid, &e), &e);
	expect_ok(s3_list_multipart_uploads(g.c, key, &ups, &n, &e), &e);
	assert_int_equal(n, 0);
	s3_upload_entries_free(ups, n);
	free(uid);
}

static void test_bad_digest(void **state)
{
	char key[256], *uid = NULL, etag[80];
	unsigned char *d = make_data(100000, 10);
	struct s3_client *md5c = client_with(g.bucket, g.cp, S3_CHECKSUM_MD5);
	struct s3_client *dflt = g.c;
	struct s3_part pt;
	struct s3_error e;

	/* radosgw 16 checks Content-MD5 only (the --upload-checksums md5 extension) */
	assert_non_null(md5c);
	g.c = md5c;
	key_of(key, sizeof(key), "digest/obj");
	s3_client_test_corrupt_md5(g.c, true);
	assert_int_equal(s3_put_object(g.c, key, d, 100000, etag, &e), -1);
	assert_int_equal(e.err, S3_ERR_BAD_DIGEST);
	assert_true(strcmp(e.code, "BadDigest") == 0 || strcmp(e.code, "InvalidDigest") == 0);
	s3_client_test_corrupt_md5(g.c, false);
	/* nothing was stored */
	assert_int_equal(s3_head_object(g.c, key, NULL, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);

	expect_ok(s3_create_multipart(g.c, key, &uid, &e), &e);
	s3_client_test_corrupt_md5(g.c, true);
	assert_int_equal(s3_upload_part(g.c, key, uid, 1, d, 100000, &pt, &e), -1);
	assert_int_equal(e.err, S3_ERR_BAD_DIGEST);
	s3_client_test_corrupt_md5(g.c, false);
	/* the right digest goes through */
	expect_ok(s3_upload_part(g.c, key, uid, 1, d, 100000, &pt, &e), &e);
	/* the server holds exactly the good part: the refused one left nothing */
	{
		struct s3_part *parts = NULL;
		size_t np = 0;
		char md5[33];

		md5_hex(d, 100000, md5);
		assert_string_equal(pt.etag, md5);
		expect_ok(s3_list_parts(g.c, key, uid, &parts, &np, &e), &e);
		assert_int_equal(np, 1);
		assert_int_equal(parts[0].part_no, 1);
		assert_int_equal(parts[0].size, 100000);
		assert_string_equal(parts[0].etag, md5);
		free(parts);
	}
	expect_ok(s3_abort_multipart(g.c, key, uid, &e), &e);
	g.c = dflt;
	s3_client_free(md5c);
	free(uid);
	free(d);
}

static void test_bad_arguments(void **state)
{
	char key[256], etag[80];
	struct s3_part p = {.part_no = 1}, pt;
	struct s3_error e;

	key_of(key, sizeof(key), "args/k");
	assert_int_equal(s3_upload_part(g.c, key, "id", 0, "x", 1, &pt, &e), -1);
	assert_int_equal(e.err, S3_ERR_INVALID_ARGUMENT);
	assert_non_null(strstr(e.message, "1..10000"));
	assert_int_equal(s3_upload_part(g.c, key, "", 1, "x", 1, &pt, &e), -1);
	assert_int_equal(e.err, S3_ERR_INVALID_ARGUMENT);
	assert_int_equal(s3_complete_multipart(g.c, key, "id", &p, 0, etag, &e), -1);
	assert_int_equal(e.err, S3_ERR_INVALID_ARGUMENT);
	/* a range whose last byte is past 2^64 - 1 is refused before it is sent */
	{
		char buf[8], long_etag[200];
		size_t got = 1;

		assert_int_equal(s3_get_object(g.c, key, UINT64_MAX - 2, 8, NULL, buf, sizeof(buf),
		                               &got, NULL, &e),
		                 -1);
		assert_int_equal(e.err, S3_ERR_INVALID_ARGUMENT);
		assert_non_null(strstr(e.message, "past 2^64"));
		assert_int_equal(got, 0);
		memset(long_etag, 'a', sizeof(long_etag) - 1);
		long_etag[sizeof(long_etag) - 1] = '\0';
		assert_int_equal(
		    s3_get_object(g.c, key, 0, 1, long_etag, buf, sizeof(buf), &got, NULL, &e), -1);
		assert_int_equal(e.err, S3_ERR_INVALID_ARGUMENT);
		assert_non_null(strstr(e.message, "If-Match"));
		assert_int_equal(
		    s3_upload_part_copy(g.c, key, "id", 1, key, UINT64_MAX, 2, etag, &e), -1);
		assert_int_equal(e.err, S3_ERR_INVALID_ARGUMENT);
		assert_non_null(strstr(e.message, "past 2^64"));
	}
	/* an upload id the server does not know */
	assert_int_equal(s3_upload_part(g.c, key, "2~no-such-upload", 1, "x", 1, &pt, &e), -1);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_UPLOAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_head),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_get_stream),
	    cmocka_unit_test(test_get_async_parallel),
	    cmocka_unit_test(test_async_outcome_survives_submit),
	    cmocka_unit_test(test_if_match),
	    cmocka_unit_test(test_object_meta_mtime),
	    cmocka_unit_test(test_special_keys),
	    cmocka_unit_test(test_copy_delete),
	    cmocka_unit_test(test_list_pages_1500),
	    cmocka_unit_test(test_list_delimiter),
	    cmocka_unit_test(test_multipart_three_parts),
	    cmocka_unit_test(test_upload_part_copy),
	    cmocka_unit_test(test_abort_and_list_uploads),
	    cmocka_unit_test(test_no_such_key_and_bucket),
	    cmocka_unit_test(test_bad_credentials),
	    cmocka_unit_test(test_other_user_access_denied),
	    cmocka_unit_test(test_entity_too_small),
	    cmocka_unit_test(test_bad_digest),
	    cmocka_unit_test(test_bad_arguments),
	};

	g.endpoint = need_env("HPCOPS_S3_ENDPOINT");
	g.bucket = need_env("HPCOPS_S3_BUCKET");
	g.ak = need_env("HPCOPS_S3_ACCESS_KEY");
	g.sk = need_env("HPCOPS_S3_SECRET_KEY");
	g.region = getenv("HPCOPS_S3_REGION");
	g.rgw_dir = getenv("HPCOPS_RGW_DIR");
	snprintf(g.pfx, sizeof(g.pfx), "test-s3-%ld-%ld/", (long)time(NULL), (long)getpid());
	if (getenv("HPCOPS_TEST_DEBUG"))
		log_init(LOG_DEST_STDERR, NULL, "test_s3", LOG_DEBUG);
	return cmocka_run_group_tests(tests, setup, teardown);
}
