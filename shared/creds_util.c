/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_util: what every part of the credentials module uses: filling a
 * struct creds (creds_set) and the error type. A leaf: it calls nothing
 * else of the module, so the sources (files, metadata) and the provider all
 * depend on it and never on each other in a circle. The struct itself, its
 * copy and its wipe are creds_value.c, below STS.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "creds_private.h"

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

void creds_set_err(struct creds_error *err, enum creds_err code, const char *fmt, ...)
{
	va_list ap;

	err->err = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* ---- struct creds ---- */

int creds_set(struct creds *c, const char *akid, const char *secret, const char *token, time_t exp,
              const char *source)
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
