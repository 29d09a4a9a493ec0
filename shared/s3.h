/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3: the S3 client used by hpcops-mount, hpcops-launch and the tests.
 * Every call signs with SigV4 (sigv4.h), runs on the transfer engine (xfer.h)
 * and reports failures as an enum s3_err plus the server's code, message and
 * request id in struct s3_error. Blocking calls may be made from any thread;
 * the *_async calls complete on the transfer engine's thread.
 */
#ifndef HPCOPS_S3_H
#define HPCOPS_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct creds_provider;
struct xfer_engine;
struct s3_client;

enum s3_err {
	S3_OK = 0,
	S3_ERR_NO_SUCH_KEY,        /* NoSuchKey, or 404 on HEAD */
	S3_ERR_NO_SUCH_BUCKET,     /* NoSuchBucket */
	S3_ERR_NO_SUCH_UPLOAD,     /* NoSuchUpload */
	S3_ERR_ACCESS_DENIED,      /* AccessDenied, 403 without a body */
	S3_ERR_SIGNATURE,          /* SignatureDoesNotMatch: wrong secret key */
	S3_ERR_INVALID_ACCESS_KEY, /* InvalidAccessKeyId */
	S3_ERR_EXPIRED_TOKEN,      /* ExpiredToken, TokenRefreshRequired */
	S3_ERR_WRONG_REGION,     /* PermanentRedirect, AuthorizationHeaderMalformed: see .region */
	S3_ERR_PRECONDITION,     /* PreconditionFailed (If-Match), the object changed */
	S3_ERR_NOT_MODIFIED,     /* 304 */
	S3_ERR_INVALID_RANGE,    /* InvalidRange */
	S3_ERR_ENTITY_TOO_SMALL, /* EntityTooSmall: a non-last part under 5 MiB */
	S3_ERR_ENTITY_TOO_LARGE, /* EntityTooLarge */
	S3_ERR_BAD_DIGEST,       /* BadDigest / InvalidDigest: bytes corrupted on the way */
	S3_ERR_INVALID_PART,     /* InvalidPart / InvalidPartOrder */
	S3_ERR_INVALID_ARGUMENT, /* InvalidArgument, InvalidRequest, bad input from the caller */
	S3_ERR_THROTTLED,        /* SlowDown etc. after the retries were spent */
	S3_ERR_SERVER,           /* 5xx after the retries were spent */
	S3_ERR_NETWORK,          /* could not connect, reset */
	S3_ERR_TIMEOUT,          /* connected, but no (whole) answer in time */
	S3_ERR_NO_CREDENTIALS,   /* the credential chain found nothing */
	S3_ERR_CANCELLED,        /* cancelled by the caller */
	S3_ERR_NOMEM,
	S3_ERR_PROTOCOL, /* a reply we could not parse */
	S3_ERR_OTHER,    /* any other S3 error code: see error.code */
};

/** An S3 failure as the server told it. Fixed-size so it can live on the stack. */
struct s3_error {
	enum s3_err err;
	long http_status;    /* 0 when no response arrived */
	char code[64];       /* e.g. "NoSuchKey" */
	char message[256];   /* server message, or a local explanation */
	char request_id[64]; /* x-amz-request-id */
	char region[32];     /* x-amz-bucket-region when the server names one */
	/*
	 * A transport error ended a call that is not repeated blindly
	 * (CreateMultipartUpload, CompleteMultipartUpload) after the request
	 * may have reached the server: it may have taken effect.
	 */
	bool outcome_unknown;
};

/** s3_strerror() - a short English text for @err (static storage). */
const char *s3_strerror(enum s3_err err);

/**
 * s3_error_format() - "NoSuchBucket: The specified bucket does not exist
 * (HTTP 404, request id X)" into @buf; returns @buf.
 */
const char *s3_error_format(const struct s3_error *e, char *buf, size_t len);

/** The checksum sent with every body (--upload-checksums). */
enum s3_checksum {
	S3_CHECKSUM_CRC32C = 0, /* x-amz-checksum-crc32c (mount-s3's default) */
	S3_CHECKSUM_CRC64NVME,  /* x-amz-checksum-crc64nvme */
	S3_CHECKSUM_MD5,        /* Content-MD5 only: servers that check nothing else (radosgw 16) */
	S3_CHECKSUM_NONE,       /* no checksum header ("off") */
};

