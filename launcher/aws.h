/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aws: the launcher's connections: one transfer engine, the credential
 * chain, the S3 client for the artifact bucket and the CloudFormation
 * client, with endpoints resolved as the AWS SDKs do. struct aws owns them
 * all; aws_close() frees them.
 */
#ifndef HPCOPS_AWS_H
#define HPCOPS_AWS_H

#include <stdbool.h>
#include <stddef.h>

/* Retries of one launcher request (connect refused, 5xx, throttling), in ms. */
#define LAUNCH_REQUEST_BUDGET_MS 20000L

struct launch_opts;
struct xfer_engine;
struct creds_provider;
struct s3_client;
struct cfn_client;

struct aws {
	struct xfer_engine *xfer;
	struct creds_provider *creds;
	struct s3_client *s3;   /* NULL unless asked for */
	struct cfn_client *cfn; /* NULL unless asked for */
	char region[64];
	char *s3_endpoint; /* resolved URLs */
	char *cfn_endpoint;
	char *sts_endpoint;
	bool s3_custom; /* S3 endpoint given by flag or environment */
	/* the termination role's own CloudFormation client (aws_assume_termination_role) */
	struct creds_provider *role_creds;
	struct cfn_client *role_cfn;
};

/**
 * aws_open() - start the engine and the clients a command needs.
 * @need_s3: needs o->spec.bucket. @need_cfn: the CloudFormation client.
 * Returns 0, or -1 with a message saying what to fix.
 */
int aws_open(struct aws *a, const struct launch_opts *o, bool need_s3, bool need_cfn, char *errbuf,
             size_t errlen);

/** aws_close() - free everything aws_open() made; safe twice. */
void aws_close(struct aws *a);

/**
 * aws_assume_termination_role() - STS AssumeRole of @role_arn with the
 * caller's credentials, then a CloudFormation client signed with the role's
 * temporary credentials (a->role_cfn, owned by @a).
 * Returns 0, or -1 with the reason in @errbuf.
 */
int aws_assume_termination_role(struct aws *a, const char *role_arn, const char *session,
                                char *errbuf, size_t errlen);

/**
 * aws_object_url() - the URL CloudFormation uses to fetch @key from
 * @bucket (path style on a custom endpoint, virtual-hosted on AWS).
 * Returns a heap string the caller frees, or NULL.
 */
char *aws_object_url(const struct aws *a, const char *bucket, const char *key);

#endif
