/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4: AWS Signature Version 4 (Authorization header), S3 and generic
 * styles. Canonical request -> string to sign -> HMAC chain; see sigv4.h.
 */
#include "sigv4.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "util.h"

#define SIGV4_ALGO "AWS4-HMAC-SHA256"

/* One header on its way into the canonical form. */
struct canon_header {
	char *name;  /* lower case */
	char *value; /* trimmed, whitespace runs folded */
	size_t order;
};

/* One query parameter, re-encoded. */
struct canon_param {
	char *key;
	char *value;
};

static char *lower_dup(const char *s)
{
	char *d = strdup(s);

	if (d)
		for (char *p = d; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return d;
}

/* Trim, and fold every run of whitespace (incl. folded line breaks) to one space. */
static char *fold_value(const char *s)
{
	char *d = malloc(strlen(s) + 1);
	size_t o = 0;
	bool space = false;

	if (!d)
		return NULL;
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			space = true;
			continue;
		}
		if (space && o)
			d[o++] = ' ';
		space = false;
		d[o++] = *s;
	}
	d[o] = '\0';
	return d;
}

static int header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	/* keep the caller's order among duplicates */
	return x->order < y->order ? -1 : x->order > y->order;
}

static int param_cmp(const void *a, const void *b)
{
	const struct canon_param *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->value, y->value);
}

/* Decode what the wire carries, then encode per SigV4 (so "%7E" and "~" agree). */
static char *reencode(const char *s, size_t n)
{
	size_t dlen;
	char *dec = util_uri_decode(s, n, &dlen);
	char *enc;

	if (!dec)
		return NULL;
	enc = util_uri_encode(dec, dlen, false);
	free(dec);
	return enc;
}

char *sigv4_canonical_query(const char *query)
{
	struct canon_param *params = NULL;
	size_t n = 0, cap = 0;
	struct util_buf b = {0};
	char *res = NULL;
	const char *p = query ? query : "";

	while (*p) {
		const char *amp = strchr(p, '&');
		size_t seglen = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', seglen);

		if (seglen) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				struct canon_param *np = realloc(params, ncap * sizeof(*np));
				if (!np)
					goto out;
				params = np;
				cap = ncap;
			}
			params[n].key = reencode(p, eq ? (size_t)(eq - p) : seglen);
			params[n].value =
			    eq ? reencode(eq + 1, seglen - (size_t)(eq + 1 - p)) : strdup("");
			n++;
			if (!params[n - 1].key || !params[n - 1].value)
				goto out;
		}
		p += seglen;
		if (*p == '&')
			p++;
	}
	if (n)
		qsort(params, n, sizeof(*params), param_cmp);
	for (size_t i = 0; i < n; i++)
		if (util_buf_printf(&b, "%s%s=%s", i ? "&" : "", params[i].key, params[i].value))
			goto out;
	res = util_buf_steal(&b);
out:
	for (size_t i = 0; i < n; i++) {
		free(params[i].key);
		free(params[i].value);
	}
	free(params);
	util_buf_free(&b);
	return res;
}