/** s3_checksum_name() - "crc32c", "crc64nvme", "md5" or "off". */
const char *s3_checksum_name(enum s3_checksum c);

struct s3_config {
	const char *endpoint;         /* "http://127.0.0.1:7480"; NULL = resolve (endpoint.h) */
	const char *region;           /* signing region; NULL = "us-east-1" */
	const char *bucket;           /* bucket this client talks to */
	bool force_path_style;        /* http://host/bucket/key instead of http://bucket.host/key */
	bool no_sign;                 /* anonymous requests (--no-sign-request) */
	struct creds_provider *creds; /* borrowed; NULL only with no_sign */
	struct xfer_engine *xfer;     /* borrowed; the engine all requests run on */
	const char *user_agent;       /* NULL = "hpcops/VERSION" */
	/* new objects (PutObject, CreateMultipartUpload, CopyObject) */
	const char *storage_class; /* x-amz-storage-class; NULL = the bucket's default */
	const char *sse;           /* x-amz-server-side-encryption: AES256, aws:kms, aws:kms:dsse */
	const char *sse_kms_key_id; /* x-amz-server-side-encryption-aws-kms-key-id */
	enum s3_checksum checksum;  /* with every body sent */
	/* every request */
	bool requester_pays;               /* x-amz-request-payer: requester */
	const char *expected_bucket_owner; /* x-amz-expected-bucket-owner */
};

/**
 * s3_client_new() - a client for one bucket. Copies what it needs from @cfg.
 * Returns NULL on allocation failure. Free with s3_client_free().
 */
struct s3_client *s3_client_new(const struct s3_config *cfg);

/**
 * s3_client_free() - free @c (NULL is fine). No request of @c may still be
 * in flight: wait for every async completion first.
 */
void s3_client_free(struct s3_client *c);

/**
 * User metadata hpcops keeps with an object: the mtime a program set
 * (utimens) travels as `x-amz-meta-mtime: SECONDS.NANOSECONDS`, the form
 * rclone writes and s3fs reads (whole seconds).
 */
struct s3_obj_meta {
	bool has_mtime;
	struct timespec mtime;
	const char *content_type; /* sent with a new object; NULL = none (S3 picks its default) */
};

/** Metadata of one object. */
struct s3_object_info {
	uint64_t size;
	time_t mtime;            /* Last-Modified */
	char etag[80];           /* with the quotes stripped */
	struct s3_obj_meta meta; /* from x-amz-meta-* (HEAD and GET only, not listings) */
};

/** s3_head_object() - HeadObject. Returns 0 or -1 with @err filled. */
int s3_head_object(struct s3_client *c, const char *key, struct s3_object_info *info,
                   struct s3_error *err);

struct s3_object_info;
typedef void (*s3_done_fn)(void *user, const struct s3_error *err, size_t got,
                           const struct s3_object_info *info);

/**
 * s3_head_object_async() - as s3_head_object() without waiting: @done gets
 * the object's info. 0 = queued, -1 = @err filled (then @done is not called).
 * Once queued, @err is not written again: @done may run before this returns
 * (and may copy its outcome into the same struct).
 */
int s3_head_object_async(struct s3_client *c, const char *key, s3_done_fn done, void *user,
                         struct s3_error *err);

/**
 * s3_get_object() - ranged GetObject into @buf (caller owns it).
 * @off/@len: the byte range; @len == 0 means "to the end" (then @buf must hold
 * @cap bytes and a longer object fails with S3_ERR_INVALID_RANGE).
 * @if_match: an ETag the object must still have (else S3_ERR_PRECONDITION), or NULL.
 * @got: bytes stored. @info: if not NULL, filled from the response headers
 * (size from Content-Range). A range from offset 0 of an empty object
 * succeeds with @got = 0 (S3 answers 416 there). Returns 0 or -1.
 */
int s3_get_object(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                  const char *if_match, void *buf, size_t cap, size_t *got,
                  struct s3_object_info *info, struct s3_error *err);

