/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_read: read handles. An open for reading takes the object's size and
 * ETag (from S3 again with O_DIRECT, which also bypasses the page cache and
 * the block cache); reads go to the prefetcher (prefetch.h). An O_RDWR
 * handle on an existing object is undecided until its first call: a read
 * makes it a read handle, a write fails (file_write.c). Functions return 0
 * or -errno; replies are the adapter's.
 */
#ifndef HPCOPS_FILE_READ_H
#define HPCOPS_FILE_READ_H

#include "fs.h"
#include "prefetch.h"

/** What the kernel should do with its page cache for an open file. */
struct fr_open_flags {
	bool keep_cache; /* the page cache holds this version: keep it */
	bool direct_io;  /* O_DIRECT: no page cache for this handle */
};

/**
 * fr_open() - a read handle on file @ino (@flags: the open flags). With
 * @undecided, an O_RDWR handle whose first read decides (see above).
 * EISDIR for a directory, EBUSY while the file is being written (it can be
 * read once it is closed).
 */
int fr_open(struct hpcops_fs *fs, fuse_ino_t ino, int flags, bool undecided, struct fs_handle **out,
            struct fr_open_flags *of);

/**
 * fr_read() - [@off, @off + @size) of @h into @r (see prefetch_read()).
 * EBADF on a write handle.
 */
int fr_read(struct hpcops_fs *fs, struct fs_handle *h, size_t size, uint64_t off,
            struct prefetch_reply *r);

/** fr_release() - free the read (or undecided) handle @h. */
void fr_release(struct hpcops_fs *fs, struct fs_handle *h);

#endif
