/* SPDX-License-Identifier: Apache-2.0 */
/*
 * upload: the multipart upload state machine behind a file being written
 * (see upload.h for the states and transitions). Two kinds of state, kept
 * apart as in aws-c-s3's auto-ranged put: what only the writing thread
 * touches (the buffer being filled, the size, the part counter, the upload
 * id), serialized by wlock, and what the backend's completions share with
 * it (state, parts done, buffers coming back, the first error), guarded by
 * lock. Lock order: wlock, then lock, then the budget's lock.
 *
 * Every state change goes through set_state_locked(), which checks it
 * against the transition table and traces it; drive() is the one "what
 * next" decision both the success and the failure path take once the
 * writer is done (complete, verify a lost Complete, abort).
 */
#include "upload.h"

#include <assert.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "fs_errno.h"
#include "log.h"
#include "util.h"

/* The first buffer of an upload is charged to the budget as it fills, in
 * steps of this size, so a small file costs the budget what it holds. */
#define CHARGE_STEP (1ULL << 20)
/* How long a writer with nothing in flight waits for the budget before it
 * maps a buffer past it (see reserve_patiently()). */
#define OVERDRAFT_WAIT_MS 2000
/* A CreateMultipartUpload whose reply was lost: how far back an upload of
 * the same key may have been started by it (server and node clocks differ). */
#define ORPHAN_CLOCK_SLACK_S 300

/* ---- the shared part: submitters and the aborts still owed ---- */

struct upload_buf {
	struct upload *u;
	char *data;     /* part_size bytes, mmap'd (returned to the OS on free) */
	size_t len;     /* bytes filled */
	size_t charged; /* budget bytes this buffer holds */
	bool overdraft; /* mapped past the budget (see reserve_patiently) */
	int part_no;
	struct s3_part part;     /* number, size, checksum; ETag filled when the part is done */
	struct upload_buf *next; /* free list, submit queue */
};

struct pending_abort {
	char *key;
	char *upload_id;
	int tries;
	struct timespec next; /* CLOCK_MONOTONIC: not before then */
	struct pending_abort *next_entry;
};

struct upload_submitter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct upload_buf *head, *tail; /* queue, guarded by lock */
	bool stop;                      /* guarded by lock */
	int n_threads;
	pthread_t threads[];
};

struct uploader {
	struct uploader_config cfg;
	struct upload_submitter *sub; /* NULL: the writer sends its parts itself */
	int active;                   /* uploads holding a buffer (atomic): the fair share */
	struct uploader_stats st;     /* counters (relaxed atomics) */

	/* the janitor: aborts that failed, tried again in the background */
	pthread_mutex_t alock;
	pthread_cond_t acond;
	struct pending_abort *aborts; /* under alock */
	size_t n_aborts;              /* under alock */
	bool stop;                    /* under alock */
	bool janitor_started;
	pthread_t janitor;
};

struct upload {
	/* Immutable after upload_new(). */
	struct uploader *up;
	const struct fs_backend *be;
	size_t part_size;
	char *key;

	/* Writer side: only the thread holding wlock touches these. */
	pthread_mutex_t wlock;
	struct upload_buf *cur; /* the buffer being filled, NULL between parts */
	uint64_t size;          /* bytes in the file so far */
	uint64_t max_size;      /* 10,000 parts' worth */
	int next_part;          /* the number the next part gets */
	char *upload_id;        /* NULL until the multipart upload exists */
	bool append_pending;    /* the old bytes still have to be put in front */
	uint64_t base_size;
	char base_etag[80];
	struct s3_obj_meta sent; /* what PutObject / CreateMultipartUpload carried */
	int result;              /* what upload_complete() returned (final states) */
	char final_etag[80];
	char want_etag[80]; /* the composite ETag the parts make ("" if unknown) */

	/* Shared with the backend's completions: guarded by lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled on part completion and state changes */
	enum upload_state state;
	int inflight; /* parts sent and not finished */
	int nbufs;    /* buffers mapped: cur + in flight + free */
	struct upload_buf *free_bufs;
	struct s3_part *parts; /* parts[i] is part i + 1, filled when it is done */
	size_t parts_cap;
	int err;             /* first errno that failed the upload, 0 if none */
	bool writer_waiting; /* the writer waits in get_buf() for a buffer */
	bool overdraft_logged;
	struct s3_obj_meta meta; /* what upload_set_mtime() asked the object to keep */
};

const char *upload_state_name(enum upload_state s)
{
	switch (s) {
	case UPLOAD_OPEN:
		return "OPEN";
	case UPLOAD_STREAMING:
		return "STREAMING";
	case UPLOAD_COMPLETING:
		return "COMPLETING";
	case UPLOAD_VERIFYING:
		return "VERIFYING";
	case UPLOAD_DONE:
		return "DONE";
	case UPLOAD_ABORTING:
		return "ABORTING";
	case UPLOAD_FAILED:
		return "FAILED";
	case UPLOAD_DISCARDED:
		return "DISCARDED";
	}
	return "?";
}

static void stat_add(uint64_t *c, int64_t n)
{
	__atomic_add_fetch(c, (uint64_t)n, __ATOMIC_RELAXED);
}

static bool is_final(enum upload_state s)
{
	return s == UPLOAD_DONE || s == UPLOAD_FAILED || s == UPLOAD_DISCARDED;
}

/* The transition table of upload.h: true when @from -> @to may happen. */
static bool transition_ok(enum upload_state from, enum upload_state to)
{
	switch (from) {
	case UPLOAD_OPEN:
		return to == UPLOAD_STREAMING || to == UPLOAD_COMPLETING || to == UPLOAD_ABORTING;
	case UPLOAD_STREAMING:
		return to == UPLOAD_COMPLETING || to == UPLOAD_ABORTING;
	case UPLOAD_COMPLETING:
		return to == UPLOAD_DONE || to == UPLOAD_VERIFYING || to == UPLOAD_ABORTING;
	case UPLOAD_VERIFYING:
		return to == UPLOAD_DONE || to == UPLOAD_COMPLETING || to == UPLOAD_ABORTING;
	case UPLOAD_ABORTING:
		return to == UPLOAD_FAILED || to == UPLOAD_DISCARDED;
	default:
		return false;
	}
}

/* The one place the state changes (lock held): checked and traced. */
static void set_state_locked(struct upload *u, enum upload_state to, const char *why)
{
	if (!transition_ok(u->state, to)) {
		log_err("upload of '%s': %s -> %s (%s) is not a transition of the upload machine",
		        u->key, upload_state_name(u->state), upload_state_name(to), why);
		assert(!"upload state transition");
		return;
	}
	log_debug("upload of '%s': %s -> %s (%s)", u->key, upload_state_name(u->state),
	          upload_state_name(to), why);
	u->state = to;
	if (is_final(to)) {
		stat_add(&u->up->st.open, -1);
		if (to == UPLOAD_DONE)
			stat_add(&u->up->st.completed, 1);
		else if (to == UPLOAD_FAILED)
			stat_add(&u->up->st.failed, 1);
	}
	pthread_cond_broadcast(&u->cond);
}

static void set_state(struct upload *u, enum upload_state to, const char *why)
{
	pthread_mutex_lock(&u->lock);
	set_state_locked(u, to, why);
	pthread_mutex_unlock(&u->lock);
}

static void log_s3(int level, const struct upload *u, const char *what, const struct s3_error *e)
{
	char buf[512];

	log_msg(level, e->request_id[0] ? e->request_id : NULL, "upload of '%s': %s failed: %s",
	        u->key, what, s3_error_format(e, buf, sizeof(buf)));
}

