/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sts: AssumeRole and AssumeRoleWithWebIdentity over the query protocol,
 * signed per attempt (signer.h: SigV4, generic style) and run as blocking
 * xfer requests.
 */
#include "sts.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "endpoint.h"
#include "log.h"
#include "signer.h"
#include "util.h"
#include "xfer.h"
#include "xml_dom.h"

#define STS_VERSION      "2011-06-15"
#define STS_MAX_RESPONSE (256u << 10)
#define STS_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"

const char *sts_strerror(enum sts_err err)
{
	switch (err) {
	case STS_OK:
		return "success";
	case STS_ERR_INVALID:
		return "invalid argument";
	case STS_ERR_NETWORK:
		return "STS unreachable";
	case STS_ERR_REMOTE:
		return "STS refused the request";
	case STS_ERR_PROTOCOL:
		return "unparsable STS response";
	case STS_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown STS error";
}

const char *sts_error_format(const struct sts_error *e, char *buf, size_t len)
{
	if (e->code[0])
		snprintf(buf, len, "%s: %s (HTTP %ld, request id %s)", e->code, e->message,
		         e->http_status, e->request_id[0] ? e->request_id : "none");
	else
		snprintf(buf, len, "%s: %s", sts_strerror(e->err), e->message);
	return buf;
}

static void set_err(struct sts_error *err, enum sts_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct sts_error *err, enum sts_err code, const char *fmt, ...)
{
	va_list ap;

	err->err = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* Text of the first @name at or below @n, heap-allocated, or NULL. It may be
 * a secret key or token: libxml2's copy is wiped. */
static char *elem_text(xmlNode *n, const char *name)
{
	return xml_dom_text(xml_dom_find(n, name), true);
}

static void copy_text(xmlNode *root, const char *name, char *dst, size_t len)
{
	xml_dom_copy(xml_dom_find(root, name), dst, len);
}

static xmlDoc *parse_xml(const char *xml, size_t len)
{
	return xml_dom_parse(xml, len, STS_MAX_RESPONSE);
}

int sts_parse_error(const char *xml, size_t len, struct sts_error *err)
{
	xmlDoc *doc = parse_xml(xml, len);
	xmlNode *root, *e;
	int rc = -1;

	err->code[0] = '\0';
	if (!doc)
		return -1;
	root = xml_dom_root(doc);
	e = xml_dom_find(root, "Error");
	if (!e)
		goto out;
	copy_text(e, "Code", err->code, sizeof(err->code));
	copy_text(e, "Message", err->message, sizeof(err->message));
	copy_text(root, "RequestId", err->request_id, sizeof(err->request_id));
	rc = err->code[0] ? 0 : -1;
out:
	xmlFreeDoc(doc);
	return rc;
}

/* What the per-attempt sign callback needs. */
struct sts_sign_ctx {
	const struct creds *creds; /* NULL: sent unsigned (AssumeRoleWithWebIdentity) */
	const char *region;
	char host[256];
	char body_hash[65];
};

static int sts_sign(void *user, struct xfer_request *req, struct curl_slist **extra)
{
	struct sts_sign_ctx *ctx = user;
	struct sigv4_header hdrs[] = {
	    {"Host", ctx->host},
	    {"Content-Type", STS_CONTENT_TYPE},
	};
	struct signer_params p = {
	    .service = "sts",
	    .region = ctx->region,
	    .path = "/",
	    .headers = hdrs,
	    .n_headers = 2,
	    .payload_hash = ctx->body_hash,
	    .creds = ctx->creds,
	};

	return signer_sign(&p, req, extra);
}

/* Pull the Credentials element of an Assume*Result into @out (see sts.h). */
int sts_parse_credentials(const char *xml, size_t len, struct creds *out, struct sts_error *err)
{
	xmlDoc *doc = parse_xml(xml, len);
	xmlNode *root, *c;
	char *exp = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!doc) {
		set_err(err, STS_ERR_PROTOCOL, "STS answered with something that is not XML");
		return -1;
	}
	root = xml_dom_root(doc);
	c = xml_dom_find(root, "Credentials");
	if (!c) {
		set_err(err, STS_ERR_PROTOCOL, "STS response has no Credentials element");
		goto out;
	}
	out->access_key_id = elem_text(c->children, "AccessKeyId");
	out->secret_access_key = elem_text(c->children, "SecretAccessKey");
	out->session_token = elem_text(c->children, "SessionToken");
	exp = elem_text(c->children, "Expiration");
	if (!out->access_key_id || !out->secret_access_key || !out->session_token || !exp ||
	    !*out->access_key_id || !*out->secret_access_key) {
		set_err(err, STS_ERR_PROTOCOL,
		        "STS Credentials lack AccessKeyId, SecretAccessKey, SessionToken or "
		        "Expiration");
		goto out;
	}
	if (util_parse_iso8601(exp, &out->expiration)) {
		set_err(err, STS_ERR_PROTOCOL, "STS gave an unreadable Expiration '%s'", exp);
		goto out;
	}
	snprintf(out->source, sizeof(out->source), "sts");
	copy_text(root, "RequestId", err->request_id, sizeof(err->request_id));
	rc = 0;
out:
	free(exp);
	if (rc)
		creds_clear(out);
	xml_dom_wipe(root);
	xmlFreeDoc(doc);
	return rc;
}

/* The verdict on one attempt (xfer.h): STS's throttling and "later" codes are retried. */
static enum xfer_verdict classify_attempt(void *user, struct xfer_request *req)
{
	struct sts_error e;

	if (req->result.http_status < 300)
		return XFER_ACCEPT;
	memset(&e, 0, sizeof(e));
	if (sts_parse_error(req->result.err_body, req->result.err_body_len, &e) != 0)
		return XFER_ACCEPT;
	if (xfer_is_throttle_code(e.code, strlen(e.code)))
		return XFER_RETRY_SLOW;
	return xfer_is_retryable_code(e.code, strlen(e.code)) ? XFER_RETRY : XFER_ACCEPT;
}

/* POST one query-protocol action; signed when @caller is not NULL. */
static int sts_call(const struct sts_config *cfg, const struct creds *caller, const char *action,
                    const char *const *kv, size_t nkv, struct creds *out, struct sts_error *err)
{
	struct xfer_request req;
	struct sts_sign_ctx ctx = {0};
	struct xfer_header hdrs[1] = {{"Content-Type", STS_CONTENT_TYPE}};
	char *url = NULL, *body = NULL, *endpoint = NULL;
	char ebuf[256];
	const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
	int rc = -1;

	xfer_request_init(&req);
	if (!cfg->xfer) {
		set_err(err, STS_ERR_INVALID, "no transfer engine given to the STS client");
		return -1;
	}
	if (cfg->endpoint && *cfg->endpoint) {
		endpoint = strdup(cfg->endpoint);
	} else if (endpoint_resolve("sts", NULL, region, &endpoint, ebuf, sizeof(ebuf))) {
		set_err(err, STS_ERR_INVALID, "%s", ebuf);
		return -1;
	}
	body = util_form_encode(kv, nkv);
	if (!endpoint || !body || asprintf(&url, "%s/", endpoint) < 0) {
		url = NULL;
		set_err(err, STS_ERR_NOMEM, "out of memory building the STS request");
		goto out;
	}
	if (endpoint_host_header(endpoint, ctx.host, sizeof(ctx.host))) {
		set_err(err, STS_ERR_INVALID, "bad STS endpoint '%s'", endpoint);
		goto out;
	}
	ctx.creds = caller;
	ctx.region = region;
	util_sha256_hex(body, strlen(body), ctx.body_hash);

	req.method = "POST";
	req.url = url;
	req.headers = hdrs;
	req.n_headers = 1;
	req.body = body;
	req.body_len = strlen(body);
	req.resp_max = STS_MAX_RESPONSE;
	req.timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
	req.log_name = action;
	req.classify = classify_attempt;
	req.sign = sts_sign;
	req.sign_user = &ctx;
	log_debug("sts: %s at %s%s%s", action, endpoint, caller ? " as " : "",
	          caller ? caller->access_key_id : "");
	if (xfer_perform(cfg->xfer, &req)) {
		set_err(err, STS_ERR_NETWORK, "STS %s at %s failed: %s%s%s", action, endpoint,
		        xfer_strstatus(req.result.status), req.result.errmsg[0] ? ": " : "",
		        req.result.errmsg);
		goto out;
	}
	err->http_status = req.result.http_status;
	snprintf(err->request_id, sizeof(err->request_id), "%s", req.result.request_id);
	if (req.result.http_status >= 300 || req.result.http_status < 200) {
		if (sts_parse_error(req.result.err_body, req.result.err_body_len, err) == 0) {
			err->err = STS_ERR_REMOTE;
		} else {
			set_err(err, STS_ERR_REMOTE, "STS %s at %s answered HTTP %ld", action,
			        endpoint, req.result.http_status);
		}
		goto out;
	}
	if (sts_parse_credentials(req.result.body, req.result.body_len, out, err))
		goto out;
	log_info("sts: %s gave temporary key %s, expiring in %lds", action, out->access_key_id,
	         (long)(out->expiration - time(NULL)));
	rc = 0;
out:
	if (req.result.body) /* an AssumeRole answer holds the role's secret key */
		OPENSSL_cleanse(req.result.body, req.result.body_len);
	xfer_request_cleanup(&req);
	free(url);
	util_free_secret(body); /* may hold a web identity token */
	free(endpoint);
	return rc;
}

static int check_params(const struct sts_assume_params *p, bool web, struct sts_error *err)
{
	if (!p || !p->role_arn || !*p->role_arn) {
		set_err(err, STS_ERR_INVALID,
		        "no role ARN given: set role_arn in the profile, "
		        "AWS_ROLE_ARN, or the role option");
		return -1;
	}
	if (strncmp(p->role_arn, "arn:", 4)) {
		set_err(err, STS_ERR_INVALID,
		        "'%s' is not a role ARN: expected arn:aws:iam::ACCOUNT:role/NAME",
		        p->role_arn);
		return -1;
	}
	if (web && (!p->web_identity_token || !*p->web_identity_token)) {
		set_err(err, STS_ERR_INVALID, "the web identity token is empty");
		return -1;
	}
	if (p->duration_s < 0 || p->duration_s > 43200) {
		set_err(err, STS_ERR_INVALID, "role duration %d s is out of range (900..43200)",
		        p->duration_s);
		return -1;
	}
	return 0;
}

static int assume(const struct sts_config *cfg, const struct creds *caller,
                  const struct sts_assume_params *p, bool web, struct creds *out,
                  struct sts_error *err)
{
	const char *kv[14];
	size_t n = 0;
	char session[64], duration[16];

	memset(err, 0, sizeof(*err));
	memset(out, 0, sizeof(*out));
	if (check_params(p, web, err))
		return -1;
	if (!web && (!caller || !caller->access_key_id || !caller->secret_access_key)) {
		set_err(err, STS_ERR_INVALID, "AssumeRole needs credentials to sign with");
		return -1;
	}
	if (p->session_name && *p->session_name)
		snprintf(session, sizeof(session), "%s", p->session_name);
	else
		snprintf(session, sizeof(session), "hpcops-%lld", (long long)time(NULL));
	kv[n++] = "Action";
	kv[n++] = web ? "AssumeRoleWithWebIdentity" : "AssumeRole";
	kv[n++] = "Version";
	kv[n++] = STS_VERSION;
	kv[n++] = "RoleArn";
	kv[n++] = p->role_arn;
	kv[n++] = "RoleSessionName";
	kv[n++] = session;
	if (p->duration_s) {
		snprintf(duration, sizeof(duration), "%d", p->duration_s);
		kv[n++] = "DurationSeconds";
		kv[n++] = duration;
	}
	if (!web && p->external_id && *p->external_id) {
		kv[n++] = "ExternalId";
		kv[n++] = p->external_id;
	}
	if (web) {
		kv[n++] = "WebIdentityToken";
		kv[n++] = p->web_identity_token;
	}
	return sts_call(cfg, web ? NULL : caller, kv[1], kv, n / 2, out, err);
}

int sts_assume_role(const struct sts_config *cfg, const struct creds *caller,
                    const struct sts_assume_params *p, struct creds *out, struct sts_error *err)
{
	return assume(cfg, caller, p, false, out, err);
}

int sts_assume_role_with_web_identity(const struct sts_config *cfg,
                                      const struct sts_assume_params *p, struct creds *out,
                                      struct sts_error *err)
{
	return assume(cfg, NULL, p, true, out, err);
}
