// SPDX-License-Identifier: Apache-2.0
/*
 * creds: the AWS credential chain (environment, profiles, AssumeRole, web
 * identity, container credentials, EC2 IMDSv2) and region resolution, with
 * a thread-safe cache that renews temporary credentials ahead of expiry.
 */
#include "creds.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "log.h"
#include "sts.h"
#include "util.h"
#include "xfer.h"

#define CREDS_MAX_FILE           (1u << 20)  /* config/credentials/token files */
#define CREDS_MAX_RESPONSE       (64u << 10) /* IMDS / container answers */
#define CREDS_MAX_ROLE_CHAIN     5           /* source_profile hops */
#define IMDS_DEFAULT_ENDPOINT    "http://169.254.169.254"
#define IMDS_DEFAULT_ENDPOINT_V6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL           "21600"
#define IMDS_CONNECT_TIMEOUT_MS  1000
#define CONTAINER_DEFAULT_HOST   "169.254.170.2"
/* Tests only: where AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is resolved instead of 169.254.170.2. */
#define CONTAINER_TEST_HOST_ENV "HPCOPS_TEST_CONTAINER_CREDENTIALS_HOST"

struct creds_provider {
	/* Set at creation, read-only afterwards: no lock needed. */
	char *profile_opt; /* explicit profile, or NULL */
	char *region_opt;
	char *ca_bundle;
	int refresh_ahead_s;
	long timeout_ms;
	bool is_static;

	pthread_mutex_t lock;
	/* Protected by lock. */
	struct xfer_engine *xfer_own; /* made on first HTTP need */
	struct creds cached;
	bool have;
	char region[64];
	bool have_region;
	char *imds_token; /* IMDSv2 session token (a secret), reused until imds_token_exp */
	time_t imds_token_exp;
};

const char *creds_strerror(enum creds_err err)
{
	switch (err) {
	case CREDS_OK:
		return "success";
	case CREDS_ERR_NOT_FOUND:
		return "no AWS credentials found";
	case CREDS_ERR_CONFIG:
		return "bad AWS credentials configuration";
	case CREDS_ERR_NETWORK:
		return "credentials endpoint unreachable";
	case CREDS_ERR_REMOTE:
		return "credentials service refused";
	case CREDS_ERR_PROTOCOL:
		return "unparsable credentials response";
	case CREDS_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown credentials error";
}

static void set_err(struct creds_error *err, enum creds_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct creds_error *err, enum creds_err code, const char *fmt, ...)
{
	va_list ap;

	err->err = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* ---- struct creds ---- */

void creds_clear(struct creds *c)
{
	if (!c)
		return;
	free(c->access_key_id);
	util_free_secret(c->secret_access_key);
	util_free_secret(c->session_token);
	memset(c, 0, sizeof(*c));
}

int creds_copy(struct creds *dst, const struct creds *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key_id = src->access_key_id ? strdup(src->access_key_id) : NULL;
	dst->secret_access_key = src->secret_access_key ? strdup(src->secret_access_key) : NULL;
	dst->session_token = src->session_token ? strdup(src->session_token) : NULL;
	dst->expiration = src->expiration;
	memcpy(dst->source, src->source, sizeof(dst->source));
	if ((src->access_key_id && !dst->access_key_id) ||
	    (src->secret_access_key && !dst->secret_access_key) ||
	    (src->session_token && !dst->session_token)) {
		creds_clear(dst);
		return -1;
	}
	return 0;
}

static int creds_set(struct creds *c, const char *akid, const char *secret, const char *token,
                     time_t exp, const char *source)
{
	memset(c, 0, sizeof(*c));
	c->access_key_id = strdup(akid);
	c->secret_access_key = strdup(secret);
	c->session_token = token && *token ? strdup(token) : NULL;
	c->expiration = exp;
	snprintf(c->source, sizeof(c->source), "%s", source);
	if (!c->access_key_id || !c->secret_access_key || (token && *token && !c->session_token)) {
		creds_clear(c);
		return -1;
	}
	return 0;
}

/* ---- files ---- */

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && *h)
		return h;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : "/";
}

