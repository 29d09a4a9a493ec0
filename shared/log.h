/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: syslog-levelled logging to stderr, syslog or a file, shared by every
 * module. Secrets (secret keys, session tokens, signatures) must never be
 * passed to these functions.
 */
#ifndef HPCOPS_LOG_H
#define HPCOPS_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

enum log_dest {
	LOG_DEST_STDERR = 0,
	LOG_DEST_SYSLOG,
	LOG_DEST_FILE,
};

/* How a line is spelled: for people, or for log collectors. */
enum log_format {
	LOG_FORMAT_TEXT = 0, /* "ident: level: [req ID] message" (a time first in files) */
	LOG_FORMAT_KEYVALUE, /* time=... level=... prog=... req=... msg="..." */
	LOG_FORMAT_JSON,     /* {"time":...,"level":...,"prog":...,"req":...,"msg":...} */
};

/**
 * log_init() - choose where log lines go and the most verbose level kept.
 * @dest:  stderr, syslog or a file.
 * @path:  file path for LOG_DEST_FILE (appended to), ignored otherwise.
 * @ident: program name used as the syslog ident and the stderr prefix.
 * @level: LOG_ERR .. LOG_DEBUG; lines above it are dropped.
 * Returns 0, or -errno if the file could not be opened (logging then stays on stderr).
 */
int log_init(enum log_dest dest, const char *path, const char *ident, int level);

/**
 * log_set_format() - the spelling of every line from now on. In keyvalue
 * and JSON form every line carries its UTC time to the microsecond, and the
 * message is quoted (keyvalue: \" and \\ escaped, control characters as
 * in log_escape()) or a JSON string (valid UTF-8: a byte that is not part
 * of a UTF-8 sequence becomes \ufffd).
 */
void log_set_format(enum log_format f);

/** log_set_level() - change the level after init (e.g. -d on the command line). */
void log_set_level(int level);

/** log_level() - the level in force, so callers can skip building costly lines. */
int log_level(void);

/** log_close() - flush and close the log file or syslog. */
void log_close(void);

/**
 * log_msg() - write one line at @level. @reqid, when not NULL, is printed as
 * "[req ID]" so every debug line of one request can be grepped together.
 */
void log_msg(int level, const char *reqid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(int level, const char *reqid, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/**
 * log_escape() - copy @len bytes of @in to @out (@cap bytes, NUL-terminated)
 * with control characters escaped (\n, \r, \t, \xHH), so an object key
 * holding a newline cannot forge a log line of its own. Every line goes
 * through it. Returns the bytes written (without the NUL).
 */
size_t log_escape(char *out, size_t cap, const char *in, size_t len);

#define log_err(...)    log_msg(LOG_ERR, NULL, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_DEBUG, NULL, __VA_ARGS__)

#endif
