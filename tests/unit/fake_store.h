/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_store: an in-memory object store behind the filesystem's backend
 * table (fs/backend.h), for unit tests of the namespace, read and upload
 * logic without a server. It keeps objects and multipart uploads with the
 * ETags S3 gives them (MD5 of a part or a PutObject, the composite of a
 * multipart object), completes the _async calls on a thread of its own,
 * and fails on purpose as the knobs say: lost replies (the work done, the
 * reply reported lost), failed parts, failed aborts, a wrong ETag, and any
 * call of one kind failing with a given S3 error (fake_fail_op()).
 * ListObjectsV2 pages as S3 does: keys in byte order, CommonPrefixes
 * counted against max-keys, continuation tokens (fake_set_list_page()
 * makes pages small).
 * Real-server behaviour is tested in the s3 and mount suites; this is for
 * the logic's failure paths.
 */
#ifndef HPCOPS_FAKE_STORE_H
#define HPCOPS_FAKE_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "backend.h"

enum fake_op {
	FAKE_HEAD,
	FAKE_LIST,
	FAKE_GET,
	FAKE_PUT,
	FAKE_CREATE,
	FAKE_PART,
	FAKE_PART_COPY,
	FAKE_COMPLETE,
	FAKE_ABORT,
	FAKE_LIST_PARTS,
	FAKE_LIST_UPLOADS,
	FAKE_COPY,
	FAKE_DELETE,
	FAKE_N_OPS,
};

struct fake_store;

/*
 * One kind of call failing on purpose: once @after more calls of it have
 * gone through, the next @times fail (-1: every one) with @err, as the
 * transfer engine reports a failure after its own retries. The failed call
 * does nothing. The count runs under the store's lock, async calls count
 * when they run.
 */
struct fake_fault {
	int after;
	int times;
	enum s3_err err;  /* S3_OK (0) means S3_ERR_SERVER */
	long http_status; /* what the log shows, e.g. 503 or 403 */
};

/* Fault knobs: each counts down as it is used (set them before the calls). */
struct fake_faults {
	int lose_create;       /* CreateMultipartUpload: made, the reply lost (outcome unknown) */
	int lose_complete;     /* CompleteMultipartUpload: done, the reply lost */
	int fail_complete_net; /* Complete: not done, a network error with outcome unknown */
	int fail_part;         /* UploadPart number N (1..) fails for good (server error) */
	int fail_abort;        /* AbortMultipartUpload fails this many times (network) */
	int fail_head;         /* HeadObject fails this many times (network) */
	bool wrong_etag;       /* Complete answers with an ETag the parts do not make */
	int get_short;         /* GETs answer this many bytes short (a protocol error) */
	struct fake_fault op[FAKE_N_OPS]; /* per kind of call (see fake_fail_op()) */
};

struct fake_store *fake_store_new(void);
void fake_store_free(struct fake_store *fs);

/** fake_backend() - a backend table over @fs (retry budget @budget_ms for the logic's loops). */
struct fs_backend fake_backend(struct fake_store *fs, long budget_ms);

/** fake_faults() - the knobs (change them under no concurrent call). */
struct fake_faults *fake_faults(struct fake_store *fs);

/**
 * fake_fail_op() - make calls of @op fail: after @after successes, the
 * next @times calls (-1: all) with @err and @http_status. Replaces what
 * was set for @op before; fake_fail_op(fs, op, 0, 0, 0, 0) clears it.
 */
void fake_fail_op(struct fake_store *fs, enum fake_op op, int after, int times, enum s3_err err,
                  long http_status);

/** fake_set_list_page() - ListObjectsV2 answers at most @n keys a page (0: S3's 1000). */
void fake_set_list_page(struct fake_store *fs, size_t n);

/** fake_put() - an object as if another client wrote it. */
void fake_put(struct fake_store *fs, const char *key, const void *data, size_t len);

/** fake_get() - the bytes of @key (malloc'd, *@len), or NULL when absent. */
char *fake_get(struct fake_store *fs, const char *key, size_t *len);

/** fake_etag() - the ETag of @key into @out (80 bytes); false when absent. */
bool fake_etag(struct fake_store *fs, const char *key, char *out);

/** fake_delete() - remove @key behind the mount's back. */
void fake_delete(struct fake_store *fs, const char *key);

/** fake_open_uploads() - multipart uploads not completed nor aborted. */
size_t fake_open_uploads(struct fake_store *fs);

/** fake_calls() - how many times @op was called. */
int fake_calls(struct fake_store *fs, enum fake_op op);

/** fake_bytes_got() - bytes GetObject handed out in all. */
size_t fake_bytes_got(struct fake_store *fs);

/** fake_drain() - wait until no async call is queued or running. */
void fake_drain(struct fake_store *fs);

/**
 * fake_pause() - while @paused, async calls stay queued (a slow server);
 * fake_pause(fs, false) lets them run. fake_drain() waits for them.
 */
void fake_pause(struct fake_store *fs, bool paused);

/** fake_queued() - async calls queued and not started. */
size_t fake_queued(struct fake_store *fs);

/** fake_count_prefix() - how many objects have a key starting with @prefix. */
size_t fake_count_prefix(struct fake_store *fs, const char *prefix);

#endif
