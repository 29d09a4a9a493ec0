/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The transfer engine against a loopback server that fails on purpose
 * (tests/s3/flaky_server.py): retries with backoff on 503, throttling codes,
 * resets and cut bodies; re-signing per attempt; no retry on 404; connection
 * refused; cancellation; the concurrency cap; bounded bodies.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "log.h"
#include "util.h"
#include "xfer.h"

static struct {
	pid_t server;
	int port;
	struct xfer_engine *xe;
} g;

/* Start flaky_server.py (with TLS when @cert/@key are given); returns its port, sets *@pid. */
static int spawn_server(const char *cert, const char *key, pid_t *pid)
{
	const char *root = getenv("HPCOPS_SOURCE_ROOT");
	char script[1024], line[32];
	int fds[2];
	FILE *f;

	snprintf(script, sizeof(script), "%s/tests/s3/flaky_server.py",
	         root ? root : HPCOPS_TEST_SOURCE_ROOT);
	if (pipe(fds))
		return -1;
	*pid = fork();
	if (*pid < 0)
		return -1;
	if (*pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		if (cert)
			execl("/usr/bin/python3", "python3", script, "--tls", cert, key,
			      (char *)NULL);
		else
			execl("/usr/bin/python3", "python3", script, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		fprintf(stderr, "test_xfer: %s did not start\n", script);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	return atoi(line);
}

static int start_server(void)
{
	g.port = spawn_server(NULL, NULL, &g.server);
	return g.port > 0 ? 0 : -1;
}

static int setup(void **state)
{
	struct xfer_config xc;

	if (start_server())
		return -1;
	memset(&xc, 0, sizeof(xc));
	xc.max_connections = 4;
	xc.retry.base_ms = 20; /* keep the suite quick; the shape is what is tested */
	xc.retry.max_delay_ms = 200;
	xc.retry.max_attempts = 5;
	g.xe = xfer_engine_new(&xc);
	return g.xe ? 0 : -1;
}

static int teardown(void **state)
{
	xfer_engine_free(g.xe);
	if (g.server > 0) {
		kill(g.server, SIGTERM);
		waitpid(g.server, NULL, 0);
	}
	return 0;
}

static char *url_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *url_of(const char *fmt, ...)
{
	static __thread char buf[8][512];
	static __thread int next;
	char *u = buf[next++ % 8];
	va_list ap;
	int n = snprintf(u, 512, "http://127.0.0.1:%d", g.port);

	va_start(ap, fmt);
	vsnprintf(u + n, 512 - (size_t)n, fmt, ap);
	va_end(ap);
	return u;
}

/* How many requests the server saw on @path. */
static int server_count(const char *path)
{
	struct xfer_request r;
	char buf[32];
	int n;

	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/count?p=%s", path);
	r.resp_buf = buf;
	r.resp_cap = sizeof(buf) - 1;
	assert_int_equal(xfer_perform(g.xe, &r), 0);
	assert_int_equal(r.result.http_status, 200);
	buf[r.result.body_len] = '\0';
	n = atoi(buf);
	xfer_request_cleanup(&r);
	return n;
}

/* A sign callback that tells the server which attempt it signed. */
struct signer {
	int calls;
	char line[64];
};

static int sign_cb(void *user, struct xfer_request *req, struct curl_slist **extra)
{
	struct signer *s = user;

	s->calls++;
	snprintf(s->line, sizeof(s->line), "x-sign-attempt: %d", s->calls);
	*extra = curl_slist_append(*extra, s->line);
	return 0;
}

/*
 * What a client's classify callback does (s3, cfn, sts have their own): an
 * error document whose <Code> says "try again" is retried, throttling as
 * such. The engine itself never reads bodies.
 */
static enum xfer_verdict code_classify(void *user, struct xfer_request *r)
{
	const char *b = r->result.err_body, *p, *q;

	/* the clients decide on the status first: it must be this attempt's */
	if (r->result.http_status < 300)
		return XFER_ACCEPT;
	p = b ? strstr(b, "<Code>") : NULL;
	q = p ? strstr(p, "</Code>") : NULL;
	if (!q)
		return XFER_ACCEPT;
	p += 6;
	if (xfer_is_throttle_code(p, (size_t)(q - p)))
		return XFER_RETRY_SLOW;
	return xfer_is_retryable_code(p, (size_t)(q - p)) ? XFER_RETRY : XFER_ACCEPT;
}

static bool g_classify; /* get_text() gives its requests code_classify */

static void get_text(const char *url, struct signer *s, struct xfer_request *r, char *buf,
                     size_t cap)
{
	xfer_request_init(r);
	if (g_classify)
		r->classify = code_classify;
	r->method = "GET";
	r->url = url;
	r->resp_buf = buf;
	r->resp_cap = cap - 1;
	if (s) {
		r->sign = sign_cb;
		r->sign_user = s;
	}
	assert_int_equal(xfer_perform(g.xe, r), 0);
	buf[r->result.body_len] = '\0';
}

static void test_retry_503_then_200(void **state)
{
	struct signer s = {0};
	struct xfer_request r;
	char buf[128];

	get_text(url_of("/s503/a?fail=2"), &s, &r, buf, sizeof(buf));
	assert_int_equal(r.result.http_status, 200);
	assert_int_equal(r.result.attempts, 3);
	/* signed again for every attempt, and the server got the third signature */
	assert_int_equal(s.calls, 3);
	assert_string_equal(buf, "ok:3:3:d41d8cd98f00b204e9800998ecf8427e");
	assert_string_equal(r.result.request_id, "req-3");
	assert_null(r.result.err_body);
	xfer_request_cleanup(&r);
	assert_int_equal(server_count("/s503/a"), 3);
}

static void test_retry_on_error_codes(void **state)
{
	struct xfer_request r;
	char buf[128];

	/* without a classify callback, a 400 stands: the engine does not read bodies */
	get_text(url_of("/code/b0?fail=1"), NULL, &r, buf, sizeof(buf));
	assert_int_equal(r.result.http_status, 400);
	assert_int_equal(r.result.attempts, 1);
	xfer_request_cleanup(&r);
	g_classify = true;
	/* 400 RequestTimeout is retried (by code, not status) when classify says so */
	get_text(url_of("/code/b?fail=1"), NULL, &r, buf, sizeof(buf));
	assert_int_equal(r.result.http_status, 200);
	assert_int_equal(r.result.attempts, 2);
	xfer_request_cleanup(&r);
	/* CloudFormation-style Throttling / Rate exceeded */
	get_text(url_of("/throttle/c?fail=2"), NULL, &r, buf, sizeof(buf));
	assert_int_equal(r.result.http_status, 200);
	assert_int_equal(r.result.attempts, 3);
	xfer_request_cleanup(&r);
	g_classify = false;
	assert_true(xfer_is_retryable_code("SlowDown", 8));
	assert_true(xfer_is_throttle_code("SlowDown", 8));
	assert_false(xfer_is_throttle_code("InternalError", 13));
	assert_true(xfer_is_retryable_code("RequestLimitExceeded", 20));
	assert_false(xfer_is_retryable_code("NoSuchKey", 9));
}

static void test_no_retry_on_404(void **state)
{
	struct xfer_request r;
	char buf[128];

	get_text(url_of("/404/d"), NULL, &r, buf, sizeof(buf));
	assert_int_equal(r.result.http_status, 404);
	assert_int_equal(r.result.attempts, 1);
	/* the error document is kept apart, never in the caller's buffer */
	assert_int_equal(r.result.body_len, 0);
	assert_non_null(r.result.err_body);
	assert_non_null(strstr(r.result.err_body, "<Code>NoSuchKey</Code>"));
	xfer_request_cleanup(&r);
	assert_int_equal(server_count("/404/d"), 1);
}

static void test_gives_up_after_max_attempts(void **state)
{
	struct xfer_request r;
	char buf[128];

	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/s503/e?fail=100");
	r.resp_buf = buf;
	r.resp_cap = sizeof(buf);
	r.max_attempts = 3;
	assert_int_equal(xfer_perform(g.xe, &r), 0);
	assert_int_equal(r.result.http_status, 503);
	assert_int_equal(r.result.attempts, 3);
	assert_non_null(strstr(r.result.err_body, "SlowDown"));
	xfer_request_cleanup(&r);
	assert_int_equal(server_count("/s503/e"), 3);

	/* max_attempts 1: no retry at all */
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/s503/e2?fail=100");
	r.max_attempts = 1;
	assert_int_equal(xfer_perform(g.xe, &r), 0);
	assert_int_equal(r.result.http_status, 503);
	assert_int_equal(r.result.attempts, 1);
	xfer_request_cleanup(&r);
}

static void test_retry_after_reset(void **state)
{
	struct xfer_request r;
	char buf[128];

	get_text(url_of("/reset/f?fail=2"), NULL, &r, buf, sizeof(buf));
	assert_int_equal(r.result.http_status, 200);
	/* curl itself retries once when a reused connection dies: 2 or 3 here */
	assert_true(r.result.attempts >= 2);
	assert_true(strncmp(buf, "ok:3:", 5) == 0);
	xfer_request_cleanup(&r);
	assert_int_equal(server_count("/reset/f"), 3);
}

struct sink {
	char buf[200000];
	size_t len;
	int resets;
};

static int sink_write(void *user, const void *data, size_t len)
{
	struct sink *s = user;

	if (s->len + len > sizeof(s->buf))
		return 1;
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return 0;
}

static void sink_reset(void *user)
{
	struct sink *s = user;

	s->len = 0;
	s->resets++;
}

static void test_cut_body_is_retried_from_zero(void **state)
{
	static struct sink s;
	struct xfer_request r;

	memset(&s, 0, sizeof(s));
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/partial/g?fail=1");
	r.write = sink_write;
	r.write_reset = sink_reset;
	r.user = &s;
	assert_int_equal(xfer_perform(g.xe, &r), 0);
	assert_int_equal(r.result.http_status, 200);
	assert_int_equal(r.result.attempts, 2);
	assert_int_equal(s.resets, 1);
	s.buf[s.len] = '\0';
	assert_true(strncmp(s.buf, "ok:2:", 5) == 0);
	xfer_request_cleanup(&r);

	/* without a reset callback a cut body cannot be retried */
	memset(&s, 0, sizeof(s));
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/partial/g2?fail=1");
	r.write = sink_write;
	r.user = &s;
	assert_int_equal(xfer_perform(g.xe, &r), -1);
	assert_int_equal(r.result.status, XFER_ERR_NETWORK);
	assert_int_equal(r.result.attempts, 1);
	assert_true(r.result.errmsg[0] != '\0');
	xfer_request_cleanup(&r);
}

struct reader {
	const unsigned char *data;
	size_t len, off;
	int rewinds;
};

static long reader_read(void *user, char *buf, size_t len)
{
	struct reader *rd = user;
	size_t n = rd->len - rd->off < len ? rd->len - rd->off : len;

	memcpy(buf, rd->data + rd->off, n);
	rd->off += n;
	return (long)n;
}

static int reader_rewind(void *user)
{
	struct reader *rd = user;

	rd->off = 0;
	rd->rewinds++;
	return 0;
}

static void test_put_bodies_resent(void **state)
{
	size_t n = 300000;
	unsigned char *d = malloc(n), md[16];
	char hex[33], want[128], buf[128];
	unsigned int ml = 16;
	struct reader rd = {0};
	struct xfer_request r;

	for (size_t i = 0; i < n; i++)
		d[i] = (unsigned char)(i * 7 + (i >> 9));
	EVP_Digest(d, n, md, &ml, EVP_md5(), NULL);
	util_hex(md, 16, hex);

	/* from memory */
	xfer_request_init(&r);
	r.method = "PUT";
	r.url = url_of("/s503/h?fail=1");
	r.body = d;
	r.body_len = n;
	r.resp_buf = buf;
	r.resp_cap = sizeof(buf) - 1;
	assert_int_equal(xfer_perform(g.xe, &r), 0);
	buf[r.result.body_len] = '\0';
	snprintf(want, sizeof(want), "ok:2:-:%s", hex);
	assert_string_equal(buf, want);
	xfer_request_cleanup(&r);

	/* from a read callback, rewound for the retry */
	rd.data = d;
	rd.len = n;
	xfer_request_init(&r);
	r.method = "POST";
	r.url = url_of("/code/i?fail=1");
	r.classify = code_classify;
	r.read = reader_read;
	r.rewind = reader_rewind;
	r.user = &rd;
	r.body_len = n;
	r.resp_buf = buf;
	r.resp_cap = sizeof(buf) - 1;
	assert_int_equal(xfer_perform(g.xe, &r), 0);
	buf[r.result.body_len] = '\0';
	assert_string_equal(buf, want);
	assert_true(rd.rewinds >= 1);
	xfer_request_cleanup(&r);
	free(d);
}

static void test_connection_refused(void **state)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	struct xfer_request r;
	char url[64];

	/* a port that was free a moment ago and has no listener now */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url;
	assert_int_equal(xfer_perform(g.xe, &r), -1);
	assert_int_equal(r.result.status, XFER_ERR_NETWORK);
	assert_int_equal(r.result.http_status, 0);
	assert_int_equal(r.result.attempts, 5); /* the default, retried with backoff */
	assert_true(r.result.errmsg[0] != '\0');
	xfer_request_cleanup(&r);
}

struct done_box {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int done;
	enum xfer_status status[128];
	long http[128];
	int perform_ret;
	enum xfer_status perform_status;
};

static void box_done(void *user, struct xfer_request *req)
{
	struct done_box *b = user;

	pthread_mutex_lock(&b->m);
	b->status[b->done] = req->result.status;
	b->http[b->done] = req->result.http_status;
	b->done++;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->m);
}

