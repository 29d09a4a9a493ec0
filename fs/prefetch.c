/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prefetch: object-shared parts with a window per handle (see prefetch.h).
 *
 * An object (struct pf_object, one per key + ETag being read) owns its
 * parts: fetched or in-flight byte ranges, sorted by offset, never
 * overlapping. A handle (struct prefetch) holds the parts of its window;
 * scheduling a range first looks for a part that covers it (shared: fetched
 * once for every handle), else starts a GET for a new part. A part lives
 * while a window holds it, a reply is pinned on it, or its GET is in
 * flight. Part buffers are mmap'd, reserved from the memory budget, and kept
 * in a small pool so a sequential read does not pay page faults for every
 * part. The object's lock guards its parts and the cursors of its handles.
 */
#include "prefetch.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "budget.h"
#include "cache.h"
#include "fs_errno.h"
#include "log.h"

#define MIB             (1024ULL * 1024ULL)
#define FIRST_PART      (1 * MIB) /* the first request after open or a far seek */
#define MAX_PARTS_AHEAD 8         /* window cap, in --read-part-size parts */
#define KEEP_BEHIND     (8 * MIB) /* fetched bytes kept behind the furthest read */
#define OBJ_BUCKETS     256

enum part_state {
	PART_PENDING = 0,
	PART_DONE,
	PART_FAILED,
};

struct pf_object;

struct pf_part {
	struct pf_object *obj;
	uint64_t off;
	size_t len; /* bytes asked for */
	size_t cls; /* buffer size (pool class, reserved in the budget) */
	char *buf;
	/* under obj->lock */
	size_t got; /* bytes received */
	enum part_state state;
	int err;          /* errno when FAILED */
	int holds;        /* windows holding it */
	int pins;         /* replies in progress from buf */
	bool listed;      /* in obj->parts: other handles may share it */
	bool from_net;    /* fetched from the source bucket (worth a cache_put in every tier) */
	bool from_shared; /* from the shared cache tier (worth a cache_put on disk) */
	bool cached;      /* cache_put done, or not needed */
	struct pf_part *next;
};

struct pf_object {
	struct prefetcher *pfr;
	char *key;
	char etag[80];
	uint64_t size;
	bool private_; /* not in the table (unknown ETag): one handle only */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock */
	struct pf_part *parts; /* listed parts, by offset */
	int refs;              /* handles + GETs in flight + pinned replies */
	int handles;
	/* under pfr->lock */
	struct pf_object *next_obj;
};

/* A window slot: a part this handle holds, and whether this handle's reads reached it. */
struct pf_hold {
	struct pf_part *p;
	bool touched;
};

struct prefetch {
	struct prefetcher *pfr;
	struct pf_object *obj; /* changes only on an ETag refresh (under obj->lock) */
	bool no_cache;
	/* under obj->lock */
	struct pf_hold *win; /* the window, in offset order */
	size_t n_win, cap_win;
	unsigned gen;      /* bumped when the window is reset */
	uint64_t next_off; /* end of the last scheduled part */
	uint64_t window;   /* bytes to keep requested ahead of the reader */
	size_t next_len;   /* size of the next part (grows to read_part_size) */
	uint64_t hi;       /* furthest end of a read in this window */
	int sticky_err;    /* ESTALE once the object changed */
	bool delivered;    /* some bytes went to the reader */
	bool lazy;         /* placed by a seek: no prefetch yet */
	uint64_t seek_off; /* offset of the window's first part when lazy */
	uint64_t far_end;  /* end of the last read served outside the window */
	int far_streak;    /* reads in a row served outside the window */
	bool refreshed;    /* the ETag was refreshed once before delivery */
};

struct pool_buf {
	struct pool_buf *next;
	size_t cls;
};

struct prefetcher {
	struct prefetch_config cfg;
	pthread_mutex_t lock;                /* the object table; before any object's lock */
	struct pf_object *objs[OBJ_BUCKETS]; /* under lock */
	int n_objs;                /* objects with a handle: the budget's fair share (atomic) */
	uint64_t align;            /* where windows start: 1 MiB, or the cache block */
	pthread_mutex_t pool_lock; /* after any object's lock, before the budget's */
	struct pool_buf *pool;     /* under pool_lock */
	uint64_t pool_idle;        /* under pool_lock */
	/* counters (atomic) */
	struct prefetch_stats st;
};

