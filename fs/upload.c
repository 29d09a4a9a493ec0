/* SPDX-License-Identifier: Apache-2.0 */
/*
 * upload: the multipart upload state machine behind a file being written
 * (see upload.h). Two kinds of state, kept apart as in aws-c-s3's
 * auto-ranged put: what only the writing thread touches (the buffer being
 * filled, the size, the part counter), serialized by wlock, and what the
 * transfer engine's completions share with it (parts done, buffers coming
 * back, the first error), guarded by lock.
 */
#include "upload.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "budget.h"
#include "log.h"
#include "fs_errno.h"
#include "s3.h"

/* The first buffer of an upload is charged to the budget as it fills, in
 * steps of this size, so a small file costs the budget what it holds. */
#define CHARGE_STEP (1ULL << 20)

struct upload_buf {
	struct upload *u;
	char *data;     /* part_size bytes, mmap'd (returned to the OS on free) */
	size_t len;     /* bytes filled */
	size_t charged; /* budget bytes this buffer holds */
	bool overdraft; /* mapped past the budget (see reserve_patiently) */
	int part_no;
	struct s3_part part;     /* number, size, checksum; ETag written when the part is done */
	struct upload_buf *next; /* free list */
};

struct upload {
	/* Immutable after upload_new(). */
	struct upload_params p;
	char *key;

	/* Writer side: only the thread holding wlock touches these. */
	pthread_mutex_t wlock;
	struct upload_buf *cur; /* the buffer being filled, NULL between parts */
	uint64_t size;          /* bytes in the file so far */
	uint64_t max_size;      /* 10,000 parts' worth */
	int next_part;          /* the number the next part gets */
	char *upload_id;        /* NULL until the first part goes out */
	bool append_pending;    /* the old bytes still have to be put in front */
	uint64_t base_size;
	char base_etag[80];
	struct s3_obj_meta sent; /* what PutObject / CreateMultipartUpload carried */
	bool finished;           /* upload_complete() or upload_discard() ran */
	int result;              /* what upload_complete() returned */
	char final_etag[80];

	/* Shared with the engine's completions: guarded by lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when a part finishes */
	enum upload_state state;
	int inflight; /* parts sent and not finished */
	int nbufs;    /* buffers mapped: cur + in flight + free */
	struct upload_buf *free_bufs;
	struct s3_part *parts; /* parts[i] is part i + 1, filled when it is done */
	size_t parts_cap;
	int err;             /* first errno that failed the upload, 0 if none */
	bool aborted;        /* AbortMultipartUpload was sent */
	bool writer_waiting; /* the writer waits in get_buf() for a buffer */
	bool overdraft_logged;
	struct s3_obj_meta meta; /* what upload_set_mtime() asked the object to keep */
	bool meta_frozen;        /* completion took its snapshot: no more changes */
};

static void log_s3(int level, const struct upload *u, const char *what, const struct s3_error *e)
{
	char buf[512];

	log_msg(level, NULL, "upload of '%s': %s failed: %s", u->key, what,
	        s3_error_format(e, buf, sizeof(buf)));
}

/* Record the first failure. Later calls keep the first errno. */
static void fail_locked(struct upload *u, int err)
{
	if (!u->err) {
		u->err = err;
		u->state = UPLOAD_FAILED;
	}
	pthread_cond_broadcast(&u->cond);
}

static void fail(struct upload *u, int err)
{
	pthread_mutex_lock(&u->lock);
	fail_locked(u, err);
	pthread_mutex_unlock(&u->lock);
}

/*
 * Uploads of this process holding at least one buffer. The memory budget
 * is shared out between them: each may hold up to its share of the budget
 * in parts (at least one, at most max_inflight + 1), so a writer that
 * starts late gets buffers back from the ones that were there first.
 */
static int active_uploads;

static void nbufs_add_locked(struct upload *u, int delta)
{
	int old = u->nbufs;

	u->nbufs += delta;
	if (old == 0 && u->nbufs > 0)
		__atomic_add_fetch(&active_uploads, 1, __ATOMIC_RELAXED);
	else if (old > 0 && u->nbufs == 0)
		__atomic_sub_fetch(&active_uploads, 1, __ATOMIC_RELAXED);
}

