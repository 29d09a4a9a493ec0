/* SPDX-License-Identifier: Apache-2.0 */
/*
 * upload: one object being written through the mount, as an explicit state
 * machine. Bytes written sequentially fill part buffers (--write-part-size,
 * taken from the memory budget); full parts go out as UploadPart while the
 * writer goes on, several in flight; upload_complete() finishes with
 * CompleteMultipartUpload, or with one PutObject when everything fit in the
 * first part. A failure aborts the multipart upload, so a half-written object
 * is never visible. The caller owns the struct upload and frees it with
 * upload_free(); every buffer it holds is released by then.
 */
#ifndef HPCOPS_UPLOAD_H
#define HPCOPS_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct s3_client;
struct budget;
struct upload;

/** S3's limit on the number of parts of one multipart upload. */
#define UPLOAD_MAX_PARTS 10000
/** S3's smallest part (all parts but the last). */
#define UPLOAD_MIN_PART_SIZE (5ULL << 20)
/** S3's largest part, and the largest object a single CopyObject may copy. */
#define UPLOAD_MAX_PART_SIZE (5ULL << 30)

enum upload_state {
	UPLOAD_OPEN = 1,  /* accepting writes; no multipart upload created yet */
	UPLOAD_STREAMING, /* multipart upload created, parts going out */
	UPLOAD_DONE,      /* completed: the object is visible; writes get EINVAL */
	UPLOAD_FAILED,    /* a request failed for good; aborted; every call returns the error */
	UPLOAD_DISCARDED, /* given up on purpose (upload_discard): nothing was changed */
};

struct upload_submitter;

/** What every upload of one mount shares (read-only after setup; borrowed pointers). */
struct upload_params {
	struct s3_client *s3;
	struct budget *budget; /* part buffers are reserved here before they are mapped */
	size_t part_size;      /* --write-part-size: 5 MiB .. 5 GiB */
	int max_inflight;      /* UploadParts in flight per upload (>= 1) */
	struct upload_submitter
	    *submitter; /* threads that send full parts; NULL = the writer does */
};

/**
 * upload_submitter_new() - @n_threads threads that send full parts (and
 * compute their MD5) while the writers go on filling the next ones.
 * Returns NULL on failure. Free with upload_submitter_free() after every
 * upload using it was freed.
 */
struct upload_submitter *upload_submitter_new(int n_threads);
void upload_submitter_free(struct upload_submitter *s);

/**
 * upload_new() - an upload of a new version of @key (copied). Nothing is sent
 * until data arrives or upload_complete() is called. Returns NULL on
 * allocation failure. Free with upload_free().
 */
struct upload *upload_new(const struct upload_params *p, const char *key);

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
 * ETag against the parts. Idempotent: later calls return the first result.
 * Returns 0 or -errno (-EIO when a request failed; the upload is then
 * aborted and no object was created or changed). @etag_out (80 bytes, may be
 * NULL) gets the new object's ETag.
 */
int upload_complete(struct upload *u, char *etag_out);

/**
 * upload_discard() - give up without changing the object: abort a multipart
 * upload if one was started. Returns 0 or -errno of the abort.
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

/** upload_max_size() - the largest file @u can hold (10,000 parts). */
uint64_t upload_max_size(const struct upload_params *p);

/** upload_free() - discard @u if it was neither completed nor discarded, and free it. NULL is fine.
 */
void upload_free(struct upload *u);

/**
 * upload_copy_object() - server-side copy of @src_key (@size bytes) to
 * @dst_key in the same bucket: one CopyObject up to 5 GiB, above that a
 * multipart upload of UploadPartCopy parts (at most 5 GiB each), aborted on
 * failure. Blocking. Returns 0 or -errno (s3_err_to_errno of the failure).
 */
int upload_copy_object(struct s3_client *s3, const char *src_key, const char *dst_key,
                       uint64_t size, char *etag_out);

/**
 * upload_etag_of_parts() - the ETag S3 gives a multipart object made of the
 * @n parts whose ETags are @etags: hex md5 of the concatenated binary part
 * md5s, then "-N". Writes into @out (80 bytes). Returns 0, or -EINVAL if a
 * part ETag is not a hex md5.
 */
int upload_etag_of_parts(const char *const *etags, size_t n, char *out);

#endif
