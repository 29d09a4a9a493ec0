/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check: the words of the bucket check hpcops-mount runs before it mounts.
 * Turns a failed ListObjectsV2 into one line that names the cause and what
 * to do. Kept apart from main.c so every cause can be unit-tested, including
 * those a local radosgw cannot produce (wrong region).
 */
#ifndef HPCOPS_CHECK_H
#define HPCOPS_CHECK_H

#include <stddef.h>

#include "s3.h"

/**
 * check_explain() - the message for a failed check of @bucket (@prefix may
 * be "") at @endpoint (a URL or a phrase such as "the S3 endpoint of region
 * X") into @out (@len bytes), starting "hpcops-mount: ", no newline.
 * @timeout_s: the check's time limit (--check-timeout), named when it ran out.
 * Returns @out.
 */
const char *check_explain(const struct s3_error *e, const char *bucket, const char *prefix,
                          const char *endpoint, double timeout_s, char *out, size_t len);

#endif
