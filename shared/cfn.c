/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfn: CloudFormation over the query protocol. Builds the form body, signs
 * each attempt with SigV4, runs it on the transfer engine (which retries
 * Throttling and 5xx) and reads the XML answers as a tree (xml_dom.h).
 * See cfn.h.
 */
#include "cfn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include "creds.h"
#include "log.h"
#include "signer.h"
#include "util.h"
#include "xfer.h"
#include "xml_dom.h"

#define CFN_VERSION      "2010-05-15"
#define CFN_MAX_RESPONSE (8u << 20) /* bound on one XML answer */
#define FORM_CT          "application/x-www-form-urlencoded; charset=utf-8"

struct cfn_client {
	char *url;  /* endpoint URL as given, ending in the path */
	char *host; /* Host header: host[:port] */
	char *path; /* "/" unless the endpoint has one */
	char *region;
	char *service;
	struct creds_provider *creds;
	struct xfer_engine *xfer;
};

const char *cfn_strerror(enum cfn_err err)
{
	switch (err) {
	case CFN_OK:
		return "success";
	case CFN_ERR_NOT_FOUND:
		return "stack does not exist";
	case CFN_ERR_ALREADY_EXISTS:
		return "stack already exists";
	case CFN_ERR_VALIDATION:
		return "request rejected as invalid";
	case CFN_ERR_CAPABILITIES:
		return "template needs capabilities that were not given";
	case CFN_ERR_ACCESS_DENIED:
		return "access denied";
	case CFN_ERR_AUTH:
		return "authentication failed";
	case CFN_ERR_THROTTLED:
		return "throttled (rate exceeded) after retries";
	case CFN_ERR_SERVER:
		return "server error after retries";
	case CFN_ERR_NETWORK:
		return "network error";
	case CFN_ERR_NO_CREDENTIALS:
		return "no credentials";
	case CFN_ERR_NOMEM:
		return "out of memory";
	case CFN_ERR_PROTOCOL:
		return "unexpected reply";
	case CFN_ERR_OTHER:
		return "CloudFormation error";
	}
	return "unknown error";
}

const char *cfn_error_format(const struct cfn_error *e, char *buf, size_t len)
{
	const char *code = e->code[0] ? e->code : cfn_strerror(e->err);

	if (e->http_status && e->request_id[0])
		snprintf(buf, len, "%s: %s (HTTP %ld, request id %s)", code, e->message,
		         e->http_status, e->request_id);
	else if (e->http_status)
		snprintf(buf, len, "%s: %s (HTTP %ld)", code, e->message, e->http_status);
	else
		snprintf(buf, len, "%s: %s", code, e->message);
	return buf;
}

