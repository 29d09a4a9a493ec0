/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_creds_ini: the shared config / credentials file reader
 * (creds_files.c): creds_ini_get(), creds_profile_get(),
 * creds_profile_exists() and creds_from_profile_keys().
 *
 * Input: the credentials file, a NUL byte, then the config file (no NUL:
 * the same text is both). Both live in memfds that AWS_SHARED_CREDENTIALS_FILE
 * and AWS_CONFIG_FILE name. Every section and key the text mentions is
 * looked up, plus the usual ones.
 *
 * Checked: no crash, leak or UB; values come back trimmed and on one line;
 * the same lookup gives the same answer; a profile that has keys exists;
 * and no secret key is left in memory that is freed without being wiped
 * (a free hook scans every block freed while the keys are read).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sanitizer/allocator_interface.h>
#include <sanitizer/common_interface_defs.h>

#include "creds.h"
#include "creds_private.h" /* creds_profile_exists(), creds_from_profile_keys() */
#include "fuzz.h"

#define MAX_NAMES 8

static int fd_creds = -1, fd_config = -1;
static char path_creds[64], path_config[64];

/* ---- secrets in freed memory ---- */

static const char *armed;
static size_t armed_len;

/* __sanitizer_install_malloc_and_free_hooks() takes both; only frees are looked at. */
static void malloc_hook(const volatile void *p, size_t n)
{
}

static void free_hook(const volatile void *ptr)
{
	const volatile char *p = ptr;
	size_t n;

	if (!armed || !ptr)
		return;
	n = __sanitizer_get_allocated_size((const void *)ptr);
	for (size_t i = 0; i + armed_len <= n; i++) {
		size_t j = 0;

		while (j < armed_len && p[i + j] == armed[j])
			j++;
		if (j == armed_len) {
			armed = NULL;
			fprintf(stderr,
			        "fuzz check failed: a block of %zu bytes freed with the secret key "
			        "still in it (at offset %zu), freed here:\n",
			        n, i);
			__sanitizer_print_stack_trace();
			abort();
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fd_creds = memfd_create("credentials", 0);
	fd_config = memfd_create("config", 0);
	FUZZ_CHECK(fd_creds >= 0 && fd_config >= 0, "memfd_create failed");
	snprintf(path_creds, sizeof(path_creds), "/proc/self/fd/%d", fd_creds);
	snprintf(path_config, sizeof(path_config), "/proc/self/fd/%d", fd_config);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path_creds, 1);
	setenv("AWS_CONFIG_FILE", path_config, 1);
	setenv("HOME", "/nonexistent", 1);
	if (!fuzz_skip("secrets"))
		__sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
	return 0;
}

static void put(int fd, const uint8_t *p, size_t n)
{
	FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
	FUZZ_CHECK(n == 0 || pwrite(fd, p, n, 0) == (ssize_t)n, "pwrite");
}

/* ---- names the text mentions ---- */

struct names {
	char *v[MAX_NAMES];
	size_t n;
};

static void add_name(struct names *ns, const char *s, size_t len)
{
	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (!len || ns->n >= MAX_NAMES || memchr(s, '\0', len))
		return;
	for (size_t i = 0; i < ns->n; i++)
		if (strlen(ns->v[i]) == len && !memcmp(ns->v[i], s, len))
			return;
	ns->v[ns->n++] = strndup(s, len);
	FUZZ_CHECK(ns->v[ns->n - 1], "strndup");
}

/* "[ profile  x ]" -> "profile x", as the reader folds it */
static void add_section(struct names *ns, const char *s, size_t len)
{
	char buf[300];
	size_t o = 0;
	bool space = false;

	for (size_t i = 0; i < len && o + 2 < sizeof(buf); i++) {
		if (isspace((unsigned char)s[i])) {
			space = o > 0;
			continue;
		}
		if (space)
			buf[o++] = ' ';
		space = false;
		buf[o++] = s[i];
	}
	add_name(ns, buf, o);
}

static void harvest(const uint8_t *data, size_t size, struct names *sections, struct names *keys)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		const char *t = p, *q;

		while (t < le && isspace((unsigned char)*t))
			t++;
		if (t < le && *t == '[') {
			for (q = le; q > t && q[-1] != ']'; q--)
				;
			if (q > t + 1)
				add_section(sections, t + 1, (size_t)(q - 1 - (t + 1)));
		} else {
			q = memchr(t, '=', (size_t)(le - t));
			if (q)
				add_name(keys, t, (size_t)(q - t));
		}
		p = le + 1;
	}
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	ns->n = 0;
}

/* ---- checks ---- */

static void check_value(const char *v, const char *what)
{
	size_t n;

	if (!v)
		return;
	n = strlen(v);
	FUZZ_CHECK(!n || (!isspace((unsigned char)v[0]) && !isspace((unsigned char)v[n - 1])),
	           "%s: value '%s' not trimmed", what, v);
	FUZZ_CHECK(!strchr(v, '\n'), "%s: value spans lines", what);
}

