/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prefetch: the read side of one open file. An adaptive window of ranged
 * GETs ahead of the reader: a small first request (1 MiB) so random readers
 * pay little, then parts growing to --read-part-size, several in flight,
 * the window doubling while the reader keeps up, up to a cap and the
 * handle's share of --memory-limit. Small seeks are served from what is
 * already fetched. A read far from the window is served by one GET of its
 * own bytes and leaves the window alone (random access); only when the
 * reader goes on sequentially from there does the window move, and it
 * prefetches ahead once a second part is read. Every GET carries If-Match
 * with the ETag seen at open, so a changed object gives ESTALE, never a mix
 * of two versions. Replies go to FUSE straight from the part buffers.
 */
#ifndef HPCOPS_PREFETCH_H
#define HPCOPS_PREFETCH_H

#include <stdint.h>

#include "fs.h"

struct prefetch;

/**
 * prefetch_new() - read state for @key of @size bytes whose ETag is @etag
 * ("" if unknown: then the first answer's ETag is used). Copies the strings.
 * Returns NULL on allocation failure. Free with prefetch_free().
 */
struct prefetch *prefetch_new(struct hpcops_fs *fs, const char *key, uint64_t size,
                              const char *etag);

/**
 * prefetch_read() - answer the FUSE read @req of @size bytes at @off: replies
 * with data (fewer bytes at the end of the object) or an error (ESTALE when
 * the object changed, EIO on network failures). Any thread; concurrent reads
 * of one handle are fine.
 */
void prefetch_read(struct prefetch *pf, fuse_req_t req, size_t size, uint64_t off);

/**
 * prefetch_free() - the handle was released: drop every buffer (GETs still
 * in flight free theirs when they complete). NULL is fine.
 */
void prefetch_free(struct prefetch *pf);

/** prefetch_pool_trim() - free idle pooled buffers (returning their budget). */
void prefetch_pool_trim(struct hpcops_fs *fs);

#endif