/* RFC 3986 dot-segment removal plus merging of empty segments ("//"). */
static char *normalize_path(const char *path)
{
	size_t len = strlen(path);
	char *out = malloc(len + 2);
	const char *p = path, *last = strrchr(path, '/');
	size_t o = 0;
	bool trailing;

	if (!out)
		return NULL;
	/* "/a/" , "/a/." and "/a/.." all name a directory: keep the final '/' */
	last = last ? last + 1 : path;
	trailing = !*last || !strcmp(last, ".") || !strcmp(last, "..");
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t seg = slash ? (size_t)(slash - p) : strlen(p);

		if (seg == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else if (seg > 0 && !(seg == 1 && p[0] == '.')) {
			out[o++] = '/';
			memcpy(out + o, p, seg);
			o += seg;
		}
		p += seg;
		if (*p == '/')
			p++;
	}
	if (trailing || o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

char *sigv4_canonical_path(const char *path, bool s3, bool normalize)
{
	char *norm, *enc;

	if (!path || !*path)
		return strdup("/");
	if (s3)
		return strdup(path);
	norm = normalize ? normalize_path(path) : strdup(path);
	if (!norm)
		return NULL;
	enc = util_uri_encode(norm, strlen(norm), true);
	free(norm);
	return enc;
}

static void free_headers(struct canon_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

static bool skip_header(const char *lname, bool add_sha, bool add_token)
{
	return !strcmp(lname, "authorization") || !strcmp(lname, "x-amz-date") ||
	       (add_sha && !strcmp(lname, "x-amz-content-sha256")) ||
	       (add_token && !strcmp(lname, "x-amz-security-token"));
}

void sigv4_result_free(struct sigv4_result *r)
{
	if (!r)
		return;
	free(r->authorization);
	util_free_secret(r->security_token);
	free(r->canonical_request);
	free(r->string_to_sign);
	memset(r, 0, sizeof(*r));
}

int sigv4_sign(const struct sigv4_params *p, struct sigv4_result *out)
{
	struct canon_header *hdrs = NULL;
	size_t nh = 0;
	struct util_buf canon = {0}, signed_hdrs = {0}, sts = {0}, auth = {0};
	char *cpath = NULL, *cquery = NULL, *key = NULL;
	const char *token, *payload;
	bool add_sha, add_token, sign_token, have_host = false;
	char date[9], scope_hash[65];
	uint8_t k[32];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!p || !p->method || !p->region || !p->service || !p->creds ||
	    !p->creds->access_key_id || !p->creds->secret_access_key)
		return -1;

	token =
	    p->creds->session_token && *p->creds->session_token ? p->creds->session_token : NULL;
	payload = p->payload_hash ? p->payload_hash : SIGV4_EMPTY_SHA256;
	add_sha = p->s3 || p->add_content_sha256;
	add_token = token != NULL;
	sign_token = add_token && !p->omit_session_token;
	util_amz_date(p->now ? p->now : time(NULL), out->amz_date);
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';

	hdrs = calloc(p->n_headers + 3, sizeof(*hdrs));
	if (!hdrs)
		goto out;
	for (size_t i = 0; i < p->n_headers; i++) {
		char *lname;

		if (!p->headers[i].name || !*p->headers[i].name)
			goto out;
		lname = lower_dup(p->headers[i].name);
		if (!lname)
			goto out;
		if (skip_header(lname, add_sha, add_token)) {
			free(lname);
			continue;
		}
		if (!strcmp(lname, "host"))
			have_host = true;
		hdrs[nh].name = lname;
		hdrs[nh].order = nh;
		hdrs[nh].value = fold_value(p->headers[i].value ? p->headers[i].value : "");
		if (!hdrs[nh++].value)
			goto out;
	}
	if (!have_host)
		goto out;
	hdrs[nh].name = strdup("x-amz-date");
	hdrs[nh].value = strdup(out->amz_date);
	hdrs[nh].order = nh;
	if (!hdrs[nh++].value)
		goto out;
	if (add_sha) {
		snprintf(out->content_sha256, sizeof(out->content_sha256), "%s", payload);
		hdrs[nh].name = strdup("x-amz-content-sha256");
		hdrs[nh].value = strdup(payload);
		hdrs[nh].order = nh;
		if (!hdrs[nh++].value)
			goto out;
	}
	if (sign_token) {
		hdrs[nh].name = strdup("x-amz-security-token");
		hdrs[nh].value = fold_value(token);
		hdrs[nh].order = nh;
		if (!hdrs[nh++].value)
			goto out;
	}
	for (size_t i = 0; i < nh; i++)
		if (!hdrs[i].name)
			goto out;
	qsort(hdrs, nh, sizeof(*hdrs), header_cmp);

	cpath = sigv4_canonical_path(p->path, p->s3, p->normalize_path);
	cquery = sigv4_canonical_query(p->query);
	if (!cpath || !cquery)
		goto out;
	if (util_buf_printf(&canon, "%s\n%s\n%s\n", p->method, cpath, cquery))
		goto out;
	for (size_t i = 0; i < nh; i++) {
		bool dup = i > 0 && !strcmp(hdrs[i].name, hdrs[i - 1].name);
		bool last = i + 1 == nh || strcmp(hdrs[i].name, hdrs[i + 1].name);
		if (dup) {
			if (util_buf_printf(&canon, ",%s", hdrs[i].value))
				goto out;
		} else {
			if (util_buf_printf(&canon, "%s:%s", hdrs[i].name, hdrs[i].value) ||
			    util_buf_printf(&signed_hdrs, "%s%s", signed_hdrs.len ? ";" : "",
			                    hdrs[i].name))
				goto out;
		}
		if (last && util_buf_puts(&canon, "\n"))
			goto out;
	}
	if (util_buf_printf(&canon, "\n%s\n%s", signed_hdrs.data, payload))
		goto out;

	util_sha256_hex(canon.data, canon.len, scope_hash);
	if (util_buf_printf(&sts, SIGV4_ALGO "\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date, date,
	                    p->region, p->service, scope_hash))
		goto out;

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
	 */
	if (asprintf(&key, "AWS4%s", p->creds->secret_access_key) < 0) {
		key = NULL;
		goto out;
	}
	util_hmac_sha256(key, strlen(key), date, strlen(date), k);
	util_hmac_sha256(k, sizeof(k), p->region, strlen(p->region), k);
	util_hmac_sha256(k, sizeof(k), p->service, strlen(p->service), k);
	util_hmac_sha256(k, sizeof(k), "aws4_request", 12, k);
	util_hmac_sha256(k, sizeof(k), sts.data, sts.len, k);
	util_hex(k, sizeof(k), out->signature);

	if (util_buf_printf(&auth,
	                    SIGV4_ALGO " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
	                               "Signature=%s",
	                    p->creds->access_key_id, date, p->region, p->service, signed_hdrs.data,
	                    out->signature))
		goto out;
	if (token) {
		out->security_token = strdup(token);
		if (!out->security_token)
			goto out;
	}
	out->authorization = util_buf_steal(&auth);
	out->canonical_request = util_buf_steal(&canon);
	out->string_to_sign = util_buf_steal(&sts);
	if (!out->authorization || !out->canonical_request || !out->string_to_sign)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(k, sizeof(k));
	util_free_secret(key);
	free_headers(hdrs, nh);
	free(cpath);
	free(cquery);
	util_buf_free(&canon);
	util_buf_free(&signed_hdrs);
	util_buf_free(&sts);
	util_buf_free(&auth);
	if (rc)
		sigv4_result_free(out);
	return rc;
}
