/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xfer: the transfer engine. One thread owns a curl multi handle and every
 * easy handle; other threads only touch the submission queue under the lock
 * and wake the thread with curl_multi_wakeup(). Retries wait on a timer list
 * (exponential backoff with full jitter) and are re-signed when they start.
 */
#include "xfer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#ifndef HPCOPS_VERSION
#define HPCOPS_VERSION "0"
#endif

/* A bigger receive buffer means fewer write callbacks per GiB. */
#define XFER_RECV_BUFFER (256 * 1024)
/* Same for the upload side (curl caps it at 2 MiB). */
#define XFER_SEND_BUFFER (512 * 1024)

struct xfer_engine {
	struct xfer_config cfg;
	char *ca_bundle;
	char *user_agent;
	char *interface;
	char **interfaces; /* --bind list, or NULL */
	unsigned n_interfaces;
	unsigned next_interface;
	CURLM *multi;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;
	/* Protected by lock: */
	struct xfer_request *sub_head, *sub_tail;
	bool stopping;
	unsigned cancels; /* xfer_cancel() calls not yet looked at */

	/* Engine thread only: */
	struct xfer_request *ready_head, *ready_tail; /* waiting for a slot */
	struct xfer_request *delayed;                 /* retries, sorted by due_ms */
	struct xfer_request **inflight;               /* max_connections slots */
	int n_inflight;
	CURL **idle; /* easy handles kept for reuse */
	int n_idle;
	uint64_t rng;
	uint64_t slow_until_ms; /* adaptive mode: new requests wait until then */
	/* metrics (cfg.metrics): the series every request touches, looked up once */
	struct metric *m_in_flight, *m_throttled;
};

struct waiter {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc;

static void curl_init_once(void)
{
	g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rng_next(struct xfer_engine *e)
{
	/* xorshift64*: jitter only needs to decorrelate clients, not be secret. */
	uint64_t x = e->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	e->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

const char *xfer_strstatus(enum xfer_status s)
{
	switch (s) {
	case XFER_OK:
		return "ok";
	case XFER_ERR_NETWORK:
		return "network error";
	case XFER_ERR_TIMEOUT:
		return "timed out";
	case XFER_ERR_CANCELLED:
		return "cancelled";
	case XFER_ERR_TOO_LARGE:
		return "response larger than the buffer";
	case XFER_ERR_SIGN:
		return "could not sign the request";
	case XFER_ERR_NOMEM:
		return "out of memory";
	case XFER_ERR_INVALID:
		return "invalid request";
	}
	return "unknown transfer status";
}

bool xfer_is_retryable_code(const char *code, size_t len)
{
	static const char *const codes[] = {
	    "SlowDown",
	    "Throttling",
	    "ThrottlingException",
	    "ThrottledException",
	    "RequestThrottled",
	    "RequestThrottledException",
	    "TooManyRequestsException",
	    "ProvisionedThroughputExceededException",
	    "RequestLimitExceeded",
	    "BandwidthLimitExceeded",
	    "LimitExceededException",
	    "RequestTimeout",
	    "RequestTimeoutException",
	    "PriorRequestNotComplete",
	    "InternalError",
	    "ServiceUnavailable",
	    "EC2ThrottledException",
	    "TransactionInProgressException",
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strlen(codes[i]) == len && memcmp(codes[i], code, len) == 0)
			return true;
	return false;
}

static bool status_is_retryable(long st)
{
	return st == 500 || st == 502 || st == 503 || st == 504 || st == 429;
}

static bool curl_rc_is_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_COULDNT_RESOLVE_HOST:
		return true;
	default:
		return false;
	}
}

bool xfer_is_throttle_code(const char *code, size_t len)
{
	static const char *const codes[] = {
	    "SlowDown",
	    "Throttling",
	    "ThrottlingException",
	    "ThrottledException",
	    "RequestThrottled",
	    "RequestThrottledException",
	    "TooManyRequestsException",
	    "ProvisionedThroughputExceededException",
	    "RequestLimitExceeded",
	    "BandwidthLimitExceeded",
	    "LimitExceededException",
	    "EC2ThrottledException",
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strlen(codes[i]) == len && memcmp(codes[i], code, len) == 0)
			return true;
	return false;
}

/*
 * Transport errors after which the request may have reached the server
 * (sent in part or whole, reply lost): a not_idempotent request is not
 * repeated blindly after them.
 */
static bool curl_rc_maybe_sent(CURLcode rc)
{
	return rc != CURLE_COULDNT_CONNECT && rc != CURLE_COULDNT_RESOLVE_HOST &&
	       rc != CURLE_SSL_CONNECT_ERROR;
}

/* ---- curl callbacks (engine thread) ---- */

static size_t on_header_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer_request *req = ud;
	size_t len = size * n, nlen, vlen;
	const char *colon, *v, *end;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		const char *sp = memchr(buf, ' ', len);
		long st = 0;

