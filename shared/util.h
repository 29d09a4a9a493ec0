/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util: small helpers for the AWS plumbing: hex, SHA-256, HMAC, MD5 and
 * base64 (Content-MD5), URI and form encoding per the SigV4 rules,
 * ISO 8601 times, and a bounded growable buffer. (Checksums: checksum.h.)
 */
#ifndef HPCOPS_UTIL_H
#define HPCOPS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/** util_hex() - lower-case hex of @n bytes into @out (2n+1 bytes, NUL-terminated). */
void util_hex(const void *in, size_t n, char *out);

/** util_sha256() - SHA-256 of @n bytes into @out. */
void util_sha256(const void *data, size_t n, uint8_t out[32]);

/** util_sha256_hex() - hex SHA-256 of @n bytes into @out (65 bytes). */
void util_sha256_hex(const void *data, size_t n, char out[65]);

/** util_hmac_sha256() - HMAC-SHA256 of @data under @key into @out. */
void util_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n, uint8_t out[32]);

/**
 * util_base64() - base64 (with padding) of @n bytes into @out, which must
 * hold 4*((n+2)/3)+1 bytes. Returns the length written (without the NUL).
 */
size_t util_base64(const void *in, size_t n, char *out);

/** util_md5_base64() - the Content-MD5 header value of @n bytes into @out (25 bytes). */
void util_md5_base64(const void *data, size_t n, char out[25]);

/**
 * util_uri_encode() - percent-encode @n bytes of @s per SigV4: everything
 * but A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case hex); '/' is kept when
 * @keep_slash (object keys in paths) and encoded otherwise (query values).
 * Returns a heap string the caller frees, or NULL on allocation failure.
 */
char *util_uri_encode(const char *s, size_t n, bool keep_slash);

/**
 * util_uri_decode() - decode %XX escapes of @n bytes of @s ('+' stays '+').
 * A '%' not followed by two hex digits is kept as is. Returns a heap
 * string the caller frees (@outlen, if not NULL, gets its length, which may
 * differ from strlen() if it decodes a NUL), or NULL on allocation failure.
 */
char *util_uri_decode(const char *s, size_t n, size_t *outlen);

/**
 * util_form_encode() - "k1=v1&k2=v2" from @n key/value pairs in @kv
 * (kv[2i] is a key, kv[2i+1] its value), each encoded with
 * util_uri_encode(..., false): the body of a query-protocol POST.
 * Returns a heap string the caller frees, or NULL on allocation failure.
 */
char *util_form_encode(const char *const *kv, size_t n);

/**
 * util_mono_in() - CLOCK_MONOTONIC now plus @ms: a deadline for
 * pthread_cond_timedwait() on a condition set to that clock.
 */
struct timespec util_mono_in(long ms);

/** util_amz_date() - "20150830T123600Z" (UTC) into @out (17 bytes). */
void util_amz_date(time_t t, char out[17]);

/**
 * util_parse_iso8601() - parse "2015-08-30T12:36:00Z", with optional
 * fractional seconds and a "Z" or "+hh:mm" offset, or the basic
 * "20150830T123600Z". Returns 0 with *@t set, or -1 if malformed.
 */
int util_parse_iso8601(const char *s, time_t *t);

/**
 * A growable byte buffer with a hard bound. Always NUL-terminated after
 * data[len] when data != NULL. Free with util_buf_free().
 */
struct util_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;  /* appends that would pass this fail; 0 = 64 MiB */
	bool secret; /* holds a secret: growing and freeing wipe the old bytes */
};

/** util_buf_append() - append @n bytes. Returns 0, or -1 (bound reached or ENOMEM). */
int util_buf_append(struct util_buf *b, const void *data, size_t n);

/** util_buf_puts() - append a C string. Returns as util_buf_append(). */
int util_buf_puts(struct util_buf *b, const char *s);

/** util_buf_printf() - append formatted text. Returns as util_buf_append(). */
int util_buf_printf(struct util_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** util_buf_free() - free the data and zero the struct (keeps nothing). */
void util_buf_free(struct util_buf *b);

/**
 * util_buf_steal() - hand the data (NUL-terminated, "" if empty) to the
 * caller, who frees it; the buffer is left empty. NULL on ENOMEM.
 */
char *util_buf_steal(struct util_buf *b);

/** util_free_secret() - wipe a NUL-terminated secret string and free it; NULL is fine. */
void util_free_secret(char *s);

/**
 * util_read_file() - the whole of a small file (up to @max bytes, else
 * error), NUL-terminated. Returns a heap string the caller frees, or NULL
 * with errno set.
 */
char *util_read_file(const char *path, size_t max);

/**
 * util_read_secret_file() - util_read_file() for files holding secrets
 * (credentials, web identity tokens): no copy of the text is left behind
 * in freed memory as it is read. *@len gets the bytes read; the caller
 * wipes all of them (and the NUL after) before free(): see
 * util_free_secret_len().
 */
char *util_read_secret_file(const char *path, size_t max, size_t *len);

/** util_free_secret_len() - wipe @len bytes of @s (and the NUL after) and free it. */
void util_free_secret_len(char *s, size_t len);

#endif
