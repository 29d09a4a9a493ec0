/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prefetch: per-handle window of asynchronous ranged GETs (see prefetch.h).
 * Part buffers are mmap'd, reserved from the memory budget, and kept in a
 * small pool so a sequential read does not pay page faults for every part.
 */
#include "prefetch.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "cache.h"
#include "log.h"
#include "fs_errno.h"
#include "s3.h"

#define MIB             (1024ULL * 1024ULL)
#define FIRST_PART      (1 * MIB) /* the first request after open or a far seek */
#define MAX_PARTS_AHEAD 8         /* window cap, in --read-part-size parts */
#define MAX_SEGS        16        /* parts one reply may span */
#define KEEP_BEHIND     (8 * MIB) /* fetched bytes kept behind the furthest read */

enum part_state {
	PART_PENDING = 0,
	PART_DONE,
	PART_FAILED,
};

struct pf_part {
	struct prefetch *pf;
	uint64_t off;
	size_t len; /* bytes asked for */
	size_t cls; /* buffer size (pool class, reserved in the budget) */
	char *buf;
	/* under pf->lock */
	size_t got; /* bytes received */
	enum part_state state;
	int err;       /* errno when FAILED */
	int pins;      /* replies in progress from buf */
	bool orphan;   /* no longer in the window: free when done and unpinned */
	bool from_net; /* fetched from S3 (so worth a cache_put) */
	bool cached;   /* cache_put done */
	bool touched;  /* a read used it already */
	struct pf_part *next;
};

struct prefetch {
	struct hpcops_fs *fs;
	char *key;
	uint64_t size;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock */
	char etag[80];
	struct pf_part *head, *tail; /* the window, contiguous, in offset order */
	uint64_t next_off;           /* end of the last scheduled part */
	uint64_t window;             /* bytes to keep requested ahead of the reader */
	size_t next_len;             /* size of the next part (grows to read_part_size) */
	uint64_t held;               /* buffer bytes of parts in the window */
	uint64_t hi;                 /* furthest end of a read in this window */
	int refs;                    /* the handle + one per GET in flight */
	int sticky_err;              /* ESTALE once the object changed */
	bool delivered;              /* some bytes went to the reader */
	bool lazy;                   /* placed by a seek: no prefetch yet */
	uint64_t seek_off;           /* offset of the window's first part when lazy */
	uint64_t far_end;            /* end of the last read served outside the window */
	int far_streak;              /* reads in a row served outside the window */
	bool refreshed;              /* the ETag was refreshed once before delivery */
};

/* ---- buffer pool (one per process; parts of every handle) ---- */

