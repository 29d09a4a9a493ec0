/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfn: the CloudFormation client (query protocol: a form-encoded POST of
 * Action=...&Version=2010-05-15, an XML result or an ErrorResponse). Calls
 * are blocking, sign with SigV4 (service "cloudformation") per attempt and
 * run on the transfer engine, which retries Throttling ("Rate exceeded") and
 * 5xx with backoff. Every string a result holds is owned by the result and
 * freed by its *_clear() / *_free() function.
 */
#ifndef HPCOPS_CFN_H
#define HPCOPS_CFN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct creds_provider;
struct xfer_engine;
struct cfn_client;

/** Errors of this layer. */
enum cfn_err {
	CFN_OK = 0,
	CFN_ERR_NOT_FOUND,      /* ValidationError "Stack with id X does not exist" */
	CFN_ERR_ALREADY_EXISTS, /* AlreadyExistsException */
	CFN_ERR_VALIDATION,     /* any other ValidationError: bad template, parameters, state */
	CFN_ERR_CAPABILITIES,   /* InsufficientCapabilitiesException */
	CFN_ERR_ACCESS_DENIED,  /* AccessDenied: the role may not do this */
	CFN_ERR_AUTH,           /* SignatureDoesNotMatch, InvalidClientTokenId, ExpiredToken */
	CFN_ERR_THROTTLED,      /* Throttling after the engine's retries were spent */
	CFN_ERR_SERVER,         /* 5xx after the retries */
	CFN_ERR_NETWORK,        /* could not connect, reset, timeout */
	CFN_ERR_NO_CREDENTIALS, /* the credential chain found nothing */
	CFN_ERR_NOMEM,
	CFN_ERR_PROTOCOL, /* a reply we could not parse */
	CFN_ERR_OTHER,    /* any other code: see error.code */
};

/** A failure as the service told it. Fixed-size so it can live on the stack. */
struct cfn_error {
	enum cfn_err err;
	long http_status;  /* 0 when no response arrived */
	char code[64];     /* e.g. "ValidationError" */
	char message[512]; /* server message, or a local explanation */
	char request_id[64];
};

/** cfn_strerror() - a short English text for @err (static storage). */
const char *cfn_strerror(enum cfn_err err);

/** cfn_error_format() - "Code: message (HTTP n, request id X)" into @buf; returns @buf. */
const char *cfn_error_format(const struct cfn_error *e, char *buf, size_t len);

struct cfn_config {
	const char *endpoint;         /* "http://127.0.0.1:8000"; NULL =
	                                 https://cloudformation.REGION.amazonaws.com */
	const char *region;           /* signing region; NULL = "us-east-1" */
	struct creds_provider *creds; /* borrowed */
	struct xfer_engine *xfer;     /* borrowed */
	const char *service;          /* signing name; NULL = "cloudformation" */
};

/**
 * cfn_client_new() - a client; copies the strings of @cfg. Returns NULL on
 * allocation failure. Free with cfn_client_free() (NULL is fine).
 */
struct cfn_client *cfn_client_new(const struct cfn_config *cfg);
void cfn_client_free(struct cfn_client *c);

/** A key/value pair given by the caller (parameters, tags). Borrowed strings. */
struct cfn_kv {
	const char *key;
	const char *value;
};

/** CreateStack input. Exactly one of template_body / template_url. */
struct cfn_create_params {
	const char *stack_name;
	const char *template_body; /* at most CFN_MAX_TEMPLATE_BODY bytes */
	const char *template_url;
	const struct cfn_kv *parameters;
	size_t n_parameters;
	const char *const *capabilities; /* "CAPABILITY_IAM", ... */
	size_t n_capabilities;
	const struct cfn_kv *tags;
	size_t n_tags;
	const char *client_request_token; /* makes a retried call idempotent */
	const char *role_arn;             /* service role, or NULL */
	const char *on_failure; /* "ROLLBACK" (default), "DELETE", "DO_NOTHING", or NULL */
	int timeout_minutes;    /* 0 = none */
};

/** The largest TemplateBody CloudFormation takes; larger ones go by TemplateURL. */
#define CFN_MAX_TEMPLATE_BODY 51200

/**
 * cfn_create_stack() - CreateStack. @stack_id (may be NULL) receives the new
 * stack's id, malloc'd: the caller frees it. Returns 0 or -1 with @err filled.
 */
int cfn_create_stack(struct cfn_client *c, const struct cfn_create_params *p, char **stack_id,
                     struct cfn_error *err);

/** An owned key/value pair (outputs, parameters). */
struct cfn_pair {
	char *key;
	char *value;
};

/** One stack as DescribeStacks returns it. Clear with cfn_stack_clear(). */
struct cfn_stack {
	char *name;
	char *id;
	char *status;        /* "CREATE_COMPLETE", ... */
	char *status_reason; /* or NULL */
	char *parent_id;     /* nested stacks only, else NULL */
	time_t creation_time;
	time_t deletion_time; /* 0 if not deleted */
	struct cfn_pair *outputs;
	size_t n_outputs;
};

/**
 * cfn_describe_stack() - DescribeStacks of one stack by name or id.
 * A stack that is not there fails with CFN_ERR_NOT_FOUND ("Stack with id X
 * does not exist"); a deleted stack asked for by id answers DELETE_COMPLETE.
 * Returns 0 (@out filled, caller clears) or -1.
 */