static void box_wait(struct done_box *b, int n)
{
	pthread_mutex_lock(&b->m);
	while (b->done < n)
		pthread_cond_wait(&b->cv, &b->m);
	pthread_mutex_unlock(&b->m);
}

static void box_init(struct done_box *b)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->m, NULL);
	pthread_cond_init(&b->cv, NULL);
}

static void test_cancel(void **state)
{
	static struct done_box b;
	struct xfer_request slow[5];

	box_init(&b);
	/* 5 slow requests on 4 connections: 4 in flight, 1 queued; cancel all */
	for (int i = 0; i < 5; i++) {
		xfer_request_init(&slow[i]);
		slow[i].method = "GET";
		slow[i].url = url_of("/slow/j%d", i);
		slow[i].done = box_done;
		slow[i].user = &b;
		assert_int_equal(xfer_submit(g.xe, &slow[i]), 0);
	}
	usleep(200 * 1000);
	for (int i = 4; i >= 0; i--)
		xfer_cancel(g.xe, &slow[i]);
	box_wait(&b, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(b.status[i], XFER_ERR_CANCELLED);
	for (int i = 0; i < 5; i++)
		xfer_request_cleanup(&slow[i]);
}

static void test_concurrency_cap(void **state)
{
	enum { N = 40 };
	static struct done_box b;
	static struct xfer_request rs[N];
	/* the engine reads a request's URL until it is done: one string each */
	static char urls[N][64];
	char buf[32];
	struct xfer_request r;

	box_init(&b);
	for (int i = 0; i < N; i++) {
		xfer_request_init(&rs[i]);
		rs[i].method = "GET";
		snprintf(urls[i], sizeof(urls[i]), "%s", url_of("/conc/k%d", i));
		rs[i].url = urls[i];
		rs[i].done = box_done;
		rs[i].user = &b;
		assert_int_equal(xfer_submit(g.xe, &rs[i]), 0);
	}
	box_wait(&b, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(b.status[i], XFER_OK);
		assert_int_equal(b.http[i], 200);
		xfer_request_cleanup(&rs[i]);
	}
	get_text(url_of("/stats"), NULL, &r, buf, sizeof(buf));
	/* max_connections = 4: never more in flight at the server */
	assert_true(atoi(buf) >= 1 && atoi(buf) <= 4);
	xfer_request_cleanup(&r);
}

static void test_bounded_bodies(void **state)
{
	struct xfer_request r;
	char small[1000];

	/* 1 MiB into 1000 bytes */
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/big/l");
	r.resp_buf = small;
	r.resp_cap = sizeof(small);
	assert_int_equal(xfer_perform(g.xe, &r), -1);
	assert_int_equal(r.result.status, XFER_ERR_TOO_LARGE);
	xfer_request_cleanup(&r);

	/* a grown buffer with a bound under the body */
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/big/m");
	r.resp_max = 64 * 1024;
	assert_int_equal(xfer_perform(g.xe, &r), -1);
	assert_int_equal(r.result.status, XFER_ERR_TOO_LARGE);
	xfer_request_cleanup(&r);

	/* ... and over it: the caller may take the body */
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/big/n");
	r.resp_max = 2 * 1024 * 1024;
	assert_int_equal(xfer_perform(g.xe, &r), 0);
	assert_int_equal(r.result.body_len, 1 << 20);
	assert_int_equal(r.result.body[0], 'b');
	assert_int_equal(r.result.body[(1 << 20) - 1], 'b');
	assert_int_equal(r.result.body[1 << 20], '\0');
	xfer_request_cleanup(&r);

	/* HEAD: no body expected, headers only */
	xfer_request_init(&r);
	r.method = "HEAD";
	r.url = url_of("/big/o");
	assert_int_equal(xfer_perform(g.xe, &r), 0);
	assert_int_equal(r.result.http_status, 200);
	assert_string_equal(r.result.request_id, "req-1");
	xfer_request_cleanup(&r);
}

/* A blocking call from the engine thread would deadlock: it must fail. */
static void nested_done(void *user, struct xfer_request *req)
{
	struct done_box *b = user;
	struct xfer_request inner;

	xfer_request_init(&inner);
	inner.method = "GET";
	inner.url = req->url;
	b->perform_ret = xfer_perform(g.xe, &inner);
	b->perform_status = inner.result.status;
	xfer_request_cleanup(&inner);
	box_done(user, req);
}

static void test_misuse(void **state)
{
	static struct done_box b;
	struct xfer_request r;
	struct xfer_config xc;

	box_init(&b);
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/ok/p");
	r.done = nested_done;
	r.user = &b;
	assert_int_equal(xfer_submit(g.xe, &r), 0);
	box_wait(&b, 1);
	assert_int_equal(b.perform_ret, -1);
	assert_int_equal(b.perform_status, XFER_ERR_INVALID);
	xfer_request_cleanup(&r);

	/* a request without a URL is refused at once */
	xfer_request_init(&r);
	r.method = "GET";
	assert_int_equal(xfer_perform(g.xe, &r), -1);
	assert_int_equal(r.result.status, XFER_ERR_INVALID);

	/* an unreadable CA bundle is refused when the engine starts */
	memset(&xc, 0, sizeof(xc));
	xc.ca_bundle = "/nonexistent/ca.pem";
	assert_null(xfer_engine_new(&xc));
}

static void test_shutdown_completes_queued(void **state)
{
	static struct done_box b;
	struct xfer_request rs[3];
	struct xfer_config xc;
	struct xfer_engine *e;

	box_init(&b);
	memset(&xc, 0, sizeof(xc));
	xc.max_connections = 1;
	e = xfer_engine_new(&xc);
	assert_non_null(e);
	for (int i = 0; i < 3; i++) {
		xfer_request_init(&rs[i]);
		rs[i].method = "GET";
		rs[i].url = url_of("/slow/q%d", i);
		rs[i].done = box_done;
		rs[i].user = &b;
		assert_int_equal(xfer_submit(e, &rs[i]), 0);
	}
	usleep(100 * 1000);
	xfer_engine_free(e);
	assert_int_equal(b.done, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(b.status[i], XFER_ERR_CANCELLED);
		xfer_request_cleanup(&rs[i]);
	}
}

/* A stalled server: the attempt times out, is retried, then reported as a timeout. */
static void test_timeout(void **state)
{
	struct xfer_request r;

	xfer_request_init(&r);
	r.method = "GET";
	r.url = url_of("/slow/t");
	r.timeout_ms = 300;
	r.max_attempts = 2;
	assert_int_equal(xfer_perform(g.xe, &r), -1);
	assert_int_equal(r.result.status, XFER_ERR_TIMEOUT);
	assert_int_equal(r.result.attempts, 2);
	xfer_request_cleanup(&r);
	assert_int_equal(server_count("/slow/t"), 2);
}

/* HTTPS: verification is always on; --ca-bundle makes a private CA work. */
static void test_tls_verification(void **state)
{
	char dir[] = "/tmp/hpcops-xfer-tls.XXXXXX", cmd[1024], cert[256], key[256], url[128];
	struct xfer_config xc;
	struct xfer_engine *plain, *with_ca;
	struct xfer_request r;
	pid_t pid = -1;
	int port;

	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
	         "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
	         key, cert);
	assert_int_equal(system(cmd), 0);
	port = spawn_server(cert, key, &pid);
	assert_true(port > 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok/tls", port);

	/* a self-signed server is refused without the CA ... */
	memset(&xc, 0, sizeof(xc));
	xc.retry.max_attempts = 1;
	plain = xfer_engine_new(&xc);
	assert_non_null(plain);
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url;
	assert_int_equal(xfer_perform(plain, &r), -1);
	assert_int_equal(r.result.status, XFER_ERR_NETWORK);
	assert_int_equal(r.result.http_status, 0);
	xfer_request_cleanup(&r);
	xfer_engine_free(plain);

	/* ... and accepted with it as the CA bundle */
	xc.ca_bundle = cert;
	with_ca = xfer_engine_new(&xc);
	assert_non_null(with_ca);
	xfer_request_init(&r);
	r.method = "GET";
	r.url = url;
	r.resp_max = 1024;
	assert_int_equal(xfer_perform(with_ca, &r), 0);
	assert_int_equal(r.result.http_status, 200);
	assert_true(strncmp(r.result.body, "ok:", 3) == 0);
	xfer_request_cleanup(&r);
	xfer_engine_free(with_ca);

	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retry_503_then_200),
	    cmocka_unit_test(test_retry_on_error_codes),
	    cmocka_unit_test(test_no_retry_on_404),
	    cmocka_unit_test(test_gives_up_after_max_attempts),
	    cmocka_unit_test(test_retry_after_reset),
	    cmocka_unit_test(test_cut_body_is_retried_from_zero),
	    cmocka_unit_test(test_put_bodies_resent),
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_concurrency_cap),
	    cmocka_unit_test(test_bounded_bodies),
	    cmocka_unit_test(test_misuse),
	    cmocka_unit_test(test_shutdown_completes_queued),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_tls_verification),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("HPCOPS_TEST_DEBUG"))
		log_init(LOG_DEST_STDERR, NULL, "test_xfer", LOG_DEBUG);
	return cmocka_run_group_tests(tests, setup, teardown);
}
