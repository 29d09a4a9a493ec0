/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics_private: the registry's structures, shared by metrics.c (registry,
 * updates) and metrics_export.c (the text formats, the file, the ticker).
 * Not for use outside shared/metrics*.c.
 */
#ifndef HPCOPS_METRICS_PRIVATE_H
#define HPCOPS_METRICS_PRIVATE_H

#include "metrics.h"

#include <locale.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

enum metric_type {
	METRIC_COUNTER = 1,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

#define CACHELINE  64
#define MAX_LABELS 32 /* label pairs in one set */

/*
 * One series. The value sits first in its own cache line (the struct is
 * allocated aligned) so two hot counters never share a line. Everything but
 * the value and the buckets is written once, before the handle is published
 * under the registry lock, and read-only afterwards.
 */
struct metric {
	union {
		_Atomic uint64_t counter;
		_Atomic int64_t gauge;
		_Atomic uint64_t sum_bits; /* histogram: the sum, a double's bits */
	} v;
	enum metric_type type;
	size_t nbounds;            /* histogram: the family's bounds */
	const double *bounds;      /* owned by the family */
	_Atomic uint64_t *buckets; /* nbounds + 1 per-bucket (not cumulative) counts */
	struct metrics_family *fam;
	char *labels; /* canonical label set, "" for none */
	uint64_t hash;
	struct metric *fam_next; /* series of the family, in creation order */
	struct metric *hash_next;
} __attribute__((aligned(CACHELINE)));

/* One metric name: its HELP, TYPE and series. Fields written under the registry lock. */
struct metrics_family {
	char *name; /* with the prefix */
	char *help; /* NULL for none */
	enum metric_type type;
	double *bounds;
	size_t nbounds;
	struct metric *first, *last;
	struct metric *overflow; /* series past the bound, or NULL */
	struct metrics_family *next;
};

struct metrics {
	pthread_mutex_t lock;
	char *prefix; /* "" or "PREFIX_" */
	size_t max_series;
	locale_t c_locale; /* numbers are formatted in the C locale whatever the program set */
	/* under lock: */
	struct metrics_family *families, *fam_last;
	size_t nfamilies;
	struct metric **table;
	size_t table_mask;
	size_t nseries; /* overflow series not counted */
	bool warned_families;
};

static inline const char *metric_type_name(enum metric_type t)
{
	switch (t) {
	case METRIC_COUNTER:
		return "counter";
	case METRIC_GAUGE:
		return "gauge";
	default:
		return "histogram";
	}
}

static inline double metric_bits_double(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

#endif
