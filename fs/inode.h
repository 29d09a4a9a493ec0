/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inode: the table of nodes the kernel knows (FUSE inode numbers) and what
 * was last seen of them in S3, with a TTL (--metadata-ttl) and negative
 * entries. One mutex (struct inode_table.lock) guards the table and the
 * mutable fields of every node; functions ending in _locked expect it held.
 * Nodes are reference counted: the kernel's lookup count (nlookup) plus
 * internal references (refs: open handles, children, operations in flight).
 */
#ifndef HPCOPS_INODE_H
#define HPCOPS_INODE_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct upload;

enum inode_kind {
	INODE_DIR = 1,
	INODE_FILE = 2,
};

struct inode {
	/* Immutable after creation. */
	fuse_ino_t ino;
	enum inode_kind kind;
	struct inode *parent; /* holds a ref on the parent; NULL for the root */
	char *name;           /* last path component; "" for the root */
	char *key;            /* full S3 key: file "PREFIX/a/b", dir "PREFIX/a/b/", root "PREFIX" */
	size_t name_len;

	/* Everything below is guarded by inode_table.lock. */
	uint64_t nlookup; /* kernel lookup count (lookup/create/mkdir replies minus forgets) */
	uint32_t refs;    /* internal references; the node is freed when both reach 0 */
	uint64_t size;
	struct timespec mtime;
	bool mtime_kept;     /* mtime is x-amz-meta-mtime or a utimens: listings keep it */
	char etag[80];       /* ETag of the version last seen ("" for dirs / not yet uploaded) */
	char cache_etag[80]; /* ETag of the version the kernel page cache may hold (read opens) */
	double expires;      /* monotonic time after which attributes must be refetched */
	bool local;          /* exists only on this node: mkdir'd dir, mknod'd or new file */
	bool unlinked;       /* no longer reachable by name (replaced, unlinked, renamed away) */
	/*
	 * The upload of the write handle writing this file (file_write.c), until
	 * it completes: from then on the file is no longer "being written", even
	 * while the kernel has not yet released the handle.
	 */
	struct upload *writer;
	uint32_t local_children; /* dirs: local children (mkdir'd dirs, files being written) */
	uint32_t writer_users;   /* setattr calls using @writer without a handle */
	uint32_t readers;        /* read handles open on it: it is not overwritten meanwhile */

	/* Hash links, owned by the table. */
	struct inode *next_ino;
	struct inode *next_name;
};

/** A negative entry: "PARENT/NAME does not exist", valid until @expires. */
struct inode_neg;

struct inode_table {
	pthread_mutex_t lock;
	struct inode **by_ino;  /* hash on ino */
	struct inode **by_name; /* hash on (parent ino, name) of reachable nodes */
	size_t n_buckets;
	size_t n_nodes;
	fuse_ino_t next_ino;
	struct inode_neg **neg; /* hash of negative entries on (parent ino, name) */
	size_t n_neg;
	size_t max_neg; /* bound on negative entries (oldest dropped first) */
	struct inode *root;
};

/** inode_now() - monotonic seconds as a double (the clock of every expires field). */
double inode_now(void);

/**
 * inode_table_init() - an empty table whose root node (FUSE_ROOT_ID) is a
 * directory with key @root_key ("" or "PREFIX/"). Returns 0 or -ENOMEM.
 */
int inode_table_init(struct inode_table *t, const char *root_key);

/** inode_table_destroy() - free every node and negative entry. */
void inode_table_destroy(struct inode_table *t);

static inline void inode_lock(struct inode_table *t)
{
	pthread_mutex_lock(&t->lock);
}
static inline void inode_unlock(struct inode_table *t)
{
	pthread_mutex_unlock(&t->lock);
}

/**
 * inode_get() - the node numbered @ino with one internal ref taken, or NULL
 * if the kernel passed a number we do not know. Drop with inode_put().
 */
struct inode *inode_get(struct inode_table *t, fuse_ino_t ino);
struct inode *inode_get_locked(struct inode_table *t, fuse_ino_t ino);

/** inode_put() - drop an internal ref from inode_get()/inode_child*() (asserts one is held). */
void inode_put(struct inode_table *t, struct inode *n);
void inode_put_locked(struct inode_table *t, struct inode *n);

/**
 * inode_find_child_locked() - the reachable child @name of @parent, or NULL.
 * No ref taken: use it under the lock or take one with inode_ref_locked().
 */
struct inode *inode_find_child_locked(struct inode_table *t, struct inode *parent,
                                      const char *name);

static inline void inode_ref_locked(struct inode *n)
{
	n->refs++;
}

/**
 * inode_child_locked() - the child @name of @parent as @kind: the existing
 * node when it has that kind, else a new node that replaces any old one in
 * the name map (the old one is marked unlinked and lives on while the kernel
 * or a handle holds it). Clears a negative entry for the name. Returns the
 * node with one internal ref taken, or NULL on allocation failure.
 */
struct inode *inode_child_locked(struct inode_table *t, struct inode *parent, const char *name,
                                 enum inode_kind kind);

/**
 * inode_unlink_locked() - make @n unreachable by name (after an unlink,
 * rmdir or rename-away). The node lives on while referenced.
 */
void inode_unlink_locked(struct inode_table *t, struct inode *n);

/** inode_forget() - the kernel dropped @nlookup lookups of @ino. */
void inode_forget(struct inode_table *t, fuse_ino_t ino, uint64_t nlookup);

/**
 * inode_neg_add_locked() - remember that @name in @parent does not exist
 * until @expires. inode_neg_find_locked() says whether such an entry is live.
 * inode_neg_del_locked() drops it (after a create or mkdir of the name).
 */
void inode_neg_add_locked(struct inode_table *t, struct inode *parent, const char *name,
                          double expires);
bool inode_neg_find_locked(struct inode_table *t, struct inode *parent, const char *name);
void inode_neg_del_locked(struct inode_table *t, struct inode *parent, const char *name);

/**
 * inode_each_local_child_locked() - call @fn for each reachable node that is
 * a local child of @parent (readdir merges them into the listing).
 */
void inode_each_local_child_locked(struct inode_table *t, struct inode *parent,
                                   void (*fn)(struct inode *child, void *user), void *user);

/** inode_set_local_locked() - mark @n local or not, keeping the parent's local_children count. */
void inode_set_local_locked(struct inode *n, bool local);

/**
 * inode_valid_name() - whether @name may be a path component: not empty,
 * not "." or "..", no '/', at most 255 bytes.
 */
bool inode_valid_name(const char *name, size_t len);

#endif
