/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util: hex, hashes, encodings, times and a bounded buffer for the AWS
 * plumbing (see util.h). Hashes come from OpenSSL's EVP interface.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define UTIL_BUF_DEFAULT_MAX (64u << 20)

void util_hex(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void util_sha256(const void *data, size_t n, uint8_t out[32])
{
	unsigned int len = 32;

	if (!EVP_Digest(data, n, out, &len, EVP_sha256(), NULL))
		abort(); /* only fails when OpenSSL itself is broken */
}

void util_sha256_hex(const void *data, size_t n, char out[65])
{
	uint8_t md[32];

	util_sha256(data, n, md);
	util_hex(md, sizeof(md), out);
}

void util_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n, uint8_t out[32])
{
	unsigned int len = 32;

	if (!HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len))
		abort();
}

size_t util_base64(const void *in, size_t n, char *out)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *p = in;
	size_t o = 0, i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = tbl[(v >> 6) & 63];
		out[o++] = tbl[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

void util_md5_base64(const void *data, size_t n, char out[25])
{
	uint8_t md[16];
	unsigned int len = 16;

	if (!EVP_Digest(data, n, md, &len, EVP_md5(), NULL))
		abort();
	util_base64(md, sizeof(md), out);
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

char *util_uri_encode(const char *s, size_t n, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	char *out = malloc(3 * n + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = digits[c >> 4];
			out[o++] = digits[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *util_uri_decode(const char *s, size_t n, size_t *outlen)
{
	char *out = malloc(n + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int hi = -1, lo = -1;

		if (s[i] == '%' && i + 2 < n) {
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
		}
		if (hi >= 0 && lo >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return out;
}

char *util_form_encode(const char *const *kv, size_t n)
{
	struct util_buf b = {0};
	char *res = NULL;

	for (size_t i = 0; i < n; i++) {
		char *k = util_uri_encode(kv[2 * i], strlen(kv[2 * i]), false);
		char *v = util_uri_encode(kv[2 * i + 1], strlen(kv[2 * i + 1]), false);
		int rc = (!k || !v) ? -1 : util_buf_printf(&b, "%s%s=%s", i ? "&" : "", k, v);
		free(k);
		free(v);
		if (rc)
			goto out;
	}
	res = util_buf_steal(&b);
out:
	util_buf_free(&b);
	return res;
}

struct timespec util_mono_in(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

void util_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int parse_digits(const char **s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (**s < '0' || **s > '9')
			return -1;
		*v = *v * 10 + (**s - '0');
		(*s)++;
	}
	return 0;
}

int util_parse_iso8601(const char *s, time_t *t)
{
	struct tm tm = {0};
	int Y, M, D, h, m, sec, off = 0;
	bool basic;

	if (!s || parse_digits(&s, 4, &Y))
		return -1;
	basic = *s != '-';
	if (!basic)
		s++;
	if (parse_digits(&s, 2, &M) || (!basic && *s++ != '-') || parse_digits(&s, 2, &D))
		return -1;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -1;
	s++;
	if (parse_digits(&s, 2, &h) || (!basic && *s++ != ':') || parse_digits(&s, 2, &m) ||
	    (!basic && *s++ != ':') || parse_digits(&s, 2, &sec))
		return -1;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s++ == '-' ? -1 : 1, oh, om;
		if (parse_digits(&s, 2, &oh))
			return -1;
		if (*s == ':')
			s++;
		if (parse_digits(&s, 2, &om))
			return -1;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if (*s || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*t = timegm(&tm) - off;
	return 0;
}

int util_buf_append(struct util_buf *b, const void *data, size_t n)
{
	size_t max = b->max ? b->max : UTIL_BUF_DEFAULT_MAX;

	if (n > max || b->len > max - n)
		return -1;
	if (!b->data || b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (b->secret) {
			/*
			 * No realloc: it would leave a copy of the secret in freed
			 * memory. Zeroed: the block is wiped only as far as the
			 * text goes, so the rest must not hold stale heap bytes
			 * (another secret, freed unwiped elsewhere).
			 */
			p = calloc(1, cap);
			if (!p)
				return -1;
			if (b->data) {
				memcpy(p, b->data, b->len + 1);
				OPENSSL_cleanse(b->data, b->cap);
				free(b->data);
			}
		} else {
			p = realloc(b->data, cap);
			if (!p)
				return -1;
		}
		b->data = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int util_buf_puts(struct util_buf *b, const char *s)
{
	return util_buf_append(b, s, strlen(s));
}

int util_buf_printf(struct util_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	char *big = NULL;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return util_buf_append(b, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (!big)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = util_buf_append(b, big, (size_t)n);
	free(big);
	return rc;
}

void util_buf_free(struct util_buf *b)
{
	if (b->secret && b->data)
		OPENSSL_cleanse(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *util_buf_steal(struct util_buf *b)
{
	char *p;

	if (!b->data && util_buf_append(b, "", 0))
		return NULL;
	p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void util_free_secret_len(char *s, size_t len)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, len + 1);
	free(s);
}

void util_free_secret(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* The file at @path (up to @max bytes) into @b; 0, or -1 with errno set. */
static int read_into(const char *path, struct util_buf *b)
{
	char chunk[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = -1, saved = 0;

	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			goto out;
		}
		if (r == 0)
			break;
		if (util_buf_append(b, chunk, (size_t)r)) {
			saved = EFBIG;
			goto out;
		}
	}
	rc = 0;
out:
	if (b->secret)
		OPENSSL_cleanse(chunk, sizeof(chunk));
	close(fd);
	if (rc)
		errno = saved;
	return rc;
}

char *util_read_file(const char *path, size_t max)
{
	struct util_buf b = {.max = max};
	char *res = NULL;

	if (read_into(path, &b) == 0) {
		res = util_buf_steal(&b);
		if (!res)
			errno = ENOMEM;
	}
	util_buf_free(&b);
	return res;
}

char *util_read_secret_file(const char *path, size_t max, size_t *len)
{
	struct util_buf b = {.max = max, .secret = true};
	char *res = NULL;
	int saved;

	if (read_into(path, &b) == 0) {
		/* the buffer as it is (never copied again): the caller wipes *len + 1 bytes */
		res = b.data ? b.data : calloc(1, 1);
		*len = b.data ? b.len : 0;
		b.data = NULL;
		if (!res)
			errno = ENOMEM;
	}
	saved = errno;
	util_buf_free(&b);
	errno = saved;
	return res;
}