/* How many part buffers @u may hold now: its share of the budget. */
static int buf_cap(const struct upload *u)
{
	int active = __atomic_load_n(&active_uploads, __ATOMIC_RELAXED);
	uint64_t total = budget_limit(u->p.budget) / u->p.part_size;
	int cap = u->p.max_inflight + 1;

	if (active < 1)
		active = 1;
	if (total / (uint64_t)active < (uint64_t)cap)
		cap = (int)(total / (uint64_t)active);
	return cap < 1 ? 1 : cap;
}

/* The errno that failed @u, negated, without aborting (0 if none). */
static int check_failed_nowait(struct upload *u)
{
	int err;

	pthread_mutex_lock(&u->lock);
	err = u->err;
	pthread_mutex_unlock(&u->lock);
	return -err;
}

static struct upload_buf *buf_map(struct upload *u, size_t charged)
{
	struct upload_buf *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->data =
	    mmap(NULL, u->p.part_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->data == MAP_FAILED) {
		free(b);
		return NULL;
	}
	/*
	 * Huge pages where the kernel has them (transparent_hugepage=madvise):
	 * filling a fresh 8 MiB part otherwise faults every 4 KiB, and those
	 * faults were ~7% of the daemon's CPU while writing (perf, 512 MiB cp).
	 */
	if (u->p.part_size >= 2u << 20)
		(void)madvise(b->data, u->p.part_size, MADV_HUGEPAGE);
	b->u = u;
	b->charged = charged;
	return b;
}

static void buf_unmap(struct upload *u, struct upload_buf *b)
{
	munmap(b->data, u->p.part_size);
	if (b->charged)
		budget_release(u->p.budget, b->charged);
	free(b);
}

/* How long a writer with nothing in flight waits for the budget. */
#define OVERDRAFT_WAIT_MS 2000

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
	for (int waited = 0; waited < OVERDRAFT_WAIT_MS; waited += 5) {
		if (budget_try_reserve(u->p.budget, n))
			return n;
		usleep(5000);
	}
	pthread_mutex_lock(&u->lock);
	bool logged = u->overdraft_logged;
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
 * fewer than max_inflight + 1 exist and the budget has room; otherwise waits
 * for a part of this upload to finish. It waits on the budget itself only
 * when nothing of this upload is in flight, because then only other holders
 * can free memory and none of this upload's buffers is idle.
 */
static int get_buf(struct upload *u, struct upload_buf **out)
{
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
			bool got;

			pthread_mutex_unlock(&u->lock);
			got = budget_try_reserve(u->p.budget, u->p.part_size);
			if (!got) {
				pthread_mutex_lock(&u->lock);
				bool mine_coming = u->inflight > 0 || u->free_bufs;
				pthread_mutex_unlock(&u->lock);
				if (!mine_coming) {
					size_t c = reserve_patiently(u, u->p.part_size);

					b = buf_map(u, c);
					pthread_mutex_lock(&u->lock);
					if (!b) {
						if (c)
							budget_release(u->p.budget, c);
						r = -ENOMEM;
						break;
					}
					b->overdraft = c == 0;
					nbufs_add_locked(u, 1);
					*out = b;
					break;
				}
			}
			if (got) {
				b = buf_map(u, u->p.part_size);
				pthread_mutex_lock(&u->lock);
				if (!b) {
					budget_release(u->p.budget, u->p.part_size);
					r = -ENOMEM;
					break;
				}
				nbufs_add_locked(u, 1);
				*out = b;
				break;
			}
			pthread_mutex_lock(&u->lock);
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
	if (want > u->p.part_size)
		want = u->p.part_size;
	/* Nothing of this upload is in flight while its first buffer fills,
	 * so only other uploads can give budget back. */
	if (reserve_patiently(u, want - b->charged))
		b->charged = want;
	else
		b->overdraft = true;
}

/* Make room for part @part_no in u->parts (lock held). */
static int parts_reserve_locked(struct upload *u, int part_no)
{
	if ((size_t)part_no <= u->parts_cap)
		return 0;
	size_t cap = u->parts_cap ? u->parts_cap * 2 : 16;
	while (cap < (size_t)part_no)
		cap *= 2;
	if (cap > UPLOAD_MAX_PARTS)
		cap = UPLOAD_MAX_PARTS;
	struct s3_part *p = realloc(u->parts, cap * sizeof(*p));
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
	return m;
}

