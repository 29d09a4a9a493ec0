/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xfer: the transfer engine. One thread drives the libcurl multi interface:
 * many HTTP requests in flight over reused connections, bodies streamed
 * through callbacks, retries with exponential backoff and full jitter,
 * cancellation. The S3, STS, CloudFormation and credential clients all run
 * their requests here. The caller owns every struct xfer_request it submits
 * and keeps it alive until its completion has been reported.
 */
#ifndef HPCOPS_XFER_H
#define HPCOPS_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "retry.h"

struct metrics;
struct xfer_engine;
struct xfer_request;

/** Engine settings. Zero in any field means "the default in brackets". */
struct xfer_config {
	int max_connections;       /* requests in flight at once, = connections kept [16] */
	struct retry_policy retry; /* the retry policy of every request (retry.h) [defaults] */
	long connect_timeout_ms;   /* TCP + TLS connect [5000] */
	long low_speed_limit;      /* abort an attempt slower than this many bytes/s ... [1] */
	long low_speed_time;       /* ... for this many seconds: a stalled reply is retried [15] */
	size_t max_error_body;     /* bytes of a >= 300 response body kept [65536] */
	const char *ca_bundle;     /* PEM file of CAs (--ca-bundle); NULL = system store */
	const char *user_agent;    /* NULL = "hpcops/VERSION" */
	const char *interface;     /* --bind: network interface or address (CURLOPT_INTERFACE) */
	const char *const *interfaces; /* or several (NULL-terminated), used in turn per attempt */
	/*
	 * Where the engine counts what it does (borrowed, may be NULL):
	 * s3_requests_total{op,status}, s3_retries_total{op},
	 * s3_throttled_total, s3_requests_in_flight, s3_request_seconds{op}
	 * (whole request, retries included) and s3_first_byte_seconds{op}.
	 * op is the request's log_name.
	 */
	struct metrics *metrics;
};

/** How a request ended. An HTTP response of any status is XFER_OK. */
enum xfer_status {
	XFER_OK = 0,        /* a response arrived: see http_status */
	XFER_ERR_NETWORK,   /* connect refused/failed, reset, DNS, TLS: after the retries */
	XFER_ERR_TIMEOUT,   /* connect or low-speed timeout: after the retries */
	XFER_ERR_CANCELLED, /* xfer_cancel(), engine shut down, or a write callback said stop */
	XFER_ERR_TOO_LARGE, /* the body did not fit resp_buf / resp_max */
	XFER_ERR_SIGN,      /* the sign callback failed */
	XFER_ERR_NOMEM,
	XFER_ERR_INVALID, /* bad request fields, or a blocking call on the engine thread */
};

/** What a request's classify callback makes of an attempt that got a response. */
enum xfer_verdict {
	XFER_ACCEPT = 0, /* the outcome stands: complete the request with it */
	XFER_RETRY,      /* transient (an error code that says so, a reply that cannot be
	                  * trusted): try again under the retry policy */
	XFER_RETRY_SLOW, /* throttled: as XFER_RETRY; in adaptive mode new requests wait too */
};

/**
 * One request header. Same layout as struct sigv4_header. A NULL @value
 * removes a header curl would add by itself (e.g. POST's Content-Type);
 * "" sends the header with an empty value.
 */
struct xfer_header {
	const char *name;
	const char *value;
};

/** What happened, filled before the done callback runs. */
struct xfer_result {
	enum xfer_status status;
	long http_status;             /* 0 when no response arrived */
	int attempts;                 /* attempts made */
	char request_id[64];          /* x-amz-request-id / x-amzn-RequestId, or "" */
	char errmsg[CURL_ERROR_SIZE]; /* curl's text for a transport error, or "" */
	/*
	 * A transport error ended a request marked not_idempotent after it may
	 * have reached the server: whether it took effect is unknown, and the
	 * caller has to find out (it was not retried).
	 */
	bool outcome_unknown;
	long elapsed_ms; /* from the first attempt's start to completion */
	/*
	 * Body of a response with status >= 300 (the S3/AWS error document),
	 * at most max_error_body bytes, NUL-terminated; NULL if none. Owned
	 * by the request: freed by xfer_request_cleanup().
	 */
	char *err_body;
	size_t err_body_len;
	/*
	 * Body of a 2xx response when the request asked for a grown buffer
	 * (resp_max > 0, no resp_buf and no write callback); NUL-terminated.
	 * Owned by the request: freed by xfer_request_cleanup() unless the
	 * caller takes it (then set body to NULL).
	 */
	char *body;
	size_t body_len; /* bytes received into resp_buf or body */
};

