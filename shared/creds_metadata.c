/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_metadata: credentials from the container credentials endpoint
 * (ECS, EKS Pod Identity, CodeBuild) and from EC2 IMDSv2, over the
 * provider's private transfer engine.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "creds.h"
#include "creds_private.h"
#include "log.h"
#include "util.h"
#include "xfer.h"

/*
 * The engine for metadata and STS requests: always a private one, so that
 * creds_get() may be called from another engine's sign callback.
 */
struct xfer_engine *creds_engine_locked(struct creds_provider *p, struct creds_error *err)
{
	struct xfer_config cfg = {0};

	if (p->xfer_own)
		return p->xfer_own;
	cfg.max_connections = 2;
	cfg.retry.max_attempts = 3;
	cfg.retry.budget_ms = 10000;
	cfg.ca_bundle = p->ca_bundle;
	p->xfer_own = xfer_engine_new(&cfg);
	if (!p->xfer_own)
		creds_set_err(err, CREDS_ERR_NOMEM,
		              "could not start the HTTP engine for credentials");
	return p->xfer_own;
}

/* One small blocking HTTP request; the 2xx body is returned in *body (heap). */
struct http_call {
	const char *method;
	const char *url;
	const struct xfer_header *headers;
	size_t n_headers;
	long connect_timeout_ms;
	int attempts;
	const char *what; /* for messages: "IMDS", "container credentials endpoint" */
};

