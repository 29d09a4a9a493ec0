/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_value: struct creds, one set of AWS credentials as a value: what the
 * provider chain (creds.h) hands out and STS (sts.h) hands back, and what
 * sigv4 and the signer sign with. It sits below all of them and knows no
 * provider, so STS can return credentials without depending on the chain
 * that calls it.
 */
#ifndef HPCOPS_CREDS_VALUE_H
#define HPCOPS_CREDS_VALUE_H

#include <time.h>

/** A set of credentials. Strings are heap-owned by the struct: creds_clear(). */
struct creds {
	char *access_key_id;
	char *secret_access_key;
	char *session_token; /* NULL for long-term keys */
	time_t expiration;   /* 0 = does not expire */
	char source[32];     /* where they came from: "env", "profile", "imds", ... */
};

/** creds_copy() - deep copy @src into @dst. Returns 0 or -1 (ENOMEM; @dst then empty). */
int creds_copy(struct creds *dst, const struct creds *src);

/** creds_clear() - wipe and free the strings of @c, leave it zeroed; safe twice. */
void creds_clear(struct creds *c);

#endif