/*
 * Record the first failure (lock held): the upload goes to ABORTING, where
 * the writer's next call (or completion, or release) aborts it. A request
 * that failed for good is EIO to the writer whatever S3 said (the log says
 * what); the errno of a local cause (EFBIG, ENOMEM, ESTALE) is kept.
 */
static void fail_locked(struct upload *u, int err, const char *why)
{
	if (!u->err)
		u->err = err;
	if (!is_final(u->state) && u->state != UPLOAD_ABORTING)
		set_state_locked(u, UPLOAD_ABORTING, why);
	pthread_cond_broadcast(&u->cond);
}

static void fail(struct upload *u, int err, const char *why)
{
	pthread_mutex_lock(&u->lock);
	fail_locked(u, err, why);
	pthread_mutex_unlock(&u->lock);
}

/* ---- aborts still owed: the janitor ---- */

static bool mono_due(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* One try of an owed abort. True when it is done (aborted, or gone already). */
static bool try_abort(const struct fs_backend *be, const char *key, const char *upload_id)
{
	struct s3_error e;

	if (be->ops->abort(be->ctx, key, upload_id, &e) == 0 || e.err == S3_ERR_NO_SUCH_UPLOAD) {
		log_notice("upload of '%s': multipart upload %.40s aborted (it had been left open "
		           "by a failure)",
		           key, upload_id);
		return true;
	}
	return false;
}

static void *janitor_main(void *arg)
{
	struct uploader *up = arg;

	pthread_mutex_lock(&up->alock);
	while (!up->stop) {
		struct pending_abort *a = up->aborts, **pp = &up->aborts;

		while (a && !mono_due(&a->next)) {
			pp = &a->next_entry;
			a = a->next_entry;
		}
		if (!a) {
			/* at most a second between looks: entries come due over time */
			struct timespec t = util_mono_in(1000);

			pthread_cond_timedwait(&up->acond, &up->alock, &t);
			continue;
		}
		*pp = a->next_entry;
		up->n_aborts--;
		pthread_mutex_unlock(&up->alock);
		bool done = try_abort(up->cfg.be, a->key, a->upload_id);
		pthread_mutex_lock(&up->alock);
		if (done) {
			free(a->key);
			free(a->upload_id);
			free(a);
			continue;
		}
		a->tries++;
		/* back off: 2, 4, 8, 16, 30 s; the engine retried each try already */
		a->next = util_mono_in(a->tries >= 5 ? 30000 : 1000L << a->tries);
		a->next_entry = up->aborts;
		up->aborts = a;
		up->n_aborts++;
	}
	pthread_mutex_unlock(&up->alock);
	return NULL;
}

/* Queue an abort that failed (or one we owe for an orphan): retried in the background. */
static void abort_later(struct uploader *up, const char *key, const char *upload_id)
{
	struct pending_abort *a = calloc(1, sizeof(*a));

	if (a) {
		a->key = strdup(key);
		a->upload_id = strdup(upload_id);
	}
	if (!a || !a->key || !a->upload_id) {
		if (a) {
			free(a->key);
			free(a->upload_id);
			free(a);
		}
		log_err("upload of '%s': out of memory queueing the abort of upload %s: it stays "
		        "open in the bucket",
		        key, upload_id);
		return;
	}
	a->next = util_mono_in(1000);
	pthread_mutex_lock(&up->alock);
	a->next_entry = up->aborts;
	up->aborts = a;
	up->n_aborts++;
	if (!up->janitor_started && pthread_create(&up->janitor, NULL, janitor_main, up) == 0)
		up->janitor_started = true;
	pthread_cond_broadcast(&up->acond);
	pthread_mutex_unlock(&up->alock);
	log_warn("upload of '%s': abort of multipart upload %.40s queued; it is retried in the "
	         "background and at unmount",
	         key, upload_id);
}

void uploader_stats(struct uploader *up, struct uploader_stats *out)
{
	out->open = __atomic_load_n(&up->st.open, __ATOMIC_RELAXED);
	out->completed = __atomic_load_n(&up->st.completed, __ATOMIC_RELAXED);
	out->failed = __atomic_load_n(&up->st.failed, __ATOMIC_RELAXED);
	out->parts = __atomic_load_n(&up->st.parts, __ATOMIC_RELAXED);
	out->budget_waits = __atomic_load_n(&up->st.budget_waits, __ATOMIC_RELAXED);
	out->pending_aborts = uploader_pending_aborts(up);
}

size_t uploader_pending_aborts(struct uploader *up)
{
	size_t n;

	pthread_mutex_lock(&up->alock);
	n = up->n_aborts;
	pthread_mutex_unlock(&up->alock);
	return n;
}

/* ---- part submitters ---- */

static void send_part(struct upload_buf *b);

static void *submitter_main(void *arg)
{
	struct upload_submitter *s = arg;
	struct upload_buf *b;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		b = s->head;
		if (b) {
			s->head = b->next;
			if (!s->head)
				s->tail = NULL;
			b->next = NULL;
		}
		pthread_mutex_unlock(&s->lock);
		if (!b)
			return NULL; /* stopping, queue empty */
		send_part(b);
	}
}

static struct upload_submitter *submitter_new(int n_threads)
{
	struct upload_submitter *s;
	int i;

	s = calloc(1, sizeof(*s) + (size_t)n_threads * sizeof(pthread_t));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	for (i = 0; i < n_threads; i++)
		if (pthread_create(&s->threads[i], NULL, submitter_main, s) != 0)
			break;
	s->n_threads = i;
	if (i == 0) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
		free(s);
		return NULL;
	}
	return s;
}

