/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check: messages for a failed bucket check (see check.h).
 */
#include "check.h"

#include <stdio.h>

const char *check_explain(const struct s3_error *e, const char *bucket, const char *prefix,
                          const char *endpoint, double timeout_s, char *out, size_t len)
{
	char buf[512];

	s3_error_format(e, buf, sizeof(buf));
	switch (e->err) {
	case S3_ERR_NO_CREDENTIALS:
		snprintf(
		    out, len,
		    "hpcops-mount: no AWS credentials found: set AWS_ACCESS_KEY_ID and "
		    "AWS_SECRET_ACCESS_KEY, use --profile NAME, run on a node with an instance "
		    "role, or pass --no-sign-request for a public bucket (%s)",
		    e->message);
		break;
	case S3_ERR_ACCESS_DENIED:
	case S3_ERR_INVALID_ACCESS_KEY:
		snprintf(out, len,
		         "hpcops-mount: access denied to bucket %s%s%s: the credentials may not "
		         "list it; check the access key and the bucket policy or role (needs "
		         "s3:ListBucket) (%s)",
		         bucket, *prefix ? " prefix " : "", prefix, buf);
		break;
	case S3_ERR_SIGNATURE:
		snprintf(out, len,
		         "hpcops-mount: signature mismatch: the secret access key does not match "
		         "the access key id; check AWS_SECRET_ACCESS_KEY or the profile's "
		         "aws_secret_access_key (%s)",
		         buf);
		break;
	case S3_ERR_EXPIRED_TOKEN:
		snprintf(out, len,
		         "hpcops-mount: the session token has expired: get fresh credentials (%s)",
		         buf);
		break;
	case S3_ERR_NO_SUCH_BUCKET:
		snprintf(out, len,
		         "hpcops-mount: no such bucket: %s does not exist at %s; check the name "
		         "and --endpoint-url/--region (%s)",
		         bucket, endpoint, buf);
		break;
	case S3_ERR_WRONG_REGION:
		if (e->region[0])
			snprintf(out, len,
			         "hpcops-mount: wrong region: bucket %s is in region %s; pass "
			         "--region %s (%s)",
			         bucket, e->region, e->region, buf);
		else
			snprintf(out, len,
			         "hpcops-mount: wrong region: bucket %s is not in the region "
			         "used; pass the bucket's --region (%s)",
			         bucket, buf);
		break;
	case S3_ERR_NETWORK:
		snprintf(out, len,
		         "hpcops-mount: endpoint unreachable: could not connect to %s; check "
		         "--endpoint-url, the network and any proxy (%s)",
		         endpoint, e->message);
		break;
	case S3_ERR_TIMEOUT:
		snprintf(out, len,
		         "hpcops-mount: endpoint not answering: connected to %s, but it sent no "
		         "answer within %g s (--check-timeout); is it an S3 server, and is it "
		         "overloaded? (%s)",
		         endpoint, timeout_s, e->message);
		break;
	default:
		snprintf(out, len, "hpcops-mount: cannot list bucket %s at %s: %s", bucket,
		         endpoint, buf);
		break;
	}
	return out;
}
