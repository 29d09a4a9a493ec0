/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_test: hooks into the S3 client that only tests use, kept out of s3.h
 * so no program can turn them on by accident.
 */
#ifndef HPCOPS_S3_TEST_H
#define HPCOPS_S3_TEST_H

#include <stdbool.h>
#include <stddef.h>

struct s3_client;

/**
 * s3_client_test_corrupt_md5() - when @on, every Content-MD5 this client
 * sends with a body (PutObject, UploadPart) is wrong by one character, so
 * a test can see the server refuse the bytes (BadDigest).
 */
void s3_client_test_corrupt_md5(struct s3_client *c, bool on);

/**
 * s3_client_test_url() - the URL, Host header and signed path the client
 * would use for @key (NULL = the bucket) and @query (encoded, or NULL), so
 * addressing styles can be checked without a server. 0, or -1 if a buffer
 * is too small or memory ran out.
 */
int s3_client_test_url(struct s3_client *c, const char *key, const char *query, char *url,
                       size_t url_len, char *host, size_t host_len, char *path, size_t path_len);

struct s3_error;

/**
 * s3_error_from_http() - what the client makes of an HTTP error reply:
 * @status, the request @method ("HEAD" replies have no body), the
 * operation name @op for messages, and the error body (@body, @len; may be
 * NULL). @e->region and @e->request_id may hold values from the headers
 * already; the rest is filled. Exposed so the table can be tested offline.
 */
void s3_error_from_http(struct s3_error *e, long status, const char *method, const char *op,
                        const char *body, size_t len);

#endif