		/* Three digits (RFC 9110): a longer run must not overflow @st. */
		if (sp)
			for (sp++; sp < buf + len && *sp >= '0' && *sp <= '9' && st < 1000; sp++)
				st = st * 10 + (*sp - '0');
		if (st < 100 || st > 999)
			st = 0; /* not a status: treated as no response */
		req->priv_.status = st;
		if (!req->priv_.first_byte_ms)
			req->priv_.first_byte_ms = now_ms();
		return len;
	}
	colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	nlen = (size_t)(colon - buf);
	end = buf + len;
	while (end > colon + 1 &&
	       (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(end - v);
	/* "x-amz-request-id" and "x-amzn-RequestId" are both 16 bytes. */
	if (nlen == 16 && (strncasecmp(buf, "x-amz-request-id", 16) == 0 ||
	                   strncasecmp(buf, "x-amzn-requestid", 16) == 0)) {
		size_t c = vlen < sizeof(req->result.request_id) - 1
		               ? vlen
		               : sizeof(req->result.request_id) - 1;
		memcpy(req->result.request_id, v, c);
		req->result.request_id[c] = '\0';
	}
	if (req->on_header)
		req->on_header(req->user, buf, nlen, v, vlen);
	return len;
}

/* Append to a malloc'd buffer, keeping a NUL after the data. */
static int grow_append(char **buf, size_t *len, size_t *cap, size_t max, const void *data, size_t n)
{
	if (*len + n > max)
		return -1;
	if (*len + n + 1 > *cap) {
		size_t nc = *cap ? *cap : 4096;
		char *nb;

		while (nc < *len + n + 1)
			nc *= 2;
		if (nc > max + 1)
			nc = max + 1;
		nb = realloc(*buf, nc);
		if (!nb)
			return -2;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static size_t on_write_cb(char *data, size_t size, size_t n, void *ud)
{
	struct xfer_request *req = ud;
	size_t len = size * n;

	if (__atomic_load_n(&req->priv_.cancel, __ATOMIC_RELAXED))
		return 0;
	if (req->priv_.status < 200 || req->priv_.status >= 300) {
		/* An error document: keep its head, drop the rest. */
		size_t max = req->priv_.engine->cfg.max_error_body;
		size_t room = max > req->result.err_body_len ? max - req->result.err_body_len : 0;

		if (room)
			grow_append(&req->result.err_body, &req->result.err_body_len,
			            &req->priv_.err_cap, max, data, len < room ? len : room);
		return len;
	}
	if (req->write) {
		if (req->write(req->user, data, len)) {
			req->priv_.write_failed = true;
			return 0;
		}
		req->priv_.delivered += len;
		return len;
	}
	if (req->resp_buf) {
		if (len > req->resp_cap - req->result.body_len) {
			req->priv_.too_large = true;
			return 0;
		}
		memcpy((char *)req->resp_buf + req->result.body_len, data, len);
		req->result.body_len += len;
		return len;
	}
	if (req->resp_max) {
		int r = grow_append(&req->result.body, &req->result.body_len, &req->priv_.grow_cap,
		                    req->resp_max, data, len);
		if (r) {
			req->priv_.too_large = r == -1;
			req->priv_.write_failed = r == -2;
			return 0;
		}
	}
	return len;
}

static size_t on_read_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer_request *req = ud;
	size_t len = size * n, left;

	if (__atomic_load_n(&req->priv_.cancel, __ATOMIC_RELAXED))
		return CURL_READFUNC_ABORT;
	if (req->read) {
		long r = req->read(req->user, buf, len);

		if (r < 0)
			return CURL_READFUNC_ABORT;
		req->priv_.body_off += (size_t)r;
		return (size_t)r;
	}
	left = req->body_len - req->priv_.body_off;
	if (len > left)
		len = left;
	memcpy(buf, (const char *)req->body + req->priv_.body_off, len);
	req->priv_.body_off += len;
	return len;
}

/* curl rewinds by itself when a reused connection turns out dead. */
static int on_seek_cb(void *ud, curl_off_t off, int origin)
{
	struct xfer_request *req = ud;

	if (origin != SEEK_SET || off < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (req->read) {
		if (off != 0 || !req->rewind || req->rewind(req->user))
			return CURL_SEEKFUNC_CANTSEEK;
		req->priv_.body_off = 0;
		return CURL_SEEKFUNC_OK;
	}
	if ((size_t)off > req->body_len)
		return CURL_SEEKFUNC_FAIL;
	req->priv_.body_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ---- request lists (engine thread) ---- */

static void ready_push(struct xfer_engine *e, struct xfer_request *r, bool front)
{
	if (front) {
		r->priv_.next = e->ready_head;
		e->ready_head = r;
		if (!e->ready_tail)
			e->ready_tail = r;
		return;
	}
	r->priv_.next = NULL;
	if (e->ready_tail)
		e->ready_tail->priv_.next = r;
	else
		e->ready_head = r;
	e->ready_tail = r;
}

static struct xfer_request *ready_pop(struct xfer_engine *e)
{
	struct xfer_request *r = e->ready_head;

	if (r) {
		e->ready_head = r->priv_.next;
		if (!e->ready_head)
			e->ready_tail = NULL;
		r->priv_.next = NULL;
	}
	return r;
}

static void delayed_insert(struct xfer_engine *e, struct xfer_request *r)
{
	struct xfer_request **pp = &e->delayed;

	while (*pp && (*pp)->priv_.due_ms <= r->priv_.due_ms)
		pp = &(*pp)->priv_.next;
	r->priv_.next = *pp;
	*pp = r;
}

static void release_easy(struct xfer_engine *e, struct xfer_request *r)
{
	CURL *h = r->priv_.easy;

	if (h) {
		curl_multi_remove_handle(e->multi, h);
		if (e->n_idle < e->cfg.max_connections)
			e->idle[e->n_idle++] = h;
		else
			curl_easy_cleanup(h);
		r->priv_.easy = NULL;
	}
	curl_slist_free_all(r->priv_.slist);
	r->priv_.slist = NULL;
}

static void inflight_remove(struct xfer_engine *e, struct xfer_request *r)
{
	for (int i = 0; i < e->n_inflight; i++) {
		if (e->inflight[i] == r) {
			e->inflight[i] = e->inflight[--e->n_inflight];
			metric_gauge_set(e->m_in_flight, e->n_inflight);
			return;
		}
	}
}

/* Report the outcome. @r may be freed by its owner once this returns. */
/* Count @r's outcome in the engine's metrics (engine thread). */
static void count_request(struct xfer_engine *e, struct xfer_request *r, enum xfer_status st)
{
	const char *op = r->log_name ? r->log_name : "other";
	char labels[160], opl[80];
	struct metric *m;

	if (!e->cfg.metrics)
		return;
	metrics_label_escape(op, opl, sizeof(opl));
	if (st == XFER_OK)
		snprintf(labels, sizeof(labels), "op=\"%s\",status=\"%ld\"", opl,
		         r->result.http_status);
	else
		snprintf(labels, sizeof(labels), "op=\"%s\",status=\"%s\"", opl,
		         st == XFER_ERR_TIMEOUT     ? "timeout"
		         : st == XFER_ERR_CANCELLED ? "cancelled"
		                                    : "error");
	metric_add(metrics_counter(e->cfg.metrics, "s3_requests_total",
	                           "S3 (and STS, CloudFormation) requests by operation and outcome",
	                           labels),
	           1);
	snprintf(labels, sizeof(labels), "op=\"%s\"", opl);
	m = metrics_histogram(e->cfg.metrics, "s3_request_seconds",
	                      "time of a request, its retries included", labels,
	                      metrics_latency_bounds, METRICS_LATENCY_NBOUNDS);
	metric_observe(m, (double)r->result.elapsed_ms / 1000.0);
	if (r->priv_.first_byte_ms && r->priv_.attempt_ms) {
		m = metrics_histogram(
		    e->cfg.metrics, "s3_first_byte_seconds",
		    "time from an attempt's start to the first byte of its answer", labels,
		    metrics_latency_bounds, METRICS_LATENCY_NBOUNDS);
		metric_observe(m, (double)(r->priv_.first_byte_ms - r->priv_.attempt_ms) / 1000.0);
	}
}

static void complete(struct xfer_engine *e, struct xfer_request *r, enum xfer_status st)
{
	struct waiter *w = r->priv_.waiter;

	r->result.status = st;
	r->result.http_status = r->priv_.status;
	r->result.elapsed_ms = r->priv_.first_ms ? (long)(now_ms() - r->priv_.first_ms) : 0;
	count_request(e, r, st);
	if (log_level() >= LOG_DEBUG) {
		if (st == XFER_OK)
			log_msg(LOG_DEBUG, r->result.request_id[0] ? r->result.request_id : NULL,
			        "%s %s %s -> HTTP %ld after %d attempt(s)",
			        r->log_name ? r->log_name : "request", r->method, r->url,
			        r->result.http_status, r->result.attempts);
		else
			log_msg(LOG_DEBUG, r->result.request_id[0] ? r->result.request_id : NULL,
			        "%s %s %s failed after %d attempt(s): %s%s%s",
			        r->log_name ? r->log_name : "request", r->method, r->url,
			        r->result.attempts, xfer_strstatus(st),
			        r->result.errmsg[0] ? ": " : "", r->result.errmsg);
	}
	if (w) {
		pthread_mutex_lock(&w->m);
		w->done = true;
		pthread_cond_signal(&w->c);
		pthread_mutex_unlock(&w->m);
	} else {
		r->done(r->user, r);
	}
}

static struct curl_slist *build_headers(struct xfer_request *r, bool *ok)
{
	struct curl_slist *l = NULL, *n;
	char small[512];

	*ok = false;
	for (size_t i = 0; i < r->n_headers; i++) {
		const char *name = r->headers[i].name, *val = r->headers[i].value;
		char *line = small;
		size_t need = strlen(name) + (val ? strlen(val) : 0) + 3;

		if (need > sizeof(small)) {
			line = malloc(need);
			if (!line)
				goto fail;
		}
		/* curl: "Name:" removes its own header, "Name;" sends an empty one. */
		if (!val)
			snprintf(line, need, "%s:", name);
		else if (*val)
			snprintf(line, need, "%s: %s", name, val);
		else
			snprintf(line, need, "%s;", name);
		n = curl_slist_append(l, line);
		if (line != small)
			free(line);
		if (!n)
			goto fail;
		l = n;
	}
	/* No 100-continue round trip before each body. */
	n = curl_slist_append(l, "Expect:");
	if (!n)
		goto fail;
	l = n;
	*ok = true;
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
}

/* Set up one attempt and hand it to curl. On failure @r is completed. */
static void start_attempt(struct xfer_engine *e, struct xfer_request *r)
{
	CURL *h;
	bool ok;
	enum xfer_status fail = XFER_ERR_NOMEM;
	const char *m = r->method;

	r->result.attempts++;
	r->priv_.attempt_ms = now_ms();
	r->priv_.first_byte_ms = 0;
	if (r->result.attempts == 1)
		r->priv_.first_ms = r->priv_.attempt_ms;
	r->result.request_id[0] = '\0';
	r->result.errmsg[0] = '\0';
	/* An error body of an earlier attempt says nothing about this one. */
	free(r->result.err_body);
	r->result.err_body = NULL;
	r->result.err_body_len = 0;
	r->priv_.err_cap = 0;
	r->result.http_status = 0;
	r->priv_.status = 0;
	r->priv_.body_off = 0;
	r->priv_.too_large = false;
	r->priv_.write_failed = false;
	if (r->priv_.delivered && r->write_reset)
		r->write_reset(r->user);
	r->priv_.delivered = 0;
	r->result.body_len = 0;

	if (e->n_idle) {
		h = e->idle[--e->n_idle];
		curl_easy_reset(h);
	} else {
		h = curl_easy_init();
		if (!h)
			goto fail;
	}
	r->priv_.easy = h;

	r->priv_.slist = build_headers(r, &ok);
	if (!ok)
		goto fail;
	if (r->sign && r->sign(r->sign_user, r, &r->priv_.slist)) {
		fail = XFER_ERR_SIGN;
		if (!r->result.errmsg[0])
			snprintf(r->result.errmsg, sizeof(r->result.errmsg), "signing failed");
		goto fail;
	}

	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->result.errmsg);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (e->ca_bundle)
		curl_easy_setopt(h, CURLOPT_CAINFO, e->ca_bundle);
	if (e->interfaces)
		curl_easy_setopt(h, CURLOPT_INTERFACE,
		                 e->interfaces[e->next_interface++ % e->n_interfaces]);
	else if (e->interface)
		curl_easy_setopt(h, CURLOPT_INTERFACE, e->interface);
	curl_easy_setopt(h, CURLOPT_USERAGENT, e->user_agent);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	                 r->connect_timeout_ms ? r->connect_timeout_ms : e->cfg.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, e->cfg.low_speed_limit);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, e->cfg.low_speed_time);
	if (r->timeout_ms)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)XFER_RECV_BUFFER);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->priv_.slist);

	if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(m, "GET") == 0 && !r->body_len && !r->read) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(m, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
	} else if (strcmp(m, "PUT") == 0 || r->body_len || r->read) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, (long)XFER_SEND_BUFFER);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
		if (strcmp(m, "PUT") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}
	/*
	 * libcurl resends, on its own, a request whose reused connection died
	 * before any reply byte ("Connection died, retrying a fresh connect"),
	 * and reports one success. For CreateMultipartUpload that second send
	 * made a second upload and left the first an orphan nobody knew of. A
	 * new connection is never retried that way: the lost reply reaches the
	 * caller as outcome_unknown, and the caller decides what to resend.
	 */
	curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, r->not_idempotent ? 1L : 0L);

	if (curl_multi_add_handle(e->multi, h) != CURLM_OK)
		goto fail;
	e->inflight[e->n_inflight++] = r;
	metric_gauge_set(e->m_in_flight, e->n_inflight);
	return;
