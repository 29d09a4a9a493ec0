/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aws: open the transfer engine, credentials, S3 and CloudFormation clients
 * for a launcher command, and assume the termination role. See aws.h.
 */
#include "aws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfn.h"
#include "creds.h"
#include "endpoint.h"
#include "launch.h"
#include "retry.h"
#include "s3.h"
#include "sts.h"
#include "xfer.h"

int aws_open(struct aws *a, const struct launch_opts *o, bool need_s3, bool need_cfn, char *errbuf,
             size_t errlen)
{
	struct xfer_config xc = {.ca_bundle = o->ca_bundle};
	struct creds_options co = {
	    .profile = o->profile, .region = o->spec.region, .ca_bundle = o->ca_bundle};
	char eb[512];

	memset(a, 0, sizeof(*a));
	/*
	 * A pipeline step, not a mount riding out an outage: each request gets
	 * LAUNCH_REQUEST_BUDGET_MS of retries (AWS_MAX_ATTEMPTS and
	 * AWS_RETRY_MODE as in the SDKs); the stack's deletion has its own
	 * retries on top, within the run's budget.
	 */
	retry_policy_defaults(&xc.retry);
	xc.retry.budget_ms = LAUNCH_REQUEST_BUDGET_MS;
	if (retry_policy_from_env(&xc.retry, eb, sizeof(eb)) != 0) {
		snprintf(errbuf, errlen, "%s", eb);
		goto fail;
	}
	a->xfer = xfer_engine_new(&xc);
	if (!a->xfer) {
		snprintf(errbuf, errlen, "could not start the transfer engine (see the log above)");
		goto fail;
	}
	co.xfer = a->xfer;
	a->creds = creds_provider_new(&co);
	if (!a->creds) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	creds_region(a->creds, a->region, sizeof(a->region));
	if (endpoint_resolve("sts", o->sts_endpoint, a->region, &a->sts_endpoint, eb, sizeof(eb)) !=
	    0) {
		snprintf(errbuf, errlen, "STS endpoint: %s", eb);
		goto fail;
	}
	if (need_s3) {
		struct s3_config sc = {0};
		const char *env_s3 = getenv("AWS_ENDPOINT_URL_S3");
		const char *env_any = getenv("AWS_ENDPOINT_URL");
		const char *ign = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");

		if (!o->spec.bucket || !o->spec.bucket[0]) {
			snprintf(errbuf, errlen, "no bucket: give --bucket BUCKET");
			goto fail;
		}
		if (endpoint_resolve("s3", o->s3_endpoint, a->region, &a->s3_endpoint, eb,
		                     sizeof(eb)) != 0) {
			snprintf(errbuf, errlen, "S3 endpoint: %s", eb);
			goto fail;
		}
		a->s3_custom = (o->s3_endpoint && o->s3_endpoint[0]) ||
		               (!(ign && !strcmp(ign, "true")) &&
		                ((env_s3 && env_s3[0]) || (env_any && env_any[0])));
		sc.endpoint = a->s3_endpoint;
		sc.region = a->region;
		sc.bucket = o->spec.bucket;
		sc.force_path_style = o->force_path_style || a->s3_custom;
		sc.creds = a->creds;
		sc.xfer = a->xfer;
		a->s3 = s3_client_new(&sc);
		if (!a->s3) {
			snprintf(errbuf, errlen, "could not make the S3 client for bucket %s",
			         o->spec.bucket);
			goto fail;
		}
	}
	if (need_cfn) {
		struct cfn_config cc = {.region = a->region, .creds = a->creds, .xfer = a->xfer};
		if (endpoint_resolve("cloudformation", o->cfn_endpoint, a->region, &a->cfn_endpoint,
		                     eb, sizeof(eb)) != 0) {
			snprintf(errbuf, errlen, "CloudFormation endpoint: %s", eb);
			goto fail;
		}
		cc.endpoint = a->cfn_endpoint;
		a->cfn = cfn_client_new(&cc);
		if (!a->cfn) {
			snprintf(errbuf, errlen, "could not make the CloudFormation client for %s",
			         a->cfn_endpoint);
			goto fail;
		}
	}
	return 0;
fail:
	aws_close(a);
	return -1;
}

void aws_close(struct aws *a)
{
	cfn_client_free(a->role_cfn);
	cfn_client_free(a->cfn);
	s3_client_free(a->s3);
	creds_provider_free(a->role_creds);
	creds_provider_free(a->creds);
	xfer_engine_free(a->xfer);
	free(a->s3_endpoint);
	free(a->cfn_endpoint);
	free(a->sts_endpoint);
	memset(a, 0, sizeof(*a));
}

int aws_assume_termination_role(struct aws *a, const char *role_arn, const char *session,
                                char *errbuf, size_t errlen)
{
	struct sts_config sc = {.xfer = a->xfer, .endpoint = a->sts_endpoint, .region = a->region};
	struct sts_assume_params p = {
	    .role_arn = role_arn, .session_name = session, .duration_s = 900};
	struct creds caller = {0}, role = {0};
	struct creds_error ce;
	struct sts_error se;
	struct cfn_config cc = {.region = a->region, .xfer = a->xfer, .endpoint = a->cfn_endpoint};
	char eb[512];
	int rc = -1;

	if (creds_get(a->creds, &caller, &ce) != 0) {
		snprintf(errbuf, errlen, "no credentials to assume %s with: %s", role_arn,
		         ce.message);
		goto out;
	}
	if (sts_assume_role(&sc, &caller, &p, &role, &se) != 0) {
		snprintf(errbuf, errlen, "could not assume termination role %s: %s", role_arn,
		         sts_error_format(&se, eb, sizeof(eb)));
		goto out;
	}
	a->role_creds = creds_provider_new_static(role.access_key_id, role.secret_access_key,
	                                          role.session_token);
	if (!a->role_creds)
		goto nomem;
	cc.creds = a->role_creds;
	a->role_cfn = cfn_client_new(&cc);
	if (!a->role_cfn)
		goto nomem;
	rc = 0;
	goto out;
nomem:
	snprintf(errbuf, errlen, "out of memory");
out:
	creds_clear(&caller);
	creds_clear(&role);
	return rc;
}

char *aws_object_url(const struct aws *a, const char *bucket, const char *key)
{
	size_t n =
	    strlen(bucket) + strlen(key) + (a->s3_endpoint ? strlen(a->s3_endpoint) : 0) + 96;
	char *u = malloc(n);

	if (!u)
		return NULL;
	if (a->s3_custom)
		snprintf(u, n, "%s/%s/%s", a->s3_endpoint, bucket, key);
	else
		snprintf(u, n, "https://%s.s3.%s.amazonaws.com/%s", bucket, a->region, key);
	return u;
}