/**
 * Called on the engine thread before every attempt: append the headers the
 * attempt needs (Authorization, X-Amz-Date, ...) to @extra with
 * curl_slist_append(). Signing per attempt keeps x-amz-date fresh and picks
 * up refreshed credentials. Return 0, or -1 to fail the request with
 * XFER_ERR_SIGN (write a reason into @req->result.errmsg).
 */
typedef int (*xfer_sign_fn)(void *user, struct xfer_request *req, struct curl_slist **extra);

/** Completion, on the engine thread, exactly once per accepted request. May free @req. */
typedef void (*xfer_done_fn)(void *user, struct xfer_request *req);

/**
 * A request. Initialize with xfer_request_init(), fill the "caller" fields,
 * then xfer_submit() or xfer_perform(). Everything it points to is borrowed
 * and must stay valid until completion. After completion the struct may be
 * inspected, then xfer_request_cleanup() releases what the engine kept.
 */
struct xfer_request {
	/* ---- caller: what to send ---- */
	const char *method;                /* "GET", "HEAD", "PUT", "POST", "DELETE" */
	const char *url;                   /* full URL, already percent-encoded */
	const struct xfer_header *headers; /* sent as given (plus what @sign adds) */
	size_t n_headers;

	/* Request body: memory (@body, @body_len) or a read callback. */
	const void *body;
	size_t body_len; /* also the Content-Length with @read */
	/* Fill @buf with up to @len bytes; return bytes (0 = end) or -1 to abort. */
	long (*read)(void *user, char *buf, size_t len);
	/* Rewind the body to its start before a retry; 0 or -1 (no retry then). */
	int (*rewind)(void *user);

	/*
	 * Response body of a 2xx reply, by the first of:
	 *   @write set   -> streamed to @write; return 0 to go on, non-zero to
	 *                   stop (XFER_ERR_CANCELLED); before a retry that
	 *                   follows delivered bytes, @write_reset is called;
	 *   @resp_buf    -> stored into the caller's buffer of @resp_cap bytes;
	 *   @resp_max>0  -> stored in a grown malloc'd buffer (result.body);
	 *   otherwise    -> discarded.
	 */
	int (*write)(void *user, const void *data, size_t len);
	void (*write_reset)(void *user);
	void *resp_buf;
	size_t resp_cap;
	size_t resp_max;

	/*
	 * Optional: every response header except the status line, on the engine
	 * thread (value without CRLF, not NUL-terminated). Called again from the
	 * start on a retry. The engine itself only looks at the request id.
	 */
	void (*on_header)(void *user, const char *name, size_t name_len, const char *value,
	                  size_t value_len);

	/*
	 * Optional: after every attempt that got a whole response (any status),
	 * on the engine thread: say whether it stands or is retried (the retry
	 * policy still bounds attempts and time). The engine itself retries
	 * 429, 500, 502, 503 and 504 without asking; everything a reply's body
	 * says (error codes, an <Error> in a 200, a body that is not what was
	 * asked for) is for this callback to judge. result.http_status and
	 * result.err_body are this attempt's.
	 */
	enum xfer_verdict (*classify)(void *user, struct xfer_request *req);

	xfer_sign_fn sign; /* NULL = send unsigned */
	void *sign_user;
	xfer_done_fn done; /* required for xfer_submit() */
	void *user;        /* passed to read/rewind/write/on_header/done */

	int max_attempts;     /* 0 = the engine's policy; 1 = no retry */
	long retry_budget_ms; /* 0 = the engine's policy */
	/*
	 * The request must not be sent twice blindly (CreateMultipartUpload,
	 * CompleteMultipartUpload): a transport error after it may have reached
	 * the server ends it with result.outcome_unknown instead of a retry.
	 * Refused connections and error statuses are still retried.
	 */
	bool not_idempotent;
	long timeout_ms;         /* whole attempt; 0 = none (low-speed applies) */
	long connect_timeout_ms; /* 0 = engine default */
	const char *log_name;    /* short label for debug lines, e.g. "GetObject" */