int cfn_describe_stack(struct cfn_client *c, const char *stack, struct cfn_stack *out,
                       struct cfn_error *err);

/** cfn_stack_clear() - free what @s holds and zero it; safe twice. */
void cfn_stack_clear(struct cfn_stack *s);

/** cfn_stack_output() - the value of output @key in @s (borrowed), or NULL. */
const char *cfn_stack_output(const struct cfn_stack *s, const char *key);

/** One stack event. */
struct cfn_event {
	char *event_id;
	char *stack_id;
	char *stack_name;
	char *logical_id;
	char *physical_id; /* may be NULL */
	char *resource_type;
	char *status; /* ResourceStatus */
	char *reason; /* ResourceStatusReason, or NULL */
	time_t timestamp;
	int timestamp_ms; /* milliseconds part of the timestamp */
};

/** One page of DescribeStackEvents, newest first. Free with cfn_events_free(). */
struct cfn_events {
	struct cfn_event *events;
	size_t n;
	char *next_token; /* NULL on the last page */
};

/**
 * cfn_describe_stack_events() - one page of DescribeStackEvents (newest
 * first). @next_token: NULL for the first page. Returns 0 (@page filled,
 * caller frees) or -1.
 */
int cfn_describe_stack_events(struct cfn_client *c, const char *stack, const char *next_token,
                              struct cfn_events *page, struct cfn_error *err);

/** cfn_events_free() - free @page's contents and zero it; safe twice. */
void cfn_events_free(struct cfn_events *page);

/**
 * cfn_delete_stack() - DeleteStack. @role_arn: service role or NULL.
 * @force: DeletionMode=FORCE_DELETE_STACK (only valid in DELETE_FAILED).
 * @token: ClientRequestToken or NULL. Deleting a stack that is not there
 * succeeds, as in CloudFormation. Returns 0 or -1.
 */
int cfn_delete_stack(struct cfn_client *c, const char *stack, const char *role_arn, bool force,
                     const char *token, struct cfn_error *err);

/** A stack resource (DescribeStackResources). */
struct cfn_resource {
	char *logical_id;
	char *physical_id;
	char *resource_type;
	char *status;
};

/**
 * cfn_describe_stack_resources() - every resource of @stack. @res is a
 * malloc'd array the caller frees with cfn_resources_free(). Returns 0 or -1.
 */
int cfn_describe_stack_resources(struct cfn_client *c, const char *stack, struct cfn_resource **res,
                                 size_t *n, struct cfn_error *err);
void cfn_resources_free(struct cfn_resource *res, size_t n);

/** One template parameter as ValidateTemplate describes it. */
struct cfn_template_param {
	char *key;
	char *default_value; /* NULL when the template gives no Default */
	char *description;   /* or NULL */
	bool no_echo;
};

/** What ValidateTemplate says about a template. Clear with cfn_template_info_clear(). */
struct cfn_template_info {
	char *description; /* the template's Description, or NULL */
	struct cfn_template_param *params;
	size_t n_params;
	char **capabilities; /* e.g. "CAPABILITY_NAMED_IAM" */
	size_t n_capabilities;
	char *capabilities_reason; /* why they are needed, or NULL */
};

/**
 * cfn_validate_template() - ValidateTemplate of exactly one of @body (at most
 * CFN_MAX_TEMPLATE_BODY bytes) or @url. A template CloudFormation rejects
 * fails with CFN_ERR_VALIDATION and its message ("Template format error:
 * ..."). Returns 0 (@out filled, caller clears) or -1 with @err filled.
 */
int cfn_validate_template(struct cfn_client *c, const char *body, const char *url,
                          struct cfn_template_info *out, struct cfn_error *err);

/** cfn_template_info_clear() - free what @t holds and zero it; safe twice. */
void cfn_template_info_clear(struct cfn_template_info *t);

/* ---- parsers, exposed for unit tests ---- */

/**
 * cfn_parse_error() - fill @err (code, message, request id, and err from the
 * code and @http_status) from an ErrorResponse document. A body that is no
 * ErrorResponse still yields an error (CFN_ERR_SERVER for 5xx, else
 * CFN_ERR_PROTOCOL) with a message saying so.
 */
void cfn_parse_error(const char *xml, size_t len, long http_status, struct cfn_error *err);

/** cfn_parse_create() - the StackId of a CreateStackResponse (malloc'd) or NULL. */
char *cfn_parse_create(const char *xml, size_t len);

/** cfn_parse_stack() - the first stack of a DescribeStacksResponse. 0, or -1 if none. */
int cfn_parse_stack(const char *xml, size_t len, struct cfn_stack *out);

/** cfn_parse_events() - a DescribeStackEventsResponse page. 0, or -1 if malformed. */
int cfn_parse_events(const char *xml, size_t len, struct cfn_events *page);

/** cfn_parse_validate() - a ValidateTemplateResponse into @out. 0, or -1 if malformed. */
int cfn_parse_validate(const char *xml, size_t len, struct cfn_template_info *out);

/** cfn_status_is_failed() - true for *_FAILED and ROLLBACK_* stack/resource states. */
bool cfn_status_is_failed(const char *status);

/** cfn_status_is_terminal() - true when a stack status is not *_IN_PROGRESS. */
bool cfn_status_is_terminal(const char *status);

#endif
