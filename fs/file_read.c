/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_read: read handles over the prefetcher (see file_read.h).
 */
#include "file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "namespace.h"

int fr_open(struct hpcops_fs *fs, fuse_ino_t ino, int flags, bool undecided, struct fs_handle **out,
            struct fr_open_flags *of)
{
	struct inode_table *t = &fs->inodes;
	bool direct = (flags & O_DIRECT) != 0;
	struct fs_handle *h;
	struct inode *n;
	char etag[80];
	uint64_t size;
	int r = 0;

	memset(of, 0, sizeof(*of));
	n = inode_get(t, ino);
	if (!n)
		return -ENOENT;
	if (n->kind == INODE_DIR) {
		r = -EISDIR;
		goto fail;
	}
	if (direct) {
		/* O_DIRECT: what S3 holds now, not what the table saw */
		inode_lock(t);
		bool remote = !n->writer && !n->local;
		inode_unlock(t);
		if (remote) {
			r = ns_refresh(fs, n);
			if (r)
				goto fail;
			/* fstat on this fd must see the size S3 has now, not the kernel's copy */
			if (fs->inval_attr)
				fs->inval_attr(fs, n->ino);
		}
	}
	inode_lock(t);
	if (n->writer) {
		inode_unlock(t);
		log_info("open of '%s' for reading: it is being written; it can be read once it "
		         "is closed",
		         n->key);
		r = -EBUSY;
		goto fail;
	}
	if (n->local) {
		/* mknod'd and not written yet: no object to read (Mountpoint) */
		inode_unlock(t);
		log_info("open of '%s' for reading: it was created here and not written yet; "
		         "open it for writing first",
		         n->key);
		r = -EBUSY;
		goto fail;
	}
	snprintf(etag, sizeof(etag), "%s", n->etag);
	size = n->size;
	/* keep the page cache only while the object is the version it holds */
	of->keep_cache = !direct && etag[0] && !strcmp(n->cache_etag, etag);
	of->direct_io = direct;
	if (!direct)
		snprintf(n->cache_etag, sizeof(n->cache_etag), "%s", etag);
	n->readers++; /* an overwrite of it is refused while it is read */
	inode_unlock(t);

	h = fs_handle_new(fs, undecided ? FS_HANDLE_UNDECIDED : FS_HANDLE_READ, n);
	if (h) {
		h->direct = direct;
		h->rd = prefetch_new(fs->reads, n->key, size, etag, direct);
		if (h->rd) {
			*out = h;
			return 0;
		}
		fr_release(fs, h);
		return -ENOMEM;
	}
	inode_lock(t);
	n->readers--;
	inode_unlock(t);
	r = -ENOMEM;
fail:
	inode_put(t, n);
	return r;
}

int fr_read(struct hpcops_fs *fs, struct fs_handle *h, size_t size, uint64_t off,
            struct prefetch_reply *r)
{
	enum fs_handle_kind kind;

	inode_lock(&fs->inodes);
	if (h->kind == FS_HANDLE_UNDECIDED)
		h->kind = FS_HANDLE_READ; /* the first call was a read: so it stays */
	kind = h->kind;
	inode_unlock(&fs->inodes);
	if (kind != FS_HANDLE_READ)
		return -EBADF;
	return prefetch_read(h->rd, size, off, r);
}

void fr_release(struct hpcops_fs *fs, struct fs_handle *h)
{
	inode_lock(&fs->inodes);
	h->inode->readers--;
	inode_unlock(&fs->inodes);
	prefetch_free(h->rd);
	h->rd = NULL;
	fs_handle_free(fs, h);
}
