/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sigv4: SigV4 canonicalisation and signing (sigv4.h). Input: an HTTP
 * request as the AWS test suite writes it (request.txt):
 *   METHOD TARGET HTTP/1.1\n  Name:value\n  (continuation lines)\n  \n  body
 * TARGET is the path with an optional ?query. It is signed in S3 style and
 * in generic style with and without path normalisation.
 *
 * Checked: signing succeeds exactly when the request has a Host header (and
 * no empty header name), never shows the secret, and gives the same result
 * twice; the canonical request is built from sigv4_canonical_path() and
 * sigv4_canonical_query(); the canonical query is sorted, fully encoded and
 * a fixed point; a normalised path has no empty, "." or ".." segments; the
 * signed headers are sorted, lower case and unique; and the order of
 * headers with distinct names does not change the signature.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "creds.h"
#include "fuzz.h"
#include "sigv4.h"
#include "util.h"

#define MAX_HEADERS 32
#define SECRET      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

struct request {
	char *method, *path, *query, *body;
	size_t body_len;
	struct sigv4_header h[MAX_HEADERS];
	char *names[MAX_HEADERS], *values[MAX_HEADERS];
	size_t n;
	bool has_secret;
};

static char *dup_range(const char *s, const char *e)
{
	char *d = strndup(s, (size_t)(e - s));

	FUZZ_CHECK(d, "strndup");
	return d;
}

/* Split @text (NUL-terminated copy of the input) into a request. */
static void parse_request(char *text, size_t size, struct request *r)
{
	char *end = text + size, *p = text, *nl, *sp, *q;

	memset(r, 0, sizeof(*r));
	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl)
		nl = end;
	sp = memchr(p, ' ', (size_t)(nl - p));
	r->method = dup_range(p, sp ? sp : nl);
	if (sp) {
		char *target = sp + 1, *last = nl;

		/* the target runs to the last space (before "HTTP/1.1"), if any */
		for (char *s = nl; s > target; s--)
			if (s[-1] == ' ') {
				last = s - 1;
				break;
			}
		q = memchr(target, '?', (size_t)(last - target));
		r->path = dup_range(target, q ? q : last);
		if (q)
			r->query = dup_range(q + 1, last);
	}
	p = nl < end ? nl + 1 : end;
	/* headers up to an empty line; indented lines continue the previous value */
	while (p < end) {
		char *le, *colon;

		nl = memchr(p, '\n', (size_t)(end - p));
		le = nl ? nl : end;
		if (le == p) {
			p = le + 1;
			break;
		}
		if ((*p == ' ' || *p == '\t') && r->n) {
			char *v = r->values[r->n - 1], *nv;
			size_t vl = strlen(v);

			nv = realloc(v, vl + 1 + (size_t)(le - p) + 1);
			FUZZ_CHECK(nv, "realloc");
			nv[vl] = '\n';
			memcpy(nv + vl + 1, p, (size_t)(le - p));
			nv[vl + 1 + (size_t)(le - p)] = '\0';
			r->values[r->n - 1] = nv;
		} else if (r->n < MAX_HEADERS) {
			colon = memchr(p, ':', (size_t)(le - p));
			r->names[r->n] = dup_range(p, colon ? colon : le);
			r->values[r->n] = dup_range(colon ? colon + 1 : le, le);
			r->n++;
		}
		p = le + 1;
	}
	if (p < end) {
		r->body = p;
		r->body_len = (size_t)(end - p);
	}
	for (size_t i = 0; i < r->n; i++) {
		r->h[i].name = r->names[i];
		r->h[i].value = r->values[i];
	}
}

static void request_free(struct request *r)
{
	free(r->method);
	free(r->path);
	free(r->query);
	for (size_t i = 0; i < r->n; i++) {
		free(r->names[i]);
		free(r->values[i]);
	}
}