/**
 * Completion of an asynchronous call, on the transfer engine's thread: keep it
 * short and never block on another S3 call from it. @err->err == S3_OK on success.
 */
/** s3_get_object_async() - as s3_get_object() without waiting. 0 = queued, -1 = @err filled. */
int s3_get_object_async(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                        const char *if_match, void *buf, size_t cap, s3_done_fn done, void *user,
                        struct s3_error *err);

/**
 * Streaming GET: @sink receives the body in pieces (return 0 to go on, non-zero
 * to abort with S3_ERR_CANCELLED). A retry after a partial body calls @reset first.
 */
struct s3_sink {
	int (*write)(void *user, const void *data, size_t len);
	void (*reset)(void *user);
	void *user;
};

/**
 * s3_get_object_stream() - GetObject of [@off, @off + @len) (@len 0: to the
 * end) into @sink (borrowed, used only during the call), blocking. Without
 * @sink->reset there is no retry once bytes were delivered. @info (may be
 * NULL) gets size, ETag and mtime. Returns 0, or -1 with @err filled.
 */
int s3_get_object_stream(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                         const char *if_match, const struct s3_sink *sink,
                         struct s3_object_info *info, struct s3_error *err);

/* ---- listing ---- */

struct s3_list_params {
	const char *prefix;
	const char *delimiter;          /* "/" for a directory view, NULL for flat */
	const char *continuation_token; /* from the previous page, or NULL */
	const char *start_after;
	int max_keys; /* 0 = server default (1000) */
};

struct s3_list_entry {
	char *key;
	uint64_t size;
	time_t mtime;
	char etag[80];
};

/** One page of ListObjectsV2. Owned by the caller; free with s3_list_page_free(). */
struct s3_list_page {
	struct s3_list_entry *entries;
	size_t n_entries;
	char **prefixes; /* CommonPrefixes, each ending in the delimiter */
	size_t n_prefixes;
	bool truncated;
	char *next_token; /* NextContinuationToken when truncated */
};

/** s3_list_objects() - one ListObjectsV2 page, parsed as a stream. 0 or -1. */
int s3_list_objects(struct s3_client *c, const struct s3_list_params *p, struct s3_list_page *page,
                    struct s3_error *err);

/** s3_list_page_free() - free what s3_list_objects() put in @page and zero it; NULL is fine. */
void s3_list_page_free(struct s3_list_page *page);

/* ---- writing ---- */

/** s3_put_object() - PutObject of @len bytes with the client's checksum. @etag_out (80 bytes) may
 * be NULL. */
int s3_put_object(struct s3_client *c, const char *key, const void *data, size_t len,
                  char *etag_out, struct s3_error *err);

/** s3_put_object_meta() - as s3_put_object(), storing @meta (NULL: none) with the object. */
int s3_put_object_meta(struct s3_client *c, const char *key, const void *data, size_t len,
                       const struct s3_obj_meta *meta, char *etag_out, struct s3_error *err);

/**
 * s3_put_object_async() - as s3_put_object() without waiting. @data and
 * @etag_out (80 bytes, or NULL) must stay valid until @done has run.
 * 0 = queued, -1 = @err filled (then @done is not called).
 */
int s3_put_object_async(struct s3_client *c, const char *key, const void *data, size_t len,
                        char *etag_out, s3_done_fn done, void *user, struct s3_error *err);

/** s3_create_multipart() - CreateMultipartUpload; @upload_id is malloc'd, caller frees. */
int s3_create_multipart(struct s3_client *c, const char *key, char **upload_id,
                        struct s3_error *err);

/** s3_create_multipart_meta() - as s3_create_multipart(); the object gets @meta (NULL: none). */
int s3_create_multipart_meta(struct s3_client *c, const char *key, const struct s3_obj_meta *meta,
                             char **upload_id, struct s3_error *err);

struct s3_part {
	int part_no;
	char etag[80];
	uint64_t size;     /* filled by s3_list_parts */
	char checksum[24]; /* the part's x-amz-checksum-* (base64) as sent, "" if none */
};

