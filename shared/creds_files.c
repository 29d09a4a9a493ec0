/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_files: the shared AWS config and credentials files (INI-style,
 * "[profile x]" sections in config), and static keys from a profile.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <pwd.h>

#include <openssl/crypto.h>

#include "creds.h"
#include "creds_private.h"
#include "util.h"

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && *h)
		return h;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : "/";
}

/* "~/x" -> "$HOME/x"; heap string. */
char *creds_expand_home(const char *path)
{
	char *s;

	if (path[0] == '~' && (path[1] == '/' || !path[1])) {
		if (asprintf(&s, "%s%s", home_dir(), path + 1) < 0)
			return NULL;
		return s;
	}
	return strdup(path);
}

char *creds_config_path(bool credentials)
{
	const char *env = getenv(credentials ? "AWS_SHARED_CREDENTIALS_FILE" : "AWS_CONFIG_FILE");

	if (env && *env)
		return creds_expand_home(env);
	return creds_expand_home(credentials ? "~/.aws/credentials" : "~/.aws/config");
}

char *creds_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* "[  profile   x ]" -> "profile x" in place. */
static void fold_section(char *s)
{
	char *o = s;
	bool space = false;

	s = creds_trim(s);
	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			space = true;
			continue;
		}
		if (space && o != s)
			*o++ = ' ';
		space = false;
		*o++ = *s;
	}
	*o = '\0';
}

/*
 * Walk @path; for a @section match, return the value of @key (heap) or, with
 * @key NULL, a non-NULL marker (strdup("")) meaning "section exists".
 */
static char *ini_lookup(const char *path, const char *section, const char *key)
{
	size_t text_len = 0;
	/* the whole text is wiped at the end: strtok_r cuts it into lines */
	char *text = util_read_secret_file(path, CREDS_MAX_FILE, &text_len);
	char *line, *save = NULL, *res = NULL;
	bool in = false;

	if (!text)
		return NULL;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *t, *eq;
		size_t l = strlen(line);

		if (l && line[l - 1] == '\r')
			line[--l] = '\0';
		/* indented lines are sub-settings ("s3 =\n  max_concurrent_requests = 4") */
		if (isspace((unsigned char)line[0]) && in && creds_trim(line)[0])
			continue;
		t = creds_trim(line);
		if (!*t || *t == '#' || *t == ';')
			continue;
		if (*t == '[') {
			char *end = strrchr(t, ']');
			if (!end)
				continue;
			*end = '\0';
			fold_section(t + 1);
			in = !strcmp(creds_trim(t + 1), section);
			if (in && !key) {
				res = strdup("");
				break;
			}
			continue;
		}
		if (!in || !key)
			continue;
		eq = strchr(t, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (!strcasecmp(creds_trim(t), key)) {
			res = strdup(creds_trim(eq + 1));
			break;
		}
	}
	util_free_secret_len(text, text_len);
	return res;
}

char *creds_ini_get(const char *path, const char *section, const char *key)
{
	return key ? ini_lookup(path, section, key) : NULL;
}

/* Look in the credentials file ("[name]"), then the config file ("[profile name]"). */
static char *profile_lookup(const char *profile, const char *key)
{
	char *path = creds_config_path(true), *v = NULL, section[300];

	if (path)
		v = ini_lookup(path, profile, key);
	free(path);
	if (v)
		return v;
	path = creds_config_path(false);
	if (!path)
		return NULL;
	snprintf(section, sizeof(section), "profile %s", profile);
	v = ini_lookup(path, section, key);
	if (!v && !strcmp(profile, "default"))
		v = ini_lookup(path, "default", key);
	free(path);
	return v;
}

char *creds_profile_get(const char *profile, const char *key)
{
	char *v;

	if (!profile || !key)
		return NULL;
	v = profile_lookup(profile, key);
	/* an empty value counts as not set */
	if (v && !*v) {
		free(v);
		v = NULL;
	}
	return v;
}

bool creds_profile_exists(const char *profile)
{
	char *v = profile_lookup(profile, NULL);

	free(v);
	return v != NULL;
}

int creds_from_profile_keys(const char *profile, struct creds *out, struct creds_error *err)
{
	char *akid = creds_profile_get(profile, "aws_access_key_id");
	char *secret = creds_profile_get(profile, "aws_secret_access_key");
	char *token = creds_profile_get(profile, "aws_session_token");
	int rc = 0;

	if (!akid && !secret)
		goto out;
	if (!akid || !secret) {
		creds_set_err(err, CREDS_ERR_CONFIG,
		              "profile '%s' has %s but no %s: add it to the credentials file",
		              profile, akid ? "aws_access_key_id" : "aws_secret_access_key",
		              akid ? "aws_secret_access_key" : "aws_access_key_id");
		rc = -1;
		goto out;
	}
	if (creds_set(out, akid, secret, token, 0, "profile")) {
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		rc = -1;
		goto out;
	}
	rc = 1;
out:
	free(akid);
	util_free_secret(secret);
	util_free_secret(token);
	return rc;
}
