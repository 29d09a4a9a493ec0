/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_value: copying and wiping a struct creds (see creds_value.h).
 */
#include "creds_value.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

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
