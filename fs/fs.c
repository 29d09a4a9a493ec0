/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs: the list of open handles (see fs.h). Setting the modules up and
 * taking them down is fs_setup.c's.
 */
#include "fs.h"

#include <stdlib.h>

struct fs_handle *fs_handle_new(struct hpcops_fs *fs, enum fs_handle_kind kind, struct inode *n)
{
	struct fs_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->kind = kind;
	h->inode = n;
	pthread_mutex_lock(&fs->handles_lock);
	h->next = fs->handles;
	if (fs->handles)
		fs->handles->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->handles_lock);
	return h;
}

void fs_handle_free(struct hpcops_fs *fs, struct fs_handle *h)
{
	pthread_mutex_lock(&fs->handles_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->handles_lock);
	inode_put(&fs->inodes, h->inode);
	free(h);
}
