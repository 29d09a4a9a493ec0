/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inode: two chained hash tables (by number, by parent+name) and a bounded
 * hash of negative entries, all under one mutex. See inode.h.
 */
#include "inode.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct inode_neg {
	fuse_ino_t parent;
	char *name;
	double expires;
	struct inode_neg *next;
};

#define NEG_BUCKETS 4096

double inode_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t hash_name(fuse_ino_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)parent;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t hash_ino(fuse_ino_t ino)
{
	return (uint64_t)ino * 0x9E3779B97F4A7C15ULL;
}

bool inode_valid_name(const char *name, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
		return false;
	return memchr(name, '/', len) == NULL && memchr(name, '\0', len) == NULL;
}

static struct inode *node_new(fuse_ino_t ino, enum inode_kind kind, struct inode *parent,
                              const char *name)
{
	struct inode *n = calloc(1, sizeof(*n));
	size_t plen, nlen;

	if (!n)
		return NULL;
	nlen = strlen(name);
	n->name = strdup(name);
	plen = parent ? strlen(parent->key) : 0;
	n->key = malloc(plen + nlen + 2);
	if (!n->name || !n->key) {
		free(n->name);
		free(n->key);
		free(n);
		return NULL;
	}
	if (parent)
		memcpy(n->key, parent->key, plen);
	memcpy(n->key + plen, name, nlen);
	n->key[plen + nlen] = '\0';
	if (kind == INODE_DIR && parent) {
		n->key[plen + nlen] = '/';
		n->key[plen + nlen + 1] = '\0';
	}
	n->name_len = nlen;
	n->ino = ino;
	n->kind = kind;
	n->parent = parent;
	return n;
}

static int table_grow(struct inode_table *t)
{
	size_t nb = t->n_buckets * 2;
	struct inode **bi = calloc(nb, sizeof(*bi));
	struct inode **bn = calloc(nb, sizeof(*bn));

	if (!bi || !bn) {
		free(bi);
		free(bn);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->n_buckets; i++) {
		struct inode *n, *next;

		for (n = t->by_ino[i]; n; n = next) {
			size_t h = hash_ino(n->ino) & (nb - 1);

			next = n->next_ino;
			n->next_ino = bi[h];
			bi[h] = n;
		}
		for (n = t->by_name[i]; n; n = next) {
			size_t h = hash_name(n->parent->ino, n->name) & (nb - 1);

			next = n->next_name;
			n->next_name = bn[h];
			bn[h] = n;
		}
	}
	free(t->by_ino);
	free(t->by_name);
	t->by_ino = bi;
	t->by_name = bn;
	t->n_buckets = nb;
	return 0;
}

static void ino_insert(struct inode_table *t, struct inode *n)
{
	size_t h = hash_ino(n->ino) & (t->n_buckets - 1);

	n->next_ino = t->by_ino[h];
	t->by_ino[h] = n;
	t->n_nodes++;
}

static void ino_remove(struct inode_table *t, struct inode *n)
{
	struct inode **pp = &t->by_ino[hash_ino(n->ino) & (t->n_buckets - 1)];

	for (; *pp; pp = &(*pp)->next_ino) {
		if (*pp == n) {
			*pp = n->next_ino;
			t->n_nodes--;
			return;
		}
	}
}

static void name_insert(struct inode_table *t, struct inode *n)
{
	size_t h = hash_name(n->parent->ino, n->name) & (t->n_buckets - 1);

	n->next_name = t->by_name[h];
	t->by_name[h] = n;
}

static void name_remove(struct inode_table *t, struct inode *n)
{
	struct inode **pp = &t->by_name[hash_name(n->parent->ino, n->name) & (t->n_buckets - 1)];

	for (; *pp; pp = &(*pp)->next_name) {
		if (*pp == n) {
			*pp = n->next_name;
			return;
		}
	}
}

int inode_table_init(struct inode_table *t, const char *root_key)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->n_buckets = 1024;
	t->by_ino = calloc(t->n_buckets, sizeof(*t->by_ino));
	t->by_name = calloc(t->n_buckets, sizeof(*t->by_name));
	t->neg = calloc(NEG_BUCKETS, sizeof(*t->neg));
	t->max_neg = 16384;
	t->next_ino = FUSE_ROOT_ID + 1;
	t->root = node_new(FUSE_ROOT_ID, INODE_DIR, NULL, "");
	if (!t->by_ino || !t->by_name || !t->neg || !t->root)
		goto fail;
	free(t->root->key);
	t->root->key = strdup(root_key);
	if (!t->root->key)
		goto fail;
	t->root->nlookup = 1;
	t->root->refs = 1;
	t->root->expires = 1e18;
	ino_insert(t, t->root);
	return 0;
fail:
	inode_table_destroy(t);
	return -ENOMEM;
}

static void node_free(struct inode *n)
{
	free(n->name);
	free(n->key);
	free(n);
}

static void neg_clear(struct inode_table *t, bool only_expired)
{
	double now = inode_now();

	for (size_t i = 0; i < NEG_BUCKETS; i++) {
		struct inode_neg **pp = &t->neg[i];

		while (*pp) {
			struct inode_neg *e = *pp;

			if (only_expired && e->expires > now) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			free(e->name);
			free(e);
			t->n_neg--;
		}
	}
}

void inode_table_destroy(struct inode_table *t)
{
	if (t->by_ino) {
		for (size_t i = 0; i < t->n_buckets; i++) {
			struct inode *n = t->by_ino[i], *next;

			for (; n; n = next) {
				next = n->next_ino;
				node_free(n);
			}
		}
	} else if (t->root) {
		node_free(t->root);
	}
	if (t->neg)
		neg_clear(t, false);
	free(t->by_ino);
	free(t->by_name);
	free(t->neg);
	pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof(*t));
}