static bool hexup(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static bool unreserved(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* A canonical query: k=v pairs joined by '&', every byte encoded, sorted. */
static void check_canonical_query(const char *cq, const char *query)
{
	const char *p = cq, *prev = NULL;
	size_t prev_len = 0;
	char *again;

	while (*p) {
		const char *amp = strchr(p, '&'), *e = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(e - p));

		FUZZ_CHECK(eq && !memchr(eq + 1, '=', (size_t)(e - eq - 1)),
		           "pair without exactly one '=' in '%s'", cq);
		for (const char *c = p; c < e; c++) {
			if (c == eq)
				continue;
			if (*c == '%') {
				FUZZ_CHECK(c + 2 < e + 1 && hexup(c[1]) && hexup(c[2]),
				           "bad escape in '%s'", cq);
				c += 2;
			} else {
				FUZZ_CHECK(unreserved(*c), "unencoded '%c' in '%s'", *c, cq);
			}
		}
		if (prev) {
			/* (key, value) order: compare keys, then values */
			const char *pe = memchr(prev, '=', prev_len);
			size_t pk = (size_t)(pe - prev), k = (size_t)(eq - p);
			int c = strncmp(prev, p, pk < k ? pk : k);

			if (!c)
				c = pk < k ? -1 : pk > k;
			if (!c) {
				size_t pv = prev_len - pk - 1, v = (size_t)(e - eq - 1);
				c = strncmp(pe + 1, eq + 1, pv < v ? pv : v);
				if (!c)
					c = pv < v ? -1 : pv > v;
			}
			FUZZ_CHECK(c <= 0, "canonical query not sorted: '%s' (from '%s')", cq,
			           query ? query : "");
		}
		prev = p;
		prev_len = (size_t)(e - p);
		p = amp ? amp + 1 : e;
		FUZZ_CHECK(!amp || *p, "canonical query ends in '&': '%s'", cq);
	}
	again = sigv4_canonical_query(cq);
	FUZZ_CHECK(again && !strcmp(again, cq), "canonical query is no fixed point: '%s' -> '%s'",
	           cq, again ? again : "(null)");
	free(again);
}

static void check_normalized_path(const char *cp)
{
	FUZZ_CHECK(cp[0] == '/', "normalised path '%s' does not start with '/'", cp);
	FUZZ_CHECK(!strstr(cp, "//"), "normalised path '%s' has an empty segment", cp);
	for (const char *s = cp; s; s = strchr(s + 1, '/')) {
		const char *seg = s + 1, *e = strchr(seg, '/');
		size_t n = e ? (size_t)(e - seg) : strlen(seg);

		FUZZ_CHECK(!(n == 1 && seg[0] == '.') &&
		               !(n == 2 && seg[0] == '.' && seg[1] == '.'),
		           "normalised path '%s' keeps a dot segment", cp);
	}
}

/* The n-th line of @s (0-based), into a heap string. */
static char *line_of(const char *s, int n)
{
	const char *e;

	for (; n > 0 && s; n--) {
		s = strchr(s, '\n');
		s = s ? s + 1 : NULL;
	}
	if (!s)
		return NULL;
	e = strchr(s, '\n');
	return strndup(s, e ? (size_t)(e - s) : strlen(s));
}

/* An RFC 9110 token: what a header name is, and what the list check can split. */
static bool is_token(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
			return false;
	return true;
}

/* string to sign = ALGO, date, scope, SHA-256(canonical request); signature = HMAC chain. */
static void check_string_to_sign(const struct sigv4_result *r, const char *region,
                                 const char *service)
{
	char hash[65], *l3 = line_of(r->string_to_sign, 3), *l2 = line_of(r->string_to_sign, 2);
	char scope[128], date[9], hex[65], key[64];
	uint8_t k[32];

	util_sha256_hex(r->canonical_request, strlen(r->canonical_request), hash);
	FUZZ_CHECK(l3 && !strcmp(l3, hash), "string to sign does not hash the canonical request");
	memcpy(date, r->amz_date, 8);
	date[8] = '\0';
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, region, service);
	FUZZ_CHECK(l2 && !strcmp(l2, scope), "scope '%s', expected '%s'", l2 ? l2 : "", scope);
	snprintf(key, sizeof(key), "AWS4%s", SECRET);
	util_hmac_sha256(key, strlen(key), date, strlen(date), k);
	util_hmac_sha256(k, sizeof(k), region, strlen(region), k);
	util_hmac_sha256(k, sizeof(k), service, strlen(service), k);
	util_hmac_sha256(k, sizeof(k), "aws4_request", 12, k);
	util_hmac_sha256(k, sizeof(k), r->string_to_sign, strlen(r->string_to_sign), k);
	util_hex(k, sizeof(k), hex);
	FUZZ_CHECK(!strcmp(hex, r->signature), "signature is not HMAC(kSigning, string to sign)");
	free(l2);
	free(l3);
}

