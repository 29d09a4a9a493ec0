/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the namespace (fs/namespace.c) without FUSE or a server,
 * over the in-memory store of fake_store.c: what lookup, readdir, mkdir,
 * rmdir, unlink and rename show a user, how keys S3 holds become names,
 * and what each failing S3 call turns into (errno, and what is left in
 * the bucket).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "file_read.h"
#include "file_write.h"
#include "fs_harness.h"
#include "namespace.h"

static int setup(void **state)
{
	struct fs_harness *h = harness_new();

	assert_non_null(h);
	assert_int_equal(harness_start(h), 0);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	/* nothing of the memory budget is still held */
	assert_int_equal(harness_free(*state), 0);
	return 0;
}

/* ---- readdir as the kernel drives it ---- */

struct listing {
	char **names;
	mode_t *modes;
	off_t *sizes;
	size_t n;
	off_t next; /* offset after the last entry handed out */
	int dots;   /* "." and ".." seen */
};

/* Sizes as fuse_add_direntry(_plus) needs them, so calls end where the kernel's would. */
static size_t emit(void *ctx, char *buf, size_t room, const char *name,
                   const struct fuse_entry_param *e, const struct stat *st, off_t next)
{
	struct listing *l = ctx;
	size_t need = (e ? 152 : 24) + ((strlen(name) + 7) & ~(size_t)7);

	if (need > room)
		return need;
	memset(buf, 0, need); /* the bytes it says it used are there to write */
	l->next = next;
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		l->dots++;
		return need;
	}
	l->names = realloc(l->names, (l->n + 1) * sizeof(*l->names));
	l->modes = realloc(l->modes, (l->n + 1) * sizeof(*l->modes));
	l->sizes = realloc(l->sizes, (l->n + 1) * sizeof(*l->sizes));
	l->names[l->n] = strdup(name);
	l->modes[l->n] = e ? e->attr.st_mode : st->st_mode;
	l->sizes[l->n] = e ? e->attr.st_size : -1;
	l->n++;
	return need;
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->modes);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}

/*
 * opendir, readdir(plus) in @bufsize-byte calls from where the last one
 * stopped until one comes back empty, releasedir. Returns 0 or the -errno
 * of the call that failed.
 */
static int list_dir(struct fs_harness *h, fuse_ino_t ino, bool plus, size_t bufsize,
                    struct listing *l)
{
	struct fs_handle *dh = NULL;
	char *buf = malloc(bufsize);
	off_t off = 0;
	int rc;

	memset(l, 0, sizeof(*l));
	rc = ns_opendir(&h->fs, ino, &dh);
	if (rc) {
		free(buf);
		return rc;
	}
	for (;;) {
		size_t used = 0;

		rc = ns_readdir(&h->fs, dh, off, plus, buf, bufsize, emit, l, &used);
		if (rc < 0 || used == 0)
			break;
		off = l->next;
	}
	ns_releasedir(&h->fs, dh);
	free(buf);
	return rc;
}

/* How many times @name is in @l; its index in *@at. */
static int count_name(const struct listing *l, const char *name, size_t *at)
{
	int k = 0;

	for (size_t i = 0; i < l->n; i++) {
		if (!strcmp(l->names[i], name)) {
			k++;
			if (at)
				*at = i;
		}
	}
	return k;
}

static long long lookup(struct fs_harness *h, const char *path)
{
	return harness_lookup(h, path);
}

/* ---- lookup ---- */