static int ensure_multipart(struct upload *u)
{
	struct s3_error e;

	if (u->upload_id)
		return 0;
	u->sent = meta_now(u);
	if (s3_create_multipart_meta(u->p.s3, u->key, &u->sent, &u->upload_id, &e) != 0) {
		log_s3(LOG_ERR, u, "CreateMultipartUpload", &e);
		u->upload_id = NULL;
		fail(u, EIO);
		return -EIO;
	}
	pthread_mutex_lock(&u->lock);
	if (u->state == UPLOAD_OPEN)
		u->state = UPLOAD_STREAMING;
	pthread_mutex_unlock(&u->lock);
	log_debug("upload of '%s': multipart upload %s started", u->key, u->upload_id);
	return 0;
}

/* Engine thread: one UploadPart finished. Short, never blocks on S3. */
static void part_done(void *user, const struct s3_error *err, size_t got,
                      const struct s3_object_info *info)
{
	struct upload_buf *b = user;
	struct upload *u = b->u;

	(void)got;
	(void)info;
	if (err->err != S3_OK) {
		char what[48];

		snprintf(what, sizeof(what), "UploadPart %d", b->part_no);
		log_s3(LOG_ERR, u, what, err);
	}
	pthread_mutex_lock(&u->lock);
	if (err->err == S3_OK) {
		struct s3_part *p = &u->parts[b->part_no - 1];

		*p = b->part;
	} else {
		/* The engine has spent its retries: the upload is lost. */
		fail_locked(u, EIO);
	}
	b->len = 0;
	u->inflight--;
	if (u->nbufs > buf_cap(u) ||
	    (u->free_bufs && !u->writer_waiting &&
	     budget_used(u->p.budget) * 4 > budget_limit(u->p.budget) * 3)) {
		/* More than this upload's share of the budget, or the budget
		 * runs short and a spare is enough for a writer that is not
		 * waiting: give it back to whoever waits on the budget.
		 * (Otherwise keep it: a reused buffer costs no page faults.) */
		struct budget *budget = u->p.budget;
		size_t size = u->p.part_size;

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

/* Hand @b (counted in u->inflight) to the engine. Any thread. */
static void send_part(struct upload_buf *b)
{
	struct upload *u = b->u;
	struct s3_error e;

	if (s3_upload_part_async(u->p.s3, u->key, u->upload_id, b->part_no, b->data, b->len,
	                         &b->part, part_done, b, &e) != 0) {
		log_s3(LOG_ERR, u, "UploadPart", &e);
		pthread_mutex_lock(&u->lock);
		u->inflight--;
		b->next = u->free_bufs;
		u->free_bufs = b;
		fail_locked(u, EIO);
		pthread_mutex_unlock(&u->lock);
	}
}

/*
 * The submitters: threads that take full parts from the writers and send
 * them. Sending starts with the part's MD5 (Content-MD5), about as costly
 * as everything else a byte goes through here; done on the writer's thread
 * it would stall the writer for each part, done here it overlaps with the
 * writer filling the next part, on the other core.
 */
struct upload_submitter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct upload_buf *head, *tail; /* queue, guarded by lock */
	bool stop;                      /* guarded by lock */
	int n_threads;
	pthread_t threads[];
};

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

struct upload_submitter *upload_submitter_new(int n_threads)
{
	struct upload_submitter *s;
	int i;

	if (n_threads < 1)
		n_threads = 1;
	s = calloc(1, sizeof(*s) + (size_t)n_threads * sizeof(pthread_t));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	for (i = 0; i < n_threads; i++) {
		if (pthread_create(&s->threads[i], NULL, submitter_main, s) != 0)
			break;
	}
	s->n_threads = i;
	if (i == 0) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
		free(s);
		return NULL;
	}
	return s;
}

void upload_submitter_free(struct upload_submitter *s)
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

