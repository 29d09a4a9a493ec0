/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backend: the S3 calls the filesystem logic makes, as one table. The
 * namespace, read and write modules call S3 only through it, so they run
 * against a real server (fs_backend_s3(), over shared/s3.h) or, in unit
 * tests, against an object store of the test's own that loses replies,
 * fails parts or answers with other ETags on purpose. Every call keeps the
 * contract of its s3.h twin (blocking calls from any thread; the _async
 * ones complete on another thread, never inside the call).
 */
#ifndef HPCOPS_FS_BACKEND_H
#define HPCOPS_FS_BACKEND_H

#include "retry.h"
#include "s3.h"

struct fs_backend_ops {
	int (*head)(void *ctx, const char *key, struct s3_object_info *info, struct s3_error *err);
	/* @done gets the object's info as its last argument */
	int (*head_async)(void *ctx, const char *key, s3_done_fn done, void *user,
	                  struct s3_error *err);
	int (*list)(void *ctx, const struct s3_list_params *p, struct s3_list_page *page,
	            struct s3_error *err);
	int (*get)(void *ctx, const char *key, uint64_t off, uint64_t len, const char *if_match,
	           void *buf, size_t cap, size_t *got, struct s3_object_info *info,
	           struct s3_error *err);
	int (*get_async)(void *ctx, const char *key, uint64_t off, uint64_t len,
	                 const char *if_match, void *buf, size_t cap, s3_done_fn done, void *user,
	                 struct s3_error *err);
	int (*put)(void *ctx, const char *key, const void *data, size_t len,
	           const struct s3_obj_meta *meta, char *etag_out, struct s3_error *err);
	/* @data stays the caller's until @done ran (the block cache's puts) */
	int (*put_async)(void *ctx, const char *key, const void *data, size_t len, s3_done_fn done,
	                 void *user, struct s3_error *err);
	int (*create)(void *ctx, const char *key, const struct s3_obj_meta *meta, char **upload_id,
	              struct s3_error *err);
	int (*upload_part_async)(void *ctx, const char *key, const char *upload_id, int part_no,
	                         const void *data, size_t len, struct s3_part *out, s3_done_fn done,
	                         void *user, struct s3_error *err);
	int (*upload_part_copy)(void *ctx, const char *key, const char *upload_id, int part_no,
	                        const char *src_key, uint64_t off, uint64_t len, char *etag_out,
	                        struct s3_error *err);
	int (*complete)(void *ctx, const char *key, const char *upload_id,
	                const struct s3_part *parts, size_t n, char *etag_out,
	                struct s3_error *err);
	int (*abort)(void *ctx, const char *key, const char *upload_id, struct s3_error *err);
	int (*list_parts)(void *ctx, const char *key, const char *upload_id, struct s3_part **parts,
	                  size_t *n, struct s3_error *err);
	int (*list_uploads)(void *ctx, const char *prefix, struct s3_upload_entry **ups, size_t *n,
	                    struct s3_error *err);
	int (*copy)(void *ctx, const char *src_key, const char *dst_key, const char *src_if_match,
	            const struct s3_obj_meta *meta, char *etag_out, struct s3_error *err);
	int (*del)(void *ctx, const char *key, struct s3_error *err);
};

/** A backend: the table, its context, and the retry policy the logic's own loops keep to. */
struct fs_backend {
	const struct fs_backend_ops *ops;
	void *ctx;
	/*
	 * Loops the logic runs itself (finding out whether a Complete whose
	 * reply was lost took effect, retrying a failed abort) stop within this
	 * budget, the same the transfer engine gives each request.
	 */
	struct retry_policy retry;
};

/** fs_backend_s3() - a backend over @s3 (borrowed) with the engine's @retry policy. */
struct fs_backend fs_backend_s3(struct s3_client *s3, const struct retry_policy *retry);

#endif