static void test_lookup_file(void **state)
{
	struct fs_harness *h = *state;
	struct fuse_entry_param e;
	long long ino;

	fake_put(h->store, "hello.txt", "hello world", 11);
	fake_put(h->store, "a/b/c.dat", "0123456789abcdef", 16);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "hello.txt", &e), 0);
	assert_true(e.ino > FUSE_ROOT_ID);
	assert_true(S_ISREG(e.attr.st_mode));
	assert_int_equal(e.attr.st_mode & 07777, 0644);
	assert_int_equal(e.attr.st_size, 11);

	/* a path two directories down, neither of which has an object of its own */
	assert_true(lookup(h, "a") > 0);
	assert_true(lookup(h, "a/b") > 0);
	ino = lookup(h, "a/b/c.dat");
	assert_true(ino > 0);
	{
		struct stat st;

		assert_int_equal(ns_getattr(&h->fs, (fuse_ino_t)ino, false, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_size, 16);
		assert_int_equal(ns_getattr(&h->fs, (fuse_ino_t)lookup(h, "a/b"), false, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0755);
	}
	/* a file is not a directory to look into */
	assert_int_equal(ns_lookup(&h->fs, (fuse_ino_t)lookup(h, "hello.txt"), "x", &e), -ENOTDIR);
}

/* An object "d" and a key "d/x": the directory wins, in lookup and in readdir. */
static void test_dir_shadows_file(void **state)
{
	struct fs_harness *h = *state;
	struct fuse_entry_param e;
	struct fs_handle *fh = NULL;
	struct fr_open_flags of;
	struct listing l;
	size_t at = 0;

	fake_put(h->store, "d", "a file named d", 14);
	fake_put(h->store, "d/x", "x", 1);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "d", &e), 0);
	assert_true(S_ISDIR(e.attr.st_mode));
	assert_int_equal(fr_open(&h->fs, e.ino, O_RDONLY, false, &fh, &of), -EISDIR);
	assert_true(lookup(h, "d/x") > 0);

	for (int plus = 0; plus < 2; plus++) {
		assert_int_equal(list_dir(h, FUSE_ROOT_ID, plus, 4096, &l), 0);
		assert_int_equal(l.n, 1);
		assert_int_equal(count_name(&l, "d", &at), 1);
		assert_true(S_ISDIR(l.modes[at]));
		assert_int_equal(l.dots, 2);
		listing_free(&l);
	}
}

/* Not there: a negative entry for the TTL; a key that appears is found after it. */
static void test_negative_entry_then_found(void **state)
{
	struct fs_harness *h = *state;
	struct fuse_entry_param e;
	int heads;

	h->fs.opt.negative_metadata_ttl_set = true;
	h->fs.opt.negative_metadata_ttl = 0.3;
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "late.txt", &e), 0);
	assert_int_equal(e.ino, 0);
	assert_true(e.entry_timeout > 0.29 && e.entry_timeout < 0.31);

	fake_put(h->store, "late.txt", "arrived", 7);
	heads = fake_calls(h->store, FAKE_HEAD);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "late.txt", &e), 0);
	assert_int_equal(e.ino, 0); /* still within the negative TTL: S3 not asked */
	assert_int_equal(fake_calls(h->store, FAKE_HEAD), heads);

	usleep(350 * 1000);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "late.txt", &e), 0);
	assert_true(e.ino > FUSE_ROOT_ID);
	assert_true(S_ISREG(e.attr.st_mode));
	assert_int_equal(e.attr.st_size, 7);
}

/* Keys that are not valid names are hidden; names that cannot be valid are not asked for. */
static void test_invalid_names_hidden(void **state)
{
	struct fs_harness *h = *state;
	struct fuse_entry_param e;
	struct listing l;
	char n255[256], n256[257], key[300];
	size_t at = 0;
	int heads, lists;

	memset(n255, 'm', 255);
	n255[255] = '\0';
	memset(n256, 'n', 256);
	n256[256] = '\0';
	fake_put(h->store, "ok", "1", 1);
	fake_put(h->store, "/abs", "2", 1);   /* an empty first component */
	fake_put(h->store, "./dot", "3", 1);  /* "." */
	fake_put(h->store, "../up", "4", 1);  /* ".." */
	fake_put(h->store, "x//y", "5", 1);   /* an empty component under x */
	fake_put(h->store, "x/./z", "6", 1);  /* "." under x */
	fake_put(h->store, "x/../w", "7", 1); /* ".." under x */
	fake_put(h->store, "x/.", "8", 1);    /* a file named "." */
	fake_put(h->store, "x/good", "9", 1);
	fake_put(h->store, n255, "10", 2); /* 255 bytes: valid */
	fake_put(h->store, n256, "11", 2); /* 256 bytes: not */
	snprintf(key, sizeof(key), "%s/f", n256);
	fake_put(h->store, key, "12", 2);

	assert_int_equal(list_dir(h, FUSE_ROOT_ID, false, 4096, &l), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(count_name(&l, "ok", NULL), 1);
	assert_int_equal(count_name(&l, "x", &at), 1);
	assert_true(S_ISDIR(l.modes[at]));
	assert_int_equal(count_name(&l, n255, NULL), 1);
	listing_free(&l);

	assert_int_equal(list_dir(h, (fuse_ino_t)lookup(h, "x"), true, 4096, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.names[0], "good");
	listing_free(&l);

	/* names no key can give: refused without a request */
	heads = fake_calls(h->store, FAKE_HEAD);
	lists = fake_calls(h->store, FAKE_LIST);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "", &e), -ENOENT);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, ".", &e), -ENOENT);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "..", &e), -ENOENT);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, n256, &e), -ENAMETOOLONG);
	assert_int_equal(fake_calls(h->store, FAKE_HEAD), heads);
	assert_int_equal(fake_calls(h->store, FAKE_LIST), lists);
	assert_true(lookup(h, n255) > 0);
}

