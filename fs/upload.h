/* SPDX-License-Identifier: Apache-2.0 */
/*
 * upload: one object being written through the mount, as an explicit state
 * machine. Bytes written sequentially fill part buffers (--write-part-size,
 * taken from the memory budget); full parts go out as UploadPart while the
 * writer goes on, several in flight; upload_complete() finishes with
 * CompleteMultipartUpload, or with one PutObject when everything fit in the
 * first part. A failure aborts the multipart upload, so a half-written
 * object is never visible. S3 is reached only through the backend table
 * (backend.h), so unit tests plant lost replies, failed parts and wrong
 * ETags. The caller owns the struct upload and frees it with upload_free();
 * every buffer it holds is released by then.
 *
 * States, and the only transitions there are (upload_state_name() names
 * them; every change is checked and traced at debug level):
 *
 *   OPEN        accepting writes; nothing sent yet
 *     -> STREAMING   the first full part needs a multipart upload
 *     -> COMPLETING  close/fsync with everything in the first buffer
 *     -> ABORTING    a failure, or upload_discard()
 *   STREAMING   the multipart upload exists; parts go out as they fill
 *     -> COMPLETING  close/fsync: no more writes or metadata changes
 *     -> ABORTING
 *   COMPLETING  the last part, the wait for all parts, then Complete (or PutObject)
 *     -> DONE        the object exists and its ETag is what the parts make
 *     -> VERIFYING   Complete's reply was lost: did it take effect?
 *     -> ABORTING
 *   VERIFYING   HeadObject (ETag = the expected composite) and ListParts
 *     -> DONE        it did
 *     -> COMPLETING  the upload is still there: send Complete again
 *     -> ABORTING    neither: the upload is gone and the object is not ours
 *   ABORTING    waiting for parts in flight, then AbortMultipartUpload
 *               (a failed abort is queued: retried in the background and at unmount)
 *     -> FAILED      after a failure: every call returns its errno
 *     -> DISCARDED   after upload_discard(): nothing was changed
 *   DONE, FAILED, DISCARDED are final.
 */
#ifndef HPCOPS_UPLOAD_H
#define HPCOPS_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "backend.h"

struct budget;
struct upload;
struct uploader;

/** S3's limit on the number of parts of one multipart upload. */
#define UPLOAD_MAX_PARTS 10000
/** S3's smallest part (all parts but the last). */
#define UPLOAD_MIN_PART_SIZE (5ULL << 20)
/** S3's largest part, and the largest object a single CopyObject may copy. */
#define UPLOAD_MAX_PART_SIZE (5ULL << 30)

enum upload_state {
	UPLOAD_OPEN = 1,
	UPLOAD_STREAMING,
	UPLOAD_COMPLETING,
	UPLOAD_VERIFYING,
	UPLOAD_DONE,
	UPLOAD_ABORTING,
	UPLOAD_FAILED,
	UPLOAD_DISCARDED,
};

/** upload_state_name() - "OPEN", "STREAMING", ... (static storage). */
const char *upload_state_name(enum upload_state s);

/** What every upload of one mount shares. */
struct uploader_config {
	const struct fs_backend *be; /* borrowed; outlives the uploader */
	struct budget *budget;       /* part buffers are reserved here before they are mapped */
	size_t part_size;            /* --write-part-size: 5 MiB .. 5 GiB */
	int max_inflight;            /* UploadParts in flight per upload (>= 1) */
	int submit_threads;          /* threads that checksum and send full parts; 0 = the writer */
	const char *content_type;    /* fixed Content-Type of new objects, NULL = none */
	bool infer_content_type;     /* --infer-content-type: from the key's extension */
	const char *refuse;          /* non-NULL: every upload fails with EIO, this logged */
};

/**
 * uploader_new() - the shared part of every upload of a mount: the part
 * submitters, the fair share of the budget, and the queue of aborts still
 * owed (a failed AbortMultipartUpload is retried in the background).
 * Returns NULL on failure. Free with uploader_free() after every upload.
 */
struct uploader *uploader_new(const struct uploader_config *cfg);

/**
 * uploader_free() - stop the submitters and retry every abort still owed,
 * for at most the backend's retry budget, so a mount that exits cleanly
 * leaves no multipart upload it started. Logs any that could not be
 * aborted (with their upload ids). NULL is fine.
 */
void uploader_free(struct uploader *up);

/** uploader_pending_aborts() - aborts still owed (for logs and tests). */
size_t uploader_pending_aborts(struct uploader *up);

/** Counters of the write side, for metrics and the status line. */
struct uploader_stats {
	uint64_t open;         /* uploads not final yet */
	uint64_t completed;    /* objects made (PutObject or CompleteMultipartUpload) */
	uint64_t failed;       /* uploads that failed (aborted) */
	uint64_t parts;        /* parts uploaded */
	uint64_t budget_waits; /* times a writer waited on the memory budget */
	uint64_t pending_aborts;
};

/** uploader_stats() - a snapshot of the counters. */
void uploader_stats(struct uploader *up, struct uploader_stats *out);

