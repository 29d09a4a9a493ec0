/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_s3_xml: the streaming S3 reply parsers (s3_xml.h). Each input is fed
 * to a parser of every s3_doc kind, once whole and once in random chunks (a
 * body arrives from curl in pieces of any size), and must give the same
 * answer both ways; s3_xml_parse_error() and the small helpers get it too.
 *
 * Input: an S3 reply body as the server sends it. Or, to reach sizes a
 * mutated input never has, "#repeat N\n" HEAD "\0" BODY "\0" TAIL: the
 * document HEAD BODY*N TAIL (at most FUZZ_STREAM_MAX bytes) streamed in
 * 16 KiB pieces as curl delivers them, e.g. a listing of 10,000 entries or
 * one nested a million deep, to the parser of the kind whose root element
 * HEAD names first.
 *
 * Checked: no crash, leak or UB; a failure says why; outputs respect the
 * bounds (max_entries); and no parser's libxml2 ever holds more than
 * FUZZ_XML_HEAP_MAX (counted through xmlMemSetup): a reply must not grow
 * the parser's memory without bound, however it is nested.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "fuzz.h"
#include "fuzz_xml.h"
#include "s3.h"
#include "s3_xml.h"

#define N_KINDS           (S3_DOC_DELETE + 1)
#define FUZZ_STREAM_MAX   (16u << 20) /* bytes of one #repeat document */
#define FUZZ_STREAM_CHUNK (16u << 10) /* CURL_MAX_WRITE_SIZE */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_xml_heap_init();
	return 0;
}

/* ---- one parser per kind, fed in lockstep ---- */

struct run {
	int owner; /* whose libxml2 memory (fuzz_xml_owner) */
	struct s3_doc *d;
	struct s3_doc_out out;
	struct s3_list_page page;
	bool dead; /* a feed failed: s3.c feeds on, but the parser only says -1 */
	int rc;
	char why[160];
};

/* Parsers of every kind, or with @only >= 0 of that kind alone. */
static void runs_start(struct run *r, uint64_t seed, int first_owner, int only)
{
	/* Small bounds sometimes, so that "more than max-keys" is reachable. */
	size_t max = (seed & 3) == 0 ? (size_t)((seed >> 8) % 8) : 1000;

	for (int k = 0; k < N_KINDS; k++) {
		memset(&r[k], 0, sizeof(r[k]));
		r[k].dead = only >= 0 && k != only;
		if (r[k].dead)
			continue;
		r[k].out.page = &r[k].page;
		r[k].out.max_entries = k == S3_DOC_LIST_PARTS && max == 1000 ? 10000 : max;
		r[k].owner = fuzz_xml_owner = first_owner + k;
		r[k].d = s3_doc_new((enum s3_doc_kind)k, &r[k].out);
		FUZZ_CHECK(r[k].d, "s3_doc_new failed");
	}
}

static void runs_feed(struct run *r, const void *p, size_t n)
{
	for (int k = 0; k < N_KINDS; k++) {
		fuzz_xml_owner = r[k].owner;
		if (!r[k].dead && s3_doc_feed(r[k].d, p, n) != 0)
			r[k].dead = true;
	}
}

static bool all_dead(const struct run *r)
{
	for (int k = 0; k < N_KINDS; k++)
		if (!r[k].dead)
			return false;
	return true;
}

static void check_str(const char *s, size_t cap, const char *what)
{
	FUZZ_CHECK(strnlen(s, cap) < cap, "%s is not NUL-terminated", what);
}

