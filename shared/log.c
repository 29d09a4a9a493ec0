/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: one line per call, to stderr, syslog or a file. Thread-safe: each line
 * is built in a local buffer and written with a single write().
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_dest g_dest = LOG_DEST_STDERR;
static int g_fd = STDERR_FILENO;
static int g_level = LOG_NOTICE;
static enum log_format g_format = LOG_FORMAT_TEXT;
static char g_ident[32] = "hpcops";

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
		return "emerg";
	case LOG_ALERT:
		return "alert";
	case LOG_CRIT:
		return "crit";
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
		return "notice";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

int log_init(enum log_dest dest, const char *path, const char *ident, int level)
{
	int ret = 0;

	log_close();
	if (ident)
		snprintf(g_ident, sizeof(g_ident), "%s", ident);
	g_level = level;
	g_dest = dest;
	g_fd = STDERR_FILENO;
	if (dest == LOG_DEST_SYSLOG) {
		openlog(g_ident, LOG_PID, LOG_DAEMON);
	} else if (dest == LOG_DEST_FILE) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) {
			ret = -errno;
			g_dest = LOG_DEST_STDERR;
		} else {
			g_fd = fd;
		}
	}
	return ret;
}

void log_set_format(enum log_format f)
{
	g_format = f;
}

void log_set_level(int level)
{
	g_level = level;
}

int log_level(void)
{
	return g_level;
}

void log_close(void)
{
	if (g_dest == LOG_DEST_SYSLOG)
		closelog();
	else if (g_dest == LOG_DEST_FILE && g_fd > STDERR_FILENO)
		close(g_fd);
	g_dest = LOG_DEST_STDERR;
	g_fd = STDERR_FILENO;
}

size_t log_escape(char *out, size_t cap, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!cap)
		return 0;
	for (size_t i = 0; i < len && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)in[i];
		char esc = 0;

		switch (c) {
		case '\n':
			esc = 'n';
			break;
		case '\r':
			esc = 'r';
			break;
		case '\t':
			esc = 't';
			break;
		case '\\':
			esc = '\\'; /* so "\\n" in a name is not read as a newline */
			break;
		default:
			break;
		}
		if (esc) {
			if (o + 3 > cap)
				break;
			out[o++] = '\\';
			out[o++] = esc;
		} else if (c < 0x20 || c == 0x7f) {
			if (o + 5 > cap)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o;
}

