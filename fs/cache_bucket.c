/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_bucket: block objects in the cache bucket (see cache_bucket.h). A
 * fetch sends one GET per block into a staging buffer reserved in the
 * budget; when the last GET ended, each block must carry exactly the header
 * a put of its bytes would have written, then its data is copied out. A put
 * writes that header before a copy of the data; a slot count bounds the
 * puts in flight.
 */
#include "cache_bucket.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "checksum.h"
#include "log.h"
#include "util.h"

/*
 * The fixed part of a block's header, little-endian whatever the node:
 *   [0, 8)   CACHE_BUCKET_MAGIC
 *   [8, 12)  source bucket length     [12, 16) key length
 *   [16, 20) ETag length              [20, 24) data length
 *   [24, 32) block size               [32, 40) block index
 *   [40, 44) CRC32C of the data       [44, 48) zero
 * then the source bucket, key and ETag, then the data.
 */
#define HDR_FIXED 48
#define HDR_CRC   40 /* where the CRC32C of the data sits in it */

struct cache_bucket {
	struct cache_bucket_config cfg; /* cfg.name and cfg.source_bucket point at our copies */
	pthread_mutex_t lock;           /* a leaf */
	pthread_cond_t cond;            /* with lock: a put ended */
	int puts_in_flight;             /* under lock */
	atomic_bool warned_get, warned_put, warned_damaged, warned_skipped;
	struct cache_bucket_stats st; /* counters (relaxed atomic adds) */
};

