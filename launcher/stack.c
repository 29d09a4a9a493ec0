/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stack: create, follow and delete the cluster stack through the
 * CloudFormation client, with events shown as progress. See stack.h.
 */
#include "stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

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
		/* With OnFailure=DELETE a failed creation goes on to DELETE_IN_PROGRESS. */
		if (cfn_status_is_terminal(status) || cfn_status_is_failed(status) ||
		    !strncmp(status, "DELETE_", 7)) {
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

void stack_retained_free(struct stack_retained *r)
{
	if (!r)
		return;
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

json_t *stack_retained_json(const struct stack_retained *r)
{
	json_t *a = json_array();

	for (size_t i = 0; a && r && i < r->n; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "logical_id", json_string(r->v[i].logical_id));
		json_object_set_new(e, "type", json_string(r->v[i].type));
		json_object_set_new(e, "physical_id", json_string(r->v[i].physical_id));
		json_object_set_new(e, "reason", json_string(r->v[i].reason));
		json_array_append_new(a, e);
	}
	return a;
}

const char *stack_retained_text(const struct stack_retained *r, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (size_t i = 0; r && i < r->n && off < len; i++)
		off += (size_t)snprintf(
		    buf + off, len - off, "%s%s (%s, %s): %s", i ? "; " : "", r->v[i].logical_id,
		    r->v[i].type, r->v[i].physical_id[0] ? r->v[i].physical_id : "no physical id",
		    r->v[i].reason);
	return buf;
}

/*
 * The resources of @stack whose latest event is DELETE_FAILED: what a
 * FORCE_DELETE_STACK will leave behind. Returns 0 or -1 (API error).
 */
static int collect_delete_failed(struct cfn_client *cfn, const char *stack,
                                 struct stack_retained *out)
{
	struct cfn_events pages[STACK_MAX_PAGES];
	struct stack_events decided = {.quiet = true}; /* logical ids already decided */
	struct cfn_error err;
	size_t np = 0;
	int rc = -1;

	memset(pages, 0, sizeof(pages));
	stack_retained_free(out);
	while (np < STACK_MAX_PAGES) {
		const char *tok = np ? pages[np - 1].next_token : NULL;
		if (np && !tok)
			break;
		if (cfn_describe_stack_events(cfn, stack, tok, &pages[np], &err) != 0)
			goto out;
		np++;
	}
	/* Newest first: the first event of a resource is its latest. */
	for (size_t p = 0; p < np; p++) {
		for (size_t i = 0; i < pages[p].n; i++) {
			struct cfn_event *e = &pages[p].events[i];
			struct stack_retained_resource *nv, *r;

			if (e->physical_id && e->stack_id && !strcmp(e->physical_id, e->stack_id))
				continue; /* the stack itself */
			if (seen(&decided, e->logical_id))
				continue;
			remember(&decided, e->logical_id);
			if (strcmp(e->status, "DELETE_FAILED"))
				continue;
			nv = realloc(out->v, (out->n + 1) * sizeof(*nv));
			if (!nv)
				goto out;
			out->v = nv;
			r = &nv[out->n++];
			snprintf(r->logical_id, sizeof(r->logical_id), "%s", e->logical_id);
			snprintf(r->type, sizeof(r->type), "%s",
			         e->resource_type ? e->resource_type : "");
			snprintf(r->physical_id, sizeof(r->physical_id), "%s",
			         e->physical_id ? e->physical_id : "");
			snprintf(r->reason, sizeof(r->reason), "%s",
			         e->reason && e->reason[0] ? e->reason : "(no reason given)");
		}
	}
	rc = 0;
out:
	stack_events_clear(&decided);
	for (size_t p = 0; p < STACK_MAX_PAGES; p++)
		cfn_events_free(&pages[p]);
	return rc;
}

/* CloudFormation refuses DeleteStack while another operation runs. */
static bool refused_busy(const struct cfn_error *e)
{
	return e->err == CFN_ERR_VALIDATION &&
	       strstr(e->message, "cannot be deleted while in status");
}

/*
 * DeleteStack, and while CloudFormation refuses it because the stack is busy
 * (rolling back a failed creation, say), wait for that to end and ask again.
 * @status: the status last seen, updated. Returns STACK_OK once the request
 * was accepted or the stack is gone, else STACK_API_ERROR / STACK_TIMED_OUT
 * with @note set.
 */
static enum stack_result request_delete(struct cfn_client *cfn, const char *stack, const char *name,
                                        const char *role_arn, bool force, double poll_s,
                                        double deadline, struct stack_events *ev, char *status,
                                        size_t slen, char *note, size_t note_len)
{
	struct cfn_error err;
	char eb[768];
	bool said = false;
	double since = launch_now_s();

	for (;;) {
		if (cfn_delete_stack(cfn, stack, role_arn, force, NULL, &err) == 0)
			return STACK_OK;
		if (!refused_busy(&err)) {
			snprintf(note, note_len, "DeleteStack%s %s: %s",
			         force ? " (FORCE_DELETE_STACK)" : "", stack,
			         cfn_error_format(&err, eb, sizeof(eb)));
			return STACK_API_ERROR;
		}
		/* e.g. ROLLBACK_IN_PROGRESS: wait it out, within the deadline, then ask again */
		do {
			if (!said && !ev->quiet)
				launch_say(
				    "stack %s: CloudFormation refused the deletion while %s; "
				    "waiting for that to end, then deleting",
				    name, status);
			said = true;
			if (deadline > 0 && launch_now_s() > deadline) {
				snprintf(
				    note, note_len,
				    "DeleteStack refused while the stack was %s, and it was still "
				    "%s after %.0f s of waiting: %s",
				    status, status, launch_now_s() - since, err.message);
				return STACK_TIMED_OUT;
			}
			nap(poll_s);
			if (stack_print_new_events(cfn, stack, ev, eb, sizeof(eb)) != 0)
				log_debug("stack events of %s: %s", stack, eb);
			if (stack_status(cfn, stack, status, slen, eb, sizeof(eb)) != 0) {
				snprintf(note, note_len, "DescribeStacks %s: %s", stack, eb);
				return STACK_API_ERROR;
			}
			if (!strcmp(status, "DELETE_COMPLETE") ||
			    !strcmp(status, "DELETE_IN_PROGRESS"))
				return STACK_OK;
		} while (!cfn_status_is_terminal(status));
		if (!ev->quiet)
			launch_say("stack %s: now %s; asking again to delete it", name, status);
	}
}

enum stack_result stack_delete(struct cfn_client *cfn, const char *stack, const char *role_arn,
                               double poll_s, double deadline, bool quiet,
                               struct stack_retained *retained, char *note, size_t note_len)
{
	struct stack_events ev = {.quiet = quiet};
	struct stack_retained kept = {0};
	char eb[768], status[64] = "";
	bool forced = false;
	enum stack_result res = STACK_API_ERROR;
	char namebuf[256];
	const char *name = display_name(stack, namebuf, sizeof(namebuf));

	note[0] = 0;
	if (retained)
		stack_retained_free(retained);
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
	forced = !strcmp(status, "DELETE_FAILED");
	if (forced && collect_delete_failed(cfn, stack, &kept) != 0)
		log_warn("stack %s: could not list the resources that failed to delete", name);
	res = request_delete(cfn, stack, name, role_arn, forced, poll_s, deadline, &ev, status,
	                     sizeof(status), note, note_len);
	if (res != STACK_OK)
		goto out;
	if (!quiet)
		launch_say("stack %s: deleting%s", name, forced ? " (FORCE_DELETE_STACK)" : "");
	for (;;) {
		if (strcmp(status, "DELETE_COMPLETE"))
			nap(poll_s);
		if (stack_print_new_events(cfn, stack, &ev, eb, sizeof(eb)) != 0)
			log_debug("stack events of %s: %s", stack, eb);
		if (stack_status(cfn, stack, status, sizeof(status), eb, sizeof(eb)) != 0) {
			snprintf(note, note_len, "DescribeStacks %s: %s", stack, eb);
			res = STACK_API_ERROR;
			goto out;
		}
		if (!strcmp(status, "DELETE_COMPLETE")) {
			if (forced && kept.n) {
				char list[3000];
				stack_retained_text(&kept, list, sizeof(list));
				snprintf(
				    note, note_len,
				    "deleted with FORCE_DELETE_STACK after DELETE_FAILED, but "
				    "CloudFormation RETAINED %zu resource(s) it could not delete, "
				    "which may still cost money: %s",
				    kept.n, list);
			} else if (forced) {
				snprintf(note, note_len,
				         "deleted with FORCE_DELETE_STACK after DELETE_FAILED (no "
				         "resource named as failed: check the account)");
			}
			if (!quiet)
				launch_say("stack %s: deleted%s%s", name, note[0] ? ": " : "",
				           note);
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
			if (collect_delete_failed(cfn, stack, &kept) != 0)
				log_warn(
				    "stack %s: could not list the resources that failed to delete",
				    name);
			if (!quiet)
				launch_say(
				    "stack %s: DELETE_FAILED (%s); retrying with "
				    "FORCE_DELETE_STACK, which keeps what could not be deleted",
				    name, why);
			forced = true;
			res = request_delete(cfn, stack, name, role_arn, true, poll_s, deadline,
			                     &ev, status, sizeof(status), note, note_len);
			if (res != STACK_OK)
				goto out;
		} else if (strcmp(status, "DELETE_IN_PROGRESS") && cfn_status_is_terminal(status)) {
			/* e.g. still CREATE_COMPLETE: a delete request got lost; ask again. */
			res = request_delete(cfn, stack, name, role_arn, false, poll_s, deadline,
			                     &ev, status, sizeof(status), note, note_len);
			if (res != STACK_OK)
				goto out;
		}
		if (deadline > 0 && launch_now_s() > deadline) {
			snprintf(note, note_len, "stack %s still %s after waiting for its deletion",
			         stack, status);
			res = STACK_TIMED_OUT;
			goto out;
		}
	}
out:
	if (retained && res == STACK_OK && forced) {
		*retained = kept;
		kept.v = NULL;
		kept.n = 0;
	}
	stack_retained_free(&kept);
	stack_events_clear(&ev);
	return res;
}
