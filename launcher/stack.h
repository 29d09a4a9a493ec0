/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stack: the cluster stack's life through CloudFormation: create it and
 * stream its events as progress until CREATE_COMPLETE, find the first
 * failed resource (following nested stacks and the cluster's own stack),
 * and delete it: DELETE_COMPLETE or "does not exist" is deleted, a
 * DeleteStack refused while the stack rolls back is retried when the
 * rollback ends, DELETE_FAILED is retried with FORCE_DELETE_STACK and the
 * resources CloudFormation retained are named.
 */
#ifndef HPCOPS_STACK_H
#define HPCOPS_STACK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct cfn_client;
struct cfn_create_params;

/** How a wait on the stack ended. */
enum stack_result {
	STACK_OK = 0,      /* reached the state waited for */
	STACK_FAILED,      /* create failed / rolled back, or delete failed even when forced */
	STACK_INTERRUPTED, /* a signal arrived (launch_signal) */
	STACK_TIMED_OUT,   /* the deadline passed */
	STACK_API_ERROR,   /* CloudFormation could not be asked */
};

/** Remembers which events were shown, so each is printed once. */
struct stack_events {
	char **seen;
	size_t n_seen;
	bool quiet; /* collect only, print nothing (--json) */
};

void stack_events_clear(struct stack_events *ev);

/**
 * stack_print_new_events() - fetch the events of @stack newer than those in
 * @ev and print them oldest first on stderr ("time resource type status
 * reason"). Returns 0 or -1 (API error in @errbuf).
 */
int stack_print_new_events(struct cfn_client *cfn, const char *stack, struct stack_events *ev,
                           char *errbuf, size_t errlen);

/**
 * stack_create() - CreateStack, then follow it until CREATE_COMPLETE,
 * printing events. @stack_id receives the stack id (malloc'd; set as soon as
 * the stack exists, even on failure, so the caller can delete it).
 * @deadline: absolute launch_now_s() time to give up at (0 = none).
 * On STACK_FAILED @reason gets the first failed resource and its reason,
 * nested stacks followed. On STACK_API_ERROR @reason gets the API error.
 */
enum stack_result stack_create(struct cfn_client *cfn, const struct cfn_create_params *p,
                               double poll_s, double deadline, bool quiet, char **stack_id,
                               char *reason, size_t reason_len);

/**
 * stack_first_failure() - the first resource of @stack that failed, as
 * "Logical (Type): reason", then "-> in nested stack NAME: ..." for each
 * nested stack it leads into. Returns 0 (found, in @buf), 1 (none), -1 (API).
 */
int stack_first_failure(struct cfn_client *cfn, const char *stack, char *buf, size_t len);

/** A resource CloudFormation left behind when it force-deleted the stack. */
struct stack_retained_resource {
	char logical_id[256];
	char type[128];
	char physical_id[512];
	char reason[1024]; /* why its deletion failed */
};

/** The resources a deletion retained. Free with stack_retained_free(). */
struct stack_retained {
	struct stack_retained_resource *v;
	size_t n;
};

void stack_retained_free(struct stack_retained *r);

/**
 * stack_retained_json() - [{"logical_id", "type", "physical_id", "reason"}]
 * (new reference; NULL on ENOMEM).
 */
json_t *stack_retained_json(const struct stack_retained *r);

/**
 * stack_retained_text() - "Logical (Type, physical id): reason; ..." into @buf.
 * Returns @buf.
 */
const char *stack_retained_text(const struct stack_retained *r, char *buf, size_t len);

/**
 * stack_delete() - DeleteStack (@role_arn may be NULL) and wait until it is
 * gone. A DeleteStack refused because the stack is busy (ROLLBACK_IN_PROGRESS
 * and other *_IN_PROGRESS states) is retried once that ends. DELETE_FAILED
 * is retried once with FORCE_DELETE_STACK; the resources it retains are put
 * in @retained (may be NULL; the caller frees it) and named in @note.
 * Waiting ignores signals (a second Ctrl-C does not leave a stack behind)
 * but stops at @deadline (absolute launch_now_s(), 0 = none). Returns
 * STACK_OK when the stack is gone (check @retained), else STACK_FAILED /
 * STACK_API_ERROR / STACK_TIMED_OUT with the reason in @note.
 */
enum stack_result stack_delete(struct cfn_client *cfn, const char *stack, const char *role_arn,
                               double poll_s, double deadline, bool quiet,
                               struct stack_retained *retained, char *note, size_t note_len);

/**
 * stack_status() - the status of @stack into @status ("DELETE_COMPLETE" when
 * it does not exist). Returns 0 or -1 (API error in @errbuf).
 */
int stack_status(struct cfn_client *cfn, const char *stack, char *status, size_t len, char *errbuf,
                 size_t errlen);

#endif