/* ---- readdir ---- */

#define N_BIG 2500

/*
 * A directory of more than two ListObjectsV2 pages (files, subdirectories,
 * its own marker object): each name once, files with their sizes, read in
 * kernel-sized calls, with S3's 1000-key pages and with tiny ones.
 */
static void test_readdir_pages(void **state)
{
	struct fs_harness *h = *state;
	static const size_t pages[] = {0, 7};
	char key[64];
	long long dir;

	fake_put(h->store, "big/", "", 0); /* the marker a console "create folder" makes */
	for (int i = 0; i < N_BIG; i++) {
		char *d = harness_pattern((size_t)i, (unsigned)i);

		snprintf(key, sizeof(key), "big/f%05d", i);
		fake_put(h->store, key, d, (size_t)i);
		free(d);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "big/sub%d/inner", i);
		fake_put(h->store, key, "i", 1);
	}
	fake_put(h->store, "bigger", "not in big/", 11);
	dir = lookup(h, "big");
	assert_true(dir > 0);

	for (size_t pg = 0; pg < sizeof(pages) / sizeof(pages[0]); pg++) {
		for (int plus = 0; plus < 2; plus++) {
			int lists = fake_calls(h->store, FAKE_LIST);
			size_t want_pages = (N_BIG + 3 + (pages[pg] ? pages[pg] : 1000) - 1) /
			                    (pages[pg] ? pages[pg] : 1000);
			struct listing l;
			char *seen = calloc(N_BIG, 1);

			fake_set_list_page(h->store, pages[pg]);
			assert_int_equal(list_dir(h, (fuse_ino_t)dir, plus, 4096, &l), 0);
			assert_int_equal(l.n, N_BIG + 3);
			for (size_t i = 0; i < l.n; i++) {
				int k;

				if (sscanf(l.names[i], "f%05d", &k) == 1) {
					assert_true(k >= 0 && k < N_BIG);
					assert_int_equal(seen[k], 0); /* exactly once */
					seen[k] = 1;
					assert_true(S_ISREG(l.modes[i]));
					if (plus)
						assert_int_equal(l.sizes[i], k);
				} else {
					assert_memory_equal(l.names[i], "sub", 3);
					assert_true(S_ISDIR(l.modes[i]));
				}
			}
			for (int i = 0; i < 3; i++) {
				snprintf(key, sizeof(key), "sub%d", i);
				assert_int_equal(count_name(&l, key, NULL), 1);
			}
			/* every page was asked for (the marker takes a slot on the first) */
			assert_true(fake_calls(h->store, FAKE_LIST) - lists >= (int)want_pages);
			free(seen);
			listing_free(&l);
		}
	}
}

/*
 * A file "a" on one page and the prefix "a/" on the next (keys "a-1" and
 * "a.b" sort between them): the name is listed once, as the directory.
 */
static void test_readdir_dir_shadows_file_across_pages(void **state)
{
	struct fs_harness *h = *state;
	static const size_t pages[] = {1, 2, 3, 0};

	fake_put(h->store, "t/a", "file a", 6);
	fake_put(h->store, "t/a-1", "1", 1);
	fake_put(h->store, "t/a.b", "2", 1);
	fake_put(h->store, "t/a/x", "3", 1);
	for (size_t pg = 0; pg < sizeof(pages) / sizeof(pages[0]); pg++) {
		struct listing l;
		size_t at = 0;

		fake_set_list_page(h->store, pages[pg]);
		assert_int_equal(list_dir(h, (fuse_ino_t)lookup(h, "t"), true, 4096, &l), 0);
		assert_int_equal(l.n, 3);
		assert_int_equal(count_name(&l, "a", &at), 1);
		assert_true(S_ISDIR(l.modes[at]));
		assert_int_equal(count_name(&l, "a-1", NULL), 1);
		assert_int_equal(count_name(&l, "a.b", NULL), 1);
		listing_free(&l);
	}
}