fail:
	release_easy(e, r);
	complete(e, r, fail);
}

static void start_ready(struct xfer_engine *e)
{
	uint64_t now = 0;

	if (e->delayed)
		now = now_ms();
	/* Due retries go first: they have waited already. */
	while (e->delayed && e->delayed->priv_.due_ms <= now) {
		struct xfer_request *r = e->delayed;

		e->delayed = r->priv_.next;
		ready_push(e, r, true);
	}
	/* Adaptive mode, throttled a moment ago: only retries (already delayed) go. */
	if (e->slow_until_ms && e->ready_head && e->ready_head->result.attempts == 0) {
		if (!now)
			now = now_ms();
		if (now < e->slow_until_ms)
			return;
		e->slow_until_ms = 0;
	}
	while (e->n_inflight < e->cfg.max_connections && e->ready_head)
		start_attempt(e, ready_pop(e));
}

/* Can the body be sent again and the response delivered again? */
static bool can_repeat(struct xfer_request *r)
{
	if (r->read && r->priv_.body_off && (!r->rewind || r->rewind(r->user)))
		return false;
	if (r->write && r->priv_.delivered && !r->write_reset)
		return false;
	return true;
}

/* The policy for @r: the engine's, with the request's own bounds. */
static struct retry_policy policy_of(const struct xfer_engine *e, const struct xfer_request *r)
{
	struct retry_policy p = e->cfg.retry;