static void submitter_free(struct upload_submitter *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < s->n_threads; i++)
		pthread_join(s->threads[i], NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

struct uploader *uploader_new(const struct uploader_config *cfg)
{
	struct uploader *up = calloc(1, sizeof(*up));

	if (!up)
		return NULL;
	up->cfg = *cfg;
	if (up->cfg.max_inflight < 1)
		up->cfg.max_inflight = 1;
	pthread_mutex_init(&up->alock, NULL);
	{
		pthread_condattr_t ca;

		/* the janitor's waits are on the monotonic clock (util_mono_in) */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&up->acond, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (cfg->submit_threads > 0) {
		up->sub = submitter_new(cfg->submit_threads);
		if (!up->sub) {
			pthread_mutex_destroy(&up->alock);
			pthread_cond_destroy(&up->acond);
			free(up);
			return NULL;
		}
	}
	return up;
}

void uploader_free(struct uploader *up)
{
	struct pending_abort *a, *next;
	struct timespec deadline;
	long budget;

	if (!up)
		return;
	submitter_free(up->sub);
	pthread_mutex_lock(&up->alock);
	up->stop = true;
	pthread_cond_broadcast(&up->acond);
	pthread_mutex_unlock(&up->alock);
	if (up->janitor_started)
		pthread_join(up->janitor, NULL);
	/*
	 * At unmount: every abort still owed is tried again, within the retry
	 * budget, so a mount that exits cleanly leaves no upload it started.
	 */
	budget =
	    up->cfg.be->retry.budget_ms > 0 ? up->cfg.be->retry.budget_ms : RETRY_DEFAULT_BUDGET_MS;
	deadline = util_mono_in(budget);
	for (a = up->aborts; a; a = next) {
		bool done = false;

		next = a->next_entry;
		while (!done && !mono_due(&deadline)) {
			done = try_abort(up->cfg.be, a->key, a->upload_id);
			if (!done)
				usleep(500000);
		}
		if (!done)
			log_err("upload of '%s': multipart upload %s could not be aborted before "
			        "exit: it stays open in the bucket (abort it with "
			        "'aws s3api abort-multipart-upload --key ... --upload-id %s')",
			        a->key, a->upload_id, a->upload_id);
		free(a->key);
		free(a->upload_id);
		free(a);
	}
	pthread_mutex_destroy(&up->alock);
	pthread_cond_destroy(&up->acond);
	free(up);
}

/* ---- buffers and the budget's fair share ---- */

static void nbufs_add_locked(struct upload *u, int delta)
{
	int old = u->nbufs;

	u->nbufs += delta;
	if (old == 0 && u->nbufs > 0)
		__atomic_add_fetch(&u->up->active, 1, __ATOMIC_RELAXED);
	else if (old > 0 && u->nbufs == 0)
		__atomic_sub_fetch(&u->up->active, 1, __ATOMIC_RELAXED);
	assert(u->nbufs >= 0);
}

/*
 * How many part buffers @u may hold now: its share of the budget. Uploads
 * holding a buffer share it out, each at least one, at most max_inflight +
 * 1, so a writer that starts late gets buffers back from earlier ones.
 */
static int buf_cap(const struct upload *u)
{
	int active = __atomic_load_n(&u->up->active, __ATOMIC_RELAXED);
	uint64_t total = budget_limit(u->up->cfg.budget) / u->part_size;
	int cap = u->up->cfg.max_inflight + 1;

	if (active < 1)
		active = 1;
	if (total / (uint64_t)active < (uint64_t)cap)
		cap = (int)(total / (uint64_t)active);
	return cap < 1 ? 1 : cap;
}

static struct upload_buf *buf_map(struct upload *u, size_t charged)
{
	struct upload_buf *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->data =
	    mmap(NULL, u->part_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->data == MAP_FAILED) {
		free(b);
		return NULL;
	}
	/*
	 * Huge pages where the kernel has them (transparent_hugepage=madvise):
	 * filling a fresh 8 MiB part otherwise faults every 4 KiB, and those
	 * faults were ~7% of the daemon's CPU while writing (perf, 512 MiB cp).
	 */
	if (u->part_size >= 2u << 20)
		(void)madvise(b->data, u->part_size, MADV_HUGEPAGE);
	b->u = u;
	b->charged = charged;
	return b;
}

static void buf_unmap(struct upload *u, struct upload_buf *b)
{
	munmap(b->data, u->part_size);
	if (b->charged)
		budget_release(u->up->cfg.budget, b->charged);
	free(b);
}

/*
 * Take @n bytes of the budget for a writer that has nothing in flight (so
 * nothing of its own will come back). Other uploads hold the rest; they
 * give it back as their parts finish. But a program writing many files in
 * turn from one thread leaves each holding a partly filled part, and may
 * wait on this write before it writes to them again: past
 * OVERDRAFT_WAIT_MS the buffer is mapped uncharged (logged once per file)
 * instead of hanging the program. Returns the bytes charged (@n or 0).
 */
static size_t reserve_patiently(struct upload *u, size_t n)
{
	bool logged;

	if (budget_try_reserve(u->up->cfg.budget, n))
		return n;
	stat_add(&u->up->st.budget_waits, 1);
	if (budget_reserve_wait(u->up->cfg.budget, n, OVERDRAFT_WAIT_MS))
		return n;
	pthread_mutex_lock(&u->lock);
	logged = u->overdraft_logged;
	u->overdraft_logged = true;
	pthread_mutex_unlock(&u->lock);
	if (!logged)
		log_warn("upload of '%s': the memory budget (--memory-limit) is held by other "
		         "files being written; using %zu bytes beyond it rather than waiting on "
		         "them (raise --memory-limit for this many files written at once)",
		         u->key, n);
	return 0;
}

/*
 * get_buf() - a buffer to fill, for the writer (wlock held, lock not held).
 * Reuses buffers that came back from finished parts; maps a new one while
 * the upload is under its share and the budget has room; otherwise waits
 * for a part of this upload to finish. It waits on the budget itself only
 * when nothing of this upload is in flight, because then only other holders
 * can free memory and none of this upload's buffers is idle.
 */
static int get_buf(struct upload *u, struct upload_buf **out)
{
	struct budget *budget = u->up->cfg.budget;
	struct upload_buf *b;
	int r = 0;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		if (u->err) {
			r = -u->err;
			break;
		}
		if (u->free_bufs) {
			b = u->free_bufs;
			u->free_bufs = b->next;
			b->next = NULL;
			b->len = 0;
			*out = b;
			break;
		}
		if (u->nbufs == 0) {
			/* The first buffer: charged as it fills (small files). */
			nbufs_add_locked(u, 1);
			pthread_mutex_unlock(&u->lock);
			b = buf_map(u, 0);
			pthread_mutex_lock(&u->lock);
			if (!b) {
				nbufs_add_locked(u, -1);
				r = -ENOMEM;
			}
			*out = b;
			break;
		}
		if (u->nbufs < buf_cap(u)) {
			bool got, mine_coming;
			size_t c;

			pthread_mutex_unlock(&u->lock);
			got = budget_try_reserve(budget, u->part_size);
			pthread_mutex_lock(&u->lock);
			mine_coming = u->inflight > 0 || u->free_bufs;
			if (got || !mine_coming) {
				pthread_mutex_unlock(&u->lock);
				c = got ? u->part_size : reserve_patiently(u, u->part_size);
				b = buf_map(u, c);
				pthread_mutex_lock(&u->lock);
				if (!b) {
					if (c)
						budget_release(budget, c);
					r = -ENOMEM;
					break;
				}
				b->overdraft = c == 0;
				nbufs_add_locked(u, 1);
				*out = b;
				break;
			}
			if (u->free_bufs || u->err)
				continue;
		}
		/* Every buffer is in flight (or the budget is short): a writer
		 * faster than the network waits here for a part to finish. */
		u->writer_waiting = true;
		pthread_cond_wait(&u->cond, &u->lock);
		u->writer_waiting = false;
	}
	pthread_mutex_unlock(&u->lock);
	return r;
}

static void put_buf(struct upload *u, struct upload_buf *b)
{
	pthread_mutex_lock(&u->lock);
	b->len = 0;
	b->next = u->free_bufs;
	u->free_bufs = b;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

/* Make the budget cover @len bytes of @b (only the first buffer grows). */
static void charge(struct upload *u, struct upload_buf *b, size_t len)
{
	size_t want;

	if (b->charged >= len || b->overdraft)
		return;
	want = (len + CHARGE_STEP - 1) / CHARGE_STEP * CHARGE_STEP;
	if (want > u->part_size)
		want = u->part_size;
	/* Nothing of this upload is in flight while its first buffer fills,
	 * so only other uploads can give budget back. */
	if (reserve_patiently(u, want - b->charged))
		b->charged = want;
	else
		b->overdraft = true;
}

static void wait_idle(struct upload *u)
{
	pthread_mutex_lock(&u->lock);
	while (u->inflight > 0)
		pthread_cond_wait(&u->cond, &u->lock);
	pthread_mutex_unlock(&u->lock);
}

/* Give back every buffer (nothing in flight). */
static void release_bufs(struct upload *u)
{
	struct upload_buf *b, *next;

	if (u->cur) {
		buf_unmap(u, u->cur);
		u->cur = NULL;
		pthread_mutex_lock(&u->lock);
		nbufs_add_locked(u, -1);
		pthread_mutex_unlock(&u->lock);
	}
	pthread_mutex_lock(&u->lock);
	assert(u->inflight == 0);
	b = u->free_bufs;
	u->free_bufs = NULL;
	for (struct upload_buf *c = b; c; c = c->next)
		nbufs_add_locked(u, -1);
	pthread_mutex_unlock(&u->lock);
	for (; b; b = next) {
		next = b->next;
		buf_unmap(u, b);
	}
}

/* ---- parts ---- */

/* Make room for part @part_no in u->parts (lock held). */
static int parts_reserve_locked(struct upload *u, int part_no)
{
	size_t cap;
	struct s3_part *p;

	if ((size_t)part_no <= u->parts_cap)
		return 0;
	cap = u->parts_cap ? u->parts_cap * 2 : 16;
	while (cap < (size_t)part_no)
		cap *= 2;
	if (cap > UPLOAD_MAX_PARTS)
		cap = UPLOAD_MAX_PARTS;
	p = realloc(u->parts, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + u->parts_cap, 0, (cap - u->parts_cap) * sizeof(*p));
	u->parts = p;
	u->parts_cap = cap;
	return 0;
}

static struct s3_obj_meta meta_now(struct upload *u)
{
	struct s3_obj_meta m;

	pthread_mutex_lock(&u->lock);
	m = u->meta;
	pthread_mutex_unlock(&u->lock);
	if (u->up->cfg.infer_content_type)
		m.content_type = upload_content_type(u->key);
	else
		m.content_type = u->up->cfg.content_type;
	return m;
}

/*
 * After a CreateMultipartUpload whose reply was lost (and a second one that
 * worked): an upload of this key started by the lost attempt is an orphan.
 * Those with no parts, started since the first attempt (give or take the
 * clocks), other than ours, are aborted. Another node writing the same key
 * at the same moment would lose its upload and fail loudly: the model has
 * one writer of a key at a time.
 */
static void abort_orphans(struct upload *u, time_t since)
{
	const struct fs_backend *be = u->be;
	struct s3_upload_entry *ups = NULL;
	struct s3_error e;
	size_t n = 0;

	if (be->ops->list_uploads(be->ctx, u->key, &ups, &n, &e) != 0) {
		log_s3(LOG_WARNING, u,
		       "ListMultipartUploads (looking for an orphan of a lost reply)", &e);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct s3_part *parts = NULL;
		size_t np = 0;

		if (strcmp(ups[i].key, u->key) || !strcmp(ups[i].upload_id, u->upload_id) ||
		    (ups[i].initiated && ups[i].initiated + ORPHAN_CLOCK_SLACK_S < since))
			continue;
		if (be->ops->list_parts(be->ctx, u->key, ups[i].upload_id, &parts, &np, &e) != 0 ||
		    np > 0) {
			free(parts);
			continue;
		}
		free(parts);
		log_notice("upload of '%s': upload %.40s was started by a CreateMultipartUpload "
		           "whose reply was lost; aborting it",
		           u->key, ups[i].upload_id);
		if (!try_abort(be, u->key, ups[i].upload_id))
			abort_later(u->up, u->key, ups[i].upload_id);
	}
	s3_upload_entries_free(ups, n);
}

/*
 * The multipart upload, created on the first full part (writer side).
 * CreateMultipartUpload is not resent blindly by the engine: after a lost
 * reply it is sent again here, within the retry budget, and the orphan the
 * lost one may have made is aborted.
 */
static int ensure_multipart(struct upload *u)
{
	const struct fs_backend *be = u->be;
	time_t first = time(NULL);
	bool lost = false;
	struct s3_error e;
	int tries = 0;

	if (u->upload_id)
		return 0;
	u->sent = meta_now(u);
	for (;;) {
		if (be->ops->create(be->ctx, u->key, &u->sent, &u->upload_id, &e) == 0)
			break;
		u->upload_id = NULL;
		if (!e.outcome_unknown || ++tries > 5 ||
		    (long)(time(NULL) - first) * 1000 > be->retry.budget_ms) {
			log_s3(LOG_ERR, u, "CreateMultipartUpload", &e);
			fail(u, EIO, "CreateMultipartUpload failed");
			return -EIO;
		}
		lost = true;
		log_s3(LOG_WARNING, u, "CreateMultipartUpload (reply lost; sending again)", &e);
	}
	set_state(u, UPLOAD_STREAMING, "first part");
	log_debug("upload of '%s': multipart upload %s started", u->key, u->upload_id);
	if (lost)
		abort_orphans(u, first);
	return 0;
}

/* Backend thread: one UploadPart finished. Short, never blocks on S3. */
static void part_done(void *user, const struct s3_error *err, size_t got,
                      const struct s3_object_info *info)
{
	struct upload_buf *b = user;
	struct upload *u = b->u;
	struct budget *budget = u->up->cfg.budget;

	if (err->err != S3_OK) {
		char what[48];

		snprintf(what, sizeof(what), "UploadPart %d", b->part_no);
		log_s3(LOG_ERR, u, what, err);
	}
	pthread_mutex_lock(&u->lock);
	if (err->err == S3_OK) {
		u->parts[b->part_no - 1] = b->part;
		stat_add(&u->up->st.parts, 1);
	} else {
		/* The engine has spent its retries: the upload is lost. */
		fail_locked(u, EIO, "a part failed for good");
	}
	b->len = 0;
	u->inflight--;
	assert(u->inflight >= 0);
	if (u->nbufs > buf_cap(u) || (u->free_bufs && !u->writer_waiting &&
	                              budget_used(budget) * 4 > budget_limit(budget) * 3)) {
		/* More than this upload's share of the budget, or the budget
		 * runs short and a spare is enough for a writer that is not
		 * waiting: give it back to whoever waits on the budget.
		 * (Otherwise keep it: a reused buffer costs no page faults.) */
		size_t size = u->part_size;

		nbufs_add_locked(u, -1);
		pthread_cond_broadcast(&u->cond);
		pthread_mutex_unlock(&u->lock);
		/* @u may be freed from here on: the writer saw inflight drop */
		munmap(b->data, size);
		if (b->charged)
			budget_release(budget, b->charged);
		free(b);
		return;
	}
	b->next = u->free_bufs;
	u->free_bufs = b;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

/* Hand @b (counted in u->inflight) to the backend. Any thread. */
static void send_part(struct upload_buf *b)
{
	struct upload *u = b->u;
	const struct fs_backend *be = u->be;
	struct s3_error e;

	if (be->ops->upload_part_async(be->ctx, u->key, u->upload_id, b->part_no, b->data, b->len,
	                               &b->part, part_done, b, &e) != 0) {
		log_s3(LOG_ERR, u, "UploadPart", &e);
		pthread_mutex_lock(&u->lock);
		u->inflight--;
		b->next = u->free_bufs;
		u->free_bufs = b;
		fail_locked(u, EIO, "a part could not be sent");
		pthread_mutex_unlock(&u->lock);
	}
}

/* Send u->cur as the next part (writer side). */
static int submit_cur(struct upload *u)
{
	struct upload_submitter *s = u->up->sub;
	struct upload_buf *b = u->cur;
	int r;

	u->cur = NULL;
	r = ensure_multipart(u);
	if (r) {
		put_buf(u, b);
		return r;
	}
	if (u->next_part > UPLOAD_MAX_PARTS) {
		/* upload_write's size check makes this unreachable. */
		log_err("upload of '%s': more than %d parts", u->key, UPLOAD_MAX_PARTS);
		put_buf(u, b);
		fail(u, EFBIG, "too many parts");
		return -EFBIG;
	}
	b->part_no = u->next_part++;
	pthread_mutex_lock(&u->lock);
	r = parts_reserve_locked(u, b->part_no);
	if (r == 0)
		u->inflight++;
	pthread_mutex_unlock(&u->lock);
	if (r) {
		put_buf(u, b);
		fail(u, -r, "out of memory for the part list");
		return r;
	}
	if (!s) {
		send_part(b);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	b->next = NULL;
	if (s->tail)
		s->tail->next = b;
	else
		s->head = b;
	s->tail = b;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The errno that failed @u, negated (0 if none). */
static int failed_errno(struct upload *u)
{
	int err;

	pthread_mutex_lock(&u->lock);
	err = u->err;
	pthread_mutex_unlock(&u->lock);
	return -err;
}

/* ---- lifecycle ---- */

uint64_t upload_max_size(size_t part_size)
{
	return (uint64_t)UPLOAD_MAX_PARTS * part_size;
}

struct upload *upload_new(struct uploader *up, const char *key)
{
	struct upload *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->key = strdup(key);
	if (!u->key) {
		free(u);
		return NULL;
	}
	u->up = up;
	u->be = up->cfg.be;
	u->part_size = up->cfg.part_size;
	u->max_size = upload_max_size(u->part_size);
	u->next_part = 1;
	u->state = UPLOAD_OPEN;
	stat_add(&up->st.open, 1);
	pthread_mutex_init(&u->wlock, NULL);
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	return u;
}

void upload_set_append(struct upload *u, uint64_t old_size, const char *old_etag)
{
	pthread_mutex_lock(&u->wlock);
	u->append_pending = true;
	u->base_size = old_size;
	u->size = old_size;
	snprintf(u->base_etag, sizeof(u->base_etag), "%s", old_etag ? old_etag : "");
	pthread_mutex_unlock(&u->wlock);
}

/*
 * Put the old bytes in front (append). Under 5 MiB they cannot be a part of
 * their own, so they are read into the first buffer and re-sent; above, they
 * are copied server-side in as few parts as possible (each at most 5 GiB
 * and, split evenly, at least 5 MiB).
 */
static int start_append(struct upload *u)
{
	const struct fs_backend *be = u->be;
	struct s3_error e;
	uint64_t n, chunk;
	int r;

	u->append_pending = false;
	if (u->base_size == 0)
		return 0;
	if (u->base_size < UPLOAD_MIN_PART_SIZE) {
		size_t got = 0;

		r = get_buf(u, &u->cur);
		if (r)
			return r;
		charge(u, u->cur, u->base_size);
		memset(&e, 0, sizeof(e));
		if (be->ops->get(be->ctx, u->key, 0, u->base_size,
		                 u->base_etag[0] ? u->base_etag : NULL, u->cur->data, u->part_size,
		                 &got, NULL, &e) != 0 ||
		    got != u->base_size) {
			if (e.err == S3_OK)
				snprintf(e.message, sizeof(e.message), "got %zu of %llu bytes", got,
				         (unsigned long long)u->base_size);
			log_s3(LOG_ERR, u, "reading the old bytes to append to", &e);
			fail(u, e.err == S3_ERR_PRECONDITION ? ESTALE : EIO, "old bytes not read");
			return failed_errno(u);
		}
		u->cur->len = got;
		return 0;
	}
	r = ensure_multipart(u);
	if (r)
		return r;
	n = (u->base_size + UPLOAD_MAX_PART_SIZE - 1) / UPLOAD_MAX_PART_SIZE;
	chunk = (u->base_size + n - 1) / n;
	for (uint64_t off = 0; off < u->base_size; off += chunk) {
		uint64_t len = u->base_size - off < chunk ? u->base_size - off : chunk;
		int part_no = u->next_part++;
		char etag[80] = "";

		pthread_mutex_lock(&u->lock);
		r = parts_reserve_locked(u, part_no);
		pthread_mutex_unlock(&u->lock);
		if (r) {
			fail(u, -r, "out of memory for the part list");
			return r;
		}
		if (be->ops->upload_part_copy(be->ctx, u->key, u->upload_id, part_no, u->key, off,
		                              len, etag, &e) != 0) {
			log_s3(LOG_ERR, u, "UploadPartCopy of the old bytes", &e);
			fail(u, EIO, "the old bytes were not copied");
			return -EIO;
		}
		pthread_mutex_lock(&u->lock);
		u->parts[part_no - 1].part_no = part_no;
		u->parts[part_no - 1].size = len;
		snprintf(u->parts[part_no - 1].etag, sizeof(u->parts[0].etag), "%s", etag);
		pthread_mutex_unlock(&u->lock);
	}
	u->max_size =
	    u->base_size + (uint64_t)(UPLOAD_MAX_PARTS - (u->next_part - 1)) * u->part_size;
	return 0;
}

static int fill_from_buf(void *user, void *dst, size_t n, size_t src_off)
{
	memcpy(dst, (const char *)user + src_off, n);
	return 0;
}

static int fill_zeros(void *user, void *dst, size_t n, size_t src_off)
{
	memset(dst, 0, n);
	return 0;
}

/* The checks every write passes, in the order that makes each errno honest (wlock held). */
static int check_write(struct upload *u, uint64_t off, size_t len)
{
	enum upload_state st;
	int err;

	pthread_mutex_lock(&u->lock);
	st = u->state;
	err = u->err;
	pthread_mutex_unlock(&u->lock);
	if (err)
		return -err;
	if (st != UPLOAD_OPEN && st != UPLOAD_STREAMING) {
		log_err(
		    "write to '%s' after fsync or close completed its upload: the object is "
		    "final; open the file again (with --allow-overwrite and O_TRUNC) to replace "
		    "it",
		    u->key);
		return -EINVAL;
	}
	/*
	 * The size limit is checked before the order: a write that ends past
	 * 10,000 parts gets EFBIG wherever it starts, so the one check guards
	 * the sequential writer and a seek far ahead alike.
	 */
	if (off + len > u->max_size || off + len < off) {
		log_err("write to '%s' up to byte %llu: past the largest object of %d parts of "
		        "%zu bytes (%llu bytes); raise --write-part-size for larger files",
		        u->key, (unsigned long long)(off + len), UPLOAD_MAX_PARTS, u->part_size,
		        (unsigned long long)u->max_size);
		return -EFBIG;
	}
	if (off != u->size) {
		log_err("write of %zu bytes to '%s' at offset %llu but the file has %llu bytes: "
		        "only sequential writes are supported (objects are uploaded as they are "
		        "written)",
		        len, u->key, (unsigned long long)off, (unsigned long long)u->size);
		return -EINVAL;
	}
	return 0;
}

static int drive(struct upload *u);

ssize_t upload_write_with(struct upload *u, uint64_t off, size_t len, upload_fill_fn fill,
                          void *user)
{
	size_t done = 0;
	ssize_t r;

	pthread_mutex_lock(&u->wlock);
	if (u->up->cfg.refuse && upload_get_state(u) != UPLOAD_FAILED) {
		log_err("write to '%s': %s", u->key, u->up->cfg.refuse);
		fail(u, EIO, "uploads refused");
		drive(u);
	}
	r = check_write(u, off, len);
	if (r)
		goto out;
	if (len) {
		/* a write after a utimens moves the time on, as on a local disk;
		 * before this write can send CreateMultipartUpload with it */
		pthread_mutex_lock(&u->lock);
		u->meta.has_mtime = false;
		pthread_mutex_unlock(&u->lock);
	}
	if (u->append_pending) {
		r = start_append(u);
		if (r)
			goto fail;
	}
	while (done < len) {
		size_t n;

		if (u->cur && u->cur->len == u->part_size) {
			/* A full part goes out only when more bytes follow, so a
			 * file of exactly one part is still a single PutObject. */
			r = submit_cur(u);
			if (r)
				goto fail;
		}
		if (!u->cur) {
			r = get_buf(u, &u->cur);
			if (r)
				goto fail;
		}
		n = u->part_size - u->cur->len;
		if (n > len - done)
			n = len - done;
		charge(u, u->cur, u->cur->len + n);
		r = fill(user, u->cur->data + u->cur->len, n, done);
		if (r) {
			/* Part of the write is in the buffer: the file can no
			 * longer be what the writer meant. */
			log_err("write to '%s': reading the data from the kernel failed: %s",
			        u->key, strerror((int)-r));
			fail(u, EIO, "the data could not be read");
			goto fail;
		}
		u->cur->len += n;
		u->size += n;
		done += n;
	}
	r = (ssize_t)len;
	goto out;
fail:
	/* The failure path takes the one way out: abort now, report the first errno. */
	drive(u);
	r = failed_errno(u) ?: r;
out:
	pthread_mutex_unlock(&u->wlock);
	return r;
}

ssize_t upload_write(struct upload *u, const void *buf, size_t len, uint64_t off)
{
	return upload_write_with(u, off, len, fill_from_buf, (void *)buf);
}

int upload_extend(struct upload *u, uint64_t new_size)
{
	uint64_t size = upload_size(u), max;
	ssize_t r;

	if (new_size < size)
		return -EINVAL;
	if (new_size == size)
		return 0;
	pthread_mutex_lock(&u->wlock);
	max = u->max_size;
	pthread_mutex_unlock(&u->wlock);
	if (new_size > max) {
		/* Refused before any zero is sent, not after 10,000 parts of them. */
		log_err("extending '%s' to %llu bytes: past the largest object of %d parts of %zu "
		        "bytes (%llu bytes); raise --write-part-size for larger files",
		        u->key, (unsigned long long)new_size, UPLOAD_MAX_PARTS, u->part_size,
		        (unsigned long long)max);
		return -EFBIG;
	}
	/* In slices, so each call stays within what one write may be. */
	while (size < new_size) {
		uint64_t n = new_size - size;

		if (n > (64ULL << 20))
			n = 64ULL << 20;
		r = upload_write_with(u, size, (size_t)n, fill_zeros, NULL);
		if (r < 0)
			return (int)r;
		size += n;
	}
	return 0;
}

/* ---- ETags ---- */

static void strip_quotes(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		memmove(s, s + 1, n - 2);
		s[n - 2] = '\0';
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int upload_etag_of_parts(const char *const *etags, size_t n, char *out)
{
	unsigned char *bin = malloc(n * 16 + 1);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int r = -EINVAL;

	if (!bin)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = etags[i];
		size_t len = strlen(s);

		if (len >= 2 && s[0] == '"') {
			s++;
			len -= 2;
		}
		if (len != 32)
			goto out;
		for (int j = 0; j < 16; j++) {
			int hi = hexval(s[2 * j]), lo = hexval(s[2 * j + 1]);
			if (hi < 0 || lo < 0)
				goto out;
			bin[i * 16 + j] = (unsigned char)(hi << 4 | lo);
		}
	}
	if (!EVP_Digest(bin, n * 16, md, &mdlen, EVP_md5(), NULL) || mdlen != 16) {
		r = -EIO;
		goto out;
	}
	for (int j = 0; j < 16; j++)
		sprintf(out + 2 * j, "%02x", md[j]);
	sprintf(out + 32, "-%zu", n);
	r = 0;
out:
	free(bin);
	return r;
}

/* u->want_etag from the parts (or "" when a part ETag is not an MD5, e.g. SSE-KMS). */
static void compute_want_etag(struct upload *u, size_t n)
{
	const char **list = calloc(n ? n : 1, sizeof(*list));

	u->want_etag[0] = '\0';
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		list[i] = u->parts[i].etag;
	if (upload_etag_of_parts(list, n, u->want_etag) != 0)
		u->want_etag[0] = '\0';
	free(list);
}

/* ---- completing ---- */

/*
 * The object is complete but an mtime set after its metadata went out
 * (CreateMultipartUpload was sent when the first part filled, or the file
 * was opened for append and not written) is not in it yet: rewrite the
 * metadata with a CopyObject onto itself (a server-side copy of the bytes,
 * up to 5 GiB). A failure here loses the time, not the data: logged, and
 * the close still succeeds.
 */
static void keep_mtime(struct upload *u)
{
	struct s3_obj_meta m = meta_now(u);
	const struct fs_backend *be = u->be;
	struct s3_error e;
	char etag[80] = "";
	char buf[512];

	if (m.has_mtime == u->sent.has_mtime &&
	    (!m.has_mtime ||
	     (u->sent.mtime.tv_sec == m.mtime.tv_sec && u->sent.mtime.tv_nsec == m.mtime.tv_nsec)))
		return;
	if (u->size > UPLOAD_MAX_PART_SIZE) {
		log_warn("upload of '%s': the mtime set while it was written is not kept: "
		         "rewriting the metadata of an object over 5 GiB needs a multipart copy",
		         u->key);
		return;
	}
	/* only onto the version just written: never stamp another node's bytes */
	if (be->ops->copy(be->ctx, u->key, u->key, u->final_etag, &m, etag, &e) != 0) {
		log_err("upload of '%s': the data is complete, but keeping the mtime set while it "
		        "was written failed (CopyObject onto itself): %s",
		        u->key, s3_error_format(&e, buf, sizeof(buf)));
		return;
	}
	strip_quotes(etag);
	if (etag[0])
		snprintf(u->final_etag, sizeof(u->final_etag), "%s", etag);
	u->sent = m;
	log_debug("upload of '%s': metadata rewritten by a copy onto itself, ETag %s", u->key,
	          u->final_etag);
}

/* COMPLETING, everything in the first buffer: one PutObject (the engine retries it freely). */
static void step_put_single(struct upload *u)
{
	const struct fs_backend *be = u->be;
	const void *data = u->cur ? u->cur->data : "";
	size_t len = u->cur ? u->cur->len : 0;
	struct s3_error e;
	char etag[80] = "";

	u->sent = meta_now(u);
	if (be->ops->put(be->ctx, u->key, data, len, &u->sent, etag, &e) != 0) {
		log_s3(LOG_ERR, u, "PutObject", &e);
		fail(u, EIO, "PutObject failed");
		return;
	}
	strip_quotes(etag);
	snprintf(u->final_etag, sizeof(u->final_etag), "%s", etag);
	log_debug("upload of '%s': %zu bytes in one PutObject, ETag %s", u->key, len, etag);
	set_state(u, UPLOAD_DONE, "PutObject");
}

/* COMPLETING with a multipart upload: the last part out, every part in, then Complete. */
static void step_complete(struct upload *u)
{
	const struct fs_backend *be = u->be;
	struct s3_error e;
	char etag[80] = "";
	size_t n;

	if (u->cur) {
		if (u->cur->len > 0) {
			if (submit_cur(u))
				return;
		} else {
			put_buf(u, u->cur);
			u->cur = NULL;
		}
	}
	wait_idle(u);
	if (failed_errno(u))
		return;
	release_bufs(u);
	n = (size_t)(u->next_part - 1);
	for (size_t i = 0; i < n; i++) {
		if (u->parts[i].part_no != (int)i + 1) {
			log_err("upload of '%s': part %zu never finished", u->key, i + 1);
			fail(u, EIO, "a part never finished");
			return;
		}
	}
	compute_want_etag(u, n);
	if (be->ops->complete(be->ctx, u->key, u->upload_id, u->parts, n, etag, &e) != 0) {
		if (e.outcome_unknown || e.err == S3_ERR_NO_SUCH_UPLOAD ||
		    e.err == S3_ERR_NETWORK || e.err == S3_ERR_TIMEOUT) {
			/* It may have taken effect: find out, never assume. */
			log_s3(LOG_WARNING, u,
			       "CompleteMultipartUpload (outcome unknown; checking)", &e);
			set_state(u, UPLOAD_VERIFYING, "Complete's reply lost");
			return;
		}
		log_s3(LOG_ERR, u, "CompleteMultipartUpload", &e);
		fail(u, EIO, "CompleteMultipartUpload failed");
		return;
	}
	strip_quotes(etag);
	if (!etag[0]) {
		log_warn("upload of '%s': the server gave no ETag for the completed object, "
		         "expected %s",
		         u->key, u->want_etag);
	} else if (u->want_etag[0] && strcasecmp(u->want_etag, etag) != 0) {
		log_err("upload of '%s': the completed object has ETag %s but its %zu parts make "
		        "%s: the server assembled other bytes than were sent",
		        u->key, etag, n, u->want_etag);
		/* Never leave an object that is not what was written. */
		if (be->ops->del(be->ctx, u->key, &e) != 0)
			log_s3(LOG_ERR, u, "DeleteObject of the mismatched object", &e);
		fail(u, EIO, "completed object does not match its parts");
		/* the upload is gone: completed, then deleted; nothing to abort */
		free(u->upload_id);
		u->upload_id = NULL;
		return;
	}
	snprintf(u->final_etag, sizeof(u->final_etag), "%s", etag);
	log_debug("upload of '%s': completed, %zu parts, ETag %s", u->key, n, etag);
	set_state(u, UPLOAD_DONE, "CompleteMultipartUpload");
}

/*
 * VERIFYING: did the Complete whose reply was lost take effect? The object
 * with the composite ETag of our parts (and our size) says yes; an upload
 * that still exists (ListParts) says no, send Complete again; neither says
 * the upload is gone and the object is not ours. While the server cannot
 * be asked, asked again within the retry budget.
 */
static void step_verify(struct upload *u, const struct timespec *deadline)
{
	const struct fs_backend *be = u->be;
	struct s3_object_info info;
	struct s3_part *parts = NULL;
	size_t np = 0;
	struct s3_error e;

	if (be->ops->head(be->ctx, u->key, &info, &e) == 0) {
		bool ours = u->want_etag[0] ? strcasecmp(info.etag, u->want_etag) == 0
		                            : info.size == u->size;

		if (ours && info.size == u->size) {
			snprintf(u->final_etag, sizeof(u->final_etag), "%s", info.etag);
			log_notice(
			    "upload of '%s': the CompleteMultipartUpload whose reply was lost "
			    "took effect: the object is complete (ETag %s, %llu bytes)",
			    u->key, info.etag, (unsigned long long)info.size);
			set_state(u, UPLOAD_DONE, "verified: the object is ours");
			return;
		}
	} else if (e.err != S3_ERR_NO_SUCH_KEY) {
		goto again;
	}
	if (be->ops->list_parts(be->ctx, u->key, u->upload_id, &parts, &np, &e) == 0) {
		free(parts);
		set_state(u, UPLOAD_COMPLETING, "verified: the upload is still open");
		return;
	}
	if (e.err == S3_ERR_NO_SUCH_UPLOAD || e.err == S3_ERR_NO_SUCH_KEY) {
		log_err("upload of '%s': after a lost CompleteMultipartUpload reply the upload is "
		        "gone and the object is not the one written (another writer?)",
		        u->key);
		fail(u, EIO, "verified: neither the object nor the upload");
		free(u->upload_id);
		u->upload_id = NULL;
		return;
	}
again:
	if (mono_due(deadline)) {
		log_s3(LOG_ERR, u, "finding out whether the object was completed", &e);
		fail(u, EIO, "verification ran out of time");
		return;
	}
	usleep(500000);
}

/* ABORTING: wait for the parts in flight, abort (or queue the abort), then final. */
static void step_abort(struct upload *u)
{
	const struct fs_backend *be = u->be;
	struct s3_error e;
	int err;

	wait_idle(u);
	release_bufs(u);
	if (u->upload_id) {
		if (be->ops->abort(be->ctx, u->key, u->upload_id, &e) == 0 ||
		    e.err == S3_ERR_NO_SUCH_UPLOAD) {
			log_notice("upload of '%s': multipart upload aborted, the object was not "
			           "changed",
			           u->key);
		} else {
			log_s3(LOG_ERR, u, "AbortMultipartUpload", &e);
			abort_later(u->up, u->key, u->upload_id);
		}
		free(u->upload_id);
		u->upload_id = NULL;
	}
	pthread_mutex_lock(&u->lock);
	err = u->err;
	set_state_locked(u, err ? UPLOAD_FAILED : UPLOAD_DISCARDED, err ? "failed" : "discarded");
	pthread_mutex_unlock(&u->lock);
	u->result = err ? -err : -ECANCELED;
}

/*
 * The one "what next" of the machine, for the success and the failure path
 * alike (wlock held): step until a final state. COMPLETING sends the last
 * part and Complete (or PutObject), VERIFYING finds out what a lost
 * Complete did, ABORTING aborts. Returns the final result (0 for DONE).
 */
static int drive(struct upload *u)
{
	struct timespec deadline = util_mono_in(
	    u->be->retry.budget_ms > 0 ? u->be->retry.budget_ms : RETRY_DEFAULT_BUDGET_MS);
	enum upload_state st;

	for (;;) {
		pthread_mutex_lock(&u->lock);
		st = u->state;
		pthread_mutex_unlock(&u->lock);
		switch (st) {
		case UPLOAD_COMPLETING:
			if (u->upload_id)
				step_complete(u);
			else
				step_put_single(u);
			continue;
		case UPLOAD_VERIFYING:
			step_verify(u, &deadline);
			continue;
		case UPLOAD_ABORTING:
			step_abort(u);
			continue;
		case UPLOAD_DONE:
			u->result = 0;
			release_bufs(u);
			return 0;
		case UPLOAD_FAILED:
		case UPLOAD_DISCARDED:
			return u->result;
		case UPLOAD_OPEN:
		case UPLOAD_STREAMING:
			return 0; /* the writer's states: nothing to drive */
		}
	}
}

int upload_set_mtime(struct upload *u, const struct timespec *t)
{
	int r = 0;

	pthread_mutex_lock(&u->lock);
	if (u->state != UPLOAD_OPEN && u->state != UPLOAD_STREAMING) {
		r = -EPERM; /* completion took its snapshot: the time can no longer be kept */
	} else {
		u->meta.has_mtime = t != NULL;
		if (t)
			u->meta.mtime = *t;
	}
	pthread_mutex_unlock(&u->lock);
	return r;
}

bool upload_mtime_kept(struct upload *u, struct timespec *t)
{
	bool kept;

	pthread_mutex_lock(&u->wlock);
	kept = upload_get_state(u) == UPLOAD_DONE && u->sent.has_mtime;
	if (kept && t)
		*t = u->sent.mtime;
	pthread_mutex_unlock(&u->wlock);
	return kept;
}

int upload_complete(struct upload *u, char *etag_out)
{
	enum upload_state st;
	int r;

	pthread_mutex_lock(&u->wlock);
	pthread_mutex_lock(&u->lock);
	st = u->state;
	if (st == UPLOAD_OPEN || st == UPLOAD_STREAMING)
		set_state_locked(u, UPLOAD_COMPLETING, "close or fsync");
	pthread_mutex_unlock(&u->lock);
	if ((st == UPLOAD_OPEN || st == UPLOAD_STREAMING) && u->append_pending) {
		/* Opened for append, nothing written: the object stays as it is. */
		u->append_pending = false;
		snprintf(u->final_etag, sizeof(u->final_etag), "%s", u->base_etag);
		set_state(u, UPLOAD_DONE, "append without a write");
	}
	r = drive(u);
	if (r == 0 && st != UPLOAD_DONE)
		keep_mtime(u);
	if (etag_out)
		snprintf(etag_out, 80, "%s", r == 0 ? u->final_etag : "");
	pthread_mutex_unlock(&u->wlock);
	return r;
}

int upload_discard(struct upload *u)
{
	int r = 0;

	pthread_mutex_lock(&u->wlock);
	pthread_mutex_lock(&u->lock);
	if (!is_final(u->state) && u->state != UPLOAD_ABORTING)
		set_state_locked(u, UPLOAD_ABORTING, "discard");
	pthread_mutex_unlock(&u->lock);
	drive(u);
	pthread_mutex_unlock(&u->wlock);
	return r;
}

uint64_t upload_size(struct upload *u)
{
	uint64_t s;

	pthread_mutex_lock(&u->wlock);
	s = u->size;
	pthread_mutex_unlock(&u->wlock);
	return s;
}

uint64_t upload_written(struct upload *u)
{
	uint64_t s;

	pthread_mutex_lock(&u->wlock);
	s = u->size - u->base_size;
	pthread_mutex_unlock(&u->wlock);
	return s;
}

enum upload_state upload_get_state(struct upload *u)
{
	enum upload_state s;

	pthread_mutex_lock(&u->lock);
	s = u->state;
	pthread_mutex_unlock(&u->lock);
	return s;
}

int upload_error(struct upload *u)
{
	int e;

	pthread_mutex_lock(&u->lock);
	e = u->err;
	pthread_mutex_unlock(&u->lock);
	return e;
}

void upload_free(struct upload *u)
{
	if (!u)
		return;
	upload_discard(u);
	wait_idle(u);
	release_bufs(u);
	assert(u->nbufs == 0);
	pthread_mutex_destroy(&u->wlock);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u->parts);
	free(u->upload_id);
	free(u->key);
	free(u);
}

/* ---- server-side copies (rename) ---- */

int upload_copy_object(const struct fs_backend *be, const char *src_key, const char *dst_key,
                       uint64_t size, char *etag_out)
{
	struct s3_error e;
	struct s3_part *parts = NULL;
	char *upload_id = NULL;
	uint64_t n, chunk, off;
	int r = -EIO;

	if (size <= UPLOAD_MAX_PART_SIZE) {
		if (be->ops->copy(be->ctx, src_key, dst_key, NULL, NULL, etag_out, &e) != 0) {
			char buf[512];

			log_err("copy of '%s' to '%s' failed: %s", src_key, dst_key,
			        s3_error_format(&e, buf, sizeof(buf)));
			return -(fs_errno(e.err) ?: EIO);
		}
		return 0;
	}
	/* CopyObject stops at 5 GiB: copy in even parts of at most 5 GiB. */
	n = (size + UPLOAD_MAX_PART_SIZE - 1) / UPLOAD_MAX_PART_SIZE;
	chunk = (size + n - 1) / n;
	parts = calloc(n, sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	if (be->ops->create(be->ctx, dst_key, NULL, &upload_id, &e) != 0)
		goto fail;
	off = 0;
	for (uint64_t i = 0; i < n; i++, off += chunk) {
		uint64_t len = size - off < chunk ? size - off : chunk;

		parts[i].part_no = (int)i + 1;
		parts[i].size = len;
		if (be->ops->upload_part_copy(be->ctx, dst_key, upload_id, (int)i + 1, src_key, off,
		                              len, parts[i].etag, &e) != 0)
			goto fail;
	}
	if (be->ops->complete(be->ctx, dst_key, upload_id, parts, n, etag_out, &e) != 0)
		goto fail;
	r = 0;
	goto out;
fail : {
	char buf[512];

	log_err("copy of '%s' to '%s' (%llu bytes, multipart) failed: %s", src_key, dst_key,
	        (unsigned long long)size, s3_error_format(&e, buf, sizeof(buf)));
	r = -(fs_errno(e.err) ?: EIO);
	if (upload_id && be->ops->abort(be->ctx, dst_key, upload_id, &e) != 0)
		log_err("abort of the copy's multipart upload failed: %s",
		        s3_error_format(&e, buf, sizeof(buf)));
}
out:
	free(upload_id);
	free(parts);
	return r;
}

/* ---- --infer-content-type ---- */

const char *upload_content_type(const char *key)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {"txt", "text/plain"},
	    {"log", "text/plain"},
	    {"out", "text/plain"},
	    {"md", "text/markdown"},
	    {"csv", "text/csv"},
	    {"tsv", "text/tab-separated-values"},
	    {"html", "text/html"},
	    {"htm", "text/html"},
	    {"css", "text/css"},
	    {"js", "text/javascript"},
	    {"xml", "application/xml"},
	    {"json", "application/json"},
	    {"yaml", "application/yaml"},
	    {"yml", "application/yaml"},
	    {"pdf", "application/pdf"},
	    {"zip", "application/zip"},
	    {"gz", "application/gzip"},
	    {"tgz", "application/gzip"},
	    {"bz2", "application/x-bzip2"},
	    {"xz", "application/x-xz"},
	    {"zst", "application/zstd"},
	    {"tar", "application/x-tar"},
	    {"png", "image/png"},
	    {"jpg", "image/jpeg"},
	    {"jpeg", "image/jpeg"},
	    {"gif", "image/gif"},
	    {"svg", "image/svg+xml"},
	    {"tif", "image/tiff"},
	    {"tiff", "image/tiff"},
	    {"mp4", "video/mp4"},
	    {"wav", "audio/wav"},
	    {"h5", "application/x-hdf5"},
	    {"hdf5", "application/x-hdf5"},
	    {"nc", "application/x-netcdf"},
	    {"parquet", "application/vnd.apache.parquet"},
	    {"sh", "text/x-shellscript"},
	    {"py", "text/x-python"},
	};
	const char *slash = strrchr(key, '/'), *dot = strrchr(key, '.');

	if (!dot || (slash && dot < slash) || !dot[1])
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcasecmp(dot + 1, types[i].ext))
			return types[i].type;
	return NULL;
}