/**
 * upload_new() - an upload of a new version of @key (copied). Nothing is
 * sent until data arrives or upload_complete() is called. Returns NULL on
 * allocation failure. Free with upload_free().
 */
struct upload *upload_new(struct uploader *up, const char *key);

/**
 * upload_set_append() - make @u an append to the existing object @key of
 * @old_size bytes and ETag @old_etag: the new object starts with the old
 * bytes (server-side UploadPartCopy, or read and re-sent when the object is
 * under 5 MiB), fetched when the first byte is written. Call before any write.
 * If nothing is ever written, upload_complete() leaves the object as it was.
 */
void upload_set_append(struct upload *u, uint64_t old_size, const char *old_etag);

/**
 * Copies @n bytes of the caller's data, starting @src_off bytes into it, to
 * @dst. Returns 0 or -errno. Lets FUSE's write_buf copy straight from its
 * buffer (or pipe, with splice) into the part buffer: each byte is copied once.
 */
typedef int (*upload_fill_fn)(void *user, void *dst, size_t n, size_t src_off);

/**
 * upload_write_with() - accept @len bytes at offset @off, copied by @fill.
 * Waits while the part buffers are all busy or the memory budget is short.
 * Returns @len, or -EINVAL (not at the end of the file: only sequential writes;
 * or the upload was already completed by fsync), -EFBIG (the object would
 * need more than 10,000 parts), or the error that failed the upload (-EIO).
 */
ssize_t upload_write_with(struct upload *u, uint64_t off, size_t len, upload_fill_fn fill,
                          void *user);

/** upload_write() - upload_write_with() from a plain buffer. */
ssize_t upload_write(struct upload *u, const void *buf, size_t len, uint64_t off);

/**
 * upload_extend() - grow the file to @new_size by appending zeros (ftruncate
 * to a larger size). -EINVAL if @new_size is below the current size.
 */
int upload_extend(struct upload *u, uint64_t new_size);

/**
 * upload_set_mtime() - the mtime the object keeps (x-amz-meta-mtime), as a
 * utimens on the open file sets it; NULL forgets it (a write also does).
 * -EPERM once completion has begun (the time can no longer be kept). Sent
 * with PutObject or CreateMultipartUpload; when it changes after the
 * latter went out, upload_complete() rewrites the metadata with a
 * CopyObject of the object onto itself (up to 5 GiB; logged above).
 */
int upload_set_mtime(struct upload *u, const struct timespec *t);

/**
 * upload_mtime_kept() - after a successful upload_complete(): whether the
 * object carries an x-amz-meta-mtime, and which (@t may be NULL).
 */
bool upload_mtime_kept(struct upload *u, struct timespec *t);

/**
 * upload_complete() - send what is buffered, wait for every part, and make
 * the object visible (PutObject or CompleteMultipartUpload), then check the
 * ETag against the parts. A Complete whose reply was lost is verified, not
 * assumed failed: success when the object is exactly what was written.
 * Idempotent: later calls return the first result. Returns 0 or -errno
 * (-EIO when a request failed for good; the upload is then aborted and no
 * object was created or changed). @etag_out (80 bytes, may be NULL) gets
 * the new object's ETag.
 */
int upload_complete(struct upload *u, char *etag_out);

/**
 * upload_discard() - give up without changing the object: abort a multipart
 * upload if one was started (queued for retry if the abort fails).
 * Returns 0, or -errno of an abort that is now queued.
 */
int upload_discard(struct upload *u);

/** upload_size() - bytes in the file so far (appended base included). */
uint64_t upload_size(struct upload *u);

/** upload_written() - bytes written through @u (the appended base not counted). */
uint64_t upload_written(struct upload *u);

/** upload_get_state() - where @u stands now. */
enum upload_state upload_get_state(struct upload *u);

/** upload_error() - the errno that failed @u (0 if none). */
int upload_error(struct upload *u);

/** upload_max_size() - the largest file an upload of @part_size parts can hold. */
uint64_t upload_max_size(size_t part_size);

/** upload_free() - discard @u if it was neither completed nor discarded, and free it. NULL is fine.
 */
void upload_free(struct upload *u);

/**
 * upload_copy_object() - server-side copy of @src_key (@size bytes) to
 * @dst_key in the same bucket: one CopyObject up to 5 GiB, above that a
 * multipart upload of UploadPartCopy parts (at most 5 GiB each), aborted on
 * failure. Blocking. Returns 0 or -errno.
 */
int upload_copy_object(const struct fs_backend *be, const char *src_key, const char *dst_key,
                       uint64_t size, char *etag_out);

/**
 * upload_etag_of_parts() - the ETag S3 gives a multipart object made of the
 * @n parts whose ETags are @etags: hex md5 of the concatenated binary part
 * md5s, then "-N". Writes into @out (80 bytes). Returns 0, or -EINVAL if a
 * part ETag is not a hex md5.
 */
int upload_etag_of_parts(const char *const *etags, size_t n, char *out);

/**
 * upload_content_type() - the Content-Type --infer-content-type gives a
 * new object named @key (by its extension, common scientific and web
 * formats), or NULL when the extension says nothing.
 */
const char *upload_content_type(const char *key);

#endif