/* A listing that fails says so (the errno of the S3 error), it does not end early and quietly. */
static void test_readdir_list_fails(void **state)
{
	struct fs_harness *h = *state;
	struct listing l;

	fake_put(h->store, "e/one", "1", 1);
	fake_put(h->store, "e/two", "2", 1);
	fake_fail_op(h->store, FAKE_LIST, 0, -1, S3_ERR_ACCESS_DENIED, 403);
	assert_int_equal(list_dir(h, FUSE_ROOT_ID, false, 4096, &l), -EACCES);
	assert_int_equal(l.n, 0);
	listing_free(&l);
	fake_fail_op(h->store, FAKE_LIST, 0, 0, S3_OK, 0);
	assert_int_equal(list_dir(h, (fuse_ino_t)lookup(h, "e"), false, 4096, &l), 0);
	assert_int_equal(l.n, 2);
	listing_free(&l);
}

/* ---- mkdir, rmdir ---- */

static int fill_from(void *user, void *dst, size_t n, size_t src_off)
{
	memcpy(dst, (const char *)user + src_off, n);
	return 0;
}

/* create + write + fsync + release of @name in @parent, as `cp` does. */
static void write_file(struct fs_harness *h, fuse_ino_t parent, const char *name, const char *d,
                       size_t n)
{
	struct fw_opener who = {.tid = getpid(), .lock_owner = 1};
	struct fuse_entry_param e;
	struct fs_handle *fh = NULL;

	assert_int_equal(
	    fw_create(&h->fs, parent, name, S_IFREG | 0644, O_WRONLY | O_CREAT, &who, &fh, &e), 0);
	assert_int_equal(fw_write(&h->fs, fh, 0, n, fill_from, (void *)d), (ssize_t)n);
	assert_int_equal(fw_fsync(&h->fs, fh), 0);
	fw_release(&h->fs, fh);
}

/*
 * mkdir makes a directory only here (nothing sent to S3), listed in its
 * parent; rmdir removes it while it is empty; a file written in it makes it
 * S3's, and it goes when its last key goes.
 */
