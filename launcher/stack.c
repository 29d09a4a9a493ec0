// SPDX-License-Identifier: Apache-2.0
/*
 * stack: create, follow and delete the cluster stack through the
 * CloudFormation client, with events shown as progress. See stack.h.
 */
#include "stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfn.h"
#include "launch.h"
#include "log.h"

/* Bound on events remembered and on pages read per poll. */
#define STACK_MAX_SEEN  20000
#define STACK_MAX_PAGES 50

void stack_events_clear(struct stack_events *ev)
{
	for (size_t i = 0; i < ev->n_seen; i++)
		free(ev->seen[i]);
	free(ev->seen);
	ev->seen = NULL;
	ev->n_seen = 0;
}

static bool seen(const struct stack_events *ev, const char *id)
{
	for (size_t i = ev->n_seen; i > 0; i--)
		if (!strcmp(ev->seen[i - 1], id))
			return true;
	return false;
}

static void remember(struct stack_events *ev, const char *id)
{
	char **n;

	if (ev->n_seen >= STACK_MAX_SEEN)
		return;
	n = realloc(ev->seen, (ev->n_seen + 1) * sizeof(*n));
	if (!n)
		return;
	ev->seen = n;
	ev->seen[ev->n_seen] = strdup(id);
	if (ev->seen[ev->n_seen])
		ev->n_seen++;
}

static void print_event(const struct cfn_event *e)
{
	struct tm tm;
	char ts[32] = "";

	if (e->timestamp && localtime_r(&e->timestamp, &tm))
		strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	fprintf(stderr, "  %s  %-28s %-36s %s%s%s\n", ts, e->logical_id,
	        e->resource_type ? e->resource_type : "", e->status,
	        e->reason && e->reason[0] ? "  " : "", e->reason ? e->reason : "");
}

int stack_print_new_events(struct cfn_client *cfn, const char *stack, struct stack_events *ev,
                           char *errbuf, size_t errlen)
{
	struct cfn_events pages[STACK_MAX_PAGES];
	struct cfn_error err;
	size_t np = 0;
	char eb[768];
	int rc = -1;
	bool stop = false;

	memset(pages, 0, sizeof(pages));
	/* Pages come newest first: read until a page holds an event already shown. */
	while (np < STACK_MAX_PAGES && !stop) {
		const char *tok = np ? pages[np - 1].next_token : NULL;
		if (np && !tok)
			break;
		if (cfn_describe_stack_events(cfn, stack, tok, &pages[np], &err) != 0) {
			snprintf(errbuf, errlen, "%s", cfn_error_format(&err, eb, sizeof(eb)));
			goto out;
		}
		for (size_t i = 0; i < pages[np].n; i++)
			if (seen(ev, pages[np].events[i].event_id))
				stop = true;
		np++;
	}
	for (size_t p = np; p > 0; p--) {
		struct cfn_events *pg = &pages[p - 1];
		for (size_t i = pg->n; i > 0; i--) {
			struct cfn_event *e = &pg->events[i - 1];
			if (seen(ev, e->event_id))
				continue;
			remember(ev, e->event_id);
			if (!ev->quiet)
				print_event(e);
		}
	}
	rc = 0;
out:
	for (size_t p = 0; p < STACK_MAX_PAGES; p++)
		cfn_events_free(&pages[p]);
	return rc;
}

int stack_status(struct cfn_client *cfn, const char *stack, char *status, size_t len, char *errbuf,
                 size_t errlen)
{
	struct cfn_stack st;
	struct cfn_error err;
	char eb[768];

	if (cfn_describe_stack(cfn, stack, &st, &err) != 0) {
		if (err.err == CFN_ERR_NOT_FOUND) {
			snprintf(status, len, "DELETE_COMPLETE");
			return 0;
		}
		snprintf(errbuf, errlen, "%s", cfn_error_format(&err, eb, sizeof(eb)));
		return -1;
	}
	snprintf(status, len, "%s", st.status);
	cfn_stack_clear(&st);
	return 0;
}

