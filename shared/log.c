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

void log_vmsg(int level, const char *reqid, const char *fmt, va_list ap)
{
	char line[4096];
	size_t n = 0;
	int r;

	if (level > g_level)
		return;
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