static void set_err(struct cfn_error *err, enum cfn_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(struct cfn_error *err, enum cfn_err code, const char *fmt, ...)
{
	va_list ap;

	memset(err, 0, sizeof(*err));
	err->err = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

struct cfn_client *cfn_client_new(const struct cfn_config *cfg)
{
	struct cfn_client *c = calloc(1, sizeof(*c));
	CURLU *u = NULL;
	char *host = NULL, *port = NULL, *path = NULL;
	const char *region = cfg->region ? cfg->region : "us-east-1";
	char def[256];

	if (!c)
		return NULL;
	if (cfg->endpoint && cfg->endpoint[0]) {
		c->url = strdup(cfg->endpoint);
	} else {
		snprintf(def, sizeof(def), "https://cloudformation.%s.amazonaws.com/", region);
		c->url = strdup(def);
	}
	c->region = strdup(region);
	c->service = strdup(cfg->service ? cfg->service : "cloudformation");
	c->creds = cfg->creds;
	c->xfer = cfg->xfer;
	u = curl_url();
	if (!c->url || !c->region || !c->service || !u)
		goto fail;
	if (curl_url_set(u, CURLUPART_URL, c->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		log_err("cfn: endpoint %s is not a URL (expected e.g. "
		        "https://cloudformation.us-east-1.amazonaws.com)",
		        c->url);
		goto fail;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL;
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		path = NULL;
	if (port) {
		size_t n = strlen(host) + strlen(port) + 2;
		c->host = malloc(n);
		if (c->host)
			snprintf(c->host, n, "%s:%s", host, port);
	} else {
		c->host = strdup(host);
	}
	c->path = strdup(path && path[0] ? path : "/");
	if (!c->host || !c->path)
		goto fail;
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return c;
fail:
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	cfn_client_free(c);
	return NULL;
}

void cfn_client_free(struct cfn_client *c)
{
	if (!c)
		return;
	free(c->url);
	free(c->host);
	free(c->path);
	free(c->region);
	free(c->service);
	free(c);
}

/* ---------------------------------------------------------------- XML */

/* Text of the child element @name, malloc'd, or NULL when absent. */
static char *child_text(const xmlNode *n, const char *name)
{
	return xml_dom_text(xml_dom_child(n, name), false);
}

static xmlDoc *parse_xml(const char *xml, size_t len)
{
	return xml_dom_parse(xml, len, CFN_MAX_RESPONSE);
}

/* The <...Result> element under the response root, or NULL. */
static xmlNode *result_node(xmlDoc *doc, const char *result)
{
	return xml_dom_child(xml_dom_root(doc), result);
}

static time_t parse_time(const char *s, int *ms)
{
	time_t t = 0;
	const char *dot;

	if (ms)
		*ms = 0;
	if (!s || util_parse_iso8601(s, &t) != 0)
		return 0;
	dot = strchr(s, '.');
	if (ms && dot) {
		int v = 0, digits = 0;
		for (const char *p = dot + 1; *p >= '0' && *p <= '9' && digits < 3; p++, digits++)
			v = v * 10 + (*p - '0');
		while (digits++ < 3)
			v *= 10;
		*ms = v;
	}
	return t;
}

void cfn_parse_error(const char *xml, size_t len, long http_status, struct cfn_error *err)
{
	xmlDoc *doc = parse_xml(xml, len);
	xmlNode *root = xml_dom_root(doc);
	xmlNode *e = xml_dom_child(root, "Error");

	memset(err, 0, sizeof(*err));
	err->http_status = http_status;
	if (!xml_dom_is(root, "ErrorResponse") || !e) {
		/* Not an AWS error document: a proxy, a wrong endpoint, an HTML page. */
		err->err = http_status >= 500 ? CFN_ERR_SERVER : CFN_ERR_PROTOCOL;
		snprintf(err->message, sizeof(err->message),
		         "HTTP %ld without an ErrorResponse document: is the endpoint a "
		         "CloudFormation endpoint?",
		         http_status);
		goto out;
	}
	xml_dom_copy(xml_dom_child(e, "Code"), err->code, sizeof(err->code));
	xml_dom_copy(xml_dom_child(e, "Message"), err->message, sizeof(err->message));
	xml_dom_copy(xml_dom_child(root, "RequestId"), err->request_id, sizeof(err->request_id));

	const char *c = err->code;
	if (!strcmp(c, "ValidationError") && strstr(err->message, "does not exist"))
		err->err = CFN_ERR_NOT_FOUND;
	else if (!strcmp(c, "AlreadyExistsException"))
		err->err = CFN_ERR_ALREADY_EXISTS;
	else if (!strcmp(c, "ValidationError"))
		err->err = CFN_ERR_VALIDATION;
	else if (!strcmp(c, "InsufficientCapabilitiesException"))
		err->err = CFN_ERR_CAPABILITIES;
	else if (!strcmp(c, "AccessDenied") || !strcmp(c, "AccessDeniedException"))
		err->err = CFN_ERR_ACCESS_DENIED;
	else if (!strcmp(c, "SignatureDoesNotMatch") || !strcmp(c, "InvalidClientTokenId") ||
	         !strcmp(c, "ExpiredToken") || !strcmp(c, "IncompleteSignature") ||
	         !strcmp(c, "MissingAuthenticationToken") ||
	         !strcmp(c, "UnrecognizedClientException"))
		err->err = CFN_ERR_AUTH;
	else if (xfer_is_retryable_code(c, strlen(c)) || strstr(err->message, "Rate exceeded"))
		err->err = http_status >= 500 ? CFN_ERR_SERVER : CFN_ERR_THROTTLED;
	else if (http_status >= 500)
		err->err = CFN_ERR_SERVER;
	else
		err->err = CFN_ERR_OTHER;
out:
	xmlFreeDoc(doc);
}

char *cfn_parse_create(const char *xml, size_t len)
{
	xmlDoc *doc = parse_xml(xml, len);
	char *id = child_text(result_node(doc, "CreateStackResult"), "StackId");

	xmlFreeDoc(doc);
	if (id && !id[0]) {
		free(id);
		id = NULL;
	}
	return id;
}

void cfn_stack_clear(struct cfn_stack *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->id);
	free(s->status);
	free(s->status_reason);
	free(s->parent_id);
	for (size_t i = 0; i < s->n_outputs; i++) {
		free(s->outputs[i].key);
		free(s->outputs[i].value);
	}
	free(s->outputs);
	memset(s, 0, sizeof(*s));
}

const char *cfn_stack_output(const struct cfn_stack *s, const char *key)
{
	for (size_t i = 0; i < s->n_outputs; i++)
		if (s->outputs[i].key && !strcmp(s->outputs[i].key, key))
			return s->outputs[i].value;
	return NULL;
}

int cfn_parse_stack(const char *xml, size_t len, struct cfn_stack *out)
{
	xmlDoc *doc = parse_xml(xml, len);
	xmlNode *m = xml_dom_child(
	    xml_dom_child(result_node(doc, "DescribeStacksResult"), "Stacks"), "member");
	xmlNode *outs;
	char *t;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!m)
		goto out;
	out->name = child_text(m, "StackName");
	out->id = child_text(m, "StackId");
	out->status = child_text(m, "StackStatus");
	out->status_reason = child_text(m, "StackStatusReason");
	out->parent_id = child_text(m, "ParentId");
	t = child_text(m, "CreationTime");
	out->creation_time = parse_time(t, NULL);
	free(t);
	t = child_text(m, "DeletionTime");
	out->deletion_time = parse_time(t, NULL);
	free(t);
	outs = xml_dom_child(m, "Outputs");
	if (outs) {
		size_t n = xml_dom_count(outs, "member");

		out->outputs = n ? calloc(n, sizeof(*out->outputs)) : NULL;
		if (n && !out->outputs)
			goto out;
		for (xmlNode *k = outs->children; k; k = k->next) {
			if (!xml_dom_is(k, "member"))
				continue;
			out->outputs[out->n_outputs].key = child_text(k, "OutputKey");
			out->outputs[out->n_outputs].value = child_text(k, "OutputValue");
			out->n_outputs++;
		}
	}
	if (!out->name || !out->id || !out->status)
		goto out;
	rc = 0;
out:
	if (rc)
		cfn_stack_clear(out);
	xmlFreeDoc(doc);
	return rc;
}

void cfn_events_free(struct cfn_events *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n; i++) {
		struct cfn_event *e = &page->events[i];
		free(e->event_id);
		free(e->stack_id);
		free(e->stack_name);
		free(e->logical_id);
		free(e->physical_id);
		free(e->resource_type);
		free(e->status);
		free(e->reason);
	}
	free(page->events);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

int cfn_parse_events(const char *xml, size_t len, struct cfn_events *page)
{
	xmlDoc *doc = parse_xml(xml, len);
	xmlNode *r = result_node(doc, "DescribeStackEventsResult");
	xmlNode *list = xml_dom_child(r, "StackEvents");
	size_t n = xml_dom_count(list, "member");
	int rc = -1;

	memset(page, 0, sizeof(*page));
	if (!r)
		goto out;
	page->events = n ? calloc(n, sizeof(*page->events)) : NULL;
	if (n && !page->events)
		goto out;
	for (xmlNode *k = list ? list->children : NULL; k; k = k->next) {
		struct cfn_event *e;
		char *t;

		if (!xml_dom_is(k, "member"))
			continue;
		e = &page->events[page->n++];
		e->event_id = child_text(k, "EventId");
		e->stack_id = child_text(k, "StackId");
		e->stack_name = child_text(k, "StackName");
		e->logical_id = child_text(k, "LogicalResourceId");
		e->physical_id = child_text(k, "PhysicalResourceId");
		e->resource_type = child_text(k, "ResourceType");
		e->status = child_text(k, "ResourceStatus");
		e->reason = child_text(k, "ResourceStatusReason");
		t = child_text(k, "Timestamp");
		e->timestamp = parse_time(t, &e->timestamp_ms);
		free(t);
		if (!e->event_id || !e->logical_id || !e->status)
			goto out;
	}
	page->next_token = child_text(r, "NextToken");
	if (page->next_token && !page->next_token[0]) {
		free(page->next_token);
		page->next_token = NULL;
	}
	rc = 0;
out:
	if (rc)
		cfn_events_free(page);
	xmlFreeDoc(doc);
	return rc;
}

bool cfn_status_is_failed(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!s)
		return false;
	return (n > 7 && !strcmp(s + n - 7, "_FAILED")) || !strncmp(s, "ROLLBACK_", 9) ||
	       !strncmp(s, "UPDATE_ROLLBACK_", 16) || !strncmp(s, "IMPORT_ROLLBACK_", 16);
}

bool cfn_status_is_terminal(const char *s)
{
	return s && !strstr(s, "_IN_PROGRESS");
}

/* ---------------------------------------------------------------- calls */

struct call {
	struct cfn_client *c;
	char body_hash[65];
	bool creds_failed;
	char creds_msg[512];
};

static int sign_attempt(void *user, struct xfer_request *req, struct curl_slist **extra)
{
	struct call *call = user;
	struct cfn_client *c = call->c;
	struct creds cr = {0};
	struct creds_error cerr;
	struct sigv4_header hdrs[] = {
	    {"Host", c->host},
	    {"Content-Type", FORM_CT},
	};
	struct signer_params p = {
	    .service = c->service,
	    .region = c->region,
	    .path = c->path,
	    .headers = hdrs,
	    .n_headers = 2,
	    .payload_hash = call->body_hash,
	    .creds = &cr,
	};
	int rc;

	if (creds_get(c->creds, &cr, &cerr) != 0) {
		call->creds_failed = true;
		snprintf(call->creds_msg, sizeof(call->creds_msg), "%s", cerr.message);
		snprintf(req->result.errmsg, sizeof(req->result.errmsg), "no credentials: %s",
		         creds_strerror(cerr.err));
		return -1;
	}
	rc = signer_sign(&p, req, extra);
	creds_clear(&cr);
	return rc;
}

/*
 * The verdict on one attempt (xfer.h): throttling ("Rate exceeded", code
 * Throttling) and the codes that say "later" are retried under the engine's
 * policy; anything else stands.
 */
static enum xfer_verdict classify_attempt(void *user, struct xfer_request *req)
{
	struct cfn_error e;

	if (req->result.http_status < 300)
		return XFER_ACCEPT;
	memset(&e, 0, sizeof(e));
	cfn_parse_error(req->result.err_body, req->result.err_body_len, req->result.http_status,
	                &e);
	if (!e.code[0])
		return XFER_ACCEPT;
	if (xfer_is_throttle_code(e.code, strlen(e.code)))
		return XFER_RETRY_SLOW;
	return xfer_is_retryable_code(e.code, strlen(e.code)) ? XFER_RETRY : XFER_ACCEPT;
}

/*
 * One query-protocol call. @kv holds @n key/value pairs after Action and
 * Version. On success *@body gets the response (caller frees).
 */
static int call_api(struct cfn_client *c, const char *action, const char *const *kv, size_t n,
                    char **body, size_t *body_len, struct cfn_error *err)
{
	struct call call = {.c = c};
	struct xfer_request req;
	struct xfer_header hdrs[] = {
	    {"Host", c->host},
	    {"Content-Type", FORM_CT},
	};
	const char **all = calloc(2 * n + 4, sizeof(*all));
	char *form = NULL;
	int rc = -1;

	memset(err, 0, sizeof(*err));
	xfer_request_init(&req);
	if (!all) {
		set_err(err, CFN_ERR_NOMEM, "out of memory building %s", action);
		goto out;
	}
	all[0] = "Action";
	all[1] = action;
	all[2] = "Version";
	all[3] = CFN_VERSION;
	memcpy(all + 4, kv, 2 * n * sizeof(*kv));
	form = util_form_encode(all, n + 2);
	if (!form) {
		set_err(err, CFN_ERR_NOMEM, "out of memory building %s", action);
		goto out;
	}
	util_sha256_hex(form, strlen(form), call.body_hash);

	req.method = "POST";
	req.url = c->url;
	req.headers = hdrs;
	req.n_headers = 2;
	req.body = form;
	req.body_len = strlen(form);
	req.resp_max = CFN_MAX_RESPONSE;
	req.sign = sign_attempt;
	req.sign_user = &call;
	req.classify = classify_attempt;
	req.log_name = action;
	log_debug("cfn: %s %s", action, c->url);
	if (xfer_perform(c->xfer, &req) != 0) {
		switch (req.result.status) {
		case XFER_ERR_SIGN:
			if (call.creds_failed)
				set_err(err, CFN_ERR_NO_CREDENTIALS, "%s", call.creds_msg);
			else
				set_err(err, CFN_ERR_AUTH, "%s", req.result.errmsg);
			break;
		case XFER_ERR_NOMEM:
			set_err(err, CFN_ERR_NOMEM, "out of memory in %s", action);
			break;
		case XFER_ERR_TOO_LARGE:
			set_err(err, CFN_ERR_PROTOCOL, "%s answer larger than %u bytes", action,
			        CFN_MAX_RESPONSE);
			break;
		default:
			set_err(err, CFN_ERR_NETWORK, "%s to %s failed after %d attempt(s): %s",
			        action, c->url, req.result.attempts,
			        req.result.errmsg[0] ? req.result.errmsg
			                             : xfer_strstatus(req.result.status));
			break;
		}
		goto out;
	}
	if (req.result.http_status < 200 || req.result.http_status >= 300) {
		cfn_parse_error(req.result.err_body, req.result.err_body_len,
		                req.result.http_status, err);
		if (!err->request_id[0])
			snprintf(err->request_id, sizeof(err->request_id), "%s",
			         req.result.request_id);
		log_debug("cfn: %s failed: %s: %s", action, err->code, err->message);
		goto out;
	}
	if (req.result.attempts > 1)
		log_info("cfn: %s succeeded after %d attempts", action, req.result.attempts);
	*body = req.result.body;
	*body_len = req.result.body_len;
	req.result.body = NULL;
	if (!*body) {
		*body = strdup("");
		*body_len = 0;
	}
	rc = 0;
out:
	xfer_request_cleanup(&req);
	free(form);
	free(all);
	return rc;
}

/* A growing list of form pairs whose strings are borrowed or owned. */
struct form {
	const char **kv;
	size_t n;     /* pairs */
	char **owned; /* strings made here (member keys) */
	size_t n_owned;
	bool oom;
};

static void form_add(struct form *f, const char *k, const char *v)
{
	const char **nk;

	if (f->oom || !v)
		return;
	nk = realloc(f->kv, (2 * f->n + 2) * sizeof(*nk));
	if (!nk) {
		f->oom = true;
		return;
	}
	f->kv = nk;
	f->kv[2 * f->n] = k;
	f->kv[2 * f->n + 1] = v;
	f->n++;
}

static const char *form_keyf(struct form *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *form_keyf(struct form *f, const char *fmt, ...)
{
	char buf[128], **no, *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s = strdup(buf);
	no = realloc(f->owned, (f->n_owned + 1) * sizeof(*no));
	if (!s || !no) {
		free(s);
		if (no)
			f->owned = no;
		f->oom = true;
		return NULL;
	}
	f->owned = no;
	f->owned[f->n_owned++] = s;
	return s;
}

static void form_free(struct form *f)
{
	for (size_t i = 0; i < f->n_owned; i++)
		free(f->owned[i]);
	free(f->owned);
	free(f->kv);
}

int cfn_create_stack(struct cfn_client *c, const struct cfn_create_params *p, char **stack_id,
                     struct cfn_error *err)
{
	struct form f = {0};
	char *body = NULL, *id = NULL, tmo[16];
	size_t len = 0;
	int rc = -1;

	if (!p->stack_name || (!p->template_body == !p->template_url)) {
		set_err(err, CFN_ERR_VALIDATION,
		        "CreateStack needs a stack name and exactly one of "
		        "a template body or a template URL");
		return -1;
	}
	if (p->template_body && strlen(p->template_body) > CFN_MAX_TEMPLATE_BODY) {
		set_err(err, CFN_ERR_VALIDATION,
		        "template body is %zu bytes, over CloudFormation's %d: "
		        "put it in a bucket and pass its URL",
		        strlen(p->template_body), CFN_MAX_TEMPLATE_BODY);
		return -1;
	}
	form_add(&f, "StackName", p->stack_name);
	form_add(&f, "TemplateBody", p->template_body);
	form_add(&f, "TemplateURL", p->template_url);
	for (size_t i = 0; i < p->n_parameters; i++) {
		form_add(&f, form_keyf(&f, "Parameters.member.%zu.ParameterKey", i + 1),
		         p->parameters[i].key);
		form_add(&f, form_keyf(&f, "Parameters.member.%zu.ParameterValue", i + 1),
		         p->parameters[i].value);
	}
	for (size_t i = 0; i < p->n_capabilities; i++)
		form_add(&f, form_keyf(&f, "Capabilities.member.%zu", i + 1), p->capabilities[i]);
	for (size_t i = 0; i < p->n_tags; i++) {
		form_add(&f, form_keyf(&f, "Tags.member.%zu.Key", i + 1), p->tags[i].key);
		form_add(&f, form_keyf(&f, "Tags.member.%zu.Value", i + 1), p->tags[i].value);
	}
	form_add(&f, "ClientRequestToken", p->client_request_token);
	form_add(&f, "RoleARN", p->role_arn);
	form_add(&f, "OnFailure", p->on_failure);
	if (p->timeout_minutes > 0) {
		snprintf(tmo, sizeof(tmo), "%d", p->timeout_minutes);
		form_add(&f, "TimeoutInMinutes", tmo);
	}
	if (f.oom) {
		set_err(err, CFN_ERR_NOMEM, "out of memory building CreateStack");
		goto out;
	}
	if (call_api(c, "CreateStack", f.kv, f.n, &body, &len, err) != 0)
		goto out;
	id = cfn_parse_create(body, len);
	if (!id) {
		set_err(err, CFN_ERR_PROTOCOL, "CreateStack answer without a StackId");
		goto out;
	}
	if (stack_id) {
		*stack_id = id;
		id = NULL;
	}
	rc = 0;
out:
	free(id);
	free(body);
	form_free(&f);
	return rc;
}

int cfn_describe_stack(struct cfn_client *c, const char *stack, struct cfn_stack *out,
                       struct cfn_error *err)
{
	const char *kv[] = {"StackName", stack};
	char *body = NULL;
	size_t len = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (call_api(c, "DescribeStacks", kv, 1, &body, &len, err) != 0)
		goto out;
	if (cfn_parse_stack(body, len, out) != 0) {
		set_err(err, CFN_ERR_PROTOCOL, "DescribeStacks answer without a stack for %s",
		        stack);
		goto out;
	}
	rc = 0;
out:
	free(body);
	return rc;
}

int cfn_describe_stack_events(struct cfn_client *c, const char *stack, const char *next_token,
                              struct cfn_events *page, struct cfn_error *err)
{
	const char *kv[] = {"StackName", stack, "NextToken", next_token};
	char *body = NULL;
	size_t len = 0;
	int rc = -1;

	memset(page, 0, sizeof(*page));
	if (call_api(c, "DescribeStackEvents", kv, next_token ? 2 : 1, &body, &len, err) != 0)
		goto out;
	if (cfn_parse_events(body, len, page) != 0) {
		set_err(err, CFN_ERR_PROTOCOL, "DescribeStackEvents answer could not be parsed");
		goto out;
	}
	rc = 0;
out:
	free(body);
	return rc;
}

int cfn_delete_stack(struct cfn_client *c, const char *stack, const char *role_arn, bool force,
                     const char *token, struct cfn_error *err)
{
	struct form f = {0};
	char *body = NULL;
	size_t len = 0;
	int rc = -1;

	form_add(&f, "StackName", stack);
	form_add(&f, "RoleARN", role_arn);
	if (force)
		form_add(&f, "DeletionMode", "FORCE_DELETE_STACK");
	form_add(&f, "ClientRequestToken", token);
	if (f.oom) {
		set_err(err, CFN_ERR_NOMEM, "out of memory building DeleteStack");
		goto out;
	}
	if (call_api(c, "DeleteStack", f.kv, f.n, &body, &len, err) != 0)
		goto out;
	rc = 0;
out:
	free(body);
	form_free(&f);
	return rc;
}

void cfn_resources_free(struct cfn_resource *res, size_t n)
{
	for (size_t i = 0; res && i < n; i++) {
		free(res[i].logical_id);
		free(res[i].physical_id);
		free(res[i].resource_type);
		free(res[i].status);
	}
	free(res);
}

int cfn_describe_stack_resources(struct cfn_client *c, const char *stack, struct cfn_resource **res,
                                 size_t *n, struct cfn_error *err)
{
	const char *kv[] = {"StackName", stack};
	char *body = NULL;
	size_t len = 0, cnt = 0;
	xmlDoc *doc = NULL;
	xmlNode *list;
	int rc = -1;

	*res = NULL;
	*n = 0;
	if (call_api(c, "DescribeStackResources", kv, 1, &body, &len, err) != 0)
		goto out;
	doc = parse_xml(body, len);
	list = xml_dom_child(result_node(doc, "DescribeStackResourcesResult"), "StackResources");
	if (!doc) {
		set_err(err, CFN_ERR_PROTOCOL, "DescribeStackResources answer could not be parsed");
		goto out;
	}
	cnt = xml_dom_count(list, "member");
	*res = cnt ? calloc(cnt, sizeof(**res)) : NULL;
	if (cnt && !*res) {
		set_err(err, CFN_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (xmlNode *k = list ? list->children : NULL; k; k = k->next) {
		if (!xml_dom_is(k, "member"))
			continue;
		(*res)[*n].logical_id = child_text(k, "LogicalResourceId");
		(*res)[*n].physical_id = child_text(k, "PhysicalResourceId");
		(*res)[*n].resource_type = child_text(k, "ResourceType");
		(*res)[*n].status = child_text(k, "ResourceStatus");
		(*n)++;
	}
	rc = 0;
out:
	xmlFreeDoc(doc);
	free(body);
	return rc;
}

/* ---------------------------------------------------------------- ValidateTemplate */

void cfn_template_info_clear(struct cfn_template_info *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_params; i++) {
		free(t->params[i].key);
		free(t->params[i].default_value);
		free(t->params[i].description);
	}
	free(t->params);
	for (size_t i = 0; i < t->n_capabilities; i++)
		free(t->capabilities[i]);
	free(t->capabilities);
	free(t->description);
	free(t->capabilities_reason);
	memset(t, 0, sizeof(*t));
}

int cfn_parse_validate(const char *xml, size_t len, struct cfn_template_info *out)
{
	xmlDoc *doc = parse_xml(xml, len);
	xmlNode *r = result_node(doc, "ValidateTemplateResult");
	xmlNode *params = xml_dom_child(r, "Parameters");
	xmlNode *caps = xml_dom_child(r, "Capabilities");
	size_t np = xml_dom_count(params, "member"), nc = xml_dom_count(caps, "member");
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!r)
		goto out;
	out->description = child_text(r, "Description");
	out->capabilities_reason = child_text(r, "CapabilitiesReason");
	out->params = np ? calloc(np, sizeof(*out->params)) : NULL;
	out->capabilities = nc ? calloc(nc, sizeof(*out->capabilities)) : NULL;
	if ((np && !out->params) || (nc && !out->capabilities))
		goto out;
	for (xmlNode *k = params ? params->children : NULL; k; k = k->next) {
		struct cfn_template_param *p;
		char *ne;

		if (!xml_dom_is(k, "member"))
			continue;
		p = &out->params[out->n_params++];
		p->key = child_text(k, "ParameterKey");
		p->default_value = child_text(k, "DefaultValue");
		p->description = child_text(k, "Description");
		ne = child_text(k, "NoEcho");
		p->no_echo = ne && !strcmp(ne, "true");
		free(ne);
		if (!p->key)
			goto out;
	}
	for (xmlNode *k = caps ? caps->children : NULL; k; k = k->next) {
		if (!xml_dom_is(k, "member"))
			continue;
		out->capabilities[out->n_capabilities] = xml_dom_text(k, false);
		if (!out->capabilities[out->n_capabilities++])
			goto out;
	}
	rc = 0;
out:
	if (rc)
		cfn_template_info_clear(out);
	xmlFreeDoc(doc);
	return rc;
}

int cfn_validate_template(struct cfn_client *c, const char *body, const char *url,
                          struct cfn_template_info *out, struct cfn_error *err)
{
	const char *kv[2];
	char *resp = NULL;
	size_t len = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!body == !url) {
		set_err(err, CFN_ERR_VALIDATION,
		        "ValidateTemplate needs exactly one of a template body or a template URL");
		return -1;
	}
	if (body && strlen(body) > CFN_MAX_TEMPLATE_BODY) {
		set_err(err, CFN_ERR_VALIDATION,
		        "template body is %zu bytes, over CloudFormation's %d: "
		        "put it in a bucket and pass its URL",
		        strlen(body), CFN_MAX_TEMPLATE_BODY);
		return -1;
	}
	kv[0] = body ? "TemplateBody" : "TemplateURL";
	kv[1] = body ? body : url;
	if (call_api(c, "ValidateTemplate", kv, 1, &resp, &len, err) != 0)
		goto out;
	if (cfn_parse_validate(resp, len, out) != 0) {
		set_err(err, CFN_ERR_PROTOCOL, "ValidateTemplate answer could not be parsed");
		goto out;
	}
	rc = 0;
out:
	free(resp);
	return rc;
}