/* Bytes of the UTF-8 sequence at @s (at most @len), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	size_t n;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and past U+10FFFF are not UTF-8 */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* @in as a JSON string body (no quotes) into @out; returns the bytes written. */
static size_t json_escape(char *out, size_t cap, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)in;
	size_t o = 0;

	if (!cap)
		return 0;
	for (size_t i = 0; i < len && o + 1 < cap;) {
		unsigned char c = u[i];
		size_t n = utf8_seq(u + i, len - i);
		char esc = c == '"'    ? '"'
		           : c == '\\' ? '\\'
		           : c == '\n' ? 'n'
		           : c == '\r' ? 'r'
		           : c == '\t' ? 't'
		                       : 0;

		if (esc) {
			if (o + 3 > cap)
				break;
			out[o++] = '\\';
			out[o++] = esc;
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			if (o + 7 > cap)
				break;
			o += (size_t)snprintf(out + o, cap - o, "\\u00%c%c", hex[c >> 4],
			                      hex[c & 15]);
			i++;
		} else if (n == 0) {
			if (o + 7 > cap)
				break;
			memcpy(out + o, "\\ufffd", 6);
			o += 6;
			i++;
		} else {
			if (o + n + 1 > cap)
				break;
			memcpy(out + o, in + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	return o;
}

/* @in quoted for key=value: \" and \\ escaped, control bytes as log_escape(). */
static size_t kv_escape(char *out, size_t cap, const char *in, size_t len)
{
	char tmp[4096];
	size_t n = log_escape(tmp, sizeof(tmp), in, len), o = 0;

	if (!cap)
		return 0;
	/* log_escape already doubled backslashes; quotes are what is left */
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		if (tmp[i] == '"') {
			if (o + 3 > cap)
				break;
			out[o++] = '\\';
		}
		out[o++] = tmp[i];
	}
	out[o] = '\0';
	return o;
}

/* One keyvalue or JSON line for @msg into @line; returns its length (with the newline). */
static size_t structured_line(char *line, size_t cap, int level, const char *reqid, const char *msg,
                              size_t mlen)
{
	/* sized so a whole line always fits in a log line: a cut JSON line would not parse */
	char stamp[40], body[3584], rq[160];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%06ldZ", (long)tv.tv_usec);
	if (g_format == LOG_FORMAT_JSON) {
		json_escape(body, sizeof(body), msg, mlen);
		if (reqid)
			json_escape(rq, sizeof(rq), reqid, strlen(reqid));
		r = snprintf(line, cap,
		             "{\"time\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\"%s%s%s,"
		             "\"msg\":\"%s\"}",
		             stamp, level_name(level), g_ident, reqid ? ",\"req\":\"" : "",
		             reqid ? rq : "", reqid ? "\"" : "", body);
	} else {
		kv_escape(body, sizeof(body), msg, mlen);
		if (reqid)
			kv_escape(rq, sizeof(rq), reqid, strlen(reqid));
		r = snprintf(line, cap, "time=%s level=%s prog=%s%s%s%s msg=\"%s\"", stamp,
		             level_name(level), g_ident, reqid ? " req=\"" : "", reqid ? rq : "",
		             reqid ? "\"" : "", body);
	}
	n = r < 0 ? 0 : (size_t)r < cap - 1 ? (size_t)r : cap - 2;
	line[n++] = '\n';
	return n;
}

void log_vmsg(int level, const char *reqid, const char *fmt, va_list ap)
{
	char line[4096];
	size_t n = 0;
	int r;

	if (level > g_level)
		return;
	if (g_format != LOG_FORMAT_TEXT) {
		char msg[sizeof(line)];

		r = vsnprintf(msg, sizeof(msg), fmt, ap);
		n = structured_line(line, sizeof(line), level, reqid, msg,
		                    r < 0                     ? 0
		                    : (size_t)r < sizeof(msg) ? (size_t)r
		                                              : sizeof(msg) - 1);
		if (g_dest == LOG_DEST_SYSLOG) {
			syslog(level, "%.*s", (int)(n - 1), line);
			return;
		}
		while (write(g_fd, line, n) < 0 && errno == EINTR)
			;
		return;
	}
	if (g_dest == LOG_DEST_SYSLOG) {
		char msg[sizeof(line)];

		r = vsnprintf(msg, sizeof(msg), fmt, ap);
		log_escape(line, sizeof(line), msg,
		           r < 0                     ? 0
		           : (size_t)r < sizeof(msg) ? (size_t)r
		                                     : sizeof(msg) - 1);
		if (reqid)
			syslog(level, "[req %s] %s", reqid, line);
		else
			syslog(level, "%s", line);
		return;
	}
	if (g_dest == LOG_DEST_FILE) {
		struct timeval tv;
		struct tm tm;

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%06ldZ ", (long)tv.tv_usec);
		if (r > 0)
			n += (size_t)r;
	}
	r = snprintf(line + n, sizeof(line) - n, "%s: %s: ", g_ident, level_name(level));
	if (r > 0)
		n += (size_t)r;
	if (reqid && n < sizeof(line)) {
		r = snprintf(line + n, sizeof(line) - n, "[req %s] ", reqid);
		if (r > 0)
			n += (size_t)r;
	}
	if (n < sizeof(line)) {
		char msg[sizeof(line)];

		r = vsnprintf(msg, sizeof(msg), fmt, ap);
		if (r > 0)
			n += log_escape(line + n, sizeof(line) - n, msg,
			                (size_t)r < sizeof(msg) ? (size_t)r : sizeof(msg) - 1);
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines from concurrent threads whole. */
	while (write(g_fd, line, n) < 0 && errno == EINTR)
		;
}

void log_msg(int level, const char *reqid, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, reqid, fmt, ap);
	va_end(ap);
}