static void check_signed_headers(const struct sigv4_result *r)
{
	const char *sh = strstr(r->authorization, "SignedHeaders="), *e;
	const char *last_line = strrchr(r->canonical_request, '\n');
	char *list, *prev = NULL;
	const char *before;

	FUZZ_CHECK(sh, "no SignedHeaders in '%s'", r->authorization);
	sh += strlen("SignedHeaders=");
	e = strstr(sh, ", Signature=");
	FUZZ_CHECK(e, "no Signature in '%s'", r->authorization);
	list = dup_range(sh, e);
	/* the canonical request's line before the payload hash is the same list */
	FUZZ_CHECK(last_line, "canonical request of one line");
	before = last_line;
	while (before > r->canonical_request && before[-1] != '\n')
		before--;
	FUZZ_CHECK((size_t)(last_line - before) == strlen(list) &&
	               !strncmp(before, list, strlen(list)),
	           "SignedHeaders '%s' is not the canonical request's list", list);
	for (char *save = NULL, *t = strtok_r(list, ";", &save); t;
	     t = strtok_r(NULL, ";", &save)) {
		for (char *c = t; *c; c++)
			FUZZ_CHECK(!isupper((unsigned char)*c), "upper case in signed header '%s'",
			           t);
		FUZZ_CHECK(!prev || strcmp(prev, t) < 0, "signed headers not sorted or repeated");
		prev = t;
	}
	free(list);
}