	/* ---- engine: the outcome ---- */
	struct xfer_result result;

	/* ---- engine private: do not touch ---- */
	struct {
		struct xfer_engine *engine;
		struct xfer_request *next;
		void *waiter; /* set by xfer_perform() */
		CURL *easy;
		struct curl_slist *slist;
		uint64_t due_ms;
		uint64_t first_ms;      /* when the first attempt started */
		uint64_t attempt_ms;    /* when this attempt started */
		uint64_t first_byte_ms; /* when this attempt's status line came, or 0 */
		size_t body_off;
		size_t grow_cap;
		size_t delivered;
		size_t err_cap;
		long status;
		int cancel; /* atomic */
		bool write_failed;
		bool too_large;
		bool in_body;
	} priv_;
};

/**
 * xfer_engine_new() - start an engine and its thread. @cfg is copied.
 * Returns NULL on failure (logged). Free with xfer_engine_free().
 * curl_global_init() is done once by the first engine.
 */
struct xfer_engine *xfer_engine_new(const struct xfer_config *cfg);

/**
 * xfer_engine_free() - stop the thread; requests still queued or in flight
 * complete with XFER_ERR_CANCELLED first. NULL is allowed.
 */
void xfer_engine_free(struct xfer_engine *e);

/** xfer_request_init() - zero @req so it can be filled and submitted. */
void xfer_request_init(struct xfer_request *req);

/**
 * xfer_request_cleanup() - free result.err_body and result.body (if the
 * caller did not take it) and zero the result. The request may then be
 * reused or freed. Safe on an initialized but never submitted request.
 */
void xfer_request_cleanup(struct xfer_request *req);

/**
 * xfer_submit() - queue @req; returns at once. @req->done runs later on the
 * engine thread with @req->result filled. Callable from any thread,
 * including from a done callback. Returns 0, or -1 if @req is invalid
 * (then done is not called and result.status says why).
 */
int xfer_submit(struct xfer_engine *e, struct xfer_request *req);

/**
 * xfer_perform() - submit @req and wait for it (blocking). Any thread except
 * the engine's own (from a callback it fails with XFER_ERR_INVALID).
 * @req->done is not used. Returns 0 when a response arrived (any HTTP
 * status: check result.http_status), -1 otherwise (result.status says why).
 */
int xfer_perform(struct xfer_engine *e, struct xfer_request *req);

/**
 * xfer_cancel() - ask for @req to stop. It completes (done callback, or
 * xfer_perform returning) with XFER_ERR_CANCELLED unless it had already
 * finished. The caller must still keep @req valid until its completion.
 */
void xfer_cancel(struct xfer_engine *e, struct xfer_request *req);

/**
 * xfer_header_add() - append "Name: value" to @list, for sign callbacks.
 * On failure (-1, out of memory) @list is left as it was, so nothing built
 * so far leaks or is lost. The temporary line is wiped before it is freed:
 * it may hold a signature or a session token. Returns 0 or -1.
 */
int xfer_header_add(struct curl_slist **list, const char *name, const char *value);

/** xfer_strstatus() - a short English text for @s (static storage). */
const char *xfer_strstatus(enum xfer_status s);

/**
 * xfer_is_retryable_code() - true for the AWS error codes that mean "try
 * again later": SlowDown, Throttling, ThrottlingException, RequestTimeout,
 * RequestLimitExceeded, TooManyRequestsException, InternalError, ... For
 * the classify callbacks of the clients, which parse their error bodies.
 */
bool xfer_is_retryable_code(const char *code, size_t len);

/** xfer_is_throttle_code() - the subset of those that mean "slow down" (throttling). */
bool xfer_is_throttle_code(const char *code, size_t len);

/**
 * xfer_engine_policy() - the engine's retry policy (a copy), so callers
 * that finish a job themselves (e.g. verify an unknown outcome) stay within
 * the same budget.
 */
struct retry_policy xfer_engine_policy(const struct xfer_engine *e);

#endif
