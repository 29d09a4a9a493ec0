/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics_http: GET /metrics over HTTP/1.1 for a Prometheus scraper, on
 * libmicrohttpd (Debian's libmicrohttpd12: GNU, maintained, C, no global
 * state). One internal polling thread serves every connection; the request
 * size, the connection count and idle time are bounded, so a slow or hostile
 * client holds one connection for at most the timeout and stalls no one.
 */
#include "metrics.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_server {
	struct metrics *m;
	struct MHD_Daemon *daemon;
};

static void why_set(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (!why || why_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

/* libmicrohttpd's own messages (a timed-out client, a refused connection) are debug lines. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	if (log_level() < LOG_DEBUG)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("metrics http: %s", line);
}

static struct MHD_Response *text_response(const char *text)
{
	/* MHD copies, so the static strings need no lifetime of their own */
	return MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
}

static bool get_or_head(const char *method)
{
	return !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
}

static bool has_body(struct MHD_Connection *conn)
{
	const char *cl =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0")) ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                   MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static char request_seen; /* *req_cls after the first call for a request */

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
	struct metrics_server *s = cls;
	struct MHD_Response *resp = NULL;
	unsigned status = MHD_HTTP_OK;
	enum MHD_Result ret = MHD_NO;
	char *text = NULL;
	size_t len = 0;

	/*
	 * A scrape has no body: answer it on the second call, once the whole
	 * request is in, so the connection stays open for the next scrape
	 * (libmicrohttpd closes a connection answered before that). Anything
	 * else is answered on the first call without reading a body; the
	 * connection then closes, so a body can never be made to stream in.
	 */
	if (!*req_cls) {
		*req_cls = &request_seen;
		if (get_or_head(method) && !has_body(conn))
			return MHD_YES;
	}
	*upload_data_size = 0;
	if (!get_or_head(method)) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		resp = text_response("only GET and HEAD\n");
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	} else if (has_body(conn)) {
		status = MHD_HTTP_BAD_REQUEST;
		resp = text_response("a scrape has no body\n");
	} else if (strcmp(url, "/metrics")) {
		status = MHD_HTTP_NOT_FOUND;
		resp = text_response("not found: metrics are at /metrics\n");
	} else if (metrics_format_prometheus(s->m, &text, &len) < 0) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		resp = text_response("out of memory\n");
	} else {
		resp = MHD_create_response_from_buffer_with_free_callback(len, text, free);
		if (!resp)
			free(text);
		else
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	}
	if (!resp)
		goto out; /* MHD_NO: the connection is closed */
	if (status != MHD_HTTP_OK)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
out:
	return ret;
}

/* A listening socket on addr:port; -1 and @why on failure. */
static int listen_on(const char *addr, int port, int *port_out, char *why, size_t why_len)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char portstr[16];
	int fd = -1, ret = -1, one = 1, rc;

	if (port < 0 || port > 65535) {
		why_set(why, why_len, "metrics port %d is not 0..65535", port);
		goto out;
	}
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(addr, portstr, &hints, &ai);
	if (rc != 0 || !ai) {
		why_set(why, why_len, "metrics address \"%s\" is not a numeric IP address: %s",
		        addr, gai_strerror(rc));
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		why_set(why, why_len, "metrics server: socket: %s", strerror(errno));
		goto out;
	}
	/* a restarted mount gets its port back while old connections sit in TIME_WAIT */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		why_set(why, why_len, "metrics server: cannot listen on %s port %d: %s", addr, port,
		        strerror(errno));
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		why_set(why, why_len, "metrics server: getsockname: %s", strerror(errno));
		goto out;
	}
	if (port_out)
		*port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                           : ((struct sockaddr_in *)&ss)->sin_port);
	ret = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	return ret;
}

struct metrics_server *metrics_server_start_limits(struct metrics *m, const char *addr, int port,
                                                   const struct metrics_server_limits *limits,
                                                   int *port_out, char *why, size_t why_len)
{
	struct metrics_server *s = NULL, *ret = NULL;
	unsigned timeout = METRICS_SERVER_TIMEOUT_S, maxconn = METRICS_SERVER_MAX_CONNECTIONS;
	size_t maxreq = METRICS_SERVER_MAX_REQUEST;
	sigset_t all, saved;
	int fd = -1, bound = 0;

	why_set(why, why_len, "%s", "");
	if (!m || !addr) {
		why_set(why, why_len, "metrics server: no registry or address");
		goto out;
	}
	if (limits && limits->timeout_s)
		timeout = limits->timeout_s;
	if (limits && limits->max_connections)
		maxconn = limits->max_connections;
	if (limits && limits->max_request)
		maxreq = limits->max_request;
	s = calloc(1, sizeof(*s));
	if (!s) {
		why_set(why, why_len, "metrics server: out of memory");
		goto out;
	}
	s->m = m;
	fd = listen_on(addr, port, &bound, why, why_len);
	if (fd < 0)
		goto out;
	/*
	 * MHD_OPTION_CONNECTION_MEMORY_LIMIT is the per-connection pool that
	 * holds the request line and headers (a request past it gets 431 or
	 * 414); MHD_USE_ITC lets stop wake the polling thread at once.
	 */
	sigfillset(&all); /* its thread starts with every signal blocked, as the ticker's */
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	s->daemon = MHD_start_daemon(
	    MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer,
	    s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT, maxconn,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, maxreq, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (!s->daemon) {
		why_set(why, why_len, "metrics server: libmicrohttpd could not start on %s port %d",
		        addr, bound);
		goto out;
	}
	fd = -1; /* the daemon's now: MHD_stop_daemon() closes it */
	if (port_out)
		*port_out = bound;
	ret = s;
	s = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(s);
	return ret;
}

struct metrics_server *metrics_server_start(struct metrics *m, const char *addr, int port,
                                            int *port_out, char *why, size_t why_len)
{
	return metrics_server_start_limits(m, addr, port, NULL, port_out, why, why_len);
}

void metrics_server_stop(struct metrics_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon);
	free(s);
}