static void runs_finish(struct run *r)
{
	for (int k = 0; k < N_KINDS; k++) {
		struct run *x = &r[k];
		const struct s3_doc_out *o = &x->out;

		if (!x->d)
			continue;
		fuzz_xml_owner = x->owner;
		x->rc = s3_doc_finish(x->d, x->why, sizeof(x->why));
		FUZZ_CHECK(x->rc == 0 || x->rc == -1, "s3_doc_finish returned %d", x->rc);
		FUZZ_CHECK(x->rc == 0 || x->why[0], "kind %d failed without saying why", k);
		FUZZ_CHECK(!x->dead || x->rc != 0, "kind %d: a failed feed, then success", k);
		check_str(o->error.code, sizeof(o->error.code), "error.code");
		check_str(o->error.message, sizeof(o->error.message), "error.message");
		check_str(o->error.request_id, sizeof(o->error.request_id), "error.request_id");
		check_str(o->error.region, sizeof(o->error.region), "error.region");
		check_str(o->etag, sizeof(o->etag), "etag");
		check_str(o->first_failed_key, sizeof(o->first_failed_key), "first_failed_key");
		check_str(o->first_failed_code, sizeof(o->first_failed_code), "first_failed_code");
		if (o->max_entries) {
			FUZZ_CHECK(x->page.n_entries <= o->max_entries, "%zu entries, max %zu",
			           x->page.n_entries, o->max_entries);
			FUZZ_CHECK(x->page.n_prefixes <= o->max_entries, "%zu prefixes, max %zu",
			           x->page.n_prefixes, o->max_entries);
			FUZZ_CHECK(o->n_parts <= o->max_entries, "%zu parts, max %zu", o->n_parts,
			           o->max_entries);
			FUZZ_CHECK(o->n_uploads <= o->max_entries, "%zu uploads, max %zu",
			           o->n_uploads, o->max_entries);
		}
		for (size_t i = 0; i < x->page.n_entries; i++) {
			FUZZ_CHECK(x->page.entries[i].key, "entry %zu without a key", i);
			check_str(x->page.entries[i].etag, sizeof(x->page.entries[i].etag),
			          "entry etag");
		}
		for (size_t i = 0; i < x->page.n_prefixes; i++)
			FUZZ_CHECK(x->page.prefixes[i], "prefix %zu is NULL", i);
		for (size_t i = 0; i < o->n_uploads; i++)
			FUZZ_CHECK(o->uploads[i].key && o->uploads[i].upload_id,
			           "upload %zu lacks key or id", i);
		for (size_t i = 0; i < o->n_parts; i++)
			check_str(o->parts[i].etag, sizeof(o->parts[i].etag), "part etag");
		if (x->rc == 0 && k == S3_DOC_INITIATE && !o->is_error)
			FUZZ_CHECK(o->upload_id, "InitiateMultipartUpload parsed without UploadId");
	}
}

static void runs_free(struct run *r)
{
	for (int k = 0; k < N_KINDS; k++) {
		fuzz_xml_owner = r[k].owner;
		s3_doc_free(r[k].d);
		s3_doc_out_free(&r[k].out);
		s3_list_page_free(&r[k].page);
	}
}

