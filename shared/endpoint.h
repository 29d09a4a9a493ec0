/* SPDX-License-Identifier: Apache-2.0 */
/*
 * endpoint: which URL a service is reached at, resolved as the AWS SDKs do:
 * an explicit flag, then AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL,
 * then the regional AWS endpoint. So the same binaries run against AWS,
 * S3-compatible stores, emulators and the test doubles.
 */
#ifndef HPCOPS_ENDPOINT_H
#define HPCOPS_ENDPOINT_H

#include <stddef.h>

/**
 * endpoint_resolve() - the endpoint URL of @service.
 * @service:  "s3", "cloudformation" or "sts" (any AWS service id; its
 *            variable is AWS_ENDPOINT_URL_ + upper-cased id, '-' -> '_').
 * @explicit_url: from a command-line flag, or NULL/"" for none.
 * @region:   for the regional default, e.g. "eu-west-1" (NULL = us-east-1).
 * @out:      receives a heap string the caller frees, without a trailing '/'.
 * @errbuf:   on failure, a message naming the bad value and what to do.
 * Environment variables are skipped when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
 * is "true" (as in the SDKs). A URL must start with http:// or https://
 * and have a host. Returns 0, or -1 (bad URL, bad region or ENOMEM).
 */
int endpoint_resolve(const char *service, const char *explicit_url, const char *region, char **out,
                     char *errbuf, size_t errlen);

/**
 * endpoint_host_header() - the Host header curl sends for @url: the host,
 * plus ":port" unless the port is the scheme's default ("127.0.0.1:7480",
 * "s3.eu-west-1.amazonaws.com"). Userinfo is dropped. Written into @out
 * (NUL-terminated). Returns 0, or -1 if @url has no host or @out is small.
 */
int endpoint_host_header(const char *url, char *out, size_t len);

/**
 * endpoint_base_path() - the path part of @url ("" for "http://h:1",
 * "/prefix" for "http://h:1/prefix/"), without a trailing '/', into @out.
 * Returns 0, or -1 if @out is too small.
 */
int endpoint_base_path(const char *url, char *out, size_t len);

#endif
