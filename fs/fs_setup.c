/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs_setup: the mount's composition root. It builds every module of the
 * filesystem from the options (fs_setup), releases what the kernel left
 * open at unmount, and takes the modules down again in the order their
 * users need (see fs_setup.h). The one file that knows all of them.
 */
#include "fs_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "budget.h"
#include "cache.h"
#include "file_read.h"
#include "file_write.h"
#include "inode.h"
#include "log.h"
#include "namespace.h"
#include "prefetch.h"
#include "upload.h"

/* UploadParts in flight per file, as boto3 and the AWS CRT use by default:
 * hides each request's latency on the server; with many files at once the
 * budget's fair share (upload.c) caps it. */
#define FS_MAX_INFLIGHT_PARTS 8
/* Threads that checksum and send full parts: one per core of a small node. */
#define FS_SUBMIT_THREADS 2
/* How long unmount waits for block puts to the shared cache (--cache-xz). */
#define FS_CACHE_DRAIN_MS 10000

int fs_setup(struct hpcops_fs *fs)
{
	struct prefetch_config pc = {0};
	struct uploader_config uc = {0};

	fs->mount_time = time(NULL);
	pthread_mutex_init(&fs->handles_lock, NULL);
	pthread_cond_init(&fs->writer_cond, NULL);
	if (ns_init(fs) < 0 || inode_table_init(&fs->inodes, fs->opt.prefix) < 0)
		goto nomem;
	fs->budget = budget_new(fs->opt.memory_limit);
	if (!fs->budget)
		goto nomem;
	if (fs->opt.cache_dir || fs->opt.cache_xz) {
		struct cache_config cc = {
		    .dir = fs->opt.cache_dir,
		    .max_bytes = fs->opt.max_cache_size,
		    .bucket = fs->opt.cache_xz,
		    .bucket_be = &fs->cache_be,
		    .source_bucket = fs->opt.bucket,
		    .block_size = fs->opt.cache_block_size,
		    .budget = fs->budget,
		};
		char why[600];

		fs->cache = cache_new(&cc, why, sizeof(why));
		if (!fs->cache) {
			fprintf(stderr, "hpcops-mount: %s\n", why);
			return -1;
		}
	}
	pc.be = &fs->be;
	pc.budget = fs->budget;
	pc.cache = fs->cache;
	pc.part_size = fs->opt.read_part_size;
	pc.cache_block = fs->opt.cache_block_size;
	fs->reads = prefetcher_new(&pc);
	uc.be = &fs->be;
	uc.budget = fs->budget;
	uc.part_size = fs->opt.write_part_size ? fs->opt.write_part_size : 8u << 20;
	uc.max_inflight = FS_MAX_INFLIGHT_PARTS;
	uc.submit_threads = FS_SUBMIT_THREADS;
	uc.infer_content_type = fs->opt.infer_content_type;
	uc.refuse = fs->upload_refusal;
	fs->writes = uploader_new(&uc);
	if (!fs->reads || !fs->writes)
		goto nomem;
	return 0;
nomem:
	fprintf(stderr, "hpcops-mount: out of memory\n");
	return -1;
}

/*
 * Handles the kernel never released (unmounted with files open, or a
 * signal): free them. An upload still open lost its writer: it is aborted,
 * since completing would publish a file the writer never finished.
 */
static void close_all_handles(struct hpcops_fs *fs)
{
	for (;;) {
		struct fs_handle *h;

		pthread_mutex_lock(&fs->handles_lock);
		h = fs->handles;
		pthread_mutex_unlock(&fs->handles_lock);
		if (!h)
			break;
		switch (h->kind) {
		case FS_HANDLE_WRITE:
			if (upload_get_state(h->wr) != UPLOAD_DONE)
				log_warn(
				    "unmount while '%s' is open for writing: upload aborted, the "
				    "object is unchanged",
				    h->inode->key);
			upload_discard(h->wr);
			fw_release(fs, h);
			break;
		case FS_HANDLE_DIR:
			ns_releasedir(fs, h);
			break;
		default:
			fr_release(fs, h);
			break;
		}
	}
}

void fs_close_handles(struct hpcops_fs *fs)
{
	if (!fs->writes && !fs->reads)
		return;
	close_all_handles(fs);
	/* the blocks on their way to the shared cache land (and count in the last metrics) */
	cache_drain(fs->cache, FS_CACHE_DRAIN_MS);
}

void fs_shutdown(struct hpcops_fs *fs)
{
	if (!fs->writes && !fs->reads)
		return;
	close_all_handles(fs);
	cache_drain(fs->cache, FS_CACHE_DRAIN_MS);
	/* the aborts still owed are tried again here, while the engine runs */
	uploader_free(fs->writes);
	fs->writes = NULL;
}

void fs_teardown(struct hpcops_fs *fs)
{
	fs_shutdown(fs);
	prefetcher_free(fs->reads);
	fs->reads = NULL;
	cache_free(fs->cache);
	fs->cache = NULL;
	budget_free(fs->budget);
	fs->budget = NULL;
	if (fs->inodes.by_ino) {
		inode_table_destroy(&fs->inodes);
		ns_destroy(fs);
		pthread_mutex_destroy(&fs->handles_lock);
		pthread_cond_destroy(&fs->writer_cond);
	}
}
