/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backend_s3: the filesystem's backend table over the S3 client
 * (shared/s3.h). Each entry forwards to its s3_* twin.
 */
#include "backend.h"

static int s3b_head(void *ctx, const char *key, struct s3_object_info *info, struct s3_error *err)
{
	return s3_head_object(ctx, key, info, err);
}

static int s3b_head_async(void *ctx, const char *key, s3_done_fn done, void *user,
                          struct s3_error *err)
{
	return s3_head_object_async(ctx, key, done, user, err);
}

static int s3b_list(void *ctx, const struct s3_list_params *p, struct s3_list_page *page,
                    struct s3_error *err)
{
	return s3_list_objects(ctx, p, page, err);
}

static int s3b_get(void *ctx, const char *key, uint64_t off, uint64_t len, const char *if_match,
                   void *buf, size_t cap, size_t *got, struct s3_object_info *info,
                   struct s3_error *err)
{
	return s3_get_object(ctx, key, off, len, if_match, buf, cap, got, info, err);
}

static int s3b_get_async(void *ctx, const char *key, uint64_t off, uint64_t len,
                         const char *if_match, void *buf, size_t cap, s3_done_fn done, void *user,
                         struct s3_error *err)
{
	return s3_get_object_async(ctx, key, off, len, if_match, buf, cap, done, user, err);
}

static int s3b_put(void *ctx, const char *key, const void *data, size_t len,
                   const struct s3_obj_meta *meta, char *etag_out, struct s3_error *err)
{
	return s3_put_object_meta(ctx, key, data, len, meta, etag_out, err);
}

static int s3b_put_async(void *ctx, const char *key, const void *data, size_t len, s3_done_fn done,
                         void *user, struct s3_error *err)
{
	return s3_put_object_async(ctx, key, data, len, NULL, done, user, err);
}

static int s3b_create(void *ctx, const char *key, const struct s3_obj_meta *meta, char **upload_id,
                      struct s3_error *err)
{
	return s3_create_multipart_meta(ctx, key, meta, upload_id, err);
}

static int s3b_upload_part_async(void *ctx, const char *key, const char *upload_id, int part_no,
                                 const void *data, size_t len, struct s3_part *out, s3_done_fn done,
                                 void *user, struct s3_error *err)
{
	return s3_upload_part_async(ctx, key, upload_id, part_no, data, len, out, done, user, err);
}

static int s3b_upload_part_copy(void *ctx, const char *key, const char *upload_id, int part_no,
                                const char *src_key, uint64_t off, uint64_t len, char *etag_out,
                                struct s3_error *err)
{
	return s3_upload_part_copy(ctx, key, upload_id, part_no, src_key, off, len, etag_out, err);
}

static int s3b_complete(void *ctx, const char *key, const char *upload_id,
                        const struct s3_part *parts, size_t n, char *etag_out, struct s3_error *err)
{
	return s3_complete_multipart(ctx, key, upload_id, parts, n, etag_out, err);
}

static int s3b_abort(void *ctx, const char *key, const char *upload_id, struct s3_error *err)
{
	return s3_abort_multipart(ctx, key, upload_id, err);
}

static int s3b_list_parts(void *ctx, const char *key, const char *upload_id, struct s3_part **parts,
                          size_t *n, struct s3_error *err)
{
	return s3_list_parts(ctx, key, upload_id, parts, n, err);
}

static int s3b_list_uploads(void *ctx, const char *prefix, struct s3_upload_entry **ups, size_t *n,
                            struct s3_error *err)
{
	return s3_list_multipart_uploads(ctx, prefix, ups, n, err);
}

static int s3b_copy(void *ctx, const char *src_key, const char *dst_key, const char *src_if_match,
                    const struct s3_obj_meta *meta, char *etag_out, struct s3_error *err)
{
	return s3_copy_object_meta(ctx, src_key, dst_key, src_if_match, meta, etag_out, err);
}

static int s3b_del(void *ctx, const char *key, struct s3_error *err)
{
	return s3_delete_object(ctx, key, err);
}

static const struct fs_backend_ops s3_backend_ops = {
    .head = s3b_head,
    .head_async = s3b_head_async,
    .list = s3b_list,
    .get = s3b_get,
    .get_async = s3b_get_async,
    .put = s3b_put,
    .put_async = s3b_put_async,
    .create = s3b_create,
    .upload_part_async = s3b_upload_part_async,
    .upload_part_copy = s3b_upload_part_copy,
    .complete = s3b_complete,
    .abort = s3b_abort,
    .list_parts = s3b_list_parts,
    .list_uploads = s3b_list_uploads,
    .copy = s3b_copy,
    .del = s3b_del,
};

struct fs_backend fs_backend_s3(struct s3_client *s3, const struct retry_policy *retry)
{
	struct fs_backend b = {.ops = &s3_backend_ops, .ctx = s3};

	if (retry)
		b.retry = *retry;
	else
		retry_policy_defaults(&b.retry);
	return b;
}