static void sign_and_check(const struct request *rq, const struct creds *c, bool s3, bool normalize,
                           uint64_t bits)
{
	char hash[65];
	struct sigv4_params p = {
	    .method = rq->method,
	    .path = rq->path,
	    .query = rq->query,
	    .headers = rq->h,
	    .n_headers = rq->n,
	    .payload_hash = NULL,
	    .region = "us-east-1",
	    .service = s3 ? "s3" : "service",
	    .now = 1440938160, /* 20150830T123600Z, as in the test suite */
	    .s3 = s3,
	    .normalize_path = normalize,
	    .add_content_sha256 = bits & 1,
	    .omit_session_token = bits & 2,
	    .creds = c,
	};
	struct sigv4_result r1, r2;
	bool have_host = false, empty_name = false, distinct = true;
	int rc1, rc2;

	if (rq->body) {
		util_sha256_hex(rq->body, rq->body_len, hash);
		p.payload_hash = hash;
	} else if (bits & 4) {
		p.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	}
	for (size_t i = 0; i < rq->n; i++) {
		have_host |= !strcasecmp(rq->names[i], "host");
		empty_name |= !rq->names[i][0];
		for (size_t j = 0; j < i; j++)
			distinct &= strcasecmp(rq->names[i], rq->names[j]) != 0;
	}
	rc1 = sigv4_sign(&p, &r1);
	FUZZ_CHECK(rc1 == ((have_host && !empty_name) ? 0 : -1),
	           "sigv4_sign returned %d (Host header: %d, empty name: %d)", rc1, have_host,
	           empty_name);
	if (rc1 != 0)
		return;
	FUZZ_CHECK(r1.authorization && r1.canonical_request && r1.string_to_sign,
	           "a signature with parts missing");
	/* (unless the request itself holds it: the fuzzer learns it from these strstr()s) */
	FUZZ_CHECK(rq->has_secret || (!strstr(r1.authorization, SECRET) &&
	                              !strstr(r1.canonical_request, SECRET) &&
	                              !strstr(r1.string_to_sign, SECRET)),
	           "the secret key is in the output");
	FUZZ_CHECK(strlen(r1.signature) == 64, "signature '%s'", r1.signature);

	rc2 = sigv4_sign(&p, &r2);
	FUZZ_CHECK(rc2 == 0 && !strcmp(r1.authorization, r2.authorization) &&
	               !strcmp(r1.canonical_request, r2.canonical_request),
	           "the same request signed twice differs");
	sigv4_result_free(&r2);

	/* lines 2 and 3 of the canonical request: the path and the query */
	{
		char *cp = sigv4_canonical_path(rq->path, s3, normalize);
		char *cq = sigv4_canonical_query(rq->query);
		char *l0 = line_of(r1.canonical_request, 0);
		char *l1 = line_of(r1.canonical_request, 1);
		char *l2 = line_of(r1.canonical_request, 2);

		FUZZ_CHECK(cp && cq && l0 && l1 && l2, "allocation");
		if (!strchr(rq->method, '\n') && !strchr(cp, '\n')) {
			FUZZ_CHECK(!strcmp(l0, rq->method), "method line '%s'", l0);
			FUZZ_CHECK(!strcmp(l1, cp), "path line '%s', canonical path '%s'", l1, cp);
			FUZZ_CHECK(!strcmp(l2, cq), "query line '%s', canonical query '%s'", l2,
			           cq);
		}
		check_canonical_query(cq, rq->query);
		if (!s3 && normalize)
			check_normalized_path(cp);
		if (!s3)
			for (const char *ch = cp; *ch; ch++)
				FUZZ_CHECK(unreserved(*ch) || *ch == '/' ||
				               (*ch == '%' && hexup(ch[1]) && hexup(ch[2])),
				           "unencoded '%c' in canonical path '%s'", *ch, cp);
		free(cp);
		free(cq);
		free(l0);
		free(l1);
		free(l2);
	}
	check_string_to_sign(&r1, p.region, p.service);
	{
		bool tokens = true;

		for (size_t i = 0; i < rq->n; i++)
			tokens &= is_token(rq->names[i]);
		if (tokens)
			check_signed_headers(&r1);
	}

	/* distinct names: their order must not matter */
	if (distinct && rq->n > 1) {
		struct sigv4_header rev[MAX_HEADERS];

		for (size_t i = 0; i < rq->n; i++)
			rev[i] = rq->h[rq->n - 1 - i];
		p.headers = rev;
		rc2 = sigv4_sign(&p, &r2);
		FUZZ_CHECK(rc2 == 0 && !strcmp(r1.signature, r2.signature),
		           "reordering headers changed the signature");
		sigv4_result_free(&r2);
	}
	sigv4_result_free(&r1);
	sigv4_result_free(&r1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	uint64_t bits = fuzz_hash(data, size);
	static char akid[] = "AKIDEXAMPLE", secret[] = SECRET,
	            token[] =
	                "AQoDYXdzEPT//////////"
	                "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIe"
	                "oIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/"
	                "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9H"
	                "FvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"
	                "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
	struct creds c = {
	    .access_key_id = akid,
	    .secret_access_key = secret,
	    .session_token = (bits & 8) ? token : NULL,
	};
	struct request rq;

	parse_request(text, strlen(text), &rq);
	rq.has_secret = memmem(data, size, SECRET, strlen(SECRET)) != NULL;
	sign_and_check(&rq, &c, true, false, bits >> 4);
	sign_and_check(&rq, &c, false, true, bits >> 8);
	sign_and_check(&rq, &c, false, false, bits >> 12);
	request_free(&rq);
	free(text);
	return 0;
}