static bool streq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Two parses of the same bytes, cut differently, must agree. */
static void runs_compare(const struct run *a, const struct run *b)
{
	for (int k = 0; k < N_KINDS; k++) {
		const struct s3_doc_out *x = &a[k].out, *y = &b[k].out;
		const struct s3_list_page *p = &a[k].page, *q = &b[k].page;

		FUZZ_CHECK(a[k].rc == b[k].rc,
		           "kind %d: whole body gives %d (%s), chunked gives %d (%s)", k, a[k].rc,
		           a[k].why, b[k].rc, b[k].why);
		if (a[k].rc != 0)
			continue;
		FUZZ_CHECK(x->is_error == y->is_error, "kind %d: is_error differs", k);
		FUZZ_CHECK(!strcmp(x->error.code, y->error.code) &&
		               !strcmp(x->error.message, y->error.message) &&
		               !strcmp(x->error.request_id, y->error.request_id) &&
		               !strcmp(x->error.region, y->error.region),
		           "kind %d: error fields differ ('%s' vs '%s')", k, x->error.code,
		           y->error.code);
		FUZZ_CHECK(streq(x->upload_id, y->upload_id), "kind %d: upload_id differs", k);
		FUZZ_CHECK(!strcmp(x->etag, y->etag), "kind %d: etag differs", k);
		FUZZ_CHECK(x->truncated == y->truncated && streq(x->next_marker, y->next_marker) &&
		               streq(x->next_marker2, y->next_marker2),
		           "kind %d: page markers differ", k);
		FUZZ_CHECK(x->n_parts == y->n_parts, "kind %d: %zu vs %zu parts", k, x->n_parts,
		           y->n_parts);
		for (size_t i = 0; i < x->n_parts; i++)
			FUZZ_CHECK(x->parts[i].part_no == y->parts[i].part_no &&
			               x->parts[i].size == y->parts[i].size &&
			               !strcmp(x->parts[i].etag, y->parts[i].etag),
			           "kind %d: part %zu differs", k, i);
		FUZZ_CHECK(x->n_uploads == y->n_uploads, "kind %d: %zu vs %zu uploads", k,
		           x->n_uploads, y->n_uploads);
		for (size_t i = 0; i < x->n_uploads; i++)
			FUZZ_CHECK(!strcmp(x->uploads[i].key, y->uploads[i].key) &&
			               !strcmp(x->uploads[i].upload_id, y->uploads[i].upload_id),
			           "kind %d: upload %zu differs", k, i);
		FUZZ_CHECK(x->n_deleted == y->n_deleted && x->n_failed == y->n_failed &&
		               !strcmp(x->first_failed_key, y->first_failed_key) &&
		               !strcmp(x->first_failed_code, y->first_failed_code),
		           "kind %d: delete result differs", k);
		FUZZ_CHECK(p->n_entries == q->n_entries && p->n_prefixes == q->n_prefixes &&
		               p->truncated == q->truncated && streq(p->next_token, q->next_token),
		           "kind %d: listing page differs (%zu vs %zu entries)", k, p->n_entries,
		           q->n_entries);
		for (size_t i = 0; i < p->n_entries; i++)
			FUZZ_CHECK(!strcmp(p->entries[i].key, q->entries[i].key) &&
			               p->entries[i].size == q->entries[i].size &&
			               p->entries[i].mtime == q->entries[i].mtime &&
			               !strcmp(p->entries[i].etag, q->entries[i].etag),
			           "kind %d: entry %zu differs", k, i);
		for (size_t i = 0; i < p->n_prefixes; i++)
			FUZZ_CHECK(!strcmp(p->prefixes[i], q->prefixes[i]),
			           "kind %d: prefix %zu differs", k, i);
	}
}

/* ---- the two input forms ---- */

/*
 * The parser the client would pick for a reply starting with @head: the
 * kind whose root element comes first in it, else one chosen by the hash.
 */
static int stream_kind(const char *head, size_t len, const uint8_t *data, size_t size)
{
	static const char *const roots[N_KINDS] = {
	    [S3_DOC_ERROR] = "<Error",
	    [S3_DOC_LIST_OBJECTS] = "<ListBucketResult",
	    [S3_DOC_INITIATE] = "<InitiateMultipartUploadResult",
	    [S3_DOC_COMPLETE] = "<CompleteMultipartUploadResult",
	    [S3_DOC_COPY] = "<CopyObjectResult",
	    [S3_DOC_LIST_PARTS] = "<ListPartsResult",
	    [S3_DOC_LIST_UPLOADS] = "<ListMultipartUploadsResult",
	    [S3_DOC_DELETE] = "<DeleteResult",
	};
	const char *best = NULL;
	int kind = (int)(fuzz_hash(data, size) % N_KINDS);

	for (int k = 0; k < N_KINDS; k++) {
		const char *at = memmem(head, len, roots[k], strlen(roots[k]));

		if (at && (!best || at < best)) {
			best = at;
			kind = k;
		}
	}
	return kind;
}

/*
 * HEAD BODY*N TAIL in curl-sized pieces to one parser (eight side by side
 * would hold eight times the memory of a reply that is never rejected).
 */