	if (r->max_attempts > 0)
		p.max_attempts = r->max_attempts;
	if (r->retry_budget_ms > 0)
		p.budget_ms = r->retry_budget_ms;
	return p;
}

/*
 * Queue @r for another attempt if the policy allows one (attempts and the
 * time budget). Returns false when it does not: the caller completes @r.
 */
static bool schedule_retry(struct xfer_engine *e, struct xfer_request *r, const char *why,
                           bool slow)
{
	struct retry_policy p = policy_of(e, r);
	long elapsed = (long)(now_ms() - r->priv_.first_ms);
	long delay = retry_delay_ms(&p, r->result.attempts, elapsed, rng_next(e));

	if (delay < 0) {
		log_msg(LOG_DEBUG, r->result.request_id[0] ? r->result.request_id : NULL,
		        "%s %s %s: %s; no retry left after %d attempt(s) in %ld ms",
		        r->log_name ? r->log_name : "request", r->method, r->url, why,
		        r->result.attempts, elapsed);
		return false;
	}
	r->priv_.due_ms = now_ms() + (uint64_t)delay;
	if (slow && p.mode == RETRY_ADAPTIVE && r->priv_.due_ms > e->slow_until_ms)
		e->slow_until_ms = r->priv_.due_ms;
	if (e->cfg.metrics) {
		char labels[96], opl[80];

		metrics_label_escape(r->log_name ? r->log_name : "other", opl, sizeof(opl));
		snprintf(labels, sizeof(labels), "op=\"%s\"", opl);
		metric_add(metrics_counter(e->cfg.metrics, "s3_retries_total",
		                           "attempts sent again (transient failures)", labels),
		           1);
		if (slow)
			metric_add(e->m_throttled, 1);
	}
	log_msg(r->result.attempts >= 3 ? LOG_INFO : LOG_DEBUG,
	        r->result.request_id[0] ? r->result.request_id : NULL,
	        "%s %s %s: %s; retry %d in %ld ms", r->log_name ? r->log_name : "request",
	        r->method, r->url, why, r->result.attempts + 1, delay);
	delayed_insert(e, r);
	return true;
}