static void test_mkdir_local_then_s3(void **state)
{
	struct fs_harness *h = *state;
	struct fuse_entry_param e;
	struct listing l;
	size_t at = 0, len = 0;
	fuse_ino_t proj;
	char *got;

	/* S3 is asked on every call: what is seen is what the bucket holds */
	h->fs.opt.metadata_ttl = 0;
	assert_int_equal(ns_mkdir(&h->fs, FUSE_ROOT_ID, "new", &e), 0);
	assert_true(S_ISDIR(e.attr.st_mode));
	assert_int_equal(fake_calls(h->store, FAKE_PUT), 0);
	assert_int_equal(lookup(h, "new"), (long long)e.ino);
	assert_int_equal(ns_mkdir(&h->fs, FUSE_ROOT_ID, "new", &e), -EEXIST);
	assert_int_equal(list_dir(h, FUSE_ROOT_ID, false, 4096, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(count_name(&l, "new", &at), 1);
	assert_true(S_ISDIR(l.modes[at]));
	listing_free(&l);
	assert_int_equal(ns_rmdir(&h->fs, FUSE_ROOT_ID, "new"), 0);
	assert_int_equal(lookup(h, "new"), 0);
	assert_int_equal(list_dir(h, FUSE_ROOT_ID, false, 4096, &l), 0);
	assert_int_equal(l.n, 0);
	listing_free(&l);

	/* a file written into a mkdir'd directory: the directory is S3's now */
	assert_int_equal(ns_mkdir(&h->fs, FUSE_ROOT_ID, "proj", &e), 0);
	proj = e.ino;
	write_file(h, proj, "out.txt", "results", 7);
	got = fake_get(h->store, "proj/out.txt", &len);
	assert_non_null(got);
	assert_int_equal(len, 7);
	assert_memory_equal(got, "results", 7);
	free(got);
	assert_int_equal(ns_rmdir(&h->fs, FUSE_ROOT_ID, "proj"), -ENOTEMPTY);

	/* its last key goes: so does the directory, once S3 is asked again */
	h->fs.opt.allow_delete = true;
	assert_int_equal(ns_unlink(&h->fs, proj, "out.txt"), 0);
	assert_int_equal(list_dir(h, FUSE_ROOT_ID, false, 4096, &l), 0);
	assert_int_equal(l.n, 0);
	listing_free(&l);
	assert_int_equal(lookup(h, "proj"), 0);
}

/* The same when the key under a mkdir'd directory was written by another client. */
static void test_mkdir_then_key_from_elsewhere(void **state)
{
	struct fs_harness *h = *state;
	struct fuse_entry_param e;
	struct listing l;

	h->fs.opt.metadata_ttl = 0;
	assert_int_equal(ns_mkdir(&h->fs, FUSE_ROOT_ID, "ext", &e), 0);
	fake_put(h->store, "ext/a", "a", 1);
	assert_int_equal(list_dir(h, e.ino, false, 4096, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.names[0], "a");
	listing_free(&l);
	fake_delete(h->store, "ext/a");
	assert_int_equal(lookup(h, "ext"), 0);
	assert_int_equal(list_dir(h, FUSE_ROOT_ID, false, 4096, &l), 0);
	assert_int_equal(l.n, 0);
	listing_free(&l);
}

/* ---- unlink ---- */

static void assert_in_store(struct fs_harness *h, const char *key, const char *d, size_t n)
{
	size_t len = 0;
	char *got = fake_get(h->store, key, &len);

	assert_non_null(got);
	assert_int_equal(len, n);
	assert_memory_equal(got, d, n);
	free(got);
}

static void assert_not_in_store(struct fs_harness *h, const char *key)
{
	size_t len = 0;
	char *got = fake_get(h->store, key, &len);

	assert_null(got);
}

static void test_unlink(void **state)
{
	struct fs_harness *h = *state;
	struct listing l;

	fake_put(h->store, "victim", "bytes", 5);
	assert_true(lookup(h, "victim") > 0);

	/* without --allow-delete */
	assert_int_equal(ns_unlink(&h->fs, FUSE_ROOT_ID, "victim"), -EPERM);
	assert_int_equal(fake_calls(h->store, FAKE_DELETE), 0);
	assert_in_store(h, "victim", "bytes", 5);

	/* DeleteObject refused, then failing on the server: its errno, the name stays */
	h->fs.opt.allow_delete = true;
	fake_fail_op(h->store, FAKE_DELETE, 0, 1, S3_ERR_ACCESS_DENIED, 403);
	assert_int_equal(ns_unlink(&h->fs, FUSE_ROOT_ID, "victim"), -EACCES);
	fake_fail_op(h->store, FAKE_DELETE, 0, 1, S3_ERR_SERVER, 503);
	assert_int_equal(ns_unlink(&h->fs, FUSE_ROOT_ID, "victim"), -EIO);
	assert_in_store(h, "victim", "bytes", 5);
	assert_true(lookup(h, "victim") > 0);
	assert_int_equal(list_dir(h, FUSE_ROOT_ID, false, 4096, &l), 0);
	assert_int_equal(count_name(&l, "victim", NULL), 1);
	listing_free(&l);

	/* and then it works: gone from the bucket and from the directory at once */
	assert_int_equal(ns_unlink(&h->fs, FUSE_ROOT_ID, "victim"), 0);
	assert_not_in_store(h, "victim");
	assert_int_equal(lookup(h, "victim"), 0);
	assert_int_equal(list_dir(h, FUSE_ROOT_ID, false, 4096, &l), 0);
	assert_int_equal(l.n, 0);
	listing_free(&l);
	assert_int_equal(ns_unlink(&h->fs, FUSE_ROOT_ID, "victim"), -ENOENT);
	/* a directory is not unlinked */
	fake_put(h->store, "dir/k", "k", 1);
	assert_true(lookup(h, "dir") > 0);
	assert_int_equal(ns_unlink(&h->fs, FUSE_ROOT_ID, "dir"), -EISDIR);
	assert_in_store(h, "dir/k", "k", 1);
}

/* ---- rename ---- */

static void test_rename(void **state)
{
	struct fs_harness *h = *state;
	char etag_before[80], etag_after[80];
	struct fuse_entry_param e;

	fake_put(h->store, "src", "the data", 8);
	assert_true(lookup(h, "src") > 0);
	assert_int_equal(ns_rename(&h->fs, FUSE_ROOT_ID, "src", FUSE_ROOT_ID, "dst", 0), -EPERM);
	assert_int_equal(fake_calls(h->store, FAKE_COPY), 0);

	h->fs.opt.allow_rename = true;
	assert_int_equal(ns_rename(&h->fs, FUSE_ROOT_ID, "src", FUSE_ROOT_ID, "dst", 0), 0);
	assert_not_in_store(h, "src");
	assert_in_store(h, "dst", "the data", 8);
	assert_int_equal(lookup(h, "src"), 0);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "dst", &e), 0);
	assert_true(e.ino > FUSE_ROOT_ID);
	assert_int_equal(e.attr.st_size, 8);

	/* the copy fails: nothing changed */
	fake_put(h->store, "a", "aaaa", 4);
	assert_true(lookup(h, "a") > 0);
	assert_true(fake_etag(h->store, "a", etag_before));
	fake_fail_op(h->store, FAKE_COPY, 0, 1, S3_ERR_ACCESS_DENIED, 403);
	assert_int_equal(ns_rename(&h->fs, FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "b", 0), -EACCES);
	assert_in_store(h, "a", "aaaa", 4);
	assert_true(fake_etag(h->store, "a", etag_after));
	assert_string_equal(etag_before, etag_after);
	assert_not_in_store(h, "b");
	assert_true(lookup(h, "a") > 0);
	assert_int_equal(lookup(h, "b"), 0);

	/* the delete fails: both names exist, and the caller hears of it */
	fake_put(h->store, "c", "cccc", 4);
	assert_true(lookup(h, "c") > 0);
	fake_fail_op(h->store, FAKE_DELETE, 0, 1, S3_ERR_SERVER, 503);
	assert_int_equal(ns_rename(&h->fs, FUSE_ROOT_ID, "c", FUSE_ROOT_ID, "d", 0), -EIO);
	assert_in_store(h, "c", "cccc", 4);
	assert_in_store(h, "d", "cccc", 4);
	assert_true(lookup(h, "c") > 0);

	/* onto an existing name: --allow-overwrite, or RENAME_NOREPLACE's EEXIST */
	assert_int_equal(ns_rename(&h->fs, FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "c", 0), -EPERM);
	h->fs.opt.allow_overwrite = true;
	assert_int_equal(ns_rename(&h->fs, FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "c", RENAME_NOREPLACE),
	                 -EEXIST);
	assert_in_store(h, "c", "cccc", 4);
	assert_int_equal(ns_rename(&h->fs, FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "c", 0), 0);
	assert_in_store(h, "c", "aaaa", 4);
	assert_not_in_store(h, "a");
}

/* ---- S3 errors to errno ---- */

/* A HEAD that fails (503 after the retries, then 403): EIO, then EACCES, then it works. */
static void test_head_errors(void **state)
{
	struct fs_harness *h = *state;
	struct fuse_entry_param e;
	struct stat st;
	fuse_ino_t ino;

	fake_put(h->store, "f", "12345", 5);
	h->fs.opt.metadata_ttl = 0; /* ask S3 on every call */
	fake_fail_op(h->store, FAKE_HEAD, 0, 1, S3_ERR_SERVER, 503);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "f", &e), -EIO);
	fake_fail_op(h->store, FAKE_HEAD, 0, 1, S3_ERR_ACCESS_DENIED, 403);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "f", &e), -EACCES);
	fake_fail_op(h->store, FAKE_HEAD, 0, 1, S3_ERR_THROTTLED, 503);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "f", &e), -EIO);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "f", &e), 0);
	assert_int_equal(e.attr.st_size, 5);
	ino = e.ino;

	/* getattr asks again (TTL 0): the same mapping, and the name is not lost */
	fake_fail_op(h->store, FAKE_HEAD, 0, 1, S3_ERR_SERVER, 503);
	assert_int_equal(ns_getattr(&h->fs, ino, false, &st), -EIO);
	fake_fail_op(h->store, FAKE_HEAD, 0, 1, S3_ERR_ACCESS_DENIED, 403);
	assert_int_equal(ns_getattr(&h->fs, ino, false, &st), -EACCES);
	fake_fail_op(h->store, FAKE_HEAD, 0, 1, S3_ERR_EXPIRED_TOKEN, 400);
	assert_int_equal(ns_getattr(&h->fs, ino, false, &st), -EACCES);
	assert_int_equal(ns_getattr(&h->fs, ino, false, &st), 0);
	assert_int_equal(st.st_size, 5);

	/* a LIST refused while the HEAD says "no such key": EACCES, not "does not exist" */
	fake_fail_op(h->store, FAKE_LIST, 0, 1, S3_ERR_ACCESS_DENIED, 403);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "missing", &e), -EACCES);
	assert_int_equal(ns_lookup(&h->fs, FUSE_ROOT_ID, "missing", &e), 0);
	assert_int_equal(e.ino, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lookup_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dir_shadows_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_negative_entry_then_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_names_hidden, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readdir_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readdir_dir_shadows_file_across_pages, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_readdir_list_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mkdir_local_then_s3, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mkdir_then_key_from_elsewhere, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unlink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_head_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