static void stat_add(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static size_t hdr_len(const struct cache_bucket *b, const char *key, const char *etag)
{
	return HDR_FIXED + strlen(b->cfg.source_bucket) + strlen(key) + strlen(etag);
}

/* The header of block @idx of (@key, @etag) holding @len bytes whose CRC32C is @crc. */
static void hdr_write(const struct cache_bucket *b, const char *key, const char *etag, uint64_t idx,
                      size_t len, uint32_t crc, unsigned char *out)
{
	size_t bl = strlen(b->cfg.source_bucket), kl = strlen(key), el = strlen(etag);

	memcpy(out, CACHE_BUCKET_MAGIC, 8);
	put_le32(out + 8, (uint32_t)bl);
	put_le32(out + 12, (uint32_t)kl);
	put_le32(out + 16, (uint32_t)el);
	put_le32(out + 20, (uint32_t)len);
	put_le64(out + 24, b->cfg.block_size);
	put_le64(out + 32, idx);
	put_le32(out + HDR_CRC, crc);
	put_le32(out + 44, 0);
	memcpy(out + HDR_FIXED, b->cfg.source_bucket, bl);
	memcpy(out + HDR_FIXED + bl, key, kl);
	memcpy(out + HDR_FIXED + bl + kl, etag, el);
}

int cache_bucket_key(const char *bucket, const char *key, const char *etag, size_t block_size,
                     uint64_t idx, char *out, size_t len)
{
	size_t bl = strlen(bucket), kl = strlen(key), el = strlen(etag), sl;
	char bs[24], hex[65], *buf;
	int n;

	sl = (size_t)snprintf(bs, sizeof(bs), "%zu", block_size);
	buf = malloc(bl + kl + el + sl + 3);
	if (!buf)
		return -1;
	/* bucket \0 key \0 etag \0 block size: no two tuples hash the same text */
	memcpy(buf, bucket, bl + 1);
	memcpy(buf + bl + 1, key, kl + 1);
	memcpy(buf + bl + kl + 2, etag, el + 1);
	memcpy(buf + bl + kl + el + 3, bs, sl);
	util_sha256_hex(buf, bl + kl + el + sl + 3, hex);
	free(buf);
	n = snprintf(out, len, "%s%s/%llu", CACHE_BUCKET_PREFIX, hex, (unsigned long long)idx);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

struct cache_bucket *cache_bucket_new(const struct cache_bucket_config *cfg)
{
	struct cache_bucket *b = calloc(1, sizeof(*b));
	pthread_condattr_t ca;

	if (!b)
		return NULL;
	b->cfg = *cfg;
	b->cfg.name = strdup(cfg->name ? cfg->name : "");
	b->cfg.source_bucket = strdup(cfg->source_bucket ? cfg->source_bucket : "");
	if (!b->cfg.name || !b->cfg.source_bucket) {
		free((char *)b->cfg.name);
		free((char *)b->cfg.source_bucket);
		free(b);
		return NULL;
	}
	if (b->cfg.max_puts <= 0)
		b->cfg.max_puts = CACHE_BUCKET_MAX_PUTS;
	if (b->cfg.put_wait_ms <= 0)
		b->cfg.put_wait_ms = 1000;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	return b;
}

void cache_bucket_free(struct cache_bucket *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free((char *)b->cfg.name);
	free((char *)b->cfg.source_bucket);
	free(b);
}

void cache_bucket_stats(struct cache_bucket *b, struct cache_bucket_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!b)
		return;
	out->hits = __atomic_load_n(&b->st.hits, __ATOMIC_RELAXED);
	out->misses = __atomic_load_n(&b->st.misses, __ATOMIC_RELAXED);
	out->damaged = __atomic_load_n(&b->st.damaged, __ATOMIC_RELAXED);
	out->puts = __atomic_load_n(&b->st.puts, __ATOMIC_RELAXED);
	out->put_failures = __atomic_load_n(&b->st.put_failures, __ATOMIC_RELAXED);
	out->puts_skipped = __atomic_load_n(&b->st.puts_skipped, __ATOMIC_RELAXED);
}

/* ---- fetch ---- */

struct fetch;

/* One block of a fetch: its GET lands in @buf (header + data). */
struct fetch_slot {
	struct fetch *f;
	struct cache_bucket_block blk;
	unsigned char *buf; /* in f->staging */
	size_t cap;         /* header + blk.len */
	size_t got;         /* written by its GET's completion */
	bool ok;            /* the GET succeeded */
	bool bad_size;      /* the object is larger than a block can be */
	char objkey[CACHE_BUCKET_KEY_MAX];
};

struct fetch {
	struct cache_bucket *b;
	char *key, *etag;
	size_t hdr_len;
	unsigned char *want; /* hdr_len bytes: the header a block must carry */
	unsigned char *staging;
	size_t staging_len; /* reserved in the budget */
	/* GETs not ended, + 1 while the submitter is still at it: the last out finishes */
	atomic_int left;
	void (*done)(void *user, bool hit);
	void *user;
	int n;
	struct fetch_slot slots[];
};

static void fetch_free(struct fetch *f)
{
	free(f->staging);
	if (f->staging_len)
		budget_release(f->b->cfg.budget, f->staging_len);
	free(f->want);
	free(f->key);
	free(f->etag);
	free(f);
}

/* Whether slot @s holds exactly what a put of its block wrote; @why says what not. */
static bool slot_checks(struct fetch *f, struct fetch_slot *s, const char **why)
{
	const unsigned char *data = s->buf + f->hdr_len;

	if (s->bad_size || s->got != s->cap) {
		*why = "its length is not the block's";
		return false;
	}
	hdr_write(f->b, f->key, f->etag, s->blk.idx, s->blk.len,
	          checksum_crc32c(0, data, s->blk.len), f->want);
	/* all of the header but the CRC, then the CRC: each failure says which */
	if (memcmp(s->buf, f->want, HDR_CRC) ||
	    memcmp(s->buf + HDR_CRC + 4, f->want + HDR_CRC + 4, f->hdr_len - HDR_CRC - 4)) {
		*why = "its header is not the block's (magic, bucket, key, ETag, block size, "
		       "index or length)";
		return false;
	}
	if (memcmp(s->buf + HDR_CRC, f->want + HDR_CRC, 4)) {
		*why = "its data fails the CRC32C";
		return false;
	}
	return true;
}

/* Every GET ended: check each block, copy them out on a hit, count, free @f. */
static bool fetch_finish(struct fetch *f)
{
	struct cache_bucket *b = f->b;
	bool hit = true;

	for (int i = 0; i < f->n; i++) {
		struct fetch_slot *s = &f->slots[i];
		const char *why = "";

		if (!s->ok && !s->bad_size) {
			hit = false; /* absent, or the GET failed (logged once) */
			continue;
		}
		if (!slot_checks(f, s, &why)) {
			hit = false;
			stat_add(&b->st.damaged, 1);
			if (!atomic_exchange(&b->warned_damaged, true))
				log_warn(
				    "cache bucket %s: block %s of %s failed its check (%s): not "
				    "served, read from the source (later ones at debug level)",
				    b->cfg.name, s->objkey, f->key, why);
			else
				log_debug("cache bucket %s: block %s of %s failed its check (%s)",
				          b->cfg.name, s->objkey, f->key, why);
		}
	}
	if (hit)
		for (int i = 0; i < f->n; i++)
			memcpy(f->slots[i].blk.dst, f->slots[i].buf + f->hdr_len,
			       f->slots[i].blk.len);
	stat_add(hit ? &b->st.hits : &b->st.misses, (uint64_t)f->n);
	fetch_free(f);
	return hit;
}

static void slot_done(void *user, const struct s3_error *err, size_t got,
                      const struct s3_object_info *info)
{
	struct fetch_slot *s = user;
	struct fetch *f = s->f;
	struct cache_bucket *b = f->b;

	(void)info;
	if (err->err == S3_OK) {
		s->ok = true;
		s->got = got;
	} else if (err->err == S3_ERR_INVALID_RANGE) {
		s->bad_size = true; /* longer than the buffer: not a block we wrote */
	} else if (err->err != S3_ERR_NO_SUCH_KEY && err->err != S3_ERR_CANCELLED &&
	           !atomic_exchange(&b->warned_get, true)) {
		char buf[400];

		log_warn("cache bucket %s: cannot get block %s: %s (reads go on from the source; "
		         "logged once)",
		         b->cfg.name, s->objkey, s3_error_format(err, buf, sizeof(buf)));
	}
	if (atomic_fetch_sub(&f->left, 1) == 1) {
		void (*done)(void *, bool) = f->done;
		void *u = f->user;

		done(u, fetch_finish(f));
	}
}

enum cache_bucket_result cache_bucket_fetch(struct cache_bucket *b, const char *key,
                                            const char *etag,
                                            const struct cache_bucket_block *blocks, int n,
                                            void (*done)(void *user, bool hit), void *user)
{
	size_t hl = hdr_len(b, key, etag), total = 0, off = 0;
	const struct fs_backend *be = b->cfg.be;
	struct fetch *f = NULL;
	bool failed = false;

	if (n <= 0)
		return CACHE_BUCKET_MISS;
	for (int i = 0; i < n; i++)
		total += hl + blocks[i].len;
	/* the staging buffer is as large as the blocks: the budget bounds it */
	if (!budget_try_reserve(b->cfg.budget, total))
		goto miss;
	f = calloc(1, sizeof(*f) + (size_t)n * sizeof(f->slots[0]));
	if (!f) {
		budget_release(b->cfg.budget, total);
		goto miss;
	}
	f->b = b;
	f->staging_len = total;
	f->staging = malloc(total);
	f->key = strdup(key);
	f->etag = strdup(etag);
	f->want = malloc(hl);
	if (!f->staging || !f->key || !f->etag || !f->want) {
		fetch_free(f);
		goto miss;
	}
	f->hdr_len = hl;
	f->done = done;
	f->user = user;
	f->n = n;
	atomic_init(&f->left, n + 1);
	for (int i = 0; i < n; i++) {
		struct fetch_slot *s = &f->slots[i];
		struct s3_error err;

		s->f = f;
		s->blk = blocks[i];
		s->buf = f->staging + off;
		s->cap = hl + blocks[i].len;
		off += s->cap;
		memset(&err, 0, sizeof(err));
		/* after one could not be sent the fetch is a miss: send no more */
		if (failed ||
		    cache_bucket_key(b->cfg.source_bucket, key, etag, b->cfg.block_size,
		                     blocks[i].idx, s->objkey, sizeof(s->objkey)) < 0 ||
		    be->ops->get_async(be->ctx, s->objkey, 0, 0, NULL, s->buf, s->cap, slot_done, s,
		                       &err) < 0) {
			failed = true;
			atomic_fetch_sub(&f->left, 1);
		}
	}
	if (atomic_fetch_sub(&f->left, 1) == 1)
		return fetch_finish(f) ? CACHE_BUCKET_HIT : CACHE_BUCKET_MISS;
	return CACHE_BUCKET_PENDING;
miss:
	stat_add(&b->st.misses, (uint64_t)n);
	return CACHE_BUCKET_MISS;
}

/* ---- put ---- */

struct put {
	struct cache_bucket *b;
	size_t len; /* header + data, reserved in the budget */
	char objkey[CACHE_BUCKET_KEY_MAX];
	unsigned char body[];
};

/* A slot for one more put in flight, waiting up to put_wait_ms; false if none came. */
static bool slot_take(struct cache_bucket *b)
{
	struct timespec until = util_mono_in(b->cfg.put_wait_ms);
	bool ok;

	pthread_mutex_lock(&b->lock);
	while (b->puts_in_flight >= b->cfg.max_puts)
		if (pthread_cond_timedwait(&b->cond, &b->lock, &until) == ETIMEDOUT)
			break;
	ok = b->puts_in_flight < b->cfg.max_puts;
	if (ok)
		b->puts_in_flight++;
	pthread_mutex_unlock(&b->lock);
	return ok;
}

static void slot_give(struct cache_bucket *b)
{
	pthread_mutex_lock(&b->lock);
	b->puts_in_flight--;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static void put_failed(struct cache_bucket *b, const char *objkey, const struct s3_error *err)
{
	char buf[400];

	stat_add(&b->st.put_failures, 1);
	if (!atomic_exchange(&b->warned_put, true))
		log_warn("cache bucket %s: cannot store block %s: %s (reads go on; logged once)",
		         b->cfg.name, objkey, s3_error_format(err, buf, sizeof(buf)));
}

static void put_end(struct put *p)
{
	struct cache_bucket *b = p->b;

	budget_release(b->cfg.budget, p->len);
	free(p);
	slot_give(b);
}

static void put_done(void *user, const struct s3_error *err, size_t got,
                     const struct s3_object_info *info)
{
	struct put *p = user;

	(void)got;
	(void)info;
	if (err->err == S3_OK)
		stat_add(&p->b->st.puts, 1);
	else if (err->err != S3_ERR_CANCELLED)
		put_failed(p->b, p->objkey, err);
	put_end(p);
}

static void put_skipped(struct cache_bucket *b, const char *why)
{
	stat_add(&b->st.puts_skipped, 1);
	if (!atomic_exchange(&b->warned_skipped, true))
		log_notice("cache bucket %s: a block was not stored (%s); later ones are counted "
		           "in fs_cache_shared_puts_skipped_total",
		           b->cfg.name, why);
}

void cache_bucket_put(struct cache_bucket *b, const char *key, const char *etag, uint64_t idx,
                      const void *data, size_t len)
{
	const struct fs_backend *be = b->cfg.be;
	size_t hl = hdr_len(b, key, etag);
	struct s3_error err;
	struct put *p;

	if (!slot_take(b)) {
		put_skipped(b, "the puts in flight did not end in time");
		return;
	}
	if (!budget_try_reserve(b->cfg.budget, hl + len)) {
		slot_give(b);
		put_skipped(b, "the memory budget is short");
		return;
	}
	p = malloc(sizeof(*p) + hl + len);
	if (!p) {
		budget_release(b->cfg.budget, hl + len);
		slot_give(b);
		put_skipped(b, "out of memory");
		return;
	}
	p->b = b;
	p->len = hl + len;
	if (cache_bucket_key(b->cfg.source_bucket, key, etag, b->cfg.block_size, idx, p->objkey,
	                     sizeof(p->objkey)) < 0) {
		put_end(p);
		put_skipped(b, "out of memory");
		return;
	}
	hdr_write(b, key, etag, idx, len, checksum_crc32c(0, data, len), p->body);
	memcpy(p->body + hl, data, len);
	memset(&err, 0, sizeof(err));
	if (be->ops->put_async(be->ctx, p->objkey, p->body, p->len, put_done, p, &err) < 0) {
		put_failed(b, p->objkey, &err);
		put_end(p);
	}
}

int cache_bucket_drain(struct cache_bucket *b, long timeout_ms)
{
	struct timespec until = util_mono_in(timeout_ms);
	int left;

	if (!b)
		return 0;
	pthread_mutex_lock(&b->lock);
	while (b->puts_in_flight > 0)
		if (pthread_cond_timedwait(&b->cond, &b->lock, &until) == ETIMEDOUT)
			break;
	left = b->puts_in_flight;
	pthread_mutex_unlock(&b->lock);
	return left;
}