static void finish_attempt(struct xfer_engine *e, struct xfer_request *r, CURLcode rc)
{
	char why[160];

	inflight_remove(e, r);
	release_easy(e, r);

	if (__atomic_load_n(&r->priv_.cancel, __ATOMIC_RELAXED) || r->priv_.write_failed) {
		complete(e, r,
		         r->priv_.write_failed && !r->write ? XFER_ERR_NOMEM : XFER_ERR_CANCELLED);
		return;
	}
	if (r->priv_.too_large && !r->classify) {
		complete(e, r, XFER_ERR_TOO_LARGE);
		return;
	}
	if (rc == CURLE_OK || (r->priv_.too_large && r->classify)) {
		long st = r->priv_.status;
		enum xfer_verdict v = status_is_retryable(st) ? XFER_RETRY : XFER_ACCEPT;

		/* the callback judges this attempt: its status, not the last one's (0) */
		r->result.http_status = st;

		/* A body larger than asked for is the classify callback's to judge. */
		if (r->classify)
			v = v == XFER_ACCEPT || r->priv_.too_large ? r->classify(r->user, r) : v;
		if (v != XFER_ACCEPT && can_repeat(r)) {
			snprintf(why, sizeof(why), "HTTP %ld%s", st,
			         v == XFER_RETRY_SLOW ? " (throttled)" : "");
			if (schedule_retry(e, r, why,
			                   v == XFER_RETRY_SLOW || st == 429 || st == 503))
				return;
		}
		complete(e, r, r->priv_.too_large ? XFER_ERR_TOO_LARGE : XFER_OK);
		return;
	}
	snprintf(why, sizeof(why), "%s%s%.100s", curl_easy_strerror(rc),
	         r->result.errmsg[0] ? ": " : "", r->result.errmsg);
	if (curl_rc_is_retryable(rc) && can_repeat(r)) {
		if (r->not_idempotent && curl_rc_maybe_sent(rc)) {
			/* It may have been done: the caller finds out, not a blind resend. */
			r->result.outcome_unknown = true;
		} else if (schedule_retry(e, r, why, false)) {
			return;
		}
	}
	if (!r->result.errmsg[0])
		snprintf(r->result.errmsg, sizeof(r->result.errmsg), "%s", curl_easy_strerror(rc));
	complete(e, r, rc == CURLE_OPERATION_TIMEDOUT ? XFER_ERR_TIMEOUT : XFER_ERR_NETWORK);
}