static struct {
	pthread_mutex_t lock;
	/* under lock */
	struct pool_buf {
		struct pool_buf *next;
		size_t cls;
	} * free;
	uint64_t idle;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_int active_handles;

static uint64_t pool_idle_cap(struct hpcops_fs *fs)
{
	uint64_t lim = budget_limit(fs->budget) / 4;

	return lim < 64 * MIB ? lim : 64 * MIB;
}

static size_t class_of(size_t len)
{
	return (len + MIB - 1) / MIB * MIB;
}

static void buf_unmap(struct hpcops_fs *fs, void *b, size_t cls)
{
	munmap(b, cls);
	budget_release(fs->budget, cls);
}

void prefetch_pool_trim(struct hpcops_fs *fs)
{
	struct pool_buf *list;

	pthread_mutex_lock(&pool.lock);
	list = pool.free;
	pool.free = NULL;
	pool.idle = 0;
	pthread_mutex_unlock(&pool.lock);
	while (list) {
		struct pool_buf *next = list->next;

		buf_unmap(fs, list, list->cls);
		list = next;
	}
}

/* A buffer of class @cls reserved in the budget, or NULL when it is short. */
static char *buf_get(struct hpcops_fs *fs, size_t cls)
{
	struct pool_buf **pp, *b = NULL;
	void *m;

	pthread_mutex_lock(&pool.lock);
	for (pp = &pool.free; *pp; pp = &(*pp)->next) {
		if ((*pp)->cls == cls) {
			b = *pp;
			*pp = b->next;
			pool.idle -= cls;
			break;
		}
	}
	pthread_mutex_unlock(&pool.lock);
	if (b)
		return (char *)b;
	if (!budget_try_reserve(fs->budget, cls)) {
		/* idle buffers of other sizes hold budget: give it back and retry */
		prefetch_pool_trim(fs);
		if (!budget_try_reserve(fs->budget, cls))
			return NULL;
	}
	m = mmap(NULL, cls, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		budget_release(fs->budget, cls);
		return NULL;
	}
	/*
	 * Huge pages where the kernel has them (transparent_hugepage=madvise
	 * is common): filling a fresh part otherwise takes a page fault every
	 * 4 KiB, which measured ~19% of the daemon's CPU with 4 readers.
	 */
	if (cls >= 2 * MIB)
		(void)madvise(m, cls, MADV_HUGEPAGE);
	return m;
}

static void buf_put(struct hpcops_fs *fs, char *buf, size_t cls)
{
	struct pool_buf *b = (struct pool_buf *)buf;

	pthread_mutex_lock(&pool.lock);
	if (pool.idle + cls <= pool_idle_cap(fs)) {
		b->cls = cls;
		b->next = pool.free;
		pool.free = b;
		pool.idle += cls;
		buf = NULL;
	}
	pthread_mutex_unlock(&pool.lock);
	if (buf)
		buf_unmap(fs, buf, cls);
}

/* ---- parts ---- */

static void part_free(struct pf_part *p)
{
	if (p->buf)
		buf_put(p->pf->fs, p->buf, p->cls);
	free(p);
}

static void pf_destroy(struct prefetch *pf)
{
	atomic_fetch_sub(&active_handles, 1);
	pthread_cond_destroy(&pf->cond);
	pthread_mutex_destroy(&pf->lock);
	free(pf->key);
	free(pf);
}

/* Take @p out of the window; it is freed now or when its GET / replies end. */
static void part_drop_locked(struct prefetch *pf, struct pf_part *p)
{
	pf->held -= p->cls;
	if (p->state == PART_PENDING || p->pins > 0)
		p->orphan = true;
	else
		part_free(p);
}

static void window_clear_locked(struct prefetch *pf)
{
	while (pf->head) {
		struct pf_part *p = pf->head;

		pf->head = p->next;
		part_drop_locked(pf, p);
	}
	pf->tail = NULL;
}

static void part_done(void *user, const struct s3_error *err, size_t got,
                      const struct s3_object_info *info)
{
	struct pf_part *p = user;
	struct prefetch *pf = p->pf;
	bool last;

	pthread_mutex_lock(&pf->lock);
	if (err->err == S3_OK) {
		p->state = PART_DONE;
		p->got = got;
		p->from_net = true;
		if (!pf->etag[0] && info && info->etag[0])
			snprintf(pf->etag, sizeof(pf->etag), "%s", info->etag);
	} else if (err->err == S3_ERR_INVALID_RANGE) {
		/* the object is shorter than we thought: an end, not an error */
		p->state = PART_DONE;
		p->got = 0;
	} else {
		p->state = PART_FAILED;
		p->err = fs_errno(err->err);
		if (err->err != S3_ERR_PRECONDITION && err->err != S3_ERR_CANCELLED) {
			char buf[400];

			log_warn("GET %s [%llu, +%zu): %s", pf->key, (unsigned long long)p->off,
			         p->len, s3_error_format(err, buf, sizeof(buf)));
		}
	}
	if (p->orphan && p->pins == 0)
		part_free(p);
	pthread_cond_broadcast(&pf->cond);
	last = --pf->refs == 0;
	pthread_mutex_unlock(&pf->lock);
	if (last)
		pf_destroy(pf);
}

/* Fill @p from the block cache; true when every block was there. */
static bool part_from_cache(struct prefetch *pf, struct pf_part *p)
{
	struct cache *c = pf->fs->cache;
	uint64_t idx = p->off / CACHE_BLOCK_SIZE;
	size_t done = 0;

	if (!c || !pf->etag[0] || p->off % CACHE_BLOCK_SIZE)
		return false;
	while (done < p->len) {
		size_t want = p->len - done < CACHE_BLOCK_SIZE ? p->len - done : CACHE_BLOCK_SIZE;
		ssize_t n = cache_get(c, pf->key, pf->etag, idx, p->buf + done, want);

		if (n < 0 || (size_t)n != want)
			return false;
		done += want;
		idx++;
	}
	p->got = done;
	return true;
}

/*
 * Fill @p (pf->lock held): from the cache when it has every block, else an
 * async ranged GET (If-Match the handle's ETag) that part_done() completes.
 */
static void part_start_locked(struct prefetch *pf, struct pf_part *p)
{
	struct s3_error err;

	if (part_from_cache(pf, p)) {
		p->state = PART_DONE;
		p->cached = true;
		return;
	}
	pf->refs++;
	memset(&err, 0, sizeof(err));
	if (s3_get_object_async(pf->fs->s3, pf->key, p->off, p->len, pf->etag[0] ? pf->etag : NULL,
	                        p->buf, p->cls, part_done, p, &err) < 0) {
		pf->refs--;
		p->state = PART_FAILED;
		p->err = fs_errno(err.err);
	}
}

/* Store the whole blocks of @p (and the object's last one) in the cache. */
static void part_to_cache(struct prefetch *pf, struct pf_part *p, const char *etag)
{
	struct cache *c = pf->fs->cache;
	size_t done = 0;

	if (!c || !etag[0] || p->off % CACHE_BLOCK_SIZE)
		return;
	while (done < p->got) {
		size_t n = p->got - done < CACHE_BLOCK_SIZE ? p->got - done : CACHE_BLOCK_SIZE;

		if (n < CACHE_BLOCK_SIZE && p->off + done + n != pf->size)
			break;
		cache_put(c, pf->key, etag, (p->off + done) / CACHE_BLOCK_SIZE, p->buf + done, n);
		done += n;
	}
}

/* The share of the budget one handle may hold. */
static uint64_t share_cap(struct prefetch *pf)
{
	uint64_t part = pf->fs->opt.read_part_size;
	uint64_t cap = MAX_PARTS_AHEAD * part;
	int n = atomic_load(&active_handles);
	uint64_t share = budget_limit(pf->fs->budget) / (uint64_t)(n > 0 ? n : 1);

	return share < cap ? share : cap;
}

/*
 * Schedule parts until the window is covered and, at least, up to @need.
 * Returns false if not even the bytes at pf->next_off < @need could get a
 * buffer (the caller then reads directly).
 */
static bool schedule_locked(struct prefetch *pf, uint64_t pos, uint64_t need)
{
	uint64_t part_size = pf->fs->opt.read_part_size;
	uint64_t cap = share_cap(pf);

	while (pf->next_off < pf->size) {
		bool needed = pf->next_off < need;
		size_t len;
		struct pf_part *p;
		char *buf;

		if (!needed && (pf->lazy || pf->next_off - pos >= pf->window || pf->held >= cap))
			break;
		len = pf->next_len;
		if (len > pf->size - pf->next_off)
			len = (size_t)(pf->size - pf->next_off);
		buf = buf_get(pf->fs, class_of(len));
		while (!buf && len > MIB) {
			/* budget pressure: a smaller part, a smaller window */
			len = len / 2 / MIB * MIB;
			buf = buf_get(pf->fs, class_of(len));
		}
		if (!buf) {
			if (pf->window > FIRST_PART)
				pf->window = pf->next_off - pos > FIRST_PART ? pf->next_off - pos
				                                             : FIRST_PART;
			return !needed;
		}
		p = calloc(1, sizeof(*p));
		if (!p) {
			buf_put(pf->fs, buf, class_of(len));
			return !needed;
		}
		p->pf = pf;
		p->off = pf->next_off;
		p->len = len;
		p->cls = class_of(len);
		p->buf = buf;
		log_debug("prefetch %s: GET [%llu, +%zu) window %llu", pf->key,
		          (unsigned long long)p->off, len, (unsigned long long)pf->window);
		if (pf->tail)
			pf->tail->next = p;
		else
			pf->head = p;
		pf->tail = p;
		pf->held += p->cls;
		pf->next_off += len;
		if (pf->next_len < part_size)
			pf->next_len = pf->next_len * 2 > part_size ? part_size : pf->next_len * 2;
		part_start_locked(pf, p);
	}
	return true;
}

static void unpin_locked(struct pf_part **used, size_t n);

/* Start the window again at @off (1 MiB aligned for the cache). */
static void window_reset_locked(struct prefetch *pf, uint64_t off, uint64_t end, bool lazy)
{
	if (pf->head)
		log_debug("prefetch %s: %s at %llu resets the window [%llu, %llu)", pf->key,
		          lazy ? "seek" : "new stream", (unsigned long long)off,
		          (unsigned long long)pf->head->off, (unsigned long long)pf->next_off);
	window_clear_locked(pf);
	pf->next_off = off / MIB * MIB;
	pf->window = FIRST_PART;
	pf->next_len = FIRST_PART;
	pf->hi = end;
	pf->lazy = lazy;
	pf->seek_off = pf->next_off;
	pf->far_streak = 0;
}

/*
 * Position the window for a read at @off: keep it, slide it, or reset it.
 * Returns false when the read lies outside the window and is better served
 * on its own (a random read): the window is then left as it is, so the
 * kernel's readahead of a sequential stream on the same handle and a random
 * reader do not keep resetting each other's parts.
 */
static bool window_seek_locked(struct prefetch *pf, uint64_t off, uint64_t end)
{
	uint64_t part = pf->fs->opt.read_part_size;
	uint64_t behind = part > KEEP_BEHIND ? part : KEEP_BEHIND;
	/*
	 * A jump forward past what is scheduled by more than this is a seek:
	 * fetching the gap would cost more than starting again at @off. While
	 * the window is lazy (placed by a seek), any gap is.
	 */
	uint64_t gap = pf->lazy ? 0 : part;

	if (!pf->head || off < pf->head->off || off > pf->next_off + gap) {
		if (!pf->delivered && !pf->head) {
			/* first read: a window, lazy if it starts mid-file */
			window_reset_locked(pf, off, end, off >= MIB);
			return true;
		}
		if (pf->far_end && off / MIB * MIB <= pf->far_end &&
		    off >= pf->far_end / MIB * MIB) {
			/* the last out-of-window read goes on sequentially: a stream starts here */
			window_reset_locked(pf, off, end, false);
			pf->far_end = 0;
			return true;
		}
		if (++pf->far_streak >= 2 && pf->head) {
			/* the window is not read any more: give its budget back */
			log_debug("prefetch %s: random reads, window [%llu, %llu) dropped", pf->key,
			          (unsigned long long)pf->head->off,
			          (unsigned long long)pf->next_off);
			window_clear_locked(pf);
			pf->next_off = 0;
		}
		pf->far_end = end;
		return false;
	}
	pf->far_streak = 0;
	if (end > pf->hi)
		pf->hi = end;
	/*
	 * Keep what lies within @behind of the furthest read: the kernel's
	 * readahead requests arrive slightly out of order, and small backward
	 * seeks are served from it.
	 */
	while (pf->head->next && pf->head->off + pf->head->len + behind <= pf->hi &&
	       pf->head->off + pf->head->len <= off) {
		struct pf_part *p = pf->head;

		pf->head = p->next;
		part_drop_locked(pf, p);
	}
	return true;
}

/*
 * Serve a read outside the window with one GET of its own bytes (whole
 * 1 MiB blocks with --cache, so they can be stored and found there), then
 * free the buffer. Called with the lock held; returns with it released
 * after replying. Returns 0, or the errno for the caller's error path with
 * the lock still held.
 */
static int read_far_locked(struct prefetch *pf, fuse_req_t req, uint64_t off, uint64_t end)
{
	bool cache = pf->fs->cache != NULL;
	uint64_t from = cache ? off / MIB * MIB : off;
	uint64_t to = cache ? (end + MIB - 1) / MIB * MIB : end;
	struct pf_part *p;
	struct iovec iov;
	char etag[80];
	bool to_cache;
	char *buf;
	size_t len;
	int e;

	if (to > pf->size)
		to = pf->size;
	len = (size_t)(to - from);
	buf = buf_get(pf->fs, class_of(len));
	if (!buf)
		return -1;
	p = calloc(1, sizeof(*p));
	if (!p) {
		buf_put(pf->fs, buf, class_of(len));
		return ENOMEM;
	}
	p->pf = pf;
	p->off = from;
	p->len = len;
	p->cls = class_of(len);
	p->buf = buf;
	p->pins = 1;
	p->orphan = true; /* never in the window: freed when done and unpinned */
	log_debug("prefetch %s: GET [%llu, +%zu) outside the window", pf->key,
	          (unsigned long long)from, len);
	part_start_locked(pf, p);
	while (p->state == PART_PENDING)
		pthread_cond_wait(&pf->cond, &pf->lock);
	if (p->state == PART_FAILED) {
		e = p->err;
		unpin_locked(&p, 1);
		return e;
	}
	pf->delivered = true;
	snprintf(etag, sizeof(etag), "%s", pf->etag);
	to_cache = cache && p->from_net && p->got == p->len;
	pthread_mutex_unlock(&pf->lock);

	iov.iov_base = p->buf + (off - from);
	iov.iov_len = p->got > off - from ? (size_t)(p->got - (off - from)) : 0;
	if (iov.iov_len > end - off)
		iov.iov_len = (size_t)(end - off);
	fuse_reply_iov(req, &iov, 1);
	if (to_cache)
		part_to_cache(pf, p, etag);
	pthread_mutex_lock(&pf->lock);
	unpin_locked(&p, 1);
	pthread_mutex_unlock(&pf->lock);
	return 0;
}

/* Read directly into a temporary buffer when the budget cannot give a part. */
static void read_direct(struct prefetch *pf, fuse_req_t req, size_t size, uint64_t off,
                        const char *etag)
{
	struct s3_error err;
	size_t got = 0;
	char *tmp = malloc(size ? size : 1);

	memset(&err, 0, sizeof(err));
	if (!tmp) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (s3_get_object(pf->fs->s3, pf->key, off, size, etag[0] ? etag : NULL, tmp, size, &got,
	                  NULL, &err) < 0 &&
	    err.err != S3_ERR_INVALID_RANGE) {
		fuse_reply_err(req, fs_errno(err.err));
	} else {
		fuse_reply_buf(req, tmp, got);
	}
	free(tmp);
}

/* The object changed before any byte was delivered: take its new version. */
static bool refresh_etag(struct prefetch *pf)
{
	struct s3_object_info info;
	struct s3_error err;

	memset(&err, 0, sizeof(err));
	if (s3_head_object(pf->fs->s3, pf->key, &info, &err) < 0)
		return false;
	pthread_mutex_lock(&pf->lock);
	window_clear_locked(pf);
	snprintf(pf->etag, sizeof(pf->etag), "%s", info.etag);
	pf->size = info.size;
	pf->refreshed = true;
	pthread_mutex_unlock(&pf->lock);
	return true;
}

struct prefetch *prefetch_new(struct hpcops_fs *fs, const char *key, uint64_t size,
                              const char *etag)
{
	struct prefetch *pf = calloc(1, sizeof(*pf));

	if (!pf)
		return NULL;
	pf->key = strdup(key);
	if (!pf->key) {
		free(pf);
		return NULL;
	}
	pf->fs = fs;
	pf->size = size;
	snprintf(pf->etag, sizeof(pf->etag), "%s", etag ? etag : "");
	pthread_mutex_init(&pf->lock, NULL);
	pthread_cond_init(&pf->cond, NULL);
	pf->refs = 1;
	pf->window = FIRST_PART;
	pf->next_len = FIRST_PART;
	atomic_fetch_add(&active_handles, 1);
	return pf;
}

void prefetch_free(struct prefetch *pf)
{
	bool last;

	if (!pf)
		return;
	pthread_mutex_lock(&pf->lock);
	window_clear_locked(pf);
	last = --pf->refs == 0;
	pthread_mutex_unlock(&pf->lock);
	if (last)
		pf_destroy(pf);
}

static void unpin_locked(struct pf_part **used, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pf_part *p = used[i];

		if (--p->pins == 0 && p->orphan && p->state != PART_PENDING)
			part_free(p);
	}
}