static int http_call_locked(struct creds_provider *p, const struct http_call *c, char **body,
                            long *status, struct creds_error *err)
{
	struct xfer_engine *e = creds_engine_locked(p, err);
	struct xfer_request req;
	int rc = -1;

	*body = NULL;
	*status = 0;
	if (!e)
		return -1;
	xfer_request_init(&req);
	req.method = c->method;
	req.url = c->url;
	req.headers = c->headers;
	req.n_headers = c->n_headers;
	req.resp_max = CREDS_MAX_RESPONSE;
	req.max_attempts = c->attempts;
	req.timeout_ms = p->timeout_ms;
	req.connect_timeout_ms = c->connect_timeout_ms;
	req.log_name = c->what;
	if (!strcmp(c->method, "PUT")) {
		req.body = "";
		req.body_len = 0;
	}
	if (xfer_perform(e, &req)) {
		creds_set_err(err, CREDS_ERR_NETWORK, "%s at %s unreachable: %s%s%s", c->what,
		              c->url, xfer_strstatus(req.result.status),
		              req.result.errmsg[0] ? ": " : "", req.result.errmsg);
		goto out;
	}
	*status = req.result.http_status;
	if (*status >= 200 && *status < 300) {
		*body = req.result.body ? req.result.body : strdup("");
		req.result.body = NULL;
		if (!*body) {
			creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	xfer_request_cleanup(&req);
	return rc;
}

/* Parse {"AccessKeyId","SecretAccessKey","Token","Expiration"} (IMDS and container). */
static int parse_json_creds(const char *body, const char *what, const char *source,
                            struct creds *out, struct creds_error *err)
{
	json_error_t jerr;
	json_t *j = json_loads(body, 0, &jerr);
	const char *akid, *secret, *token, *exp, *code;
	time_t t = 0;
	int rc = -1;

	if (!j || !json_is_object(j)) {
		creds_set_err(err, CREDS_ERR_PROTOCOL,
		              "%s answered with something that is not JSON", what);
		goto out;
	}
	code = json_string_value(json_object_get(j, "Code"));
	if (code && strcmp(code, "Success")) {
		const char *msg = json_string_value(json_object_get(j, "Message"));
		creds_set_err(err, CREDS_ERR_REMOTE, "%s reported %s%s%s", what, code,
		              msg ? ": " : "", msg ? msg : "");
		goto out;
	}
	akid = json_string_value(json_object_get(j, "AccessKeyId"));
	secret = json_string_value(json_object_get(j, "SecretAccessKey"));
	token = json_string_value(json_object_get(j, "Token"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	if (!akid || !*akid || !secret || !*secret) {
		creds_set_err(err, CREDS_ERR_PROTOCOL,
		              "%s answer lacks AccessKeyId or SecretAccessKey", what);
		goto out;
	}
	if (exp && util_parse_iso8601(exp, &t)) {
		creds_set_err(err, CREDS_ERR_PROTOCOL, "%s gave an unreadable Expiration '%s'",
		              what, exp);
		goto out;
	}
	if (creds_set(out, akid, secret, token, t, source)) {
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (j) {
		/* the JSON held secrets: wipe the strings before jansson frees them */
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v)
		{
			if (json_is_string(v))
				OPENSSL_cleanse((char *)json_string_value(v),
				                json_string_length(v));
		}
		json_decref(j);
	}
	return rc;
}

static bool http_host_allowed(const char *url)
{
	static const char *const ok[] = {"127.",          "localhost",      "[::1]",
	                                 "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"};
	const char *h = url + 7;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t n = strlen(ok[i]);
		if (!strncasecmp(h, ok[i], n)) {
			char next = h[n];
			/* "127." is a prefix; the others must end the host */
			if (ok[i][n - 1] == '.' || next == ':' || next == '/' || next == '\0')
				return true;
		}
	}
	return false;
}

int creds_from_container_locked(struct creds_provider *p, struct creds *out,
                                struct creds_error *err)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tok_file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok_env = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char *url = NULL, *token = NULL, *body = NULL;
	size_t token_len = 0;
	struct xfer_header h[1];
	struct http_call call = {
	    .method = "GET", .attempts = 3, .what = "the container credentials endpoint"};
	long status;
	int rc = -1;

	if (rel && *rel) {
		const char *host = getenv(CONTAINER_TEST_HOST_ENV);
		if (host && *host)
			log_warn("credentials: container endpoint host overridden by %s=%s "
			         "(meant for tests only)",
			         CONTAINER_TEST_HOST_ENV, host);
		if (asprintf(&url, "http://%s%s%s", host && *host ? host : CONTAINER_DEFAULT_HOST,
		             rel[0] == '/' ? "" : "/", rel) < 0)
			url = NULL;
	} else if (full && *full) {
		if (strncasecmp(full, "https://", 8) &&
		    !(strncasecmp(full, "http://", 7) == 0 && http_host_allowed(full))) {
			creds_set_err(
			    err, CREDS_ERR_CONFIG,
			    "AWS_CONTAINER_CREDENTIALS_FULL_URI=%s is not allowed: use https://, "
			    "or http:// to a loopback address or the ECS/EKS agent "
			    "(169.254.170.2, 169.254.170.23)",
			    full);
			return -1;
		}
		url = strdup(full);
	} else {
		return 0;
	}
	if (!url) {
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		return -1;
	}
	if (tok_file && *tok_file) {
		token = util_read_secret_file(tok_file, CREDS_MAX_FILE, &token_len);
		if (!token) {
			creds_set_err(err, CREDS_ERR_CONFIG,
			              "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s",
			              tok_file, strerror(errno));
			goto out;
		}
	} else if (tok_env && *tok_env) {
		token = strdup(tok_env);
		token_len = token ? strlen(token) : 0;
	}
	if (token) {
		char *t = creds_trim(token);
		if (strpbrk(t, "\r\n")) {
			creds_set_err(err, CREDS_ERR_CONFIG,
			              "the container authorization token contains a line break");
			goto out;
		}
		memmove(token, t, strlen(t) + 1);
		h[0].name = "Authorization";
		h[0].value = token;
		call.headers = h;
		call.n_headers = 1;
	}
	call.url = url;
	if (http_call_locked(p, &call, &body, &status, err))
		goto out;
	if (!body) {
		creds_set_err(err, CREDS_ERR_REMOTE,
		              "the container credentials endpoint %s answered HTTP %ld%s", url,
		              status,
		              status == 401 || status == 403
		                  ? ": check AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)"
		                  : "");
		goto out;
	}
	if (parse_json_creds(body, "the container credentials endpoint", "container", out, err))
		goto out;
	rc = 1;
out:
	util_free_secret(body);
	util_free_secret_len(token, token_len);
	free(url);
	return rc;
}

bool creds_imds_disabled(void)
{
	const char *d = getenv("AWS_EC2_METADATA_DISABLED");

	return d && !strcasecmp(d, "true");
}

static char *imds_endpoint(void)
{
	const char *e = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	size_t n;

	if (!(e && *e))
		e = mode && !strcasecmp(mode, "IPv6") ? IMDS_DEFAULT_ENDPOINT_V6
		                                      : IMDS_DEFAULT_ENDPOINT;
	n = strlen(e);
	while (n > 0 && e[n - 1] == '/')
		n--;
	return strndup(e, n);
}

/* IMDSv2 session token: reuse the cached one, else PUT for a new one. */
static int imds_token_locked(struct creds_provider *p, const char *base, struct creds_error *err)
{
	struct xfer_header put_h[] = {{"X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL}};
	struct http_call call = {.method = "PUT",
	                         .headers = put_h,
	                         .n_headers = 1,
	                         .connect_timeout_ms = IMDS_CONNECT_TIMEOUT_MS,
	                         .attempts = 2,
	                         .what = "EC2 instance metadata (IMDS)"};
	char *url = NULL, *token = NULL;
	time_t now = time(NULL);
	long status;
	int rc = -1;

	if (p->imds_token && now < p->imds_token_exp)
		return 0;
	util_free_secret(p->imds_token);
	p->imds_token = NULL;
	if (asprintf(&url, "%s/latest/api/token", base) < 0) {
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		return -1;
	}
	call.url = url;
	if (http_call_locked(p, &call, &token, &status, err))
		goto out;
	if (!token || !*creds_trim(token)) {
		creds_set_err(
		    err, CREDS_ERR_REMOTE,
		    "IMDS at %s refused a session token (HTTP %ld): IMDSv2 may be disabled "
		    "or the hop limit too low",
		    base, status);
		goto out;
	}
	memmove(token, creds_trim(token), strlen(creds_trim(token)) + 1);
	p->imds_token = token;
	token = NULL;
	/* renew well before the TTL we asked for */
	p->imds_token_exp = now + atoi(IMDS_TOKEN_TTL) - 300;
	rc = 0;
out:
	util_free_secret(token);
	free(url);
	return rc;
}

/* IMDSv2 GET of @path with a session token. Body (heap) in *out. */
int creds_imds_get_locked(struct creds_provider *p, const char *path, char **out,
                          struct creds_error *err)
{
	char *base = imds_endpoint(), *url = NULL;
	struct xfer_header get_h[1];
	struct http_call call = {.method = "GET",
	                         .headers = get_h,
	                         .n_headers = 1,
	                         .connect_timeout_ms = IMDS_CONNECT_TIMEOUT_MS,
	                         .attempts = 2,
	                         .what = "EC2 instance metadata (IMDS)"};
	long status = 0;
	int rc = -1;

	*out = NULL;
	if (!base || asprintf(&url, "%s%s", base, path) < 0) {
		url = NULL;
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		goto out;
	}
	call.url = url;
	/* a cached token may have been revoked (401): get a new one once */
	for (int i = 0; i < 2; i++) {
		if (imds_token_locked(p, base, err))
			goto out;
		get_h[0].name = "X-aws-ec2-metadata-token";
		get_h[0].value = p->imds_token;
		if (http_call_locked(p, &call, out, &status, err))
			goto out;
		if (status != 401)
			break;
		util_free_secret(p->imds_token);
		p->imds_token = NULL;
	}
	if (!*out) {
		creds_set_err(err, status == 404 ? CREDS_ERR_NOT_FOUND : CREDS_ERR_REMOTE,
		              "IMDS %s answered HTTP %ld%s", path, status,
		              status == 404 ? " (no such entry: is an instance profile attached?)"
		                            : "");
		goto out;
	}
	rc = 0;
out:
	free(url);
	free(base);
	return rc;
}

int creds_from_imds_locked(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	char *roles = NULL, *body = NULL, *path = NULL, *role;
	int rc = -1;

	if (creds_imds_disabled())
		return 0;
	if (creds_imds_get_locked(p, "/latest/meta-data/iam/security-credentials/", &roles, err))
		goto out;
	role = creds_trim(roles);
	role[strcspn(role, "\r\n")] = '\0';
	if (!*role) {
		creds_set_err(err, CREDS_ERR_NOT_FOUND,
		              "IMDS lists no IAM role: attach an instance profile");
		goto out;
	}
	if (asprintf(&path, "/latest/meta-data/iam/security-credentials/%s", role) < 0) {
		path = NULL;
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (creds_imds_get_locked(p, path, &body, err))
		goto out;
	if (parse_json_creds(body, "IMDS", "imds", out, err))
		goto out;
	log_debug("credentials: IMDS role %s", role);
	rc = 1;
out:
	free(roles);
	free(path);
	util_free_secret(body);
	return rc;
}