/**
 * s3_upload_part() - UploadPart @part_no (1..10000) with the client's
 * checksum; @etag_out 80 bytes. When the server echoes the checksum, a
 * mismatch fails the call (S3_ERR_BAD_DIGEST).
 */
int s3_upload_part(struct s3_client *c, const char *key, const char *upload_id, int part_no,
                   const void *data, size_t len, struct s3_part *out, struct s3_error *err);

/**
 * s3_upload_part_async() - as s3_upload_part() without waiting. @out gets
 * the part number, size and checksum at once and the ETag on success; it
 * must stay valid until @done has run.
 */
int s3_upload_part_async(struct s3_client *c, const char *key, const char *upload_id, int part_no,
                         const void *data, size_t len, struct s3_part *out, s3_done_fn done,
                         void *user, struct s3_error *err);

/** s3_upload_part_copy() - UploadPartCopy of [off, off+len) of @src_key (same bucket). */
int s3_upload_part_copy(struct s3_client *c, const char *key, const char *upload_id, int part_no,
                        const char *src_key, uint64_t off, uint64_t len, char *etag_out,
                        struct s3_error *err);

/**
 * s3_complete_multipart() - CompleteMultipartUpload of @n parts in order.
 * @etag_out gets the object's ETag; when the server answers with an empty one
 * (radosgw), it is taken from a HeadObject.
 */
int s3_complete_multipart(struct s3_client *c, const char *key, const char *upload_id,
                          const struct s3_part *parts, size_t n, char *etag_out,
                          struct s3_error *err);

/**
 * s3_abort_multipart() - AbortMultipartUpload: the server drops the parts
 * of @upload_id. Returns 0, or -1 with @err filled (S3_ERR_NO_SUCH_UPLOAD
 * for an id the server does not know).
 */
int s3_abort_multipart(struct s3_client *c, const char *key, const char *upload_id,
                       struct s3_error *err);

/** s3_list_parts() - ListParts; @parts malloc'd array (caller frees). */
int s3_list_parts(struct s3_client *c, const char *key, const char *upload_id,
                  struct s3_part **parts, size_t *n, struct s3_error *err);

/** Most uploads s3_list_multipart_uploads() collects before it asks for a longer prefix. */
#define S3_MAX_LISTED_UPLOADS 100000

struct s3_upload_entry {
	char *key;
	char *upload_id;
	time_t initiated; /* when the server created it (0 if not said) */
};
/** s3_list_multipart_uploads() - in-progress uploads under @prefix; free with
 * s3_upload_entries_free(). */
int s3_list_multipart_uploads(struct s3_client *c, const char *prefix, struct s3_upload_entry **ups,
                              size_t *n, struct s3_error *err);

/** s3_upload_entries_free() - free @n entries and their strings, and the array; NULL is fine. */
void s3_upload_entries_free(struct s3_upload_entry *ups, size_t n);

/** s3_copy_object() - CopyObject @src_key -> @dst_key within the bucket (up to 5 GiB). */
int s3_copy_object(struct s3_client *c, const char *src_key, const char *dst_key, char *etag_out,
                   struct s3_error *err);

/**
 * s3_copy_object_meta() - as s3_copy_object(), with the copy's user metadata
 * replaced by @meta (x-amz-metadata-directive: REPLACE) when @meta is not
 * NULL; @src_key == @dst_key then rewrites an object's metadata in place.
 * @src_if_match: copy only if the source still has this ETag
 * (x-amz-copy-source-if-match; else S3_ERR_PRECONDITION), or NULL.
 */
int s3_copy_object_meta(struct s3_client *c, const char *src_key, const char *dst_key,
                        const char *src_if_match, const struct s3_obj_meta *meta, char *etag_out,
                        struct s3_error *err);

/** s3_delete_object() - DeleteObject (a missing key is success, as in S3). */
int s3_delete_object(struct s3_client *c, const char *key, struct s3_error *err);

/** s3_delete_objects() - DeleteObjects of up to 1000 keys; @failed counts per-key errors. */
int s3_delete_objects(struct s3_client *c, const char *const *keys, size_t n, size_t *failed,
                      struct s3_error *err);

#endif