static void drain_done(struct xfer_engine *e)
{
	CURLMsg *msg;
	int left;

	for (;;) {
		struct xfer_request *r = NULL;

		msg = curl_multi_info_read(e->multi, &left);
		if (!msg)
			break;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r)
			finish_attempt(e, r, msg->data.result);
	}
}

/* Move the cancelled requests of the list at @head onto @cancelled; @return the last kept. */
static struct xfer_request *take_cancelled(struct xfer_request **head, bool all,
                                           struct xfer_request **cancelled)
{
	struct xfer_request *keep = NULL, **kt = &keep, *r, *next, *last = NULL;

	for (r = *head; r; r = next) {
		next = r->priv_.next;
		if (all || __atomic_load_n(&r->priv_.cancel, __ATOMIC_RELAXED)) {
			r->priv_.next = *cancelled;
			*cancelled = r;
		} else {
			*kt = r;
			kt = &r->priv_.next;
			last = r;
		}
	}
	*kt = NULL;
	*head = keep;
	return last;
}

/* Complete every request whose cancel flag is set, wherever it waits. */
static void sweep_cancelled(struct xfer_engine *e, bool all)
{
	struct xfer_request *r, *next, *cancelled = NULL;

	e->ready_tail = take_cancelled(&e->ready_head, all, &cancelled);
	take_cancelled(&e->delayed, all, &cancelled);
	for (int i = 0; i < e->n_inflight;) {
		r = e->inflight[i];
		if (all || __atomic_load_n(&r->priv_.cancel, __ATOMIC_RELAXED)) {
			e->inflight[i] = e->inflight[--e->n_inflight];
			release_easy(e, r);
			r->priv_.next = cancelled;
			cancelled = r;
		} else {
			i++;
		}
	}
	for (r = cancelled; r; r = next) {
		next = r->priv_.next;
		complete(e, r, XFER_ERR_CANCELLED);
	}
}