static bool contains(const char *hay, const char *needle)
{
	return hay && needle && strstr(hay, needle);
}

/* Read @profile's keys with the free hook armed on its secret. */
static void check_profile_keys(const char *profile)
{
	char *secret = creds_profile_get(profile, "aws_secret_access_key");
	char *akid = creds_profile_get(profile, "aws_access_key_id");
	struct creds c = {0};
	struct creds_error err = {0};
	int rc;

	/*
	 * Arm only for a secret that can be told apart from what the reader
	 * may free in plain (paths, the profile name, the key id).
	 */
	if (secret && strlen(secret) >= 8 && !contains(path_creds, secret) &&
	    !contains(path_config, secret) && !contains(profile, secret) &&
	    !contains(akid, secret) && !contains("aws_secret_access_key", secret) &&
	    !contains("aws_access_key_id", secret) && !contains("aws_session_token", secret)) {
		armed = secret;
		armed_len = strlen(secret);
	}
	rc = creds_from_profile_keys(profile, &c, &err);
	armed = NULL;
	FUZZ_CHECK(rc >= -1 && rc <= 1, "creds_from_profile_keys returned %d", rc);
	if (rc == 1) {
		FUZZ_CHECK(c.access_key_id && c.secret_access_key, "keys missing after success");
		FUZZ_CHECK(secret && !strcmp(c.secret_access_key, secret),
		           "secret differs from creds_profile_get's");
		FUZZ_CHECK(creds_profile_exists(profile), "profile '%s' has keys, does not exist",
		           profile);
	} else if (rc == -1) {
		FUZZ_CHECK(err.message[0], "a failure without a message");
		FUZZ_CHECK(!secret || strlen(secret) < 4 || contains(profile, secret) ||
		               !strstr(err.message, secret),
		           "the error message shows the secret");
	} else {
		FUZZ_CHECK(!secret && !akid, "keys found by creds_profile_get, not by the chain");
	}
	creds_clear(&c);
	if (secret) {
		memset(secret, 0, strlen(secret));
		free(secret);
	}
	free(akid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fixed_sections[] = {"default", "profile default", "profile dev",
	                                             "sso-session my-sso"};
	static const char *const fixed_keys[] = {"region", "aws_access_key_id", "role_arn",
	                                         "source_profile", "sso_start_url"};
	const uint8_t *nul = memchr(data, 0, size);
	struct names sections = {0}, keys = {0}, profiles = {0};

	if (nul) {
		put(fd_creds, data, (size_t)(nul - data));
		put(fd_config, nul + 1, size - (size_t)(nul - data) - 1);
	} else {
		put(fd_creds, data, size);
		put(fd_config, data, size);
	}
	harvest(data, size, &sections, &keys);
	for (size_t i = 0; i < sizeof(fixed_sections) / sizeof(*fixed_sections); i++)
		add_name(&sections, fixed_sections[i], strlen(fixed_sections[i]));
	for (size_t i = 0; i < sizeof(fixed_keys) / sizeof(*fixed_keys); i++)
		add_name(&keys, fixed_keys[i], strlen(fixed_keys[i]));

	for (size_t s = 0; s < sections.n; s++) {
		const char *sec = sections.v[s];

		add_name(&profiles, !strncmp(sec, "profile ", 8) ? sec + 8 : sec,
		         strlen(!strncmp(sec, "profile ", 8) ? sec + 8 : sec));
		for (size_t k = 0; k < keys.n; k++) {
			char *a = creds_ini_get(path_config, sec, keys.v[k]);
			char *b = creds_ini_get(path_config, sec, keys.v[k]);

			check_value(a, "creds_ini_get");
			FUZZ_CHECK((!a && !b) || (a && b && !strcmp(a, b)),
			           "two lookups of [%s] %s differ", sec, keys.v[k]);
			free(a);
			free(b);
		}
		FUZZ_CHECK(!creds_ini_get(path_config, sec, NULL), "a NULL key found a value");
	}
	for (size_t p = 0; p < profiles.n; p++) {
		const char *prof = profiles.v[p];

		(void)creds_profile_exists(prof);
		for (size_t k = 0; k < keys.n; k++) {
			char *v = creds_profile_get(prof, keys.v[k]);

			check_value(v, "creds_profile_get");
			FUZZ_CHECK(!v || v[0], "creds_profile_get returned an empty value");
			if (v)
				FUZZ_CHECK(creds_profile_exists(prof),
				           "profile '%s' has '%s' but does not exist", prof,
				           keys.v[k]);
			free(v);
		}
		check_profile_keys(prof);
	}
	FUZZ_CHECK(!creds_profile_get(NULL, "region") && !creds_profile_get("default", NULL),
	           "NULL arguments found a value");
	names_free(&sections);
	names_free(&keys);
	names_free(&profiles);
	return 0;
}