static void read_locked_out(struct prefetch *pf, fuse_req_t req, size_t size, uint64_t off);

void prefetch_read(struct prefetch *pf, fuse_req_t req, size_t size, uint64_t off)
{
	bool last;

	/* the reply can reach the kernel, and the file be released, before we are done */
	pthread_mutex_lock(&pf->lock);
	pf->refs++;
	pthread_mutex_unlock(&pf->lock);
	read_locked_out(pf, req, size, off);
	pthread_mutex_lock(&pf->lock);
	last = --pf->refs == 0;
	pthread_mutex_unlock(&pf->lock);
	if (last)
		pf_destroy(pf);
}

/* The body of prefetch_read(), with a ref held on @pf. */
static void read_locked_out(struct prefetch *pf, fuse_req_t req, size_t size, uint64_t off)
{
	struct iovec iov[MAX_SEGS];
	struct pf_part *used[MAX_SEGS];
	size_t n_used = 0;
	bool to_cache[MAX_SEGS];
	bool retry = false, grew = false;
	char etag[80];
	uint64_t end, pos;
	int err = 0;

again:
	pthread_mutex_lock(&pf->lock);
	if (pf->sticky_err) {
		err = pf->sticky_err;
		goto fail_locked;
	}
	if (off >= pf->size || size == 0) {
		pthread_mutex_unlock(&pf->lock);
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	end = off + size < pf->size ? off + size : pf->size;
	log_debug("prefetch %s: read [%llu, +%zu)", pf->key, (unsigned long long)off, size);
	if (!window_seek_locked(pf, off, end)) {
		err = read_far_locked(pf, req, off, end);
		if (err == 0)
			return;
		if (err > 0) {
			if (err == ESTALE && !pf->delivered && !pf->refreshed) {
				pthread_mutex_unlock(&pf->lock);
				err = 0;
				if (refresh_etag(pf))
					goto again;
				err = ESTALE;
				pthread_mutex_lock(&pf->lock);
			}
			if (err == ESTALE)
				pf->sticky_err = ESTALE;
			goto fail_locked;
		}
		err = 0;
		goto direct; /* no buffer for it */
	}
	if (!schedule_locked(pf, off, end)) {
	direct:
		/* not even this read fits in the budget: serve it without a part */
		log_debug("prefetch %s: budget short (%llu of %llu used): direct read", pf->key,
		          (unsigned long long)budget_used(pf->fs->budget),
		          (unsigned long long)budget_limit(pf->fs->budget));
		snprintf(etag, sizeof(etag), "%s", pf->etag);
		pf->delivered = true;
		pthread_mutex_unlock(&pf->lock);
		read_direct(pf, req, (size_t)(end - off), off, etag);
		return;
	}
	/* wait for the parts covering [off, end) */
	pos = off;
	for (struct pf_part *p = pf->head; p && pos < end; p = p->next) {
		size_t from, to;

		if (p->off + p->len <= pos)
			continue;
		if (n_used == MAX_SEGS)
			break;
		/* pinned before waiting: a reset by another reader cannot free it */
		p->pins++;
		if (!p->touched) {
			/*
			 * The reader reached a new part: it keeps up, so widen the
			 * window. After a seek, not for the part the seek asked for:
			 * a random reader would pay a useless prefetch per read.
			 */
			p->touched = true;
			if (pf->lazy && p->off == pf->seek_off) {
				/* nothing ahead yet */
			} else {
				pf->lazy = false;
				if (pf->window < MAX_PARTS_AHEAD * pf->fs->opt.read_part_size)
					pf->window *= 2;
				grew = true;
			}
		}
		used[n_used++] = p;
		while (p->state == PART_PENDING)
			pthread_cond_wait(&pf->cond, &pf->lock);
		if (p->orphan) {
			retry = true; /* another reader's far seek reset the window */
			break;
		}
		if (p->state == PART_FAILED) {
			err = p->err;
			break;
		}
		from = (size_t)(pos - p->off);
		if (p->got <= from) {
			n_used--;
			p->pins--;
			pos = end; /* the object ended early */
			break;
		}
		to = p->got;
		if (p->off + to > end)
			to = (size_t)(end - p->off);
		iov[n_used - 1].iov_base = p->buf + from;
		iov[n_used - 1].iov_len = to - from;
		pos = p->off + to;
		if (p->got < p->len)
			break; /* short part: end of object */
	}
	if (!retry && !err && pos < end && pos < pf->size &&
	    (n_used == 0 || used[n_used - 1]->got == used[n_used - 1]->len)) {
		/* the window moved under us (another reader): never reply short */
		retry = true;
	}
	if (retry) {
		unpin_locked(used, n_used);
		n_used = 0;
		retry = false;
		pthread_mutex_unlock(&pf->lock);
		goto again;
	}
	if (err == ESTALE && !pf->delivered && !pf->refreshed) {
		unpin_locked(used, n_used);
		pthread_mutex_unlock(&pf->lock);
		n_used = 0;
		err = 0;
		if (refresh_etag(pf))
			goto again;
		err = ESTALE;
		pthread_mutex_lock(&pf->lock);
	}
	if (err) {
		if (err == ESTALE)
			pf->sticky_err = ESTALE;
		goto fail_locked;
	}
	pf->delivered = true;
	if (grew)
		schedule_locked(pf, off, end);
	snprintf(etag, sizeof(etag), "%s", pf->etag);
	for (size_t i = 0; i < n_used; i++) {
		struct pf_part *p = used[i];

		to_cache[i] = pf->fs->cache && p->from_net && !p->cached && p->got == p->len;
		if (to_cache[i])
			p->cached = true;
	}
	pthread_mutex_unlock(&pf->lock);

	if (pos < end)
		log_debug("prefetch %s: short reply at %llu: %llu of %llu bytes (size %llu)",
		          pf->key, (unsigned long long)off, (unsigned long long)(pos - off),
		          (unsigned long long)(end - off), (unsigned long long)pf->size);
	/* one writev from the part buffers: libfuse would copy a multi-piece bufvec */
	fuse_reply_iov(req, iov, (int)n_used);

	/* pinned: buf and got are stable without the lock */
	for (size_t i = 0; i < n_used; i++)
		if (to_cache[i])
			part_to_cache(pf, used[i], etag);
	pthread_mutex_lock(&pf->lock);
	unpin_locked(used, n_used);
	pthread_mutex_unlock(&pf->lock);
	return;

fail_locked:
	unpin_locked(used, n_used);
	pthread_mutex_unlock(&pf->lock);
	fuse_reply_err(req, err);
}