struct inode *inode_get_locked(struct inode_table *t, fuse_ino_t ino)
{
	struct inode *n = t->by_ino[hash_ino(ino) & (t->n_buckets - 1)];

	for (; n; n = n->next_ino) {
		if (n->ino == ino) {
			n->refs++;
			return n;
		}
	}
	return NULL;
}

struct inode *inode_get(struct inode_table *t, fuse_ino_t ino)
{
	struct inode *n;

	inode_lock(t);
	n = inode_get_locked(t, ino);
	inode_unlock(t);
	return n;
}

void inode_set_local_locked(struct inode *n, bool local)
{
	if (n->local == local)
		return;
	n->local = local;
	if (n->parent && !n->unlinked) {
		if (local)
			n->parent->local_children++;
		else if (n->parent->local_children > 0)
			n->parent->local_children--;
	}
}

static void maybe_free_locked(struct inode_table *t, struct inode *n)
{
	while (n && n->refs == 0 && n->nlookup == 0 && n != t->root) {
		struct inode *parent = n->parent;

		if (!n->unlinked) {
			inode_set_local_locked(n, false);
			name_remove(t, n);
		}
		ino_remove(t, n);
		node_free(n);
		/* the child's ref on its parent */
		n = NULL;
		if (parent && parent->refs > 0) {
			parent->refs--;
			n = parent;
		}
	}
}

void inode_put_locked(struct inode_table *t, struct inode *n)
{
	if (!n)
		return;
	assert(n->refs > 0); /* a put without its get is a refcount bug */
	if (n->refs > 0)
		n->refs--;
	maybe_free_locked(t, n);
}

void inode_put(struct inode_table *t, struct inode *n)
{
	if (!n)
		return;
	inode_lock(t);
	inode_put_locked(t, n);
	inode_unlock(t);
}

struct inode *inode_find_child_locked(struct inode_table *t, struct inode *parent, const char *name)
{
	struct inode *n = t->by_name[hash_name(parent->ino, name) & (t->n_buckets - 1)];

	for (; n; n = n->next_name) {
		if (n->parent == parent && !strcmp(n->name, name))
			return n;
	}
	return NULL;
}

void inode_unlink_locked(struct inode_table *t, struct inode *n)
{
	if (n->unlinked || n == t->root)
		return;
	inode_set_local_locked(n, false);
	name_remove(t, n);
	n->unlinked = true;
}

struct inode *inode_child_locked(struct inode_table *t, struct inode *parent, const char *name,
                                 enum inode_kind kind)
{
	struct inode *n = inode_find_child_locked(t, parent, name);

	if (n && n->kind == kind) {
		n->refs++;
		return n;
	}
	struct inode *fresh;

	/* a failed grow only makes the chains longer */
	if (t->n_nodes >= t->n_buckets)
		(void)table_grow(t);
	fresh = node_new(t->next_ino, kind, parent, name);
	if (!fresh)
		return NULL;
	t->next_ino++;
	if (n) {
		/* the name now means something else: the old node lives on unnamed */
		n->refs++;
		inode_unlink_locked(t, n);
		inode_put_locked(t, n);
	}
	parent->refs++;
	fresh->refs = 1;
	ino_insert(t, fresh);
	name_insert(t, fresh);
	inode_neg_del_locked(t, parent, name);
	return fresh;
}

void inode_forget(struct inode_table *t, fuse_ino_t ino, uint64_t nlookup)
{
	struct inode *n;

	inode_lock(t);
	n = t->by_ino[hash_ino(ino) & (t->n_buckets - 1)];
	for (; n; n = n->next_ino)
		if (n->ino == ino)
			break;
	if (n) {
		n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
		maybe_free_locked(t, n);
	}
	inode_unlock(t);
}

static struct inode_neg **neg_slot(struct inode_table *t, struct inode *parent, const char *name)
{
	struct inode_neg **pp = &t->neg[hash_name(parent->ino, name) & (NEG_BUCKETS - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->parent == parent->ino && !strcmp((*pp)->name, name))
			return pp;
	return pp;
}

void inode_neg_add_locked(struct inode_table *t, struct inode *parent, const char *name,
                          double expires)
{
	struct inode_neg **pp = neg_slot(t, parent, name);
	struct inode_neg *e = *pp;

	if (e) {
		e->expires = expires;
		return;
	}
	if (t->n_neg >= t->max_neg) {
		neg_clear(t, true);
		if (t->n_neg >= t->max_neg)
			neg_clear(t, false);
		pp = neg_slot(t, parent, name);
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->name = strdup(name);
	if (!e->name) {
		free(e);
		return;
	}
	e->parent = parent->ino;
	e->expires = expires;
	*pp = e;
	t->n_neg++;
}

bool inode_neg_find_locked(struct inode_table *t, struct inode *parent, const char *name)
{
	struct inode_neg *e = *neg_slot(t, parent, name);

	return e && e->expires > inode_now();
}

void inode_neg_del_locked(struct inode_table *t, struct inode *parent, const char *name)
{
	struct inode_neg **pp = neg_slot(t, parent, name);
	struct inode_neg *e = *pp;

	if (!e)
		return;
	*pp = e->next;
	free(e->name);
	free(e);
	t->n_neg--;
}

void inode_each_local_child_locked(struct inode_table *t, struct inode *parent,
                                   void (*fn)(struct inode *child, void *user), void *user)
{
	if (!parent->local_children)
		return;
	for (size_t i = 0; i < t->n_buckets; i++)
		for (struct inode *n = t->by_name[i]; n; n = n->next_name)
			if (n->parent == parent && n->local)
				fn(n, user);
}