/* Send u->cur as the next part (writer side). */
static int submit_cur(struct upload *u)
{
	struct upload_submitter *s = u->p.submitter;
	struct upload_buf *b = u->cur;
	int r;

	u->cur = NULL;
	r = ensure_multipart(u);
	if (r) {
		put_buf(u, b);
		return r;
	}
	if (u->next_part > UPLOAD_MAX_PARTS) {
		/* upload_write's size check should make this unreachable. */
		log_err("upload of '%s': more than %d parts", u->key, UPLOAD_MAX_PARTS);
		put_buf(u, b);
		fail(u, EFBIG);
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
		fail(u, -r);
		return r;
	}
	if (!s) {
		send_part(b);
		return check_failed_nowait(u);
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
	}
	pthread_mutex_lock(&u->lock);
	b = u->free_bufs;
	u->free_bufs = NULL;
	nbufs_add_locked(u, -u->nbufs);
	pthread_mutex_unlock(&u->lock);
	for (; b; b = next) {
		next = b->next;
		buf_unmap(u, b);
	}
}

/*
 * Writer side, after a failure: wait for the parts in flight, then abort the
 * multipart upload so no part is left billed and nothing becomes visible.
 */
static void abort_failed(struct upload *u)
{
	struct s3_error e;
	bool send;

	wait_idle(u);
	pthread_mutex_lock(&u->lock);
	send = u->upload_id && !u->aborted;
	u->aborted = true;
	pthread_mutex_unlock(&u->lock);
	if (send) {
		if (s3_abort_multipart(u->p.s3, u->key, u->upload_id, &e) != 0)
			log_s3(LOG_ERR, u, "AbortMultipartUpload", &e);
		else
			log_notice(
			    "upload of '%s': multipart upload aborted, the object was not changed",
			    u->key);
	}
	release_bufs(u);
}

static int check_failed(struct upload *u)
{
	int err;

	pthread_mutex_lock(&u->lock);
	err = u->err;
	pthread_mutex_unlock(&u->lock);
	if (err)
		abort_failed(u);
	return -err;
}

uint64_t upload_max_size(const struct upload_params *p)
{
	return (uint64_t)UPLOAD_MAX_PARTS * p->part_size;
}

struct upload *upload_new(const struct upload_params *p, const char *key)
{
	struct upload *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->key = strdup(key);
	if (!u->key) {
		free(u);
		return NULL;
	}
	u->p = *p;
	if (u->p.max_inflight < 1)
		u->p.max_inflight = 1;
	u->max_size = upload_max_size(p);
	u->next_part = 1;
	u->state = UPLOAD_OPEN;
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
	struct s3_error e;
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
		if (s3_get_object(u->p.s3, u->key, 0, u->base_size,
		                  u->base_etag[0] ? u->base_etag : NULL, u->cur->data,
		                  u->p.part_size, &got, NULL, &e) != 0 ||
		    got != u->base_size) {
			if (e.err == S3_OK)
				snprintf(e.message, sizeof(e.message), "got %zu of %llu bytes", got,
				         (unsigned long long)u->base_size);
			log_s3(LOG_ERR, u, "reading the old bytes to append to", &e);
			fail(u, e.err == S3_ERR_PRECONDITION ? ESTALE : EIO);
			return check_failed(u);
		}
		u->cur->len = got;
		return 0;
	}

	r = ensure_multipart(u);
	if (r)
		return r;
	uint64_t n = (u->base_size + UPLOAD_MAX_PART_SIZE - 1) / UPLOAD_MAX_PART_SIZE;
	uint64_t chunk = (u->base_size + n - 1) / n;
	for (uint64_t off = 0; off < u->base_size; off += chunk) {
		uint64_t len = u->base_size - off < chunk ? u->base_size - off : chunk;
		int part_no = u->next_part++;
		char etag[80] = "";

		pthread_mutex_lock(&u->lock);
		r = parts_reserve_locked(u, part_no);
		pthread_mutex_unlock(&u->lock);
		if (r) {
			fail(u, -r);
			return check_failed(u);
		}
		if (s3_upload_part_copy(u->p.s3, u->key, u->upload_id, part_no, u->key, off, len,
		                        etag, &e) != 0) {
			log_s3(LOG_ERR, u, "UploadPartCopy of the old bytes", &e);
			fail(u, EIO);
			return check_failed(u);
		}
		pthread_mutex_lock(&u->lock);
		u->parts[part_no - 1].part_no = part_no;
		u->parts[part_no - 1].size = len;
		snprintf(u->parts[part_no - 1].etag, sizeof(u->parts[0].etag), "%s", etag);
		pthread_mutex_unlock(&u->lock);
	}
	u->max_size =
	    u->base_size + (uint64_t)(UPLOAD_MAX_PARTS - (u->next_part - 1)) * u->p.part_size;
	return 0;
}