/* "~/x" -> "$HOME/x"; heap string. */
static char *expand_home(const char *path)
{
	char *s;

	if (path[0] == '~' && (path[1] == '/' || !path[1])) {
		if (asprintf(&s, "%s%s", home_dir(), path + 1) < 0)
			return NULL;
		return s;
	}
	return strdup(path);
}

static char *config_path(bool credentials)
{
	const char *env = getenv(credentials ? "AWS_SHARED_CREDENTIALS_FILE" : "AWS_CONFIG_FILE");

	if (env && *env)
		return expand_home(env);
	return expand_home(credentials ? "~/.aws/credentials" : "~/.aws/config");
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* "[  profile   x ]" -> "profile x" in place. */
static void fold_section(char *s)
{
	char *o = s;
	bool space = false;

	s = trim(s);
	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			space = true;
			continue;
		}
		if (space && o != s)
			*o++ = ' ';
		space = false;
		*o++ = *s;
	}
	*o = '\0';
}

/*
 * Walk @path; for a @section match, return the value of @key (heap) or, with
 * @key NULL, a non-NULL marker (strdup("")) meaning "section exists".
 */
static char *ini_lookup(const char *path, const char *section, const char *key)
{
	char *text = util_read_file(path, CREDS_MAX_FILE);
	char *line, *save = NULL, *res = NULL;
	bool in = false;

	if (!text)
		return NULL;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *t, *eq;
		size_t l = strlen(line);

		if (l && line[l - 1] == '\r')
			line[--l] = '\0';
		/* indented lines are sub-settings ("s3 =\n  max_concurrent_requests = 4") */
		if (isspace((unsigned char)line[0]) && in && trim(line)[0])
			continue;
		t = trim(line);
		if (!*t || *t == '#' || *t == ';')
			continue;
		if (*t == '[') {
			char *end = strrchr(t, ']');
			if (!end)
				continue;
			*end = '\0';
			fold_section(t + 1);
			in = !strcmp(trim(t + 1), section);
			if (in && !key) {
				res = strdup("");
				break;
			}
			continue;
		}
		if (!in || !key)
			continue;
		eq = strchr(t, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (!strcasecmp(trim(t), key)) {
			res = strdup(trim(eq + 1));
			break;
		}
	}
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	return res;
}

char *creds_ini_get(const char *path, const char *section, const char *key)
{
	return key ? ini_lookup(path, section, key) : NULL;
}

/* Look in the credentials file ("[name]"), then the config file ("[profile name]"). */
static char *profile_lookup(const char *profile, const char *key)
{
	char *path = config_path(true), *v = NULL, section[300];

	if (path)
		v = ini_lookup(path, profile, key);
	free(path);
	if (v)
		return v;
	path = config_path(false);
	if (!path)
		return NULL;
	snprintf(section, sizeof(section), "profile %s", profile);
	v = ini_lookup(path, section, key);
	if (!v && !strcmp(profile, "default"))
		v = ini_lookup(path, "default", key);
	free(path);
	return v;
}

char *creds_profile_get(const char *profile, const char *key)
{
	char *v;

	if (!profile || !key)
		return NULL;
	v = profile_lookup(profile, key);
	/* an empty value counts as not set */
	if (v && !*v) {
		free(v);
		v = NULL;
	}
	return v;
}

static bool profile_exists(const char *profile)
{
	char *v = profile_lookup(profile, NULL);

	free(v);
	return v != NULL;
}

/* ---- provider ---- */

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

struct creds_provider *creds_provider_new(const struct creds_options *opt)
{
	struct creds_provider *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->refresh_ahead_s = CREDS_REFRESH_AHEAD_S;
	p->timeout_ms = 5000;
	if (opt) {
		p->profile_opt = dup_or_null(opt->profile);
		p->region_opt = dup_or_null(opt->region);
		p->ca_bundle = dup_or_null(opt->ca_bundle);
		if (opt->refresh_ahead_s > 0)
			p->refresh_ahead_s = opt->refresh_ahead_s;
		if (opt->timeout_ms > 0)
			p->timeout_ms = opt->timeout_ms;
		if ((opt->profile && *opt->profile && !p->profile_opt) ||
		    (opt->region && *opt->region && !p->region_opt) ||
		    (opt->ca_bundle && *opt->ca_bundle && !p->ca_bundle)) {
			creds_provider_free(p);
			return NULL;
		}
	}
	return p;
}