static void *engine_main(void *arg)
{
	struct xfer_engine *e = arg;

	for (;;) {
		struct xfer_request *sub;
		bool stopping;
		unsigned cancels;
		int running, timeout;
		long ct = -1;

		pthread_mutex_lock(&e->lock);
		sub = e->sub_head;
		e->sub_head = e->sub_tail = NULL;
		stopping = e->stopping;
		cancels = e->cancels;
		e->cancels = 0;
		pthread_mutex_unlock(&e->lock);

		while (sub) {
			struct xfer_request *next = sub->priv_.next;

			ready_push(e, sub, false);
			sub = next;
		}
		if (stopping) {
			sweep_cancelled(e, true);
			/* Completions may have submitted more; cancel those too. */
			pthread_mutex_lock(&e->lock);
			sub = e->sub_head;
			e->sub_head = e->sub_tail = NULL;
			pthread_mutex_unlock(&e->lock);
			if (!sub)
				break;
			while (sub) {
				struct xfer_request *next = sub->priv_.next;

				ready_push(e, sub, false);
				sub = next;
			}
			continue;
		}
		if (cancels)
			sweep_cancelled(e, false);

		start_ready(e);
		curl_multi_perform(e->multi, &running);
		drain_done(e);
		start_ready(e);

		curl_multi_timeout(e->multi, &ct);
		timeout = ct < 0 || ct > 1000 ? 1000 : (int)ct;
		if (e->delayed) {
			uint64_t now = now_ms(), due = e->delayed->priv_.due_ms;
			int d = due <= now ? 0 : (int)(due - now);

			if (d < timeout)
				timeout = d;
		}
		if (e->ready_head && e->n_inflight < e->cfg.max_connections)
			timeout = 0;
		if (timeout > 0 || e->n_inflight)
			curl_multi_poll(e->multi, NULL, 0, timeout, NULL);
	}
	return NULL;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* ---- public API ---- */

struct xfer_engine *xfer_engine_new(const struct xfer_config *cfg)
{
	struct xfer_engine *e;
	struct xfer_config zero = {0};

	pthread_once(&g_curl_once, curl_init_once);
	if (g_curl_init_rc != CURLE_OK) {
		log_err("xfer: curl_global_init failed: %s", curl_easy_strerror(g_curl_init_rc));
		return NULL;
	}
	if (!cfg)
		cfg = &zero;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cfg = *cfg;
	if (e->cfg.max_connections <= 0)
		e->cfg.max_connections = 16;
	if (e->cfg.retry.budget_ms <= 0)
		e->cfg.retry.budget_ms = RETRY_DEFAULT_BUDGET_MS;
	if (e->cfg.retry.base_ms <= 0)
		e->cfg.retry.base_ms = RETRY_DEFAULT_BASE_MS;
	if (e->cfg.retry.max_delay_ms <= 0)
		e->cfg.retry.max_delay_ms = RETRY_DEFAULT_MAX_DELAY;
	if (e->cfg.retry.max_delay_ms < e->cfg.retry.base_ms)
		e->cfg.retry.max_delay_ms = e->cfg.retry.base_ms;
	if (e->cfg.connect_timeout_ms <= 0)
		e->cfg.connect_timeout_ms = 5000;
	if (e->cfg.low_speed_limit <= 0)
		e->cfg.low_speed_limit = 1;
	if (e->cfg.low_speed_time <= 0)
		e->cfg.low_speed_time = 15;
	if (e->cfg.max_error_body == 0)
		e->cfg.max_error_body = 65536;
	e->cfg.ca_bundle = NULL;
	e->cfg.user_agent = NULL;
	e->cfg.interface = NULL;
	e->cfg.interfaces = NULL;
	if (cfg->interface && cfg->interface[0]) {
		e->interface = strdup(cfg->interface);
		if (!e->interface)
			goto fail;
	}
	if (cfg->interfaces && cfg->interfaces[0]) {
		unsigned n = 0;

		while (cfg->interfaces[n])
			n++;
		e->interfaces = calloc(n + 1, sizeof(*e->interfaces));
		if (!e->interfaces)
			goto fail;
		for (unsigned i = 0; i < n; i++) {
			e->interfaces[i] = strdup(cfg->interfaces[i]);
			if (!e->interfaces[i])
				goto fail;
		}
		e->n_interfaces = n;
	}
	if (cfg->ca_bundle) {
		if (access(cfg->ca_bundle, R_OK) != 0) {
			log_err(
			    "xfer: cannot read the CA bundle %s: %s; give a readable PEM file to "
			    "--ca-bundle",
			    cfg->ca_bundle, strerror(errno));
			goto fail;
		}
		e->ca_bundle = strdup(cfg->ca_bundle);
		if (!e->ca_bundle)
			goto fail;
	}
	e->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "hpcops/" HPCOPS_VERSION);
	if (cfg->metrics) {
		e->m_in_flight = metrics_gauge(cfg->metrics, "s3_requests_in_flight",
		                               "requests on the wire now", NULL);
		e->m_throttled =
		    metrics_counter(cfg->metrics, "s3_throttled_total",
		                    "replies that said slow down (503, 429, SlowDown)", NULL);
	}
	e->inflight = calloc((size_t)e->cfg.max_connections, sizeof(*e->inflight));
	e->idle = calloc((size_t)e->cfg.max_connections, sizeof(*e->idle));
	e->multi = curl_multi_init();
	if (!e->user_agent || !e->inflight || !e->idle || !e->multi)
		goto fail;
	curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)e->cfg.max_connections);
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)e->cfg.max_connections);
	e->rng =
	    ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)e ^ now_ms();
	if (!e->rng)
		e->rng = 0x9E3779B97F4A7C15ULL;
	pthread_mutex_init(&e->lock, NULL);
	if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
		pthread_mutex_destroy(&e->lock);
		log_err("xfer: cannot start the transfer thread");
		goto fail;
	}
	e->thread_started = true;
	return e;
fail:
	if (e->multi)
		curl_multi_cleanup(e->multi);
	free(e->inflight);
	free(e->idle);
	free(e->ca_bundle);
	free(e->user_agent);
	free(e->interface);
	free_strv(e->interfaces);
	free(e);
	return NULL;
}