static int fill_from_buf(void *user, void *dst, size_t n, size_t src_off)
{
	memcpy(dst, (const char *)user + src_off, n);
	return 0;
}

static int fill_zeros(void *user, void *dst, size_t n, size_t src_off)
{
	(void)user;
	(void)src_off;
	memset(dst, 0, n);
	return 0;
}

/* The checks every write passes, in the order that makes each errno honest. */
static int check_write_locked_w(struct upload *u, uint64_t off, size_t len)
{
	int r;
	enum upload_state st;

	r = check_failed(u);
	if (r)
		return r;
	pthread_mutex_lock(&u->lock);
	st = u->state;
	pthread_mutex_unlock(&u->lock);
	if (u->finished || st == UPLOAD_DONE || st == UPLOAD_DISCARDED) {
		log_err(
		    "write to '%s' after fsync or close completed its upload: the object is "
		    "final; open the file again (with --allow-overwrite and O_TRUNC) to replace it",
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
		        u->key, (unsigned long long)(off + len), UPLOAD_MAX_PARTS, u->p.part_size,
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

ssize_t upload_write_with(struct upload *u, uint64_t off, size_t len, upload_fill_fn fill,
                          void *user)
{
	size_t done = 0;
	ssize_t r;

	pthread_mutex_lock(&u->wlock);
	r = check_write_locked_w(u, off, len);
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
			goto out;
	}
	while (done < len) {
		if (u->cur && u->cur->len == u->p.part_size) {
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
		size_t n = u->p.part_size - u->cur->len;
		if (n > len - done)
			n = len - done;
		charge(u, u->cur, u->cur->len + n);
		r = fill(user, u->cur->data + u->cur->len, n, done);
		if (r) {
			/* Part of the write is in the buffer: the file can no
			 * longer be what the writer meant. */
			log_err("write to '%s': reading the data from the kernel failed: %s",
			        u->key, strerror((int)-r));
			fail(u, EIO);
			goto fail;
		}
		u->cur->len += n;
		u->size += n;
		done += n;
	}
	r = (ssize_t)len;
	goto out;
fail:
	r = check_failed(u) ?: r;
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
	uint64_t size = upload_size(u);
	ssize_t r;

	if (new_size < size)
		return -EINVAL;
	if (new_size == size)
		return 0;
	pthread_mutex_lock(&u->wlock);
	uint64_t max = u->max_size;
	pthread_mutex_unlock(&u->wlock);
	if (new_size > max) {
		/* Refused before any zero is sent, not after 10,000 parts of them. */
		log_err("extending '%s' to %llu bytes: past the largest object of %d parts of %zu "
		        "bytes (%llu bytes); raise --write-part-size for larger files",
		        u->key, (unsigned long long)new_size, UPLOAD_MAX_PARTS, u->p.part_size,
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

/*
 * The completed object's ETag must be the one its parts make: a mismatch
 * means the server assembled something else than what was sent.
 */
static int verify_etag(struct upload *u, size_t n, char *etag)
{
	const char **list = calloc(n ? n : 1, sizeof(*list));
	char want[80];
	int r;

	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		list[i] = u->parts[i].etag;
	r = upload_etag_of_parts(list, n, want);
	free(list);
	if (r) {
		log_warn("upload of '%s': a part ETag is not an MD5, the object's ETag '%s' "
		         "cannot be checked",
		         u->key, etag);
		return 0;
	}
	if (etag[0] == '\0') {
		log_warn("upload of '%s': the server gave no ETag for the completed object, "
		         "expected %s",
		         u->key, want);
		return 0;
	}
	if (strcasecmp(want, etag) != 0) {
		log_err("upload of '%s': the completed object has ETag %s but its %zu parts make "
		        "%s: the server assembled other bytes than were sent",
		        u->key, etag, n, want);
		return -EIO;
	}
	return 0;
}

static int complete_multipart(struct upload *u)
{
	struct s3_error e;
	char etag[80] = "";
	size_t n;
	int r;

	if (u->cur) {
		if (u->cur->len > 0) {
			r = submit_cur(u);
			if (r)
				return check_failed(u) ?: r;
		} else {
			put_buf(u, u->cur);
			u->cur = NULL;
		}
	}
	wait_idle(u);
	r = check_failed(u);
	if (r)
		return r;
	release_bufs(u);
	n = (size_t)(u->next_part - 1);
	for (size_t i = 0; i < n; i++) {
		if (u->parts[i].part_no != (int)i + 1) {
			log_err("upload of '%s': part %zu never finished", u->key, i + 1);
			fail(u, EIO);
			return check_failed(u);
		}
	}
	if (s3_complete_multipart(u->p.s3, u->key, u->upload_id, u->parts, n, etag, &e) != 0) {
		log_s3(LOG_ERR, u, "CompleteMultipartUpload", &e);
		fail(u, EIO);
		return check_failed(u);
	}
	strip_quotes(etag);
	r = verify_etag(u, n, etag);
	if (r) {
		/* Never leave an object that is not what was written. */
		if (s3_delete_object(u->p.s3, u->key, &e) != 0)
			log_s3(LOG_ERR, u, "DeleteObject of the mismatched object", &e);
		fail(u, EIO);
		pthread_mutex_lock(&u->lock);
		u->aborted = true; /* the upload is gone: completed, then deleted */
		pthread_mutex_unlock(&u->lock);
		return -EIO;
	}
	snprintf(u->final_etag, sizeof(u->final_etag), "%s", etag);
	log_debug("upload of '%s': completed, %zu parts, ETag %s", u->key, n, etag);
	return 0;
}

/*
 * The object is complete but an mtime set after its metadata went out
 * (CreateMultipartUpload was sent when the first part filled, or the file
 * was opened for append and not written) is not in it yet: rewrite the
 * metadata with a CopyObject onto itself (a server-side copy of the bytes,
 * up to 5 GiB). A failure here loses the time, not the data: logged, and
 * the close still succeeds.
 */
static void keep_mtime(struct upload *u, uint64_t size)
{
	struct s3_obj_meta m = meta_now(u);
	struct s3_error e;
	char etag[80] = "";
	char buf[512];

	if (m.has_mtime == u->sent.has_mtime &&
	    (!m.has_mtime ||
	     (u->sent.mtime.tv_sec == m.mtime.tv_sec && u->sent.mtime.tv_nsec == m.mtime.tv_nsec)))
		return;
	if (size > UPLOAD_MAX_PART_SIZE) {
		log_warn("upload of '%s': the mtime set while it was written is not kept: "
		         "rewriting the metadata of an object over 5 GiB needs a multipart copy",
		         u->key);
		return;
	}
	/* only onto the version just written: never stamp another node's bytes */
	if (s3_copy_object_meta(u->p.s3, u->key, u->key, u->final_etag, &m, etag, &e) != 0) {
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

static int complete_single(struct upload *u)
{
	struct s3_error e;
	char etag[80] = "";
	const void *data = u->cur ? u->cur->data : "";
	size_t len = u->cur ? u->cur->len : 0;

	u->sent = meta_now(u);
	if (s3_put_object_meta(u->p.s3, u->key, data, len, &u->sent, etag, &e) != 0) {
		log_s3(LOG_ERR, u, "PutObject", &e);
		fail(u, EIO);
		release_bufs(u);
		return -EIO;
	}
	strip_quotes(etag);
	snprintf(u->final_etag, sizeof(u->final_etag), "%s", etag);
	release_bufs(u);
	log_debug("upload of '%s': %zu bytes in one PutObject, ETag %s", u->key, len, etag);
	return 0;
}

int upload_set_mtime(struct upload *u, const struct timespec *t)
{
	int r = 0;

	pthread_mutex_lock(&u->lock);
	if (u->meta_frozen) {
		r = -EPERM;
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
	kept = u->finished && u->result == 0 && u->sent.has_mtime;
	if (kept && t)
		*t = u->sent.mtime;
	pthread_mutex_unlock(&u->wlock);
	return kept;
}

int upload_complete(struct upload *u, char *etag_out)
{
	int r;

	pthread_mutex_lock(&u->wlock);
	if (u->finished) {
		r = u->result;
		goto out;
	}
	pthread_mutex_lock(&u->lock);
	u->meta_frozen = true;
	pthread_mutex_unlock(&u->lock);
	r = check_failed(u);
	if (r)
		goto done;
	if (u->append_pending) {
		/* Opened for append, nothing written: the object stays as it is. */
		u->append_pending = false;
		snprintf(u->final_etag, sizeof(u->final_etag), "%s", u->base_etag);
		r = 0;
	} else if (!u->upload_id) {
		r = complete_single(u);
	} else {
		r = complete_multipart(u);
	}
	if (r == 0)
		keep_mtime(u, u->size);
done:
	u->finished = true;
	u->result = r;
	pthread_mutex_lock(&u->lock);
	if (r == 0)
		u->state = UPLOAD_DONE;
	pthread_mutex_unlock(&u->lock);
out:
	if (etag_out)
		snprintf(etag_out, 80, "%s", r == 0 ? u->final_etag : "");
	pthread_mutex_unlock(&u->wlock);
	return r;
}

int upload_discard(struct upload *u)
{
	struct s3_error e;
	int r = 0;

	pthread_mutex_lock(&u->wlock);
	if (u->finished)
		goto out;
	wait_idle(u);
	pthread_mutex_lock(&u->lock);
	bool send = u->upload_id && !u->aborted;
	u->aborted = true;
	if (u->state != UPLOAD_FAILED)
		u->state = UPLOAD_DISCARDED;
	pthread_mutex_unlock(&u->lock);
	if (send && s3_abort_multipart(u->p.s3, u->key, u->upload_id, &e) != 0) {
		log_s3(LOG_ERR, u, "AbortMultipartUpload", &e);
		r = -EIO;
	}
	release_bufs(u);
	u->finished = true;
	u->result = -ECANCELED;
out:
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
	pthread_mutex_destroy(&u->wlock);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u->parts);
	free(u->upload_id);
	free(u->key);
	free(u);
}

int upload_copy_object(struct s3_client *s3, const char *src_key, const char *dst_key,
                       uint64_t size, char *etag_out)
{
	struct s3_error e;
	struct s3_part *parts = NULL;
	char *upload_id = NULL;
	uint64_t n, chunk, off;
	int r = -EIO;

	if (size <= UPLOAD_MAX_PART_SIZE) {
		if (s3_copy_object(s3, src_key, dst_key, etag_out, &e) != 0) {
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
	if (s3_create_multipart(s3, dst_key, &upload_id, &e) != 0)
		goto fail;
	off = 0;
	for (uint64_t i = 0; i < n; i++, off += chunk) {
		uint64_t len = size - off < chunk ? size - off : chunk;

		parts[i].part_no = (int)i + 1;
		parts[i].size = len;
		if (s3_upload_part_copy(s3, dst_key, upload_id, (int)i + 1, src_key, off, len,
		                        parts[i].etag, &e) != 0)
			goto fail;
	}
	if (s3_complete_multipart(s3, dst_key, upload_id, parts, n, etag_out, &e) != 0)
		goto fail;
	r = 0;
	goto out;
fail : {
	char buf[512];

	log_err("copy of '%s' to '%s' (%llu bytes, multipart) failed: %s", src_key, dst_key,
	        (unsigned long long)size, s3_error_format(&e, buf, sizeof(buf)));
	r = -(fs_errno(e.err) ?: EIO);
	if (upload_id && s3_abort_multipart(s3, dst_key, upload_id, &e) != 0)
		log_err("abort of the copy's multipart upload failed: %s",
		        s3_error_format(&e, buf, sizeof(buf)));
}
out:
	free(upload_id);
	free(parts);
	return r;
}