static void stream_doc(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 8, *end = (const char *)data + size, *nl;
	const char *head, *body, *tail;
	size_t head_len, body_len, tail_len, total, n, fill = 0;
	unsigned long long reps = 0;
	struct run r[N_KINDS];
	char *buf;

	for (; p < end && *p >= '0' && *p <= '9'; p++)
		reps = reps < FUZZ_STREAM_MAX ? reps * 10 + (unsigned)(*p - '0') : reps;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl)
		return;
	head = nl + 1;
	body = memchr(head, '\0', (size_t)(end - head));
	if (!body) {
		/* no NUL: all of it is HEAD */
		head_len = (size_t)(end - head);
		body = tail = end;
		body_len = tail_len = 0;
	} else {
		head_len = (size_t)(body - head);
		body++;
		tail = memchr(body, '\0', (size_t)(end - body));
		body_len = (size_t)((tail ? tail : end) - body);
		tail = tail ? tail + 1 : end;
		tail_len = (size_t)(end - tail);
	}
	total = head_len + tail_len;
	if (total > FUZZ_STREAM_MAX)
		return;
	if (body_len && reps > (FUZZ_STREAM_MAX - total) / body_len)
		reps = (FUZZ_STREAM_MAX - total) / body_len;
	total += body_len * reps;

	buf = malloc(FUZZ_STREAM_CHUNK);
	FUZZ_CHECK(buf, "out of memory");
	fuzz_xml_heap_start(total);
	runs_start(r, fuzz_hash(data, size), 0, stream_kind(head, head_len, data, size));
	/* Copy HEAD, BODY*reps, TAIL through one chunk buffer. */
	for (int part = 0; part < 3 && !all_dead(r); part++) {
		const char *src = part == 0 ? head : part == 1 ? body : tail;
		size_t len = part == 0 ? head_len : part == 1 ? body_len : tail_len;
		unsigned long long times = part == 1 ? reps : 1;

		for (unsigned long long t = 0; t < times && len && !all_dead(r); t++) {
			for (size_t off = 0; off < len; off += n) {
				n = len - off < FUZZ_STREAM_CHUNK - fill ? len - off
				                                         : FUZZ_STREAM_CHUNK - fill;
				memcpy(buf + fill, src + off, n);
				fill += n;
				if (fill == FUZZ_STREAM_CHUNK) {
					runs_feed(r, buf, fill);
					fill = 0;
				}
			}
		}
	}
	if (fill)
		runs_feed(r, buf, fill);
	runs_finish(r);
	runs_free(r);
	free(buf);
}

static void check_helpers(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	char region[32];
	struct s3_error e;
	int rc;

	/* What s3_error_from_http() does with a non-2xx body. */
	fuzz_xml_owner = 0;
	memset(&e, 0, sizeof(e));
	snprintf(e.message, sizeof(e.message), "before");
	rc = s3_xml_parse_error((const char *)data, size, &e);
	FUZZ_CHECK(rc == 0 || rc == -1, "s3_xml_parse_error returned %d", rc);
	FUZZ_CHECK(rc != 0 || e.code[0], "s3_xml_parse_error succeeded without a Code");
	check_str(e.code, sizeof(e.code), "code");
	check_str(e.message, sizeof(e.message), "message");
	check_str(e.request_id, sizeof(e.request_id), "request_id");
	check_str(e.region, sizeof(e.region), "region");

	(void)s3_xml_parse_time(s, size);
	for (size_t len = 0; len <= sizeof(region); len += 7) {
		memset(region, 'x', sizeof(region));
		if (s3_xml_region_from_endpoint(s, region, len) == 0)
			FUZZ_CHECK(len && strnlen(region, len) < len, "region not NUL-terminated");
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole[N_KINDS], cut[N_KINDS];
	uint64_t seed = fuzz_hash(data, size), rnd = seed;

	if (size >= 8 && !memcmp(data, "#repeat ", 8)) {
		stream_doc(data, size);
		return 0;
	}

	fuzz_xml_heap_start(size);
	runs_start(whole, seed, 0, -1);
	runs_feed(whole, data, size);
	runs_finish(whole);

	runs_start(cut, seed, N_KINDS, -1);
	for (size_t off = 0, n; off < size && !all_dead(cut); off += n) {
		uint64_t x = fuzz_rand(&rnd);
		/* mostly small pieces, some large ones, some single bytes */
		n = (x & 7) == 0 ? 1 : (x & 7) == 1 ? 1 + (x >> 8) % 4096 : 1 + (x >> 8) % 64;
		if (n > size - off)
			n = size - off;
		runs_feed(cut, data + off, n);
	}
	runs_finish(cut);

	runs_compare(whole, cut);
	runs_free(whole);
	runs_free(cut);

	check_helpers(data, size);
	return 0;
}