/* The oldest *_FAILED resource event of @stack: 0 found, 1 none, -1 API error. */
static int first_failure_one(struct cfn_client *cfn, const char *stack, char *logical, size_t llen,
                             char *rtype, size_t tlen, char *reason, size_t rlen, char *physical,
                             size_t plen)
{
	struct cfn_events pages[STACK_MAX_PAGES];
	struct cfn_error err;
	size_t np = 0;
	int rc = -1;

	memset(pages, 0, sizeof(pages));
	while (np < STACK_MAX_PAGES) {
		const char *tok = np ? pages[np - 1].next_token : NULL;
		if (np && !tok)
			break;
		if (cfn_describe_stack_events(cfn, stack, tok, &pages[np], &err) != 0)
			goto out;
		np++;
	}
	rc = 1;
	/* Oldest first: the last page's last event is the oldest. */
	for (size_t p = np; p > 0 && rc == 1; p--) {
		struct cfn_events *pg = &pages[p - 1];
		for (size_t i = pg->n; i > 0; i--) {
			struct cfn_event *e = &pg->events[i - 1];
			size_t sl = strlen(e->status);
			/* The stack's own *_FAILED line only repeats its resources'. */
			if (e->physical_id && e->stack_id && !strcmp(e->physical_id, e->stack_id))
				continue;
			if (sl < 7 || strcmp(e->status + sl - 7, "_FAILED"))
				continue;
			if (e->reason && (strstr(e->reason, "Resource creation cancelled") ||
			                  strstr(e->reason, "Resource update cancelled")))
				continue;
			snprintf(logical, llen, "%s", e->logical_id);
			snprintf(rtype, tlen, "%s", e->resource_type ? e->resource_type : "");
			snprintf(reason, rlen, "%s", e->reason ? e->reason : "(no reason given)");
			snprintf(physical, plen, "%s", e->physical_id ? e->physical_id : "");
			rc = 0;
			break;
		}
	}
out:
	for (size_t p = 0; p < STACK_MAX_PAGES; p++)
		cfn_events_free(&pages[p]);
	return rc;
}

int stack_first_failure(struct cfn_client *cfn, const char *stack, char *buf, size_t len)
{
	char logical[256], rtype[128], reason[1024], physical[512], next[512];
	size_t off = 0;
	int depth = 0, rc;

	buf[0] = 0;
	snprintf(next, sizeof(next), "%s", stack);
	while (depth < 5) {
		rc = first_failure_one(cfn, next, logical, sizeof(logical), rtype, sizeof(rtype),
		                       reason, sizeof(reason), physical, sizeof(physical));
		if (rc < 0)
			return depth ? 0 : -1;
		if (rc == 1)
			return depth ? 0 : 1;
		if (depth) {
			const char *nm = strstr(next, ":stack/");
			char name[256];
			snprintf(name, sizeof(name), "%.200s", nm ? nm + 7 : next);
			char *slash = strchr(name, '/');
			if (slash)
				*slash = 0;
			off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
			                        "\n  -> in nested stack %s: ", name);
		}
		if (off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s (%s): %s", logical, rtype,
			                        reason);
		/* A nested stack or the cluster's own stack: look inside for the cause. */
		if (!strstr(physical, ":cloudformation:") || !strstr(physical, ":stack/") ||
		    !strcmp(physical, next))
			return 0;
		snprintf(next, sizeof(next), "%s", physical);
		depth++;
	}
	return 0;
}

enum stack_result stack_create(struct cfn_client *cfn, const struct cfn_create_params *p,
                               double poll_s, double deadline, bool quiet, char **stack_id,
                               char *reason, size_t reason_len)
{
	struct cfn_error err;
	struct stack_events ev = {.quiet = quiet};
	char eb[768], status[64] = "";
	enum stack_result res = STACK_API_ERROR;

	*stack_id = NULL;
	reason[0] = 0;
	if (cfn_create_stack(cfn, p, stack_id, &err) != 0) {
		snprintf(reason, reason_len, "CreateStack %s: %s", p->stack_name,
		         cfn_error_format(&err, eb, sizeof(eb)));
		return STACK_API_ERROR;
	}
	if (!quiet)
		launch_say("stack %s: creating (%s)", p->stack_name, *stack_id);
	for (;;) {
		if (stack_print_new_events(cfn, *stack_id, &ev, eb, sizeof(eb)) != 0)
			log_warn("stack events of %s: %s", p->stack_name, eb);
		if (stack_status(cfn, *stack_id, status, sizeof(status), eb, sizeof(eb)) != 0) {
			snprintf(reason, reason_len, "DescribeStacks %s: %s", p->stack_name, eb);
			res = STACK_API_ERROR;
			goto out;
		}
		if (!strcmp(status, "CREATE_COMPLETE")) {
			res = STACK_OK;
			goto out;
		}
		if (cfn_status_is_terminal(status) || cfn_status_is_failed(status)) {
			if (stack_first_failure(cfn, *stack_id, reason, reason_len) != 0)
				snprintf(reason, reason_len, "stack is %s", status);
			res = STACK_FAILED;
			goto out;
		}
		if (deadline > 0 && launch_now_s() > deadline) {
			snprintf(reason, reason_len, "stack still %s when the budget ran out",
			         status);
			res = STACK_TIMED_OUT;
			goto out;
		}
		if (!launch_sleep(poll_s)) {
			snprintf(reason, reason_len,
			         "interrupted by signal %d while the stack was %s",
			         (int)launch_signal, status);
			res = STACK_INTERRUPTED;
			goto out;
		}
	}
out:
	stack_events_clear(&ev);
	return res;
}