struct creds_provider *creds_provider_new_static(const char *access_key_id,
                                                 const char *secret_access_key,
                                                 const char *session_token)
{
	struct creds_provider *p;

	if (!access_key_id || !secret_access_key)
		return NULL;
	p = creds_provider_new(NULL);
	if (!p)
		return NULL;
	p->is_static = true;
	if (creds_set(&p->cached, access_key_id, secret_access_key, session_token, 0, "static")) {
		creds_provider_free(p);
		return NULL;
	}
	p->have = true;
	return p;
}

void creds_provider_free(struct creds_provider *p)
{
	if (!p)
		return;
	xfer_engine_free(p->xfer_own);
	creds_clear(&p->cached);
	util_free_secret(p->imds_token);
	free(p->profile_opt);
	free(p->region_opt);
	free(p->ca_bundle);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/*
 * The engine for metadata and STS requests: always a private one, so that
 * creds_get() may be called from another engine's sign callback.
 */
static struct xfer_engine *engine_locked(struct creds_provider *p, struct creds_error *err)
{
	struct xfer_config cfg = {0};

	if (p->xfer_own)
		return p->xfer_own;
	cfg.max_connections = 2;
	cfg.max_attempts = 3;
	cfg.ca_bundle = p->ca_bundle;
	p->xfer_own = xfer_engine_new(&cfg);
	if (!p->xfer_own)
		set_err(err, CREDS_ERR_NOMEM, "could not start the HTTP engine for credentials");
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
	struct xfer_engine *e = engine_locked(p, err);
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
		set_err(err, CREDS_ERR_NETWORK, "%s at %s unreachable: %s%s%s", c->what, c->url,
		        xfer_strstatus(req.result.status), req.result.errmsg[0] ? ": " : "",
		        req.result.errmsg);
		goto out;
	}
	*status = req.result.http_status;
	if (*status >= 200 && *status < 300) {
		*body = req.result.body ? req.result.body : strdup("");
		req.result.body = NULL;
		if (!*body) {
			set_err(err, CREDS_ERR_NOMEM, "out of memory");
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
		set_err(err, CREDS_ERR_PROTOCOL, "%s answered with something that is not JSON",
		        what);
		goto out;
	}
	code = json_string_value(json_object_get(j, "Code"));
	if (code && strcmp(code, "Success")) {
		const char *msg = json_string_value(json_object_get(j, "Message"));
		set_err(err, CREDS_ERR_REMOTE, "%s reported %s%s%s", what, code, msg ? ": " : "",
		        msg ? msg : "");
		goto out;
	}
	akid = json_string_value(json_object_get(j, "AccessKeyId"));
	secret = json_string_value(json_object_get(j, "SecretAccessKey"));
	token = json_string_value(json_object_get(j, "Token"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	if (!akid || !*akid || !secret || !*secret) {
		set_err(err, CREDS_ERR_PROTOCOL, "%s answer lacks AccessKeyId or SecretAccessKey",
		        what);
		goto out;
	}
	if (exp && util_parse_iso8601(exp, &t)) {
		set_err(err, CREDS_ERR_PROTOCOL, "%s gave an unreadable Expiration '%s'", what,
		        exp);
		goto out;
	}
	if (creds_set(out, akid, secret, token, t, source)) {
		set_err(err, CREDS_ERR_NOMEM, "out of memory");
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

/* ---- sources: each returns 1 found, 0 not configured, -1 error ---- */

static int from_env(struct creds *out, struct creds_error *err)
{
	const char *akid = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");

	if (!(akid && *akid) && !(secret && *secret))
		return 0;
	if (!(akid && *akid) || !(secret && *secret)) {
		set_err(err, CREDS_ERR_CONFIG,
		        "%s is set but %s is not: set both, or unset both to use a profile",
		        akid && *akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		        akid && *akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -1;
	}
	if (creds_set(out, akid, secret, token, 0, "env")) {
		set_err(err, CREDS_ERR_NOMEM, "out of memory");
		return -1;
	}
	return 1;
}

static int from_profile_keys(const char *profile, struct creds *out, struct creds_error *err)
{
	char *akid = creds_profile_get(profile, "aws_access_key_id");
	char *secret = creds_profile_get(profile, "aws_secret_access_key");
	char *token = creds_profile_get(profile, "aws_session_token");
	int rc = 0;

	if (!akid && !secret)
		goto out;
	if (!akid || !secret) {
		set_err(err, CREDS_ERR_CONFIG,
		        "profile '%s' has %s but no %s: add it to the credentials file", profile,
		        akid ? "aws_access_key_id" : "aws_secret_access_key",
		        akid ? "aws_secret_access_key" : "aws_access_key_id");
		rc = -1;
		goto out;
	}
	if (creds_set(out, akid, secret, token, 0, "profile")) {
		set_err(err, CREDS_ERR_NOMEM, "out of memory");
		rc = -1;
		goto out;
	}
	rc = 1;
out:
	free(akid);
	util_free_secret(secret);
	util_free_secret(token);
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

static int from_container(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tok_file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok_env = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char *url = NULL, *token = NULL, *body = NULL;
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
			set_err(
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
		set_err(err, CREDS_ERR_NOMEM, "out of memory");
		return -1;
	}
	if (tok_file && *tok_file) {
		token = util_read_file(tok_file, CREDS_MAX_FILE);
		if (!token) {
			set_err(err, CREDS_ERR_CONFIG,
			        "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s",
			        tok_file, strerror(errno));
			goto out;
		}
	} else if (tok_env && *tok_env) {
		token = strdup(tok_env);
	}
	if (token) {
		char *t = trim(token);
		if (strpbrk(t, "\r\n")) {
			set_err(err, CREDS_ERR_CONFIG,
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
		set_err(err, CREDS_ERR_REMOTE,
		        "the container credentials endpoint %s answered HTTP %ld%s", url, status,
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
	util_free_secret(token);
	free(url);
	return rc;
}

static bool imds_disabled(void)
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
		set_err(err, CREDS_ERR_NOMEM, "out of memory");
		return -1;
	}
	call.url = url;
	if (http_call_locked(p, &call, &token, &status, err))
		goto out;
	if (!token || !*trim(token)) {
		set_err(err, CREDS_ERR_REMOTE,
		        "IMDS at %s refused a session token (HTTP %ld): IMDSv2 may be disabled "
		        "or the hop limit too low",
		        base, status);
		goto out;
	}
	memmove(token, trim(token), strlen(trim(token)) + 1);
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
static int imds_get_locked(struct creds_provider *p, const char *path, char **out,
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
		set_err(err, CREDS_ERR_NOMEM, "out of memory");
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
		set_err(err, status == 404 ? CREDS_ERR_NOT_FOUND : CREDS_ERR_REMOTE,
		        "IMDS %s answered HTTP %ld%s", path, status,
		        status == 404 ? " (no such entry: is an instance profile attached?)" : "");
		goto out;
	}
	rc = 0;
out:
	free(url);
	free(base);
	return rc;
}

static int from_imds(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	char *roles = NULL, *body = NULL, *path = NULL, *role;
	int rc = -1;

	if (imds_disabled())
		return 0;
	if (imds_get_locked(p, "/latest/meta-data/iam/security-credentials/", &roles, err))
		goto out;
	role = trim(roles);
	role[strcspn(role, "\r\n")] = '\0';
	if (!*role) {
		set_err(err, CREDS_ERR_NOT_FOUND,
		        "IMDS lists no IAM role: attach an instance profile");
		goto out;
	}
	if (asprintf(&path, "/latest/meta-data/iam/security-credentials/%s", role) < 0) {
		path = NULL;
		set_err(err, CREDS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (imds_get_locked(p, path, &body, err))
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

/* ---- region ---- */

static const char *effective_profile(const struct creds_provider *p, bool *explicit_)
{
	const char *env = getenv("AWS_PROFILE");

	*explicit_ = true;
	if (p->profile_opt)
		return p->profile_opt;
	if (env && *env)
		return env;
	*explicit_ = false;
	return "default";
}

static void region_locked(struct creds_provider *p)
{
	const char *r = p->region_opt, *from = "--region";
	char *prof = NULL, *imds = NULL;
	struct creds_error err;
	bool expl;

	if (p->have_region)
		return;
	if (!r && (r = getenv("AWS_REGION")) && *r)
		from = "AWS_REGION";
	else if (!p->region_opt && (r = getenv("AWS_DEFAULT_REGION")) && *r)
		from = "AWS_DEFAULT_REGION";
	else if (!p->region_opt)
		r = NULL;
	if (!r) {
		prof = creds_profile_get(effective_profile(p, &expl), "region");
		r = prof;
		from = "profile";
	}
	if (!r && !imds_disabled() && !p->is_static) {
		if (imds_get_locked(p, "/latest/meta-data/placement/region", &imds, &err) == 0) {
			r = trim(imds);
			from = "IMDS";
		} else {
			log_debug("credentials: no region from IMDS: %s", err.message);
		}
	}
	if (!r || !*r) {
		r = "us-east-1";
		from = "default";
	}
	snprintf(p->region, sizeof(p->region), "%s", r);
	p->have_region = true;
	log_debug("credentials: region %s (from %s)", p->region, from);
	free(prof);
	free(imds);
}

int creds_region(struct creds_provider *p, char *out, size_t len)
{
	pthread_mutex_lock(&p->lock);
	region_locked(p);
	snprintf(out, len, "%s", p->region);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* ---- roles through STS ---- */

static int sts_to_creds_err(const struct sts_error *se, const char *what, struct creds_error *err)
{
	char buf[480];
	enum creds_err e = se->err == STS_ERR_NETWORK    ? CREDS_ERR_NETWORK
	                   : se->err == STS_ERR_REMOTE   ? CREDS_ERR_REMOTE
	                   : se->err == STS_ERR_PROTOCOL ? CREDS_ERR_PROTOCOL
	                   : se->err == STS_ERR_NOMEM    ? CREDS_ERR_NOMEM
	                                                 : CREDS_ERR_CONFIG;

	set_err(err, e, "%s: %s", what, sts_error_format(se, buf, sizeof(buf)));
	return -1;
}

static int sts_config_locked(struct creds_provider *p, struct sts_config *cfg,
                             struct creds_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->xfer = engine_locked(p, err);
	if (!cfg->xfer)
		return -1;
	region_locked(p);
	cfg->region = p->region;
	cfg->timeout_ms = p->timeout_ms;
	return 0;
}

static int web_identity(struct creds_provider *p, const char *token_file, const char *role_arn,
                        const char *session, const char *from, struct creds *out,
                        struct creds_error *err)
{
	struct sts_assume_params ap = {.role_arn = role_arn, .session_name = session};
	struct sts_config cfg;
	struct sts_error se;
	char *path = expand_home(token_file), *token = NULL;
	int rc = -1;

	if (!path) {
		set_err(err, CREDS_ERR_NOMEM, "out of memory");
		return -1;
	}
	/* re-read on every renewal: the token file is rotated by the platform */
	token = util_read_file(path, CREDS_MAX_FILE);
	if (!token) {
		set_err(err, CREDS_ERR_CONFIG,
		        "cannot read the web identity token file %s (%s): %s", path, from,
		        strerror(errno));
		goto out;
	}
	ap.web_identity_token = trim(token);
	if (sts_config_locked(p, &cfg, err))
		goto out;
	if (sts_assume_role_with_web_identity(&cfg, &ap, out, &se)) {
		sts_to_creds_err(&se, "AssumeRoleWithWebIdentity failed", err);
		goto out;
	}
	snprintf(out->source, sizeof(out->source), "web-identity");
	rc = 1;
out:
	util_free_secret(token);
	free(path);
	return rc;
}

static int from_web_identity_env(struct creds_provider *p, struct creds *out,
                                 struct creds_error *err)
{
	const char *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role = getenv("AWS_ROLE_ARN");

	if (!(file && *file) && !(role && *role))
		return 0;
	if (!(file && *file) || !(role && *role)) {
		/* one without the other: the SDKs ignore it, but say why nothing happened */
		log_warn("credentials: %s is set without %s: web identity skipped",
		         file && *file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
		         file && *file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
		return 0;
	}
	return web_identity(p, file, role, getenv("AWS_ROLE_SESSION_NAME"),
	                    "AWS_WEB_IDENTITY_TOKEN_FILE", out, err);
}

static int resolve_profile_role(struct creds_provider *p, const char *profile, int depth,
                                struct creds *out, struct creds_error *err);

/* The credentials a role profile starts from (source_profile / credential_source). */
static int role_base_creds(struct creds_provider *p, const char *profile, int depth,
                           struct creds *base, struct creds_error *err)
{
	char *src = creds_profile_get(profile, "source_profile");
	char *cs = creds_profile_get(profile, "credential_source");
	char *src_role = NULL;
	int rc = -1;

	if (src && cs) {
		set_err(err, CREDS_ERR_CONFIG,
		        "profile '%s' has both source_profile and credential_source: keep one",
		        profile);
		goto out;
	}
	if (src) {
		if (strcmp(src, profile) && !profile_exists(src)) {
			set_err(err, CREDS_ERR_CONFIG,
			        "profile '%s' names source_profile '%s', which does not exist",
			        profile, src);
			goto out;
		}
		src_role = strcmp(src, profile) ? creds_profile_get(src, "role_arn") : NULL;
		if (src_role) {
			if (depth + 1 >= CREDS_MAX_ROLE_CHAIN) {
				set_err(
				    err, CREDS_ERR_CONFIG,
				    "role chain from profile '%s' is longer than %d or circular",
				    profile, CREDS_MAX_ROLE_CHAIN);
				goto out;
			}
			rc = resolve_profile_role(p, src, depth + 1, base, err);
		} else {
			rc = from_profile_keys(src, base, err);
			if (rc == 0)
				set_err(err, CREDS_ERR_CONFIG,
				        "source_profile '%s' of profile '%s' has no "
				        "aws_access_key_id/aws_secret_access_key",
				        src, profile);
		}
	} else if (cs) {
		if (!strcmp(cs, "Environment"))
			rc = from_env(base, err);
		else if (!strcmp(cs, "Ec2InstanceMetadata"))
			rc = from_imds(p, base, err);
		else if (!strcmp(cs, "EcsContainer"))
			rc = from_container(p, base, err);
		else {
			set_err(err, CREDS_ERR_CONFIG,
			        "profile '%s': credential_source '%s' is not one of Environment, "
			        "Ec2InstanceMetadata, EcsContainer",
			        profile, cs);
			goto out;
		}
		if (rc == 0)
			set_err(err, CREDS_ERR_CONFIG,
			        "profile '%s': credential_source %s found no credentials", profile,
			        cs);
	} else {
		set_err(err, CREDS_ERR_CONFIG,
		        "profile '%s' has role_arn but neither source_profile nor "
		        "credential_source nor web_identity_token_file: add one",
		        profile);
	}
out:
	free(src);
	free(cs);
	free(src_role);
	return rc == 1 ? 1 : -1;
}

static int resolve_profile_role(struct creds_provider *p, const char *profile, int depth,
                                struct creds *out, struct creds_error *err)
{
	char *role = creds_profile_get(profile, "role_arn");
	char *session = creds_profile_get(profile, "role_session_name");
	char *ext = creds_profile_get(profile, "external_id");
	char *dur = creds_profile_get(profile, "duration_seconds");
	char *wif = creds_profile_get(profile, "web_identity_token_file");
	struct creds base = {0};
	struct sts_config cfg;
	struct sts_error se;
	struct sts_assume_params ap = {
	    .role_arn = role, .session_name = session, .external_id = ext};
	char what[160];
	int rc = -1;

	if (!role) {
		rc = 0;
		goto out;
	}
	if (wif) {
		rc = web_identity(p, wif, role, session, "web_identity_token_file", out, err);
		goto out;
	}
	if (dur) {
		char *end;
		long d = strtol(dur, &end, 10);
		if (*end || d < 900 || d > 43200) {
			set_err(err, CREDS_ERR_CONFIG,
			        "profile '%s': duration_seconds '%s' must be 900..43200", profile,
			        dur);
			goto out;
		}
		ap.duration_s = (int)d;
	}
	if (role_base_creds(p, profile, depth, &base, err) != 1)
		goto out;
	if (sts_config_locked(p, &cfg, err))
		goto out;
	log_debug("credentials: profile %s assumes %s with key %s (%s)", profile, role,
	          base.access_key_id, base.source);
	snprintf(what, sizeof(what), "AssumeRole %s for profile '%s' failed", role, profile);
	if (sts_assume_role(&cfg, &base, &ap, out, &se)) {
		sts_to_creds_err(&se, what, err);
		goto out;
	}
	snprintf(out->source, sizeof(out->source), "assume-role");
	rc = 1;
out:
	creds_clear(&base);
	free(role);
	free(session);
	free(ext);
	free(dur);
	free(wif);
	return rc;
}

/* ---- the chain ---- */

static int resolve_locked(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	bool expl;
	const char *profile = effective_profile(p, &expl);
	char *cpath = NULL, *kpath = NULL;
	struct creds_error imds_err = {0};
	int rc;

	/* an explicit --profile wins over the environment's keys, as in the AWS CLI */
	if (!p->profile_opt && (rc = from_env(out, err)))
		return rc;
	if (expl && !profile_exists(profile)) {
		cpath = config_path(true);
		kpath = config_path(false);
		set_err(err, CREDS_ERR_CONFIG,
		        "profile '%s' (from %s) is in neither %s nor %s: check the name or the "
		        "files",
		        profile, p->profile_opt ? "--profile" : "AWS_PROFILE", cpath ? cpath : "?",
		        kpath ? kpath : "?");
		free(cpath);
		free(kpath);
		return -1;
	}
	if ((rc = resolve_profile_role(p, profile, 0, out, err)))
		return rc;
	if ((rc = from_web_identity_env(p, out, err)))
		return rc;
	if ((rc = from_profile_keys(profile, out, err)))
		return rc;
	if ((rc = from_container(p, out, err)))
		return rc;
	rc = from_imds(p, out, &imds_err);
	if (rc == 1)
		return 1;
	if (rc < 0 && imds_err.err == CREDS_ERR_NOMEM) {
		*err = imds_err;
		return -1;
	}
	set_err(err, CREDS_ERR_NOT_FOUND,
	        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
	        "a profile (AWS_PROFILE / --profile) in ~/.aws/credentials or ~/.aws/config, or "
	        "run with a role (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, container "
	        "credentials, EC2 instance profile). EC2 metadata: %.200s",
	        rc < 0 ? imds_err.message : "disabled by AWS_EC2_METADATA_DISABLED");
	return -1;
}

static bool fresh_locked(const struct creds_provider *p, time_t now)
{
	return p->have &&
	       (p->cached.expiration == 0 || now + p->refresh_ahead_s < p->cached.expiration);
}

int creds_get(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	struct creds found = {0};
	struct creds_error e = {0};
	time_t now = time(NULL);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	pthread_mutex_lock(&p->lock);
	if (p->is_static || fresh_locked(p, now))
		goto copy;
	if (resolve_locked(p, &found, &e) == 1) {
		creds_clear(&p->cached);
		p->cached = found;
		p->have = true;
		if (found.expiration)
			log_info("credentials: key %s from %s, expires in %llds",
			         found.access_key_id, found.source,
			         (long long)(found.expiration - now));
		else
			log_info("credentials: key %s from %s", found.access_key_id, found.source);
		goto copy;
	}
	if (p->have && p->cached.expiration > now) {
		log_warn("credentials: renewal failed (%s); key %s stays valid for %llds",
		         e.message, p->cached.access_key_id,
		         (long long)(p->cached.expiration - now));
		goto copy;
	}
	*err = e;
	goto out;
copy:
	if (creds_copy(out, &p->cached)) {
		set_err(err, CREDS_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void creds_invalidate(struct creds_provider *p)
{
	pthread_mutex_lock(&p->lock);
	if (!p->is_static) {
		creds_clear(&p->cached);
		p->have = false;
	}
	pthread_mutex_unlock(&p->lock);
}