void xfer_engine_free(struct xfer_engine *e)
{
	if (!e)
		return;
	if (pthread_equal(pthread_self(), e->thread)) {
		log_err("xfer: xfer_engine_free() called from a completion callback; not freed");
		return;
	}
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_mutex_unlock(&e->lock);
	curl_multi_wakeup(e->multi);
	pthread_join(e->thread, NULL);
	for (int i = 0; i < e->n_idle; i++)
		curl_easy_cleanup(e->idle[i]);
	curl_multi_cleanup(e->multi);
	pthread_mutex_destroy(&e->lock);
	free(e->inflight);
	free(e->idle);
	free(e->ca_bundle);
	free(e->user_agent);
	free(e->interface);
	free_strv(e->interfaces);
	free(e);
}

struct retry_policy xfer_engine_policy(const struct xfer_engine *e)
{
	return e->cfg.retry;
}

void xfer_request_init(struct xfer_request *req)
{
	memset(req, 0, sizeof(*req));
}

void xfer_request_cleanup(struct xfer_request *req)
{
	free(req->result.err_body);
	free(req->result.body);
	memset(&req->result, 0, sizeof(req->result));
	req->priv_.err_cap = 0;
	req->priv_.grow_cap = 0;
}

static int enqueue(struct xfer_engine *e, struct xfer_request *req)
{
	bool stopping;

	/* Keep what a previous use left in result: cleanup is the caller's. */
	char *eb = req->result.err_body, *b = req->result.body;
	size_t ec = req->priv_.err_cap;
	void *w = req->priv_.waiter;

	memset(&req->priv_, 0, sizeof(req->priv_));
	memset(&req->result, 0, sizeof(req->result));
	req->result.err_body = eb;
	req->priv_.err_cap = ec;
	/* A body left from a previous use would be appended to: drop it. */
	free(b);
	req->priv_.waiter = w;
	req->priv_.engine = e;

	if (!req->method || !req->url || (!req->done && !w) ||
	    (req->body_len && !req->body && !req->read) || (req->resp_buf && !req->resp_cap)) {
		snprintf(req->result.errmsg, sizeof(req->result.errmsg),
		         "request without method, url, done callback or body source");
		req->result.status = XFER_ERR_INVALID;
		return -1;
	}
	pthread_mutex_lock(&e->lock);
	stopping = e->stopping;
	if (!stopping) {
		if (e->sub_tail)
			e->sub_tail->priv_.next = req;
		else
			e->sub_head = req;
		e->sub_tail = req;
	}
	pthread_mutex_unlock(&e->lock);
	if (stopping) {
		snprintf(req->result.errmsg, sizeof(req->result.errmsg), "engine is shutting down");
		req->result.status = XFER_ERR_CANCELLED;
		return -1;
	}
	curl_multi_wakeup(e->multi);
	return 0;
}

int xfer_submit(struct xfer_engine *e, struct xfer_request *req)
{
	req->priv_.waiter = NULL;
	return enqueue(e, req);
}

int xfer_perform(struct xfer_engine *e, struct xfer_request *req)
{
	struct waiter w = {.done = false};
	int ret;

	if (pthread_equal(pthread_self(), e->thread)) {
		snprintf(req->result.errmsg, sizeof(req->result.errmsg),
		         "blocking transfer called on the transfer thread");
		req->result.status = XFER_ERR_INVALID;
		return -1;
	}
	pthread_mutex_init(&w.m, NULL);
	pthread_cond_init(&w.c, NULL);
	req->priv_.waiter = &w;
	ret = enqueue(e, req);
	if (ret == 0) {
		pthread_mutex_lock(&w.m);
		while (!w.done)
			pthread_cond_wait(&w.c, &w.m);
		pthread_mutex_unlock(&w.m);
		ret = req->result.status == XFER_OK ? 0 : -1;
	}
	req->priv_.waiter = NULL;
	pthread_mutex_destroy(&w.m);
	pthread_cond_destroy(&w.c);
	return ret;
}

int xfer_header_add(struct curl_slist **list, const char *name, const char *value)
{
	struct curl_slist *n;
	char *line;

	if (asprintf(&line, "%s: %s", name, value) < 0)
		return -1;
	/* curl_slist_append() copies the line and returns NULL on failure. */
	n = curl_slist_append(*list, line);
	util_free_secret(line);
	if (!n)
		return -1;
	*list = n;
	return 0;
}

void xfer_cancel(struct xfer_engine *e, struct xfer_request *req)
{
	__atomic_store_n(&req->priv_.cancel, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&e->lock);
	e->cancels++;
	pthread_mutex_unlock(&e->lock);
	curl_multi_wakeup(e->multi);
}