/* "name" of "arn:aws:cloudformation:REGION:ACCOUNT:stack/name/uuid", for messages. */
static const char *display_name(const char *stack, char *buf, size_t len)
{
	const char *p = strstr(stack, ":stack/");
	const char *slash;

	if (!p)
		return stack;
	p += 7;
	slash = strchr(p, '/');
	snprintf(buf, len, "%.*s", (int)(slash ? (size_t)(slash - p) : strlen(p)), p);
	return buf;
}

/* Sleep that ignores the signal flag: deletion must finish once started. */
static void nap(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s,
	                      .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) != 0)
		;
}

enum stack_result stack_delete(struct cfn_client *cfn, const char *stack, const char *role_arn,
                               double poll_s, double deadline, bool quiet, char *note,
                               size_t note_len)
{
	struct cfn_error err;
	struct stack_events ev = {.quiet = quiet};
	char eb[768], status[64] = "";
	bool forced = false;
	enum stack_result res = STACK_API_ERROR;
	char namebuf[256];
	const char *name = display_name(stack, namebuf, sizeof(namebuf));

	note[0] = 0;
	if (stack_status(cfn, stack, status, sizeof(status), eb, sizeof(eb)) != 0) {
		snprintf(note, note_len, "DescribeStacks %s: %s", stack, eb);
		return STACK_API_ERROR;
	}
	if (!strcmp(status, "DELETE_COMPLETE")) {
		if (!quiet)
			launch_say("stack %s: already deleted", name);
		return STACK_OK;
	}
	/* Show only what happens from now on. */
	ev.quiet = true;
	if (stack_print_new_events(cfn, stack, &ev, eb, sizeof(eb)) != 0)
		log_debug("stack events of %s: %s", stack, eb);
	ev.quiet = quiet;
	if (cfn_delete_stack(cfn, stack, role_arn, !strcmp(status, "DELETE_FAILED"), NULL, &err) !=
	    0) {
		snprintf(note, note_len, "DeleteStack %s: %s", stack,
		         cfn_error_format(&err, eb, sizeof(eb)));
		goto out;
	}
	forced = !strcmp(status, "DELETE_FAILED");
	if (!quiet)
		launch_say("stack %s: deleting%s", name, forced ? " (FORCE_DELETE_STACK)" : "");
	for (;;) {
		nap(poll_s);
		if (stack_print_new_events(cfn, stack, &ev, eb, sizeof(eb)) != 0)
			log_debug("stack events of %s: %s", stack, eb);
		if (stack_status(cfn, stack, status, sizeof(status), eb, sizeof(eb)) != 0) {
			snprintf(note, note_len, "DescribeStacks %s: %s", stack, eb);
			res = STACK_API_ERROR;
			goto out;
		}
		if (!strcmp(status, "DELETE_COMPLETE")) {
			if (!quiet)
				launch_say(
				    "stack %s: deleted%s", name,
				    forced ? " after DELETE_FAILED, with FORCE_DELETE_STACK "
				             "(resources it could not delete were left: check them)"
				           : "");
			if (forced)
				snprintf(note, note_len,
				         "first deletion ended DELETE_FAILED; deleted with "
				         "FORCE_DELETE_STACK (resources it could not delete were "
				         "retained)");
			res = STACK_OK;
			goto out;
		}
		if (!strcmp(status, "DELETE_FAILED")) {
			char why[1024];
			if (stack_first_failure(cfn, stack, why, sizeof(why)) != 0)
				snprintf(why, sizeof(why), "no reason given");
			if (forced) {
				snprintf(note, note_len,
				         "DELETE_FAILED even with FORCE_DELETE_STACK: %s", why);
				res = STACK_FAILED;
				goto out;
			}
			if (!quiet)
				launch_say("stack %s: DELETE_FAILED (%s); retrying with "
				           "FORCE_DELETE_STACK",
				           name, why);
			if (cfn_delete_stack(cfn, stack, role_arn, true, NULL, &err) != 0) {
				snprintf(note, note_len, "DeleteStack (FORCE_DELETE_STACK) %s: %s",
				         stack, cfn_error_format(&err, eb, sizeof(eb)));
				res = STACK_API_ERROR;
				goto out;
			}
			forced = true;
		} else if (strcmp(status, "DELETE_IN_PROGRESS") && cfn_status_is_terminal(status)) {
			/* e.g. still CREATE_COMPLETE: a delete request got lost; ask again. */
			if (cfn_delete_stack(cfn, stack, role_arn, false, NULL, &err) != 0) {
				snprintf(note, note_len, "DeleteStack %s: %s", stack,
				         cfn_error_format(&err, eb, sizeof(eb)));
				res = STACK_API_ERROR;
				goto out;
			}
		}
		if (deadline > 0 && launch_now_s() > deadline) {
			snprintf(note, note_len, "stack %s still %s after waiting for its deletion",
			         stack, status);
			res = STACK_TIMED_OUT;
			goto out;
		}
	}
out:
	stack_events_clear(&ev);
	return res;
}
