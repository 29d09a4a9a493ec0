/* SPDX-License-Identifier: Apache-2.0 */
/*
 * endpoint: SDK-style endpoint resolution (flag, service variable, global
 * variable, regional AWS endpoint) and small URL helpers for Host headers.
 */
#include "endpoint.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool valid_region(const char *r)
{
	if (!*r || strlen(r) > 40)
		return false;
	for (const char *p = r; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
			return false;
	return true;
}

/* Start of the host in @url, after "scheme://" and any userinfo; NULL if not http(s). */
static const char *url_host(const char *url, bool *https)
{
	const char *h, *at, *end;

	if (!strncasecmp(url, "https://", 8)) {
		*https = true;
		h = url + 8;
	} else if (!strncasecmp(url, "http://", 7)) {
		*https = false;
		h = url + 7;
	} else {
		return NULL;
	}
	end = h + strcspn(h, "/?#");
	at = memchr(h, '@', (size_t)(end - h));
	return at ? at + 1 : h;
}

static int check_url(const char *url, const char *from, char *errbuf, size_t errlen)
{
	bool https;
	const char *h = url_host(url, &https);

	if (!h || !*h || *h == '/' || *h == ':') {
		snprintf(errbuf, errlen,
		         "bad endpoint URL '%s' (from %s): it must look like "
		         "https://host[:port] or http://host[:port]",
		         url, from);
		return -1;
	}
	return 0;
}

int endpoint_resolve(const char *service, const char *explicit_url, const char *region, char **out,
                     char *errbuf, size_t errlen)
{
	char var[96];
	const char *url = NULL, *from = NULL, *ignore;
	size_t n;

	*out = NULL;
	if (errlen)
		errbuf[0] = '\0';
	if (!service || !*service || strlen(service) > 64) {
		snprintf(errbuf, errlen, "no service name given for endpoint resolution");
		return -1;
	}
	n = (size_t)snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_");
	for (const char *p = service; *p && n + 1 < sizeof(var); p++)
		var[n++] = *p == '-' || *p == ' ' ? '_' : (char)toupper((unsigned char)*p);
	var[n] = '\0';

	ignore = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	if (explicit_url && *explicit_url) {
		url = explicit_url;
		from = "--endpoint-url";
	} else if (!(ignore && !strcasecmp(ignore, "true"))) {
		const char *v = getenv(var), *any = getenv("AWS_ENDPOINT_URL");

		if (v && *v) {
			url = v;
			from = var;
		} else if (any && *any) {
			url = any;
			from = "AWS_ENDPOINT_URL";
		}
	}
	if (url) {
		size_t len = strlen(url);
		if (check_url(url, from, errbuf, errlen))
			return -1;
		while (len > 0 && url[len - 1] == '/')
			len--;
		*out = strndup(url, len);
	} else {
		const char *r = region && *region ? region : "us-east-1";
		if (!valid_region(r)) {
			snprintf(errbuf, errlen,
			         "bad region '%s': use an AWS region name such as us-east-1 "
			         "(--region, AWS_REGION or the profile's region)",
			         r);
			return -1;
		}
		if (asprintf(out, "https://%s.%s.amazonaws.com%s", service, r,
		             strncmp(r, "cn-", 3) ? "" : ".cn") < 0)
			*out = NULL;
	}
	if (!*out) {
		snprintf(errbuf, errlen, "out of memory resolving the %s endpoint", service);
		return -1;
	}
	return 0;
}

int endpoint_host_header(const char *url, char *out, size_t len)
{
	bool https;
	const char *h = url_host(url, &https), *end, *colon, *rb;
	size_t hl;

	if (!h)
		return -1;
	end = h + strcspn(h, "/?#");
	hl = (size_t)(end - h);
	if (hl == 0)
		return -1;
	/* an IPv6 literal "[::1]:8080" has colons inside the brackets */
	rb = *h == '[' ? memchr(h, ']', hl) : NULL;
	colon = memchr(rb ? rb : h, ':', (size_t)(end - (rb ? rb : h)));
	if (colon &&
	    ((https && end - colon == 4 && !strncmp(colon, ":443", 4)) ||
	     (!https && end - colon == 3 && !strncmp(colon, ":80", 3)) || end - colon == 1))
		hl = (size_t)(colon - h);
	if (hl + 1 > len)
		return -1;
	/* as written in the URL: curl sends it the same way */
	memcpy(out, h, hl);
	out[hl] = '\0';
	return 0;
}

int endpoint_base_path(const char *url, char *out, size_t len)
{
	bool https;
	const char *h = url_host(url, &https), *p;
	size_t pl;

	if (len == 0)
		return -1;
	out[0] = '\0';
	if (!h)
		return 0;
	p = h + strcspn(h, "/?#");
	pl = strcspn(p, "?#");
	while (pl > 0 && p[pl - 1] == '/')
		pl--;
	if (pl + 1 > len)
		return -1;
	memcpy(out, p, pl);
	out[pl] = '\0';
	return 0;
}