static void stat_add(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

/* ---- buffer pool ---- */

static uint64_t pool_idle_cap(struct prefetcher *pfr)
{
	uint64_t lim = budget_limit(pfr->cfg.budget) / 4;

	return lim < 64 * MIB ? lim : 64 * MIB;
}

static size_t class_of(size_t len)
{
	return (len + MIB - 1) / MIB * MIB;
}

static void buf_unmap(struct prefetcher *pfr, void *b, size_t cls)
{
	munmap(b, cls);
	budget_release(pfr->cfg.budget, cls);
}

void prefetcher_trim(struct prefetcher *pfr)
{
	struct pool_buf *list;

	pthread_mutex_lock(&pfr->pool_lock);
	list = pfr->pool;
	pfr->pool = NULL;
	pfr->pool_idle = 0;
	pthread_mutex_unlock(&pfr->pool_lock);
	while (list) {
		struct pool_buf *next = list->next;

		buf_unmap(pfr, list, list->cls);
		list = next;
	}
}

/* A buffer of class @cls reserved in the budget, or NULL when it is short. */
static char *buf_get(struct prefetcher *pfr, size_t cls)
{
	struct pool_buf **pp, *b = NULL;
	void *m;

	pthread_mutex_lock(&pfr->pool_lock);
	for (pp = &pfr->pool; *pp; pp = &(*pp)->next) {
		if ((*pp)->cls == cls) {
			b = *pp;
			*pp = b->next;
			pfr->pool_idle -= cls;
			break;
		}
	}
	pthread_mutex_unlock(&pfr->pool_lock);
	if (b)
		return (char *)b;
	if (!budget_try_reserve(pfr->cfg.budget, cls)) {
		/* idle buffers of other sizes hold budget: give it back and retry */
		prefetcher_trim(pfr);
		if (!budget_try_reserve(pfr->cfg.budget, cls))
			return NULL;
	}
	m = mmap(NULL, cls, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		budget_release(pfr->cfg.budget, cls);
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

static void buf_put(struct prefetcher *pfr, char *buf, size_t cls)
{
	struct pool_buf *b = (struct pool_buf *)buf;

	pthread_mutex_lock(&pfr->pool_lock);
	if (pfr->pool_idle + cls <= pool_idle_cap(pfr)) {
		b->cls = cls;
		b->next = pfr->pool;
		pfr->pool = b;
		pfr->pool_idle += cls;
		buf = NULL;
	}
	pthread_mutex_unlock(&pfr->pool_lock);
	if (buf)
		buf_unmap(pfr, buf, cls);
}

/* ---- objects ---- */

static unsigned obj_hash(const char *key, const char *etag)
{
	unsigned h = 2166136261u;

	for (const char *s = key; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	for (const char *s = etag; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % OBJ_BUCKETS;
}

/* The object for (@key, @etag) with a handle counted on it; NULL on ENOMEM. */
static struct pf_object *obj_get(struct prefetcher *pfr, const char *key, const char *etag,
                                 uint64_t size)
{
	unsigned h = obj_hash(key, etag);
	struct pf_object *o;

	pthread_mutex_lock(&pfr->lock);
	if (etag[0]) {
		for (o = pfr->objs[h]; o; o = o->next_obj) {
			if (!strcmp(o->etag, etag) && !strcmp(o->key, key)) {
				pthread_mutex_lock(&o->lock);
				if (o->handles++ == 0)
					__atomic_add_fetch(&pfr->n_objs, 1, __ATOMIC_RELAXED);
				o->refs++;
				pthread_mutex_unlock(&o->lock);
				pthread_mutex_unlock(&pfr->lock);
				return o;
			}
		}
	}
	o = calloc(1, sizeof(*o));
	if (o)
		o->key = strdup(key);
	if (!o || !o->key) {
		free(o);
		pthread_mutex_unlock(&pfr->lock);
		return NULL;
	}
	o->pfr = pfr;
	snprintf(o->etag, sizeof(o->etag), "%s", etag);
	o->size = size;
	o->private_ = !etag[0];
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	o->refs = 1;
	o->handles = 1;
	__atomic_add_fetch(&pfr->n_objs, 1, __ATOMIC_RELAXED);
	if (!o->private_) {
		o->next_obj = pfr->objs[h];
		pfr->objs[h] = o;
	}
	pthread_mutex_unlock(&pfr->lock);
	return o;
}

static void obj_destroy(struct pf_object *o)
{
	assert(!o->parts);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	free(o->key);
	free(o);
}

/*
 * Drop a ref on @o (its lock held, released here). The last one takes it
 * out of the table; the table lock comes first in the lock order, so the
 * object's lock is dropped and the count checked again under both.
 */
static void obj_put_unlock(struct pf_object *o)
{
	struct prefetcher *pfr = o->pfr;
	struct pf_object **pp;

	if (--o->refs > 0) {
		pthread_mutex_unlock(&o->lock);
		return;
	}
	o->refs++; /* keep it while the locks are taken in order */
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_lock(&pfr->lock);
	pthread_mutex_lock(&o->lock);
	if (--o->refs > 0) {
		pthread_mutex_unlock(&o->lock);
		pthread_mutex_unlock(&pfr->lock);
		return;
	}
	if (!o->private_) {
		for (pp = &pfr->objs[obj_hash(o->key, o->etag)]; *pp; pp = &(*pp)->next_obj) {
			if (*pp == o) {
				*pp = o->next_obj;
				break;
			}
		}
	}
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_unlock(&pfr->lock);
	obj_destroy(o);
}

/* ---- parts ---- */

static void part_unlist_locked(struct pf_object *o, struct pf_part *p)
{
	struct pf_part **pp;

	if (!p->listed)
		return;
	for (pp = &o->parts; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->listed = false;
	p->next = NULL;
}

/* Free @p if nothing needs it any more (obj lock held). */
static void part_maybe_free_locked(struct pf_object *o, struct pf_part *p)
{
	if (p->holds > 0 || p->pins > 0 || p->state == PART_PENDING)
		return;
	part_unlist_locked(o, p);
	if (p->buf)
		buf_put(o->pfr, p->buf, p->cls);
	free(p);
}

/* The listed part covering @off, or NULL. */
static struct pf_part *part_covering_locked(struct pf_object *o, uint64_t off)
{
	for (struct pf_part *p = o->parts; p && p->off <= off; p = p->next)
		if (off < p->off + p->len)
			return p;
	return NULL;
}

/* Where the next listed part at or after @off begins (UINT64_MAX if none). */
static uint64_t next_part_start_locked(struct pf_object *o, uint64_t off)
{
	for (struct pf_part *p = o->parts; p; p = p->next)
		if (p->off >= off)
			return p->off;
	return UINT64_MAX;
}

static void part_insert_locked(struct pf_object *o, struct pf_part *p)
{
	struct pf_part **pp = &o->parts;

	while (*pp && (*pp)->off < p->off)
		pp = &(*pp)->next;
	p->next = *pp;
	*pp = p;
	p->listed = true;
}

static void part_done(void *user, const struct s3_error *err, size_t got,
                      const struct s3_object_info *info)
{
	struct pf_part *p = user;
	struct pf_object *o = p->obj;
	struct prefetcher *pfr = o->pfr;

	pthread_mutex_lock(&o->lock);
	if (err->err == S3_OK) {
		p->state = PART_DONE;
		p->got = got;
		p->from_net = true;
		stat_add(&pfr->st.bytes_fetched, got);
		if (!o->etag[0] && info && info->etag[0])
			snprintf(o->etag, sizeof(o->etag), "%s", info->etag);
		if (p->got < p->len && p->off + p->got < o->size) {
			/* The engine checked the reply against the range: a shorter
			 * one here means the object is shorter than we were told. */
			log_warn("GET %s [%llu, +%zu): %zu bytes, the object is shorter than its "
			         "size %llu: EIO",
			         o->key, (unsigned long long)p->off, p->len, got,
			         (unsigned long long)o->size);
			p->state = PART_FAILED;
			p->err = EIO;
		}
	} else {
		p->state = PART_FAILED;
		p->err = fs_errno(err->err) ?: EIO;
		if (err->err == S3_ERR_INVALID_RANGE)
			p->err = EIO; /* st_size promised these bytes */
		if (err->err != S3_ERR_PRECONDITION && err->err != S3_ERR_CANCELLED) {
			char buf[400];

			log_warn("GET %s [%llu, +%zu): %s", o->key, (unsigned long long)p->off,
			         p->len, s3_error_format(err, buf, sizeof(buf)));
		}
	}
	if (p->state == PART_FAILED)
		part_unlist_locked(o, p); /* nobody new may share a failure: fetch again */
	part_maybe_free_locked(o, p);
	pthread_cond_broadcast(&o->cond);
	obj_put_unlock(o);
}

/* An async ranged GET of @p from the source with If-Match the object's ETag (obj lock held). */
static void part_get_locked(struct pf_object *o, struct pf_part *p)
{
	const struct fs_backend *be = o->pfr->cfg.be;
	struct s3_error err;

	o->refs++;
	stat_add(&o->pfr->st.gets, 1);
	memset(&err, 0, sizeof(err));
	if (be->ops->get_async(be->ctx, o->key, p->off, p->len, o->etag[0] ? o->etag : NULL, p->buf,
	                       p->cls, part_done, p, &err) < 0) {
		o->refs--;
		p->state = PART_FAILED;
		p->err = fs_errno(err.err) ?: EIO;
		part_unlist_locked(o, p);
	}
}

/*
 * The shared cache tier answered for @p (on another thread): its bytes are
 * in place, or they are fetched from the source now.
 */
static void part_cached(void *user, bool hit)
{
	struct pf_part *p = user;
	struct pf_object *o = p->obj;

	pthread_mutex_lock(&o->lock);
	if (hit) {
		p->got = p->len;
		p->state = PART_DONE;
		p->from_shared = true;
		stat_add(&o->pfr->st.bytes_from_cache, p->got);
	} else {
		part_get_locked(o, p);
	}
	if (p->state != PART_PENDING) {
		part_maybe_free_locked(o, p);
		pthread_cond_broadcast(&o->cond);
	}
	obj_put_unlock(o); /* the ref the cache fetch held */
}

/*
 * Fill @p (obj lock held): from the block cache unless @no_cache (the disk
 * tier at once, the shared tier by part_cached()), else by part_get_locked().
 */
static void part_start_locked(struct pf_object *o, struct pf_part *p, bool no_cache)
{
	struct cache *c = o->pfr->cfg.cache;

	if (!no_cache && c) {
		enum cache_result r =
		    cache_fetch(c, o->key, o->etag, p->off, p->len, p->buf, part_cached, p);

		switch (r) {
		case CACHE_HIT:
		case CACHE_HIT_SHARED:
			p->state = PART_DONE;
			p->got = p->len;
			/* from the shared tier: the disk tier still lacks it */
			p->from_shared = r == CACHE_HIT_SHARED;
			p->cached = !p->from_shared;
			stat_add(&o->pfr->st.bytes_from_cache, p->got);
			return;
		case CACHE_PENDING:
			o->refs++; /* dropped by part_cached() */
			return;
		case CACHE_MISS:
			break;
		}
	}
	part_get_locked(o, p);
}

/*
 * Store the whole blocks of @p (and the object's last one) in the cache
 * tiers that lack them: all of them for bytes from the source, the disk
 * for bytes from the shared tier. @p is pinned and done (no lock needed).
 */
static void part_to_cache(struct pf_object *o, struct pf_part *p, const char *etag)
{
	struct cache *c = o->pfr->cfg.cache;
	size_t bs = o->pfr->cfg.cache_block, done = 0;
	enum cache_origin from = p->from_net ? CACHE_FROM_SOURCE : CACHE_FROM_SHARED;

	if (!c || !etag[0] || p->off % bs)
		return;
	while (done < p->got) {
		size_t n = p->got - done < bs ? p->got - done : bs;

		if (n < bs && p->off + done + n != o->size)
			break;
		cache_put(c, o->key, etag, (p->off + done) / bs, p->buf + done, n, from);
		done += n;
	}
}

/* A new part of @len bytes at @off with a buffer, or NULL when the budget is short. */
static struct pf_part *part_new(struct pf_object *o, uint64_t off, size_t len)
{
	struct pf_part *p;
	char *buf = buf_get(o->pfr, class_of(len));

	if (!buf)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		buf_put(o->pfr, buf, class_of(len));
		return NULL;
	}
	p->obj = o;
	p->off = off;
	p->len = len;
	p->cls = class_of(len);
	p->buf = buf;
	return p;
}

/* ---- a handle's window ---- */

static int hold_add_locked(struct prefetch *pf, struct pf_part *p)
{
	if (pf->n_win == pf->cap_win) {
		size_t cap = pf->cap_win ? pf->cap_win * 2 : 16;
		struct pf_hold *w = realloc(pf->win, cap * sizeof(*w));

		if (!w)
			return -ENOMEM;
		pf->win = w;
		pf->cap_win = cap;
	}
	pf->win[pf->n_win].p = p;
	pf->win[pf->n_win].touched = false;
	pf->n_win++;
	p->holds++;
	return 0;
}

/* Drop the first @k holds of the window. */
static void holds_drop_front_locked(struct prefetch *pf, size_t k)
{
	struct pf_object *o = pf->obj;

	for (size_t i = 0; i < k; i++) {
		struct pf_part *p = pf->win[i].p;

		p->holds--;
		part_maybe_free_locked(o, p);
	}
	if (pf->n_win > k) /* memmove of NULL (no window yet) is UB even for 0 bytes */
		memmove(pf->win, pf->win + k, (pf->n_win - k) * sizeof(*pf->win));
	pf->n_win -= k;
}

static void window_clear_locked(struct prefetch *pf)
{
	holds_drop_front_locked(pf, pf->n_win);
	pf->gen++;
}

/* Buffer bytes this handle's window holds. */
static uint64_t window_bytes_locked(const struct prefetch *pf)
{
	uint64_t b = 0;

	for (size_t i = 0; i < pf->n_win; i++)
		b += pf->win[i].p->cls;
	return b;
}

/* The share of the budget one object's readers may hold: fair between objects. */
static uint64_t share_cap(struct prefetch *pf)
{
	struct prefetcher *pfr = pf->pfr;
	uint64_t cap = MAX_PARTS_AHEAD * pfr->cfg.part_size;
	int n = __atomic_load_n(&pfr->n_objs, __ATOMIC_RELAXED);
	uint64_t share = budget_limit(pfr->cfg.budget) / (uint64_t)(n > 0 ? n : 1);

	return share < cap ? share : cap;
}

/*
 * Schedule parts until the window is covered and, at least, up to @need.
 * A range another handle has fetched or is fetching is shared, not fetched
 * again. Returns false if not even the bytes at pf->next_off < @need could
 * get a buffer (the caller then reads directly).
 */
static bool schedule_locked(struct prefetch *pf, uint64_t pos, uint64_t need)
{
	struct pf_object *o = pf->obj;
	uint64_t part_size = pf->pfr->cfg.part_size;
	uint64_t cap = share_cap(pf);
	uint64_t held = window_bytes_locked(pf);

	while (pf->next_off < o->size) {
		bool needed = pf->next_off < need;
		struct pf_part *p;
		uint64_t limit;
		size_t len;

		if (!needed && (pf->lazy || pf->next_off - pos >= pf->window || held >= cap))
			break;
		p = part_covering_locked(o, pf->next_off);
		if (p) {
			if (hold_add_locked(pf, p))
				return !needed;
			stat_add(&pf->pfr->st.parts_shared, 1);
			held += p->cls;
			pf->next_off = p->off + p->len;
			continue;
		}
		len = pf->next_len;
		if (len > o->size - pf->next_off)
			len = (size_t)(o->size - pf->next_off);
		limit = next_part_start_locked(o, pf->next_off);
		if (limit != UINT64_MAX && pf->next_off + len > limit)
			len = (size_t)(limit - pf->next_off); /* stop where a shared part begins */
		p = part_new(o, pf->next_off, len);
		while (!p && len > MIB) {
			/* budget pressure: a smaller part, a smaller window */
			len = len / 2 / MIB * MIB;
			p = part_new(o, pf->next_off, len);
		}
		if (!p) {
			if (pf->window > FIRST_PART)
				pf->window = pf->next_off - pos > FIRST_PART ? pf->next_off - pos
				                                             : FIRST_PART;
			return !needed;
		}
		if (hold_add_locked(pf, p)) {
			buf_put(pf->pfr, p->buf, p->cls);
			free(p);
			return !needed;
		}
		log_debug("prefetch %s: GET [%llu, +%zu) window %llu", o->key,
		          (unsigned long long)p->off, len, (unsigned long long)pf->window);
		part_insert_locked(o, p);
		held += p->cls;
		pf->next_off += len;
		if (pf->next_len < part_size)
			pf->next_len = pf->next_len * 2 > part_size ? part_size : pf->next_len * 2;
		part_start_locked(o, p, pf->no_cache);
	}
	return true;
}

/* Start the window again at @off (1 MiB aligned for the cache). */
static void window_reset_locked(struct prefetch *pf, uint64_t off, uint64_t end, bool lazy)
{
	if (pf->n_win)
		log_debug("prefetch %s: %s at %llu resets the window [%llu, %llu)", pf->obj->key,
		          lazy ? "seek" : "new stream", (unsigned long long)off,
		          (unsigned long long)pf->win[0].p->off, (unsigned long long)pf->next_off);
	window_clear_locked(pf);
	pf->next_off = off / pf->pfr->align * pf->pfr->align;
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
	uint64_t part = pf->pfr->cfg.part_size;
	uint64_t behind = part > KEEP_BEHIND ? part : KEEP_BEHIND;
	/*
	 * A jump forward past what is scheduled by more than this is a seek:
	 * fetching the gap would cost more than starting again at @off. While
	 * the window is lazy (placed by a seek), any gap is.
	 */
	uint64_t gap = pf->lazy ? 0 : part;
	size_t k = 0;

	if (!pf->n_win || off < pf->win[0].p->off || off > pf->next_off + gap) {
		if (!pf->delivered && !pf->n_win) {
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
		if (++pf->far_streak >= 2 && pf->n_win) {
			/* the window is not read any more: give its budget back */
			log_debug("prefetch %s: random reads, window [%llu, %llu) dropped",
			          pf->obj->key, (unsigned long long)pf->win[0].p->off,
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
	while (k + 1 < pf->n_win) {
		struct pf_part *p = pf->win[k].p;

		if (p->off + p->len + behind > pf->hi || p->off + p->len > off)
			break;
		k++;
	}
	if (k)
		holds_drop_front_locked(pf, k);
	return true;
}

/* Unpin the parts of @r (obj lock held). */
static void unpin_locked(struct pf_object *o, struct prefetch_reply *r)
{
	for (int i = 0; i < r->n_pins; i++) {
		struct pf_part *p = r->pins[i];

		p->pins--;
		part_maybe_free_locked(o, p);
	}
	r->n_pins = 0;
	r->n_iov = 0;
}

/*
 * Serve [off, end) from listed parts of the object that are done and cover
 * it whole (another handle fetched them). Returns true with @r filled and
 * pinned; false if some byte is not there yet.
 */
static bool serve_from_parts_locked(struct pf_object *o, uint64_t off, uint64_t end,
                                    struct prefetch_reply *r)
{
	uint64_t pos = off;

	for (struct pf_part *p = o->parts; p && pos < end; p = p->next) {
		if (p->off + p->len <= pos)
			continue;
		if (p->off > pos || p->state != PART_DONE || r->n_iov == PREFETCH_MAX_SEGS ||
		    p->got < p->len)
			break;
		r->iov[r->n_iov].iov_base = p->buf + (pos - p->off);
		r->iov[r->n_iov].iov_len =
		    (size_t)((p->off + p->len < end ? p->off + p->len : end) - pos);
		r->pins[r->n_pins++] = p;
		p->pins++;
		pos += r->iov[r->n_iov].iov_len;
		r->n_iov++;
	}
	if (pos >= end)
		return true;
	unpin_locked(o, r);
	return false;
}

/*
 * Serve a read outside the window with one GET of its own bytes (whole
 * 1 MiB blocks with --cache, so they can be stored and found there). The
 * part is not listed: nobody shares it. Returns 0 with @r filled, -1 when
 * no buffer could be had (the caller reads directly), or an errno (> 0).
 */
static int read_far_locked(struct prefetch *pf, uint64_t off, uint64_t end,
                           struct prefetch_reply *r)
{
	struct pf_object *o = pf->obj;
	bool cache = o->pfr->cfg.cache != NULL && !pf->no_cache;
	uint64_t bs = o->pfr->cfg.cache_block;
	uint64_t from = cache ? off / bs * bs : off;
	uint64_t to = cache ? (end + bs - 1) / bs * bs : end;
	struct pf_part *p;
	char etag[80];
	size_t n;

	if (serve_from_parts_locked(o, off, end, r))
		return 0;
	if (to > o->size)
		to = o->size;
	p = part_new(o, from, (size_t)(to - from));
	if (!p)
		return -1;
	p->pins = 1;
	log_debug("prefetch %s: GET [%llu, +%zu) outside the window", o->key,
	          (unsigned long long)from, p->len);
	part_start_locked(o, p, pf->no_cache);
	while (p->state == PART_PENDING)
		pthread_cond_wait(&o->cond, &o->lock);
	if (p->state == PART_FAILED) {
		int e = p->err;

		p->pins--;
		part_maybe_free_locked(o, p);
		return e;
	}
	if (cache && (p->from_net || p->from_shared) && p->got == p->len && !p->cached) {
		p->cached = true;
		snprintf(etag, sizeof(etag), "%s", o->etag);
		pthread_mutex_unlock(&o->lock);
		part_to_cache(o, p, etag);
		pthread_mutex_lock(&o->lock);
	}
	n = p->got > off - from ? (size_t)(p->got - (off - from)) : 0;
	if (n > end - off)
		n = (size_t)(end - off);
	r->iov[0].iov_base = p->buf + (off - from);
	r->iov[0].iov_len = n;
	r->n_iov = 1;
	r->pins[0] = p;
	r->n_pins = 1;
	return 0;
}

/* Read directly into a temporary buffer when the budget cannot give a part. */
static int read_direct(struct prefetch *pf, size_t size, uint64_t off, const char *etag,
                       struct prefetch_reply *r)
{
	const struct fs_backend *be = pf->pfr->cfg.be;
	struct s3_error err;
	size_t got = 0;
	char *tmp = malloc(size ? size : 1);

	memset(&err, 0, sizeof(err));
	if (!tmp)
		return -ENOMEM;
	if (be->ops->get(be->ctx, pf->obj->key, off, size, etag[0] ? etag : NULL, tmp, size, &got,
	                 NULL, &err) < 0) {
		free(tmp);
		return -(fs_errno(err.err) ?: EIO);
	}
	if (got < size) {
		/* the engine checked the range: the object ended before st_size said */
		free(tmp);
		return -EIO;
	}
	stat_add(&pf->pfr->st.bytes_fetched, got);
	r->owned = tmp;
	r->iov[0].iov_base = tmp;
	r->iov[0].iov_len = got;
	r->n_iov = 1;
	return 0;
}

/*
 * The object changed before any byte was delivered: take its new version
 * (the handle moves to the object of the new ETag). False if S3 cannot say.
 */
static bool refresh_etag(struct prefetch *pf)
{
	const struct fs_backend *be = pf->pfr->cfg.be;
	struct pf_object *old = pf->obj, *o;
	struct s3_object_info info;
	struct s3_error err;

	memset(&err, 0, sizeof(err));
	if (be->ops->head(be->ctx, old->key, &info, &err) < 0)
		return false;
	o = obj_get(pf->pfr, old->key, info.etag, info.size);
	if (!o)
		return false;
	pthread_mutex_lock(&old->lock);
	window_clear_locked(pf);
	pf->next_off = 0;
	if (--old->handles == 0)
		__atomic_sub_fetch(&pf->pfr->n_objs, 1, __ATOMIC_RELAXED);
	pf->obj = o;
	obj_put_unlock(old);
	pthread_mutex_lock(&o->lock);
	pf->refreshed = true;
	pthread_mutex_unlock(&o->lock);
	return true;
}

struct prefetcher *prefetcher_new(const struct prefetch_config *cfg)
{
	struct prefetcher *pfr = calloc(1, sizeof(*pfr));

	if (!pfr)
		return NULL;
	pfr->cfg = *cfg;
	if (!pfr->cfg.cache_block)
		pfr->cfg.cache_block = CACHE_BLOCK_SIZE;
	pfr->align = pfr->cfg.cache && pfr->cfg.cache_block > MIB ? pfr->cfg.cache_block : MIB;
	pthread_mutex_init(&pfr->lock, NULL);
	pthread_mutex_init(&pfr->pool_lock, NULL);
	return pfr;
}

void prefetcher_free(struct prefetcher *pfr)
{
	if (!pfr)
		return;
	prefetcher_trim(pfr);
	for (int i = 0; i < OBJ_BUCKETS; i++)
		assert(!pfr->objs[i]);
	pthread_mutex_destroy(&pfr->lock);
	pthread_mutex_destroy(&pfr->pool_lock);
	free(pfr);
}

void prefetcher_stats(struct prefetcher *pfr, struct prefetch_stats *out)
{
	out->bytes_fetched = __atomic_load_n(&pfr->st.bytes_fetched, __ATOMIC_RELAXED);
	out->bytes_from_cache = __atomic_load_n(&pfr->st.bytes_from_cache, __ATOMIC_RELAXED);
	out->bytes_delivered = __atomic_load_n(&pfr->st.bytes_delivered, __ATOMIC_RELAXED);
	out->parts_shared = __atomic_load_n(&pfr->st.parts_shared, __ATOMIC_RELAXED);
	out->gets = __atomic_load_n(&pfr->st.gets, __ATOMIC_RELAXED);
}

struct prefetch *prefetch_new(struct prefetcher *pfr, const char *key, uint64_t size,
                              const char *etag, bool no_cache)
{
	struct prefetch *pf = calloc(1, sizeof(*pf));

	if (!pf)
		return NULL;
	pf->pfr = pfr;
	pf->no_cache = no_cache;
	pf->obj = obj_get(pfr, key, etag ? etag : "", size);
	if (!pf->obj) {
		free(pf);
		return NULL;
	}
	pf->window = FIRST_PART;
	pf->next_len = FIRST_PART;
	return pf;
}

void prefetch_free(struct prefetch *pf)
{
	struct pf_object *o;

	if (!pf)
		return;
	o = pf->obj;
	pthread_mutex_lock(&o->lock);
	window_clear_locked(pf);
	if (--o->handles == 0)
		__atomic_sub_fetch(&pf->pfr->n_objs, 1, __ATOMIC_RELAXED);
	obj_put_unlock(o);
	free(pf->win);
	free(pf);
}

void prefetch_reply_done(struct prefetch_reply *r)
{
	if (r->n_pins) {
		struct pf_object *o = ((struct pf_part *)r->pins[0])->obj;

		pthread_mutex_lock(&o->lock);
		unpin_locked(o, r);
		obj_put_unlock(o);
	}
	free(r->owned);
	r->owned = NULL;
	r->n_iov = 0;
}

/* Count what a reply delivers and pin the object for it (obj lock held). */
static void reply_ready_locked(struct prefetch *pf, struct prefetch_reply *r)
{
	uint64_t n = 0;

	for (int i = 0; i < r->n_iov; i++)
		n += r->iov[i].iov_len;
	stat_add(&pf->pfr->st.bytes_delivered, n);
	if (r->n_pins)
		pf->obj->refs++; /* the pins keep the object until prefetch_reply_done() */
	pf->delivered = true;
}

int prefetch_read(struct prefetch *pf, size_t size, uint64_t off, struct prefetch_reply *r)
{
	struct pf_object *o;
	bool grew = false, win_failed = false, to_cache[PREFETCH_MAX_SEGS];
	char etag[80];
	uint64_t end, pos;
	unsigned gen;
	int err = 0;

	memset(r, 0, sizeof(*r));
	r->pf = pf;
again:
	o = pf->obj;
	pthread_mutex_lock(&o->lock);
	if (pf->sticky_err) {
		err = pf->sticky_err;
		goto fail_locked;
	}
	if (off >= o->size || size == 0) {
		pthread_mutex_unlock(&o->lock);
		return 0;
	}
	end = off + size < o->size ? off + size : o->size;
	log_debug("prefetch %s: read [%llu, +%zu)", o->key, (unsigned long long)off, size);
	if (!window_seek_locked(pf, off, end)) {
		err = read_far_locked(pf, off, end, r);
		if (err == 0) {
			reply_ready_locked(pf, r);
			pthread_mutex_unlock(&o->lock);
			return 0;
		}
		if (err > 0)
			goto failed;
		err = 0;
		goto direct; /* no buffer for it */
	}
	if (!schedule_locked(pf, off, end)) {
	direct:
		/* not even this read fits in the budget: serve it without a part */
		log_debug("prefetch %s: budget short (%llu of %llu used): direct read", o->key,
		          (unsigned long long)budget_used(pf->pfr->cfg.budget),
		          (unsigned long long)budget_limit(pf->pfr->cfg.budget));
		snprintf(etag, sizeof(etag), "%s", o->etag);
		pf->delivered = true;
		pthread_mutex_unlock(&o->lock);
		err = -read_direct(pf, (size_t)(end - off), off, etag, r);
		if (!err)
			return 0;
		pthread_mutex_lock(&o->lock);
		goto failed;
	}
	/* wait for the parts covering [off, end) */
	pos = off;
	gen = pf->gen;
	for (size_t i = 0; i < pf->n_win && pos < end; i++) {
		struct pf_hold *h = &pf->win[i];
		struct pf_part *p = h->p;
		size_t from, to;

		if (p->off + p->len <= pos)
			continue;
		if (r->n_iov == PREFETCH_MAX_SEGS)
			break;
		if (!h->touched) {
			/*
			 * The reader reached a new part: it keeps up, so widen the
			 * window. After a seek, not for the part the seek asked for:
			 * a random reader would pay a useless prefetch per read.
			 */
			h->touched = true;
			if (!(pf->lazy && p->off == pf->seek_off)) {
				pf->lazy = false;
				if (pf->window < MAX_PARTS_AHEAD * pf->pfr->cfg.part_size)
					pf->window *= 2;
				grew = true;
			}
		}
		/* pinned before waiting: a reset by another read of this handle cannot free it */
		p->pins++;
		r->pins[r->n_pins++] = p;
		while (p->state == PART_PENDING)
			pthread_cond_wait(&o->cond, &o->lock);
		if (pf->gen != gen) {
			/* another read of this handle reset the window meanwhile */
			unpin_locked(o, r);
			pthread_mutex_unlock(&o->lock);
			goto again;
		}
		if (p->state == PART_FAILED) {
			err = p->err;
			win_failed = true;
			break;
		}
		from = (size_t)(pos - p->off);
		if (p->got <= from) {
			err = EIO; /* checked in part_done: cannot be short of the object's size */
			break;
		}
		to = p->got;
		if (p->off + to > end)
			to = (size_t)(end - p->off);
		r->iov[r->n_iov].iov_base = p->buf + from;
		r->iov[r->n_iov].iov_len = to - from;
		r->n_iov++;
		pos = p->off + to;
	}
	if (!err && pos < end && r->n_iov < PREFETCH_MAX_SEGS) {
		/* the window does not reach the read: never a short reply */
		unpin_locked(o, r);
		pthread_mutex_unlock(&o->lock);
		goto again;
	}
	if (err)
		goto failed;
	if (grew)
		schedule_locked(pf, off, end);
	snprintf(etag, sizeof(etag), "%s", o->etag);
	for (int i = 0; i < r->n_pins; i++) {
		struct pf_part *p = r->pins[i];

		to_cache[i] = o->pfr->cfg.cache && !pf->no_cache &&
		              (p->from_net || p->from_shared) && !p->cached && p->got == p->len;
		if (to_cache[i])
			p->cached = true;
	}
	reply_ready_locked(pf, r);
	pthread_mutex_unlock(&o->lock);
	/* pinned: buf and got are stable without the lock */
	for (int i = 0; i < r->n_pins; i++)
		if (to_cache[i])
			part_to_cache(o, r->pins[i], etag);
	return 0;

failed:
	unpin_locked(o, r);
	if (err == ESTALE && !pf->delivered && !pf->refreshed) {
		pthread_mutex_unlock(&o->lock);
		if (refresh_etag(pf)) {
			err = 0;
			goto again;
		}
		pthread_mutex_lock(&o->lock);
	}
	if (err == ESTALE) {
		pf->sticky_err = ESTALE;
	} else if (win_failed) {
		/*
		 * part_done() unlisted the failed part, but this window still
		 * holds it: every later read of its range on this handle would
		 * fail again without a GET. Drop the window; the next read
		 * fetches those bytes again.
		 */
		window_clear_locked(pf);
		pf->next_off = 0;
	}
fail_locked:
	unpin_locked(o, r);
	pthread_mutex_unlock(&o->lock);
	free(r->owned);
	r->owned = NULL;
	return -err;
}
