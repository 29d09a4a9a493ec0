/* SPDX-License-Identifier: Apache-2.0 */
/*
 * options: hpcops-mount's command line, table-driven: one row per option
 * gives its spelling, value syntax, field, --help line and --print-config
 * key, so the parser, the help, the JSON and the man page test cannot
 * disagree. mount-s3's rules (conflicts, requirements, value checks) are
 * reproduced with its exit statuses: 2 for what its parser refuses, 1 for
 * what it refuses at mount time.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <jansson.h>

#include "options.h"
#include "options_env.h"

#define KIB 1024ULL
#define MIB (1024ULL * 1024ULL)

#define EXIT_USAGE   FS_EXIT_USAGE
#define EXIT_REFUSED FS_EXIT_REFUSED

enum opt_type {
	OPT_FLAG,    /* bool, no value (-o NAME=true|false also) */
	OPT_STR,     /* char * */
	OPT_UID,     /* uid_t / gid_t (unsigned int) */
	OPT_MODE,    /* octal mode_t */
	OPT_INT,     /* int in [min, max] */
	OPT_U64,     /* uint64_t plain number in [min, max] (0 max = none) */
	OPT_BYTES,   /* uint64_t; plain number = bytes, K/M/G suffixes */
	OPT_MIB,     /* uint64_t bytes; plain number = MiB, K/M/G suffixes */
	OPT_KIB,     /* uint64_t bytes; plain number = KiB */
	OPT_TTL,     /* double: seconds | minimal | indefinite */
	OPT_SECONDS, /* double seconds > 0 */
	OPT_ENUM,    /* int index into choices ("" = not given) */
	OPT_CHOICE,  /* char *: one of choices, kept as the string */
	OPT_LIST,    /* char ** (repeatable), NULL-terminated, count in n_bind */
	OPT_BUCKET,  /* char *: a bucket name or s3://BUCKET (no prefix): --cache-xz */
	OPT_KMS_ARN, /* char *: a KMS key ARN */
};

#define OPTF_HPCOPS 1u /* hpcops' own option, not mount-s3's */
#define OPTF_HIDDEN 2u /* accepted, not in --help (an older or feature-gated mount-s3 name) */

struct opt_desc {
	const char *name; /* long name without "--" */
	char short_name;  /* 0 if none */
	enum opt_type type;
	size_t off;      /* offset in struct fs_options */
	const char *arg; /* value name for --help, NULL for flags */
	const char *group;
	const char *help;
	unsigned flags;
	const char *const *choices;          /* OPT_ENUM: NULL-terminated */
	long long min, max;                  /* OPT_INT / OPT_U64 bounds (max 0 = none) */
	const char *alias_of;                /* hidden alias: the option it sets */
	void (*after)(struct fs_options *o); /* run after a value was set */
};

#define O(f) offsetof(struct fs_options, f)

static const char G_BUCKET[] = "Bucket options";
static const char G_CREDS[] = "AWS credentials options";
static const char G_MOUNT[] = "Mount options";
static const char G_CLIENT[] = "Client options";
static const char G_LOG[] = "Logging options";
static const char G_CACHE[] = "Caching options";
static const char G_ADV[] = "Advanced options";
static const char *const groups[] = {G_BUCKET, G_CREDS, G_MOUNT, G_CLIENT, G_LOG, G_CACHE, G_ADV};

static const char *const bucket_types[] = {"", "general-purpose", "directory", NULL};
static const char *const checksums[] = {"crc32c", "crc64nvme", "off", "md5", NULL};
/* --sse is kept as the value of x-amz-server-side-encryption */
static const char *const sse_kinds[] = {"aws:kms", "aws:kms:dsse", "AES256", NULL};
static const char *const log_formats[] = {"text", "keyvalue", "json", NULL};

static void after_part_size(struct fs_options *o)
{
	o->read_part_size = o->part_size;
	o->write_part_size = o->part_size;
}

static void after_memory_target(struct fs_options *o)
{
	o->memory_limit = o->memory_target;
}

static void after_metadata_ttl(struct fs_options *o)
{
	o->metadata_ttl_set = true;
}

static void after_negative_ttl(struct fs_options *o)
{
	o->negative_metadata_ttl_set = true;
}

static const struct opt_desc opt_table[] = {
    /* ---- mount-s3: Bucket options ---- */
    {.name = "prefix",
     .type = OPT_STR,
     .off = O(prefix),
     .arg = "PREFIX",
     .group = G_BUCKET,
     .help = "prefix inside the bucket to mount, ending in '/' (same as BUCKET:PREFIX/ or "
             "s3://BUCKET/PREFIX/) [default: the whole bucket]"},
    {.name = "region",
     .type = OPT_STR,
     .off = O(region),
     .arg = "REGION",
     .group = G_BUCKET,
     .help = "AWS region of the bucket [default: AWS_REGION, AWS_DEFAULT_REGION, the profile, "
             "IMDS, us-east-1]"},
    {.name = "endpoint-url",
     .type = OPT_STR,
     .off = O(endpoint_url),
     .arg = "URL",
     .group = G_BUCKET,
     .help = "S3 endpoint URL, e.g. http://127.0.0.1:7480 [default: AWS_ENDPOINT_URL_S3, "
             "AWS_ENDPOINT_URL, else AWS for the region]"},
    {.name = "force-path-style",
     .type = OPT_FLAG,
     .off = O(force_path_style),
     .group = G_BUCKET,
     .help = "force path-style addressing (URL/BUCKET/KEY instead of BUCKET.HOST/KEY)"},
    {.name = "transfer-acceleration",
     .type = OPT_FLAG,
     .off = O(transfer_acceleration),
     .group = G_BUCKET,
     .help = "use S3 Transfer Acceleration (AWS; must be enabled on the bucket)"},
    {.name = "dual-stack",
     .type = OPT_FLAG,
     .off = O(dual_stack),
     .group = G_BUCKET,
     .help = "use dual-stack (IPv6) endpoints (AWS) [default: AWS_USE_DUALSTACK_ENDPOINT]"},
    {.name = "requester-pays",
     .type = OPT_FLAG,
     .off = O(requester_pays),
     .group = G_BUCKET,
     .help = "set 'x-amz-request-payer: requester' on S3 requests"},
    {.name = "bucket-type",
     .type = OPT_ENUM,
     .off = O(bucket_type),
     .arg = "TYPE",
     .group = G_BUCKET,
     .choices = bucket_types,
     .help = "general-purpose or directory [default: inferred from the name: --x-s3 = "
             "directory]"},
    {.name = "storage-class",
     .type = OPT_STR,
     .off = O(storage_class),
     .arg = "CLASS",
     .group = G_BUCKET,
     .help = "storage class of new objects, e.g. STANDARD_IA [default: the bucket's]"},
    {.name = "expected-bucket-owner",
     .type = OPT_STR,
     .off = O(expected_bucket_owner),
     .arg = "AWS_ACCOUNT_ID",
     .group = G_BUCKET,
     .help = "account ID that must own the bucket; requests fail with access denied "
             "otherwise"},
    {.name = "sse",
     .type = OPT_CHOICE,
     .off = O(sse),
     .arg = "aws:kms|aws:kms:dsse|AES256",
     .group = G_BUCKET,
     .choices = sse_kinds,
     .help = "server-side encryption of new objects [default: the bucket's]"},
    {.name = "sse-kms-key-id",
     .type = OPT_KMS_ARN,
     .off = O(sse_kms_key_id),
     .arg = "AWS_KMS_KEY_ARN",
     .group = G_BUCKET,
     .help = "KMS key ARN for --sse aws:kms / aws:kms:dsse (key IDs and aliases are refused)"},
    {.name = "upload-checksums",
     .type = OPT_ENUM,
     .off = O(upload_checksums),
     .arg = "crc32c|crc64nvme|off|md5",
     .group = G_BUCKET,
     .choices = checksums,
     .help = "checksum sent with every uploaded part and checked where the server returns "
             "it [default: crc32c]; md5 (hpcops) sends Content-MD5 instead, for servers "
             "that verify only that, such as radosgw 16"},
    {.name = "infer-content-type",
     .type = OPT_FLAG,
     .off = O(infer_content_type),
     .group = G_BUCKET,
     .help = "set Content-Type of new objects from the file name's extension"},

    /* ---- mount-s3: AWS credentials options ---- */
    {.name = "no-sign-request",
     .type = OPT_FLAG,
     .off = O(no_sign_request),
     .group = G_CREDS,
     .help = "do not sign requests (public buckets); no credentials are loaded"},
    {.name = "profile",
     .type = OPT_STR,
     .off = O(profile),
     .arg = "PROFILE",
     .group = G_CREDS,
     .help = "use this profile of ~/.aws/config and credentials [default: AWS_PROFILE]"},
    {.name = "ca-bundle",
     .type = OPT_STR,
     .off = O(ca_bundle),
     .arg = "FILE",
     .group = G_CREDS,
     .flags = OPTF_HPCOPS,
     .help = "PEM file of CA certificates to trust for HTTPS [default: AWS_CA_BUNDLE]"},

    /* ---- mount-s3: Mount options ---- */
    {.name = "read-only",
     .type = OPT_FLAG,
     .off = O(read_only),
     .group = G_MOUNT,
     .help = "mount read-only: every write fails with EROFS (-o ro)"},
    {.name = "allow-delete",
     .type = OPT_FLAG,
     .off = O(allow_delete),
     .group = G_MOUNT,
     .help = "allow unlink of files and rmdir of empty directories (deletes the objects: "
             "cannot be undone)"},
    {.name = "allow-overwrite",
     .type = OPT_FLAG,
     .off = O(allow_overwrite),
     .group = G_MOUNT,
     .help = "replace an existing object when it is opened with O_TRUNC; others see the "
             "old object until the new one is closed (the whole file is uploaded again)"},
    {.name = "incremental-upload",
     .type = OPT_FLAG,
     .off = O(incremental_upload),
     .group = G_MOUNT,
     .help = "upload incrementally and allow appends (directory buckets only, as in "
             "mount-s3; on other buckets see --allow-append)"},
    {.name = "auto-unmount",
     .type = OPT_FLAG,
     .off = O(auto_unmount),
     .group = G_MOUNT,
     .help = "unmount automatically when the process exits"},
    {.name = "allow-root",
     .type = OPT_FLAG,
     .off = O(allow_root),
     .group = G_MOUNT,
     .help = "let root access the files as well as the mounting user"},
    {.name = "allow-other",
     .type = OPT_FLAG,
     .off = O(allow_other),
     .group = G_MOUNT,
     .help = "let other users, root included, access the files (needs user_allow_other in "
             "/etc/fuse.conf unless root)"},
    {.name = "uid",
     .type = OPT_UID,
     .off = O(uid),
     .arg = "UID",
     .group = G_MOUNT,
     .help = "owner of every file and directory [default: yours]"},
    {.name = "gid",
     .type = OPT_UID,
     .off = O(gid),
     .arg = "GID",
     .group = G_MOUNT,
     .help = "group of every file and directory [default: yours]"},
    {.name = "dir-mode",
     .type = OPT_MODE,
     .off = O(dir_mode),
     .arg = "MODE",
     .group = G_MOUNT,
     .help = "permission bits of directories, octal [default: 0755]"},
    {.name = "file-mode",
     .type = OPT_MODE,
     .off = O(file_mode),
     .arg = "MODE",
     .group = G_MOUNT,
     .help = "permission bits of files, octal [default: 0644]"},
    {.name = "foreground",
     .short_name = 'f',
     .type = OPT_FLAG,
     .off = O(foreground),
     .group = G_MOUNT,
     .help = "stay in the foreground (logs to stderr unless -l)"},
    {.name = "allow-append",
     .type = OPT_FLAG,
     .off = O(allow_append),
     .group = G_MOUNT,
     .flags = OPTF_HPCOPS,
     .help = "allow O_APPEND on an existing object: it is rewritten as a new upload "
             "starting with a server-side copy of the old bytes (under 5 MiB they are "
             "downloaded and re-sent), so each append costs a copy of the whole object"},
    {.name = "allow-rename",
     .type = OPT_FLAG,
     .off = O(allow_rename),
     .group = G_MOUNT,
     .flags = OPTF_HPCOPS,
     .help = "allow rename of files: a server-side copy, then a delete of the old name; "
             "not atomic (after a failure both names can exist) and it costs a copy of the "
             "whole object; directories: EXDEV"},

    /* ---- mount-s3: Client options ---- */
    {.name = "maximum-throughput-gbps",
     .type = OPT_U64,
     .off = O(maximum_throughput_gbps),
     .arg = "N",
     .group = G_CLIENT,
     .min = 1,
     .help = "target throughput in Gbit/s; sizes connections and parallel requests "
             "[default: 10]"},
    {.name = "max-threads",
     .type = OPT_INT,
     .off = O(max_threads),
     .arg = "N",
     .group = G_CLIENT,
     .min = 1,
     .max = 1024,
     .help = "maximum FUSE worker threads [default: 16]"},
    {.name = "memory-target",
     .type = OPT_MIB,
     .off = O(memory_target),
     .arg = "MiB",
     .group = G_CLIENT,
     .min = 512,
     .after = after_memory_target,
     .help = "target of all read and write buffers in MiB, at least 512 (sets "
             "--memory-limit) [default: 512]"},
    {.name = "part-size",
     .type = OPT_BYTES,
     .off = O(part_size),
     .arg = "SIZE",
     .group = G_CLIENT,
     .after = after_part_size,
     .help = "part size of ranged GETs and multipart uploads in bytes (sets both "
             "--read-part-size and --write-part-size) [default: 8388608]"},
    {.name = "read-part-size",
     .type = OPT_BYTES,
     .off = O(read_part_size),
     .arg = "SIZE",
     .group = G_CLIENT,
     .help = "part size of ranged GETs, 1M..1G [default: 8388608]"},
    {.name = "write-part-size",
     .type = OPT_BYTES,
     .off = O(write_part_size),
     .arg = "SIZE",
     .group = G_CLIENT,
     .help = "part size of multipart uploads, 5M..5G: a file holds at most 10,000 parts "
             "(80 GB at 8M), and each file being written keeps up to 5 parts in memory "
             "(--memory-limit) [default: 8388608]"},
    {.name = "bind",
     .type = OPT_LIST,
     .off = O(bind),
     .arg = "NETWORK_INTERFACE",
     .group = G_CLIENT,
     .help = "send S3 traffic over this network interface (repeat for several)"},
    {.name = "memory-limit",
     .type = OPT_MIB,
     .off = O(memory_limit),
     .arg = "MiB",
     .group = G_CLIENT,
     .flags = OPTF_HPCOPS,
     .min = 16,
     .help = "bound of all prefetch and upload buffers in MiB [default: 512]"},
    {.name = "max-retry-duration",
     .type = OPT_SECONDS,
     .off = O(max_retry_duration),
     .arg = "SECONDS",
     .group = G_CLIENT,
     .flags = OPTF_HPCOPS,
     .help = "give up retrying a request after this long [default: 120]"},
    {.name = "check-timeout",
     .type = OPT_SECONDS,
     .off = O(check_timeout),
     .arg = "SECONDS",
     .group = G_CLIENT,
     .flags = OPTF_HPCOPS,
     .help = "bound of the bucket check before mounting [default: 10]"},
    /* mount-s3 before 1.24 (feature mem_limiter, not in release builds) */
    {.name = "max-memory-target",
     .type = OPT_MIB,
     .off = O(memory_target),
     .arg = "MiB",
     .group = G_CLIENT,
     .flags = OPTF_HIDDEN,
     .min = 512,
     .alias_of = "memory-target",
     .after = after_memory_target,
     .help = "old name of --memory-target"},

    /* ---- mount-s3: Logging options ---- */
    {.name = "log-directory",
     .short_name = 'l',
     .type = OPT_STR,
     .off = O(log_directory),
     .arg = "DIRECTORY",
     .group = G_LOG,
     .help = "write logs to a file in DIRECTORY [default: syslog, stderr with -f]"},
    {.name = "log-metrics",
     .type = OPT_FLAG,
     .off = O(log_metrics),
     .group = G_LOG,
     .help = "log summarized performance metrics"},
    {.name = "otlp-endpoint",
     .type = OPT_STR,
     .off = O(otlp_endpoint),
     .arg = "ENDPOINT",
     .group = G_LOG,
     .help = "OTLP (HTTP) endpoint to publish metrics to"},
    {.name = "otlp-export-interval",
     .type = OPT_U64,
     .off = O(otlp_export_interval),
     .arg = "SECONDS",
     .group = G_LOG,
     .min = 1,
     .help = "OTLP metrics export interval [default: 60]"},
    {.name = "debug",
     .short_name = 'd',
     .type = OPT_FLAG,
     .off = O(debug),
     .group = G_LOG,
     .help = "log every request (debug level)"},
    {.name = "debug-crt",
     .type = OPT_FLAG,
     .off = O(debug_crt),
     .group = G_LOG,
     .help = "debug logging of the transfer engine (mount-s3: of the AWS Common Runtime)"},
    {.name = "no-log",
     .type = OPT_FLAG,
     .off = O(no_log),
     .group = G_LOG,
     .help = "disable all logging (messages on stdout/stderr still appear)"},
    {.name = "log-format",
     .type = OPT_ENUM,
     .off = O(log_format),
     .arg = "text|keyvalue|json",
     .group = G_LOG,
     .flags = OPTF_HPCOPS,
     .choices = log_formats,
     .help = "format of log lines [default: text]"},
    {.name = "metrics-file",
     .type = OPT_STR,
     .off = O(metrics_file),
     .arg = "PATH",
     .group = G_LOG,
     .flags = OPTF_HPCOPS,
     .help = "write metrics to PATH (rewritten periodically)"},
    {.name = "prometheus-port",
     .type = OPT_INT,
     .off = O(prometheus_port),
     .arg = "PORT",
     .group = G_LOG,
     .flags = OPTF_HPCOPS,
     .min = 1,
     .max = 65535,
     .help = "serve Prometheus metrics over HTTP on 127.0.0.1:PORT"},

    /* ---- mount-s3: Caching options ---- */
    {.name = "cache",
     .type = OPT_STR,
     .off = O(cache_dir),
     .arg = "DIRECTORY",
     .group = G_CACHE,
     .help = "keep read blocks in DIRECTORY for later reads (key + ETag, checksummed)"},
    {.name = "metadata-ttl",
     .type = OPT_TTL,
     .off = O(metadata_ttl),
     .arg = "SECONDS|indefinite|minimal",
     .group = G_CACHE,
     .after = after_metadata_ttl,
     .help = "how long names and attributes are trusted before S3 is asked again "
             "[default: 1]"},
    {.name = "negative-metadata-ttl",
     .type = OPT_TTL,
     .off = O(negative_metadata_ttl),
     .arg = "SECONDS|indefinite|minimal",
     .group = G_CACHE,
     .after = after_negative_ttl,
     .help = "how long \"does not exist\" is trusted [default: as --metadata-ttl]"},
    {.name = "max-cache-size",
     .type = OPT_MIB,
     .off = O(max_cache_size),
     .arg = "MiB",
     .group = G_CACHE,
     .help = "bound of --cache in MiB [default: leave 5% of the disk free]"},
    {.name = "cache-block-size",
     .type = OPT_KIB,
     .off = O(cache_block_size),
     .arg = "KiB",
     .group = G_CACHE,
     .min = 1,
     .help = "size of a cache block in KiB (--cache, --cache-xz) [default: 1024]"},
    {.name = "cache-xz",
     .type = OPT_BUCKET,
     .off = O(cache_xz),
     .arg = "BUCKET",
     .group = G_CACHE,
     .help = "share read blocks with other nodes through BUCKET (any S3 bucket with "
             "hpcops; mount-s3: S3 Express One Zone only)"},

    /* ---- mount-s3: Advanced options ---- */
    {.name = "user-agent-prefix",
     .type = OPT_STR,
     .off = O(user_agent_prefix),
     .arg = "PREFIX",
     .group = G_ADV,
     .help = "string put before the User-Agent header of every request"},
    {.name = "print-config",
     .type = OPT_FLAG,
     .off = O(print_config),
     .group = G_ADV,
     .flags = OPTF_HPCOPS,
     .help = "print the effective configuration as JSON and exit without mounting"},
};

#define N_OPTS (sizeof(opt_table) / sizeof(opt_table[0]))

/* ---- messages ---- */

static const char *prog_name(const struct fs_options *o)
{
	return o->prog ? o->prog : "hpcops-mount";
}

static void __attribute__((format(printf, 2, 3)))
say(const struct fs_options *o, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog_name(o));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* One option of --help: the left column, then the text wrapped at 80 columns. */
static void help_line(FILE *f, const char *left, const char *text, bool hpcops)
{
	enum { COL = 37, WIDTH = 80 };
	char buf[1024];
	const char *p = buf;
	bool first = true;

	snprintf(buf, sizeof(buf), "%s%s", text, hpcops ? " [hpcops]" : "");
	if (strlen(left) > COL - 4) { /* keep two spaces before the text */
		fprintf(f, "  %s\n", left);
		first = false;
	}
	while (*p) {
		size_t n = strlen(p), cut = n;

		if (n > WIDTH - COL) {
			cut = WIDTH - COL;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = WIDTH - COL;
		}
		if (first)
			fprintf(f, "  %-*s %.*s\n", COL - 3, left, (int)cut, p);
		else
			fprintf(f, "%*s%.*s\n", COL, "", (int)cut, p);
		first = false;
		p += cut;
		while (*p == ' ')
			p++;
	}
}

static void usage(const struct fs_options *o, FILE *f)
{
	fprintf(f,
	        "usage: %s [options] BUCKET[:PREFIX/] DIR\n"
	        "       %s [options] s3://BUCKET[/PREFIX/] DIR\n"
	        "       %s BUCKET DIR -o OPTION[,OPTION...]\n"
	        "\n"
	        "Mount an S3 bucket (or the keys under PREFIX/) as a filesystem at DIR, or on an\n"
	        "open /dev/fuse descriptor given as /dev/fd/N. Accepts every mount-s3 option\n"
	        "with its meaning; [hpcops] marks hpcops' own. Every option can also be given\n"
	        "as -o NAME[=VALUE] (for /etc/fstab and mount -t fuse.hpcops-mount); '-' and\n"
	        "'_' are alike there, and \\, \\\\ \\\" escape a comma, backslash, quote.\n"
	        "Sizes take K, M, G suffixes (powers of 1024).\n",
	        prog_name(o), prog_name(o), prog_name(o));
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		fprintf(f, "\n%s:\n", groups[g]);
		for (size_t i = 0; i < N_OPTS; i++) {
			const struct opt_desc *d = &opt_table[i];
			char left[80];

			if (d->group != groups[g] || (d->flags & OPTF_HIDDEN))
				continue;
			if (d->short_name)
				snprintf(left, sizeof(left), "-%c, --%s%s%s", d->short_name,
				         d->name, d->arg ? " " : "", d->arg ? d->arg : "");
			else
				snprintf(left, sizeof(left), "    --%s%s%s", d->name,
				         d->arg ? " " : "", d->arg ? d->arg : "");
			help_line(f, left, d->help, d->flags & OPTF_HPCOPS);
		}
	}
	fprintf(f, "\nOther:\n");
	fprintf(f, "  %-34s %s\n", "-o OPTION[,OPTION...]",
	        "options in mount(8)/fstab style (see above)");
	fprintf(f, "  %-34s %s\n", "-h, --help", "show this help and exit");
	fprintf(f, "  %-34s %s\n", "-V, --version", "show the version and exit");
	fprintf(f,
	        "\nEnvironment: AWS_REGION, AWS_DEFAULT_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_S3,\n"
	        "AWS_ENDPOINT_URL, AWS_CA_BUNDLE, AWS_MAX_ATTEMPTS, AWS_RETRY_MODE,\n"
	        "AWS_USE_DUALSTACK_ENDPOINT, MOUNTPOINT_LOG and the AWS credential variables.\n"
	        "Exit status: 0 mounted (or printed), 1 the mount failed or was refused,\n"
	        "2 a bad command line.\n");
}

/* ---- looking options up ---- */

static bool name_eq(const char *n, const char *name, size_t len)
{
	size_t j;

	if (strlen(n) != len)
		return false;
	/* '-' and '_' are alike, so -o allow_other works as in other FUSE filesystems */
	for (j = 0; j < len; j++) {
		char a = n[j] == '-' ? '_' : n[j], b = name[j] == '-' ? '_' : name[j];

		if (a != b)
			return false;
	}
	return true;
}

static const struct opt_desc *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (name_eq(opt_table[i].name, name, len))
			return &opt_table[i];
	return NULL;
}

static const struct opt_desc *opt_by_name(const char *name)
{
	return opt_find(name, strlen(name));
}

static size_t opt_index(const struct opt_desc *d)
{
	return (size_t)(d - opt_table);
}

/* ---- values ---- */

static int parse_size(const char *s, uint64_t unit, uint64_t *out)
{
	char *end;
	unsigned long long v, mul = unit;

	errno = 0;
	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -1;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = KIB;
		end++;
		break;
	case 'm':
	case 'M':
		mul = MIB;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1024ULL * MIB;
		end++;
		break;
	default:
		return -1;
	}
	if (mul != unit || *end) {
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
	}
	if (*end || (v && mul > UINT64_MAX / v))
		return -1;
	*out = v * mul;
	return 0;
}

static int parse_ttl(const char *val, double *out)
{
	char *end;
	double v;

	if (!strcmp(val, "minimal")) {
		*out = FS_TTL_MINIMAL;
		return 0;
	}
	if (!strcmp(val, "indefinite")) {
		*out = FS_TTL_INDEFINITE;
		return 0;
	}
	errno = 0;
	v = strtod(val, &end);
	if (errno || end == val || *end || !(v >= 0) || v > 1e8)
		return -1;
	*out = v;
	return 0;
}

/* mount-s3's bucket check: 3-255 of [0-9a-zA-Z._-], or an ARN. */
static const char *bucket_name_error(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 255)
		return "bucket names must be 3-255 characters long";
	if (!strncmp(b, "arn:", 4))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];

		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return "bucket argument should be a valid bucket name (only letters, "
			       "numbers, . and -) or a valid ARN";
	}
	return NULL;
}

/*
 * s3://BUCKET[/PREFIX/] as mount-s3 reads it: the prefix, when there is one,
 * ends in '/'; no ARN inside a URI. Returns 0 or -1 with @why set.
 */
static int parse_s3_uri(const char *uri, char **bucket, char **prefix, const char **why)
{
	const char *rest = uri + 5, *slash = strchr(rest, '/');
	size_t bl = slash ? (size_t)(slash - rest) : strlen(rest);

	*why = NULL;
	if (!strncmp(rest, "arn:", 4)) {
		*why = "an ARN cannot be given as an S3 URI: give the ARN itself";
		return -1;
	}
	if (slash && slash[1] && slash[strlen(slash) - 1] != '/') {
		*why = "the prefix of an S3 URI must end in '/', e.g. s3://BUCKET/PREFIX/";
		return -1;
	}
	*bucket = strndup(rest, bl);
	*prefix = strdup(slash && slash[1] ? slash + 1 : "");
	if (!*bucket || !*prefix) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

static int list_append(struct fs_options *o, const char *val)
{
	char **n = realloc(o->bind, (o->n_bind + 2) * sizeof(*n));

	if (!n)
		return -1;
	o->bind = n;
	n[o->n_bind] = strdup(val);
	if (!n[o->n_bind])
		return -1;
	n[++o->n_bind] = NULL;
	return 0;
}

/* Set one option; @val is NULL for flags. Returns 0 or an exit status after a message. */
static int opt_set(struct fs_options *o, const struct opt_desc *d, const char *val)
{
	void *p = (char *)o + d->off;
	char *end;
	const char *why = NULL;

	if (d->type != OPT_FLAG && !val) {
		say(o, "--%s needs a value (%s)", d->name, d->arg);
		return EXIT_USAGE;
	}
	switch (d->type) {
	case OPT_FLAG:
		if (val && strcmp(val, "true") && strcmp(val, "1")) {
			if (!strcmp(val, "false") || !strcmp(val, "0")) {
				*(bool *)p = false;
				goto done;
			}
			say(o, "--%s takes no value (got '%s')", d->name, val);
			return EXIT_USAGE;
		}
		*(bool *)p = true;
		goto done;
	case OPT_STR:
		free(*(char **)p);
		*(char **)p = strdup(val);
		if (!*(char **)p)
			return EXIT_REFUSED;
		goto done;
	case OPT_UID: {
		unsigned long v;

		errno = 0;
		v = strtoul(val, &end, 10);
		if (errno || end == val || *end || *val == '-' || v > UINT_MAX - 1)
			goto bad;
		*(unsigned int *)p = (unsigned int)v;
		goto done;
	}
	case OPT_MODE: {
		unsigned long v;

		errno = 0;
		v = strtoul(val, &end, 8);
		if (errno || end == val || *end || *val == '-' || v > 07777)
			goto bad;
		*(mode_t *)p = (mode_t)v;
		goto done;
	}
	case OPT_INT: {
		long v;

		errno = 0;
		v = strtol(val, &end, 10);
		if (errno || end == val || *end || v < d->min || v > d->max)
			goto bad;
		*(int *)p = (int)v;
		goto done;
	}
	case OPT_U64: {
		unsigned long long v;

		errno = 0;
		if (*val == '-' || *val == '+')
			goto bad;
		v = strtoull(val, &end, 10);
		if (errno || end == val || *end || v < (unsigned long long)d->min ||
		    (d->max && v > (unsigned long long)d->max))
			goto bad;
		*(uint64_t *)p = v;
		goto done;
	}
	case OPT_BYTES:
	case OPT_MIB:
	case OPT_KIB: {
		uint64_t unit = d->type == OPT_BYTES ? 1 : d->type == OPT_MIB ? MIB : KIB;
		uint64_t v;

		if (parse_size(val, unit, &v) < 0 || v < (uint64_t)d->min * unit)
			goto bad;
		*(uint64_t *)p = v;
		goto done;
	}
	case OPT_TTL: {
		double v;

		if (parse_ttl(val, &v) < 0)
			goto bad;
		*(double *)p = v;
		goto done;
	}
	case OPT_SECONDS: {
		double v;

		errno = 0;
		v = strtod(val, &end);
		if (errno || end == val || *end || !(v > 0) || v > 1e8)
			goto bad;
		*(double *)p = v;
		goto done;
	}
	case OPT_ENUM:
		for (int i = 0; d->choices[i]; i++) {
			if (d->choices[i][0] && !strcmp(val, d->choices[i])) {
				*(int *)p = i;
				goto done;
			}
		}
		goto bad;
	case OPT_CHOICE:
		for (int i = 0; d->choices[i]; i++) {
			if (!strcmp(val, d->choices[i])) {
				free(*(char **)p);
				*(char **)p = strdup(val);
				if (!*(char **)p)
					return EXIT_REFUSED;
				goto done;
			}
		}
		goto bad;
	case OPT_LIST:
		if (!*val)
			goto bad;
		if (list_append(o, val) < 0)
			return EXIT_REFUSED;
		goto done;
	case OPT_BUCKET: {
		char *b = NULL, *pfx = NULL;

		if (!strncmp(val, "s3://", 5)) {
			if (parse_s3_uri(val, &b, &pfx, &why) < 0) {
				free(b);
				free(pfx);
				goto bad;
			}
			if (*pfx) {
				/* mount-s3 refuses this once parsed: exit 1 */
				say(o, "cache-xz argument must not contain a prefix");
				free(b);
				free(pfx);
				return EXIT_REFUSED;
			}
			free(pfx);
		} else {
			b = strdup(val);
			if (!b)
				return EXIT_REFUSED;
		}
		why = bucket_name_error(b);
		if (why) {
			free(b);
			goto bad;
		}
		free(*(char **)p);
		*(char **)p = b;
		goto done;
	}
	case OPT_KMS_ARN:
		if (strncmp(val, "arn:", 4) || !strstr(val, ":key")) {
			why = "KMS Key ARN is only accepted as a key identifier, Key Alias ARN is "
			      "not accepted";
			goto bad;
		}
		free(*(char **)p);
		*(char **)p = strdup(val);
		if (!*(char **)p)
			return EXIT_REFUSED;
		goto done;
	}
bad:
	if (why)
		say(o, "invalid value '%s' for --%s: %s", val, d->name, why);
	else if (d->type == OPT_ENUM || d->type == OPT_CHOICE)
		say(o, "bad value '%s' for --%s (expected %s)", val, d->name, d->arg);
	else if ((d->type == OPT_INT || d->type == OPT_U64) && d->max)
		say(o, "bad value '%s' for --%s (expected %s, %lld to %lld)", val, d->name, d->arg,
		    d->min, d->max);
	else if (d->min && d->type != OPT_BYTES)
		say(o, "bad value '%s' for --%s (expected %s, at least %lld)", val, d->name, d->arg,
		    d->min);
	else
		say(o, "bad value '%s' for --%s (expected %s)", val, d->name, d->arg);
	return EXIT_USAGE;
done:
	if (d->after)
		d->after(o);
	return 0;
}

/* ---- the -o / fstab form ---- */

/*
 * mount(8), mount.fuse3 and systemd pass generic options through -o:
 * accept the ones that mean nothing here, map ro/rw. Returns true if @w
 * was one of them.
 */
static bool opt_mount_word(struct fs_options *o, const char *w)
{
	static const char *const ignored[] = {
	    "rw",         "dev",         "nodev",
	    "suid",       "nosuid",      "exec",
	    "noexec",     "async",       "sync",
	    "atime",      "noatime",     "relatime",
	    "norelatime", "strictatime", "nodiratime",
	    "diratime",   "auto",        "noauto",
	    "user",       "nouser",      "users",
	    "owner",      "group",       "defaults",
	    "_netdev",    "nofail",      "default_permissions",
	    "lazytime",   "nolazytime",  "x-systemd",
	    "comment",    "loud",        "silent",
	};

	if (!strcmp(w, "ro")) {
		o->read_only = true;
		return true;
	}
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		if (!strcmp(w, ignored[i]))
			return true;
	return !strncmp(w, "x-", 2) || !strncmp(w, "comment=", 8) || !strncmp(w, "fsname=", 7) ||
	       !strncmp(w, "subtype=", 8) || !strncmp(w, "user=", 5);
}

/*
 * Split @list at unescaped commas as mount-s3's fstab parser does: '\,',
 * '\\' and '\"' stand for themselves, any other backslash or a bare '"' is
 * an error. Sets each word's option and marks it in @given_tab. Returns 0
 * or an exit status.
 */
static int opt_parse_o(struct fs_options *o, bool *given_tab, const char *list)
{
	size_t n = strlen(list);
	char *w = malloc(n + 1);
	size_t k = 0;
	int rc = 0;

	if (!w)
		return EXIT_REFUSED;
	for (size_t i = 0; i <= n && rc == 0; i++) {
		char c = list[i];

		if (c == '\\') {
			if (i + 1 < n &&
			    (list[i + 1] == ',' || list[i + 1] == '\\' || list[i + 1] == '"')) {
				w[k++] = list[++i];
				continue;
			}
			say(o, "-o %s: a backslash escapes only ',', '\\' and '\"'", list);
			rc = EXIT_USAGE;
			break;
		}
		if (c == '"') {
			say(o, "-o %s: unexpected '\"' (escape it as \\\")", list);
			rc = EXIT_USAGE;
			break;
		}
		if (c != ',' && c != '\0') {
			w[k++] = c;
			continue;
		}
		w[k] = '\0';
		k = 0;
		if (!w[0])
			continue;
		if (w[0] == '-') {
			say(o,
			    "-o %s: cannot prefix arguments with `--` when using fstab style "
			    "arguments",
			    w);
			rc = EXIT_USAGE;
			break;
		}
		{
			char *eq = strchr(w, '=');
			size_t len = eq ? (size_t)(eq - w) : strlen(w);
			const struct opt_desc *d = opt_find(w, len);

			if (d) {
				given_tab[d - opt_table] = true;
				rc = opt_set(o, d, eq ? eq + 1 : NULL);
				continue;
			}
			if (opt_mount_word(o, w))
				continue;
			if (o->sloppy) {
				say(o, "ignoring unknown option -o %s (mount -s)", w);
				continue;
			}
			say(o, "unknown option -o %s (see %s --help)", w, prog_name(o));
			rc = EXIT_USAGE;
		}
	}
	free(w);
	return rc;
}

/* ---- defaults and freeing ---- */

void fs_options_init(struct fs_options *o)
{
	memset(o, 0, sizeof(*o));
	o->mount_fd = -1;
	o->uid = getuid();
	o->gid = getgid();
	o->file_mode = 0644;
	o->dir_mode = 0755;
	o->write_part_size = 8 * MIB;
	o->max_threads = 16;
	o->metadata_ttl = FS_TTL_DEFAULT;
	o->negative_metadata_ttl = FS_TTL_DEFAULT;
	o->read_part_size = 8 * MIB;
	o->memory_limit = 512 * MIB;
	o->upload_checksums = FS_CHECKSUM_CRC32C;
	o->cache_block_size = MIB;
	o->max_retry_duration = 120;
	o->check_timeout = 10;
	o->otlp_export_interval = 60;
	o->log_level = LOG_INFO;
	o->retry_mode = FS_RETRY_STANDARD;
}

void fs_options_free(struct fs_options *o)
{
	char **strs[] = {
	    &o->bucket,
	    &o->prefix,
	    &o->mountpoint,
	    &o->region,
	    &o->endpoint_url,
	    &o->profile,
	    &o->ca_bundle,
	    &o->storage_class,
	    &o->expected_bucket_owner,
	    &o->sse,
	    &o->sse_kms_key_id,
	    &o->log_directory,
	    &o->log_filter,
	    &o->user_agent_prefix,
	    &o->user_agent,
	    &o->metrics_file,
	    &o->otlp_endpoint,
	    &o->cache_dir,
	    &o->cache_xz,
	    &o->prog,
	};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	for (size_t i = 0; i < o->n_bind; i++)
		free(o->bind[i]);
	free(o->bind);
	memset(o, 0, sizeof(*o));
	o->mount_fd = -1;
}

const char *fs_checksum_name(enum fs_checksum c)
{
	return (unsigned)c < 4 ? checksums[c] : "?";
}

/* ---- the positional arguments ---- */

static bool is_mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], un[PATH_MAX];
		size_t k = 0;

		if (sscanf(line, "%*u %*u %*u:%*u %*s %4095s", mp) != 1)
			continue;
		/* mountinfo escapes space, tab, newline and backslash as \ooo */
		for (size_t i = 0; mp[i] && k + 1 < sizeof(un); i++) {
			if (mp[i] == '\\' && isdigit((unsigned char)mp[i + 1]) &&
			    isdigit((unsigned char)mp[i + 2]) &&
			    isdigit((unsigned char)mp[i + 3])) {
				un[k++] = (char)((mp[i + 1] - '0') * 64 + (mp[i + 2] - '0') * 8 +
				                 (mp[i + 3] - '0'));
				i += 3;
			} else {
				un[k++] = mp[i];
			}
		}
		un[k] = '\0';
		found = !strcmp(un, path);
	}
	fclose(f);
	return found;
}

/*
 * DIR: a directory (realpath), or /dev/fd/N: an open /dev/fuse descriptor
 * a privileged helper mounted (libfuse's fuse_session_mount takes the
 * string as it is). Problems go to @why (exit 1, as mount-s3).
 */

/* The mount point is a dead FUSE mount (its daemon was killed): ENOTCONN. */
static int dead_mount(struct fs_options *o, char *why, size_t wl)
{
	if (o->auto_unmount) {
		/* --auto-unmount: clean it up before mounting (main.c) */
		o->dead_mount = true;
		return 0;
	}
	snprintf(why, wl,
	         "mount point %s is a dead FUSE mount (its daemon is gone): run "
	         "'fusermount3 -u %s' (or 'umount -l %s' as root) and mount again, or "
	         "pass --auto-unmount to have it cleaned up",
	         o->mountpoint, o->mountpoint, o->mountpoint);
	return -1;
}

static int parse_mount_point(struct fs_options *o, const char *arg, char *why, size_t wl)
{
	unsigned long fd;
	char *end;

	if (!strncmp(arg, "/dev/fd/", 8) && isdigit((unsigned char)arg[8])) {
		char link[64], target[PATH_MAX];
		ssize_t n;
		int fl;

		errno = 0;
		fd = strtoul(arg + 8, &end, 10);
		if (!*end && !errno && fd <= INT_MAX) {
			o->mountpoint = strdup(arg);
			if (!o->mountpoint)
				return -1;
			o->mount_fd = (int)fd;
			fl = fcntl((int)fd, F_GETFL);
			if (fl < 0) {
				snprintf(why, wl, "mount point %s is not a valid file descriptor",
				         arg);
				return -1;
			}
			snprintf(link, sizeof(link), "/proc/self/fd/%lu", fd);
			n = readlink(link, target, sizeof(target) - 1);
			target[n > 0 ? n : 0] = '\0';
			if (strcmp(target, "/dev/fuse")) {
				snprintf(
				    why, wl,
				    "expected mount point %s to be a /dev/fuse file descriptor but "
				    "got %s",
				    arg, target[0] ? target : "(unknown)");
				return -1;
			}
			if ((fl & O_ACCMODE) != O_RDWR) {
				snprintf(why, wl,
				         "expected mount point %s file descriptor to have read and "
				         "write "
				         "permissions",
				         arg);
				return -1;
			}
			return 0;
		}
	}
	o->mountpoint = realpath(arg, NULL);
	if (!o->mountpoint) {
		int e = errno;

		o->mountpoint = strdup(arg);
		if (!o->mountpoint)
			return -1;
		if (e != ENOTCONN) {
			snprintf(why, wl,
			         "mount point %s does not exist (create the directory first)", arg);
			return -1;
		}
		return dead_mount(o, why, wl);
	}
	{
		struct stat st;

		/* realpath() may resolve a dead mount's path without touching it: stat does */
		if (stat(o->mountpoint, &st) < 0 && errno == ENOTCONN)
			return dead_mount(o, why, wl);
	}
	if (is_mounted(o->mountpoint)) {
		snprintf(why, wl,
		         "mount point %s is already mounted (unmount it first: fusermount3 -u %s)",
		         o->mountpoint, o->mountpoint);
		return -1;
	} else {
		struct stat st;

		if (stat(o->mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(why, wl, "mount point %s is not a directory", arg);
			return -1;
		}
	}
	return 0;
}

/* The bucket argument. Returns 0 or an exit status after a message. */
static int parse_bucket_arg(struct fs_options *o, const char *arg)
{
	const char *why, *prefix = NULL;
	char *uri_prefix = NULL;

	if (!strncmp(arg, "s3://", 5)) {
		if (parse_s3_uri(arg, &o->bucket, &uri_prefix, &why) < 0) {
			say(o, "invalid S3 URI '%s': %s", arg, why);
			free(uri_prefix);
			return EXIT_USAGE;
		}
		o->bucket_is_uri = true;
		if (o->prefix) {
			say(o, "explicit prefix option not allowed with S3 URI (give the prefix in "
			       "the URI: s3://BUCKET/PREFIX/)");
			free(uri_prefix);
			return EXIT_REFUSED;
		}
		o->prefix = uri_prefix;
	} else {
		char *colon;

		o->bucket = strdup(arg);
		if (!o->bucket)
			return EXIT_REFUSED;
		/* BUCKET:PREFIX/ (hpcops); an ARN keeps its colons */
		colon = strncmp(arg, "arn:", 4) ? strchr(o->bucket, ':') : NULL;
		if (colon) {
			*colon = '\0';
			prefix = colon + 1;
			if (o->prefix && *prefix) {
				say(o,
				    "give the prefix once: BUCKET:PREFIX/ or --prefix, not both");
				return EXIT_USAGE;
			}
		}
	}
	why = bucket_name_error(o->bucket);
	if (why) {
		say(o, "'%s' is not a valid bucket: %s", o->bucket, why);
		return EXIT_USAGE;
	}
	if (prefix && *prefix) {
		free(o->prefix);
		o->prefix = strdup(prefix);
	}
	if (!o->prefix)
		o->prefix = strdup("");
	if (!o->prefix)
		return EXIT_REFUSED;
	if (*o->prefix) {
		size_t n = strlen(o->prefix);

		if (o->prefix[0] == '/' || o->prefix[n - 1] != '/' || strstr(o->prefix, "//")) {
			say(o,
			    "prefix '%s' must end in '/' and not start with one, e.g. "
			    "results/run1/",
			    o->prefix);
			return EXIT_USAGE;
		}
	}
	return 0;
}

/* ---- combinations ---- */

struct parse_state {
	bool given[N_OPTS];
	json_t *warnings; /* --print-config shows them; otherwise they go to stderr */
	char mount_point_problem[PATH_MAX + 160];
};

static bool given(const struct parse_state *ps, const char *name)
{
	const struct opt_desc *d = opt_by_name(name);

	return d && ps->given[opt_index(d)];
}

static void warn(struct fs_options *o, struct parse_state *ps, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct fs_options *o, struct parse_state *ps, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (o->print_config && ps->warnings)
		json_array_append_new(ps->warnings, json_string(buf));
	else
		say(o, "warning: %s", buf);
}

/* clap's conflicts_with / requires, with its exit status. */
static int check_combinations(struct fs_options *o, struct parse_state *ps)
{
	static const char *const conflicts[][2] = {
	    {"allow-other", "allow-root"},
	    {"part-size", "read-part-size"},
	    {"part-size", "write-part-size"},
	    {"no-log", "log-directory"},
	    {"no-log", "debug"},
	    {"no-log", "debug-crt"},
	    {"no-log", "log-metrics"},
	};
	static const char *const requires[][2] = {
	    {"max-cache-size", "cache"},
	    {"sse-kms-key-id", "sse"},
	    {"otlp-export-interval", "otlp-endpoint"},
	};

	for (size_t i = 0; i < sizeof(conflicts) / sizeof(conflicts[0]); i++) {
		if (given(ps, conflicts[i][0]) && given(ps, conflicts[i][1])) {
			say(o, "the argument '--%s' cannot be used with '--%s'", conflicts[i][0],
			    conflicts[i][1]);
			return EXIT_USAGE;
		}
	}
	for (size_t i = 0; i < sizeof(requires) / sizeof(requires[0]); i++) {
		if (given(ps, requires[i][0]) && !given(ps, requires[i][1])) {
			say(o, "--%s needs --%s", requires[i][0], requires[i][1]);
			return EXIT_USAGE;
		}
	}
	if (given(ps, "cache-block-size") && !given(ps, "cache") && !given(ps, "cache-xz")) {
		say(o, "--cache-block-size needs --cache or --cache-xz");
		return EXIT_USAGE;
	}
	/* what mount-s3 checks once parsed, before mounting: exit 1 */
	if (o->sse_kms_key_id && o->sse && !strcmp(o->sse, "AES256")) {
		say(o, "--sse-kms-key-id can not be used with --sse AES256");
		return EXIT_REFUSED;
	}
	if (o->mount_fd >= 0 && o->auto_unmount) {
		say(o, "Mount options: --auto-unmount are ignored with FUSE fd mount point. Mount "
		       "options should be passed while performing `mount` syscall in the caller "
		       "process.");
		return EXIT_REFUSED;
	}
	/* hpcops' own bounds */
	if (o->read_part_size < 1 * MIB || o->read_part_size > 1024 * MIB) {
		say(o, "--read-part-size must be between 1M and 1G");
		return EXIT_USAGE;
	}
	if (o->write_part_size < 5 * MIB || o->write_part_size > 5120 * MIB) {
		say(o, "--write-part-size must be between 5M and 5G (S3's part size limits)");
		return EXIT_USAGE;
	}
	if (o->memory_limit < 16 * MIB) {
		say(o, "--memory-limit must be at least 16 (MiB)");
		return EXIT_USAGE;
	}
	if (o->otlp_endpoint)
		warn(o, ps,
		     "--otlp-endpoint: hpcops-mount has no OTLP exporter; the same counters are "
		     "in --metrics-file and on --prometheus-port (Prometheus text)");
	if (o->incremental_upload && fs_options_is_directory_bucket(o))
		o->allow_append = true; /* mount-s3: appends to existing objects */
	if (o->incremental_upload && !fs_options_is_directory_bucket(o))
		warn(o, ps,
		     "--incremental-upload needs a directory bucket (S3 Express One Zone): as with "
		     "mount-s3, uploads to general-purpose bucket %s fail with EIO; --allow-append "
		     "appends on any bucket",
		     o->bucket);
	if (o->metadata_ttl_set && o->metadata_ttl == 0)
		warn(o, ps,
		     "'--metadata-ttl 0' means 'minimal' (as in mount-s3, which deprecates "
		     "the 0 spelling)");
	if (o->transfer_acceleration && (o->endpoint_url || fs_env_get("AWS_ENDPOINT_URL_S3") ||
	                                 fs_env_get("AWS_ENDPOINT_URL")))
		warn(o, ps, "--transfer-acceleration has no effect with a custom endpoint");
	return 0;
}

/* ---- --print-config ---- */

static json_t *opt_json(const struct fs_options *o, const struct opt_desc *d)
{
	const void *p = (const char *)o + d->off;

	switch (d->type) {
	case OPT_FLAG:
		return json_boolean(*(const bool *)p);
	case OPT_STR:
	case OPT_CHOICE:
	case OPT_BUCKET:
	case OPT_KMS_ARN:
		return *(char *const *)p ? json_string(*(char *const *)p) : json_null();
	case OPT_UID:
		return json_integer(*(const unsigned int *)p);
	case OPT_MODE: {
		char m[8];

		snprintf(m, sizeof(m), "%04o", (unsigned int)*(const mode_t *)p);
		return json_string(m);
	}
	case OPT_INT:
		return *(const int *)p ? json_integer(*(const int *)p) : json_null();
	case OPT_U64:
	case OPT_BYTES:
	case OPT_MIB:
	case OPT_KIB:
		if (d->after == after_part_size && !o->part_size)
			return json_integer(8 * MIB); /* mount-s3's default; sets nothing */
		return *(const uint64_t *)p ? json_integer((json_int_t) * (const uint64_t *)p)
		                            : json_null();
	case OPT_TTL: {
		double v = *(const double *)p;

		if (d->after == after_negative_ttl && !o->negative_metadata_ttl_set)
			v = o->metadata_ttl;
		if (v == FS_TTL_MINIMAL)
			return json_string("minimal");
		if (v >= FS_TTL_INDEFINITE)
			return json_string("indefinite");
		return json_real(v);
	}
	case OPT_SECONDS:
		return json_real(*(const double *)p);
	case OPT_ENUM:
		if (!d->choices[*(const int *)p][0])
			return json_null();
		return json_string(d->choices[*(const int *)p]);
	case OPT_LIST: {
		json_t *a = json_array();

		for (size_t i = 0; i < o->n_bind; i++)
			json_array_append_new(a, json_string(o->bind[i]));
		return a;
	}
	}
	return json_null();
}

static json_t *resolved(const char *value, const char *source)
{
	return json_pack("{s:o,s:s}", "value", value ? json_string(value) : json_null(), "source",
	                 source ? source : "?");
}

static int print_config(struct fs_options *o, struct parse_state *ps)
{
	static const char *const retry_modes[] = {"standard", "adaptive", "legacy"};
	static const char *const log_levels[] = {"error", "warn", "info", "debug"};
	json_t *root = json_object(), *opts = json_object(), *envj = json_object();
	const char *rsrc = NULL, *esrc = NULL, *psrc = NULL, *src = NULL;
	char *region = fs_env_region(o, &rsrc), *ep = NULL, *tmp;
	char err[512];
	const char *level, *prof;
	int rc = 0;

	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_desc *d = &opt_table[i];

		if (d->alias_of || d->off == O(print_config))
			continue;
		json_object_set_new(opts, d->name, opt_json(o, d));
	}
	json_object_set_new(root, "program", json_string("hpcops-mount"));
	json_object_set_new(root, "version", json_string(HPCOPS_VERSION));
	json_object_set_new(root, "invoked_as", json_string(prog_name(o)));
	json_object_set_new(root, "bucket", json_string(o->bucket));
	json_object_set_new(root, "prefix", json_string(o->prefix));
	json_object_set_new(
	    root, "bucket_type",
	    json_string(fs_options_is_directory_bucket(o) ? "directory" : "general-purpose"));
	json_object_set_new(root, "mount_point", json_string(o->mountpoint));
	json_object_set_new(root, "mount_fd",
	                    o->mount_fd >= 0 ? json_integer(o->mount_fd) : json_null());
	json_object_set_new(root, "options", opts);

	json_object_set_new(envj, "region", resolved(region, rsrc));
	if (fs_options_endpoint(o, region, &ep, &esrc, err, sizeof(err)) < 0) {
		say(o, "Failed to create S3 client: %s", err);
		rc = EXIT_REFUSED;
		goto out;
	}
	json_object_set_new(envj, "endpoint", resolved(ep, esrc));
	prof = fs_env_profile(o, &psrc);
	json_object_set_new(envj, "profile", resolved(prof, psrc));
	json_object_set_new(envj, "credentials",
	                    json_string(o->no_sign_request ? "none (--no-sign-request)"
	                                                   : "the AWS chain (not read here)"));
	tmp = fs_env_setting(o, "AWS_MAX_ATTEMPTS", "max_attempts", &src);
	json_object_set_new(envj, "max_attempts",
	                    json_pack("{s:o,s:s}", "value",
	                              o->max_attempts ? json_integer(o->max_attempts) : json_null(),
	                              "source", o->max_attempts ? src : "transfer engine default"));
	free(tmp);
	tmp = fs_env_setting(o, "AWS_RETRY_MODE", "retry_mode", &src);
	json_object_set_new(envj, "retry_mode", resolved(retry_modes[o->retry_mode], src));
	free(tmp);
	tmp = fs_env_setting(o, "AWS_CA_BUNDLE", "ca_bundle", &src);
	json_object_set_new(envj, "ca_bundle",
	                    resolved(o->ca_bundle, given(ps, "ca-bundle") ? "--ca-bundle" : src));
	free(tmp);
	tmp = fs_env_setting(o, "AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint", &src);
	json_object_set_new(envj, "dual_stack",
	                    json_pack("{s:b,s:s}", "value", o->dual_stack, "source",
	                              given(ps, "dual-stack") ? "--dual-stack" : src));
	free(tmp);
	level = o->log_level < 0 ? "off"
	                         : log_levels[o->log_level >= LOG_DEBUG     ? 3
	                                      : o->log_level >= LOG_INFO    ? 2
	                                      : o->log_level >= LOG_WARNING ? 1
	                                                                    : 0];
	json_object_set_new(envj, "log",
	                    json_pack("{s:s,s:o,s:s}", "level", level, "MOUNTPOINT_LOG",
	                              o->log_filter ? json_string(o->log_filter) : json_null(),
	                              "destination",
	                              o->no_log          ? "none"
	                              : o->log_directory ? "file in --log-directory"
	                              : o->foreground    ? "stderr"
	                                                 : "syslog"));
	json_object_set_new(envj, "user_agent",
	                    json_string(o->user_agent ? o->user_agent : "hpcops/" HPCOPS_VERSION));
	json_object_set_new(root, "environment", envj);
	envj = NULL;
	json_object_set_new(root, "warnings", json_incref(ps->warnings));
	if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 || puts("") < 0 ||
	    fflush(stdout))
		rc = EXIT_REFUSED;
out:
	json_decref(envj);
	json_decref(root);
	free(region);
	free(ep);
	return rc;
}

/* ---- the command line ---- */

/* One short option (or a run like -fd). Returns 0 or an exit status. */
static int parse_short(struct fs_options *o, struct parse_state *ps, int argc, char **argv, int *i,
                       bool *fake)
{
	const char *a = argv[*i];

	for (size_t k = 1; a[k]; k++) {
		char c = a[k];
		const struct opt_desc *d = NULL;
		const char *val = NULL;
		int rc;

		if (o->helper_mode && strchr("fnsv", c)) {
			/* mount(8)'s helper flags: -f fake (parse, do not mount), -n no mtab,
			 * -s sloppy, -v verbose */
			if (c == 's')
				o->sloppy = true;
			if (c == 'f')
				*fake = true;
			continue;
		}
		if (o->helper_mode && (c == 't' || c == 'N')) {
			/* -t fuse.hpcops-mount, -N namespace: nothing to do here */
			if (!a[k + 1] && ++*i >= argc) {
				say(o, "-%c needs a value", c);
				return EXIT_USAGE;
			}
			return 0;
		}
		if (c == 'h') {
			usage(o, stdout);
			return 0x100;
		}
		if (c == 'V') {
			printf("%s %s (hpcops-mount, mount-s3 compatible)\n", prog_name(o),
			       HPCOPS_VERSION);
			return 0x100;
		}
		for (size_t j = 0; j < N_OPTS; j++)
			if (opt_table[j].short_name == c)
				d = &opt_table[j];
		if (!d) {
			say(o, "unknown option -%c (see %s --help)", c, prog_name(o));
			return EXIT_USAGE;
		}
		if (d->type != OPT_FLAG) {
			if (a[k + 1]) {
				val = a + k + 1;
			} else if (++*i < argc) {
				val = argv[*i];
			} else {
				say(o, "-%c needs a value (%s)", c, d->arg);
				return EXIT_USAGE;
			}
		}
		ps->given[opt_index(d)] = true;
		rc = opt_set(o, d, val);
		if (rc || val)
			return rc;
	}
	return 0;
}

static int parse_argv(struct fs_options *o, struct parse_state *ps, int argc, char **argv,
                      bool *fake)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0, rc;
	bool only_pos = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct opt_desc *d;
		const char *val = NULL, *eq;
		size_t len;

		if (only_pos || a[0] != '-' || !a[1]) {
			if (npos == 2) {
				say(o,
				    "unexpected argument '%s': only BUCKET[:PREFIX/] and DIR are "
				    "positional",
				    a);
				return EXIT_USAGE;
			}
			pos[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		if (!strcmp(a, "--help")) {
			usage(o, stdout);
			return 0x100;
		}
		if (!strcmp(a, "--version")) {
			printf("%s %s (hpcops-mount, mount-s3 compatible)\n", prog_name(o),
			       HPCOPS_VERSION);
			return 0x100;
		}
		if (a[1] == 'o') {
			const char *list = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);

			if (!list) {
				say(o, "-o needs a list of options");
				return EXIT_USAGE;
			}
			rc = opt_parse_o(o, ps->given, list);
			if (rc)
				return rc;
			continue;
		}
		if (a[1] != '-') {
			rc = parse_short(o, ps, argc, argv, &i, fake);
			if (rc)
				return rc;
			continue;
		}
		eq = strchr(a + 2, '=');
		len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		d = opt_find(a + 2, len);
		if (!d) {
			say(o, "unknown option %s (see %s --help)", a, prog_name(o));
			return EXIT_USAGE;
		}
		if (eq) {
			val = eq + 1;
		} else if (d->type != OPT_FLAG) {
			if (++i >= argc) {
				say(o, "--%s needs a value (%s)", d->name, d->arg);
				return EXIT_USAGE;
			}
			val = argv[i];
		}
		ps->given[opt_index(d)] = true;
		rc = opt_set(o, d, val);
		if (rc)
			return rc;
	}
	if (npos != 2) {
		say(o, "need BUCKET (or s3://BUCKET/PREFIX/) and DIR\n");
		usage(o, stderr);
		return EXIT_USAGE;
	}
	rc = parse_bucket_arg(o, pos[0]);
	if (rc)
		return rc;
	if (parse_mount_point(o, pos[1], ps->mount_point_problem, sizeof(ps->mount_point_problem)) <
	        0 &&
	    !ps->mount_point_problem[0])
		return EXIT_REFUSED;
	return 0;
}

int fs_options_parse(struct fs_options *o, int argc, char **argv)
{
	struct parse_state *ps = calloc(1, sizeof(*ps));
	const char *base = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
	bool fake = false;
	int rc;

	if (!ps)
		return EXIT_REFUSED;
	ps->warnings = json_array();
	free(o->prog);
	o->prog = strdup(base ? base + 1 : argc > 0 && argv[0] ? argv[0] : "hpcops-mount");
	if (!o->prog || !ps->warnings) {
		rc = EXIT_REFUSED;
		goto out;
	}
	/* run by mount(8) as /sbin/mount.fuse.hpcops-mount (or mount.mount-s3) */
	o->helper_mode = !strncmp(o->prog, "mount.", 6);
	rc = parse_argv(o, ps, argc, argv, &fake);
	if (rc == 0x100) {
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	rc = fs_env_read(o);
	if (rc)
		goto out;
	rc = check_combinations(o, ps);
	if (rc)
		goto out;
	if (o->user_agent_prefix &&
	    asprintf(&o->user_agent, "%s hpcops/%s", o->user_agent_prefix, HPCOPS_VERSION) < 0) {
		o->user_agent = NULL;
		rc = EXIT_REFUSED;
		goto out;
	}
	if (ps->mount_point_problem[0]) {
		if (!o->print_config && !fake) {
			say(o, "%s", ps->mount_point_problem);
			rc = EXIT_REFUSED;
			goto out;
		}
		warn(o, ps, "%s", ps->mount_point_problem);
	}
	if (o->print_config) {
		rc = print_config(o, ps);
		goto out;
	}
	if (fake) {
		rc = 0;
		goto out;
	}
	rc = FS_OPTIONS_MOUNT;
out:
	json_decref(ps->warnings);
	free(ps);
	return rc;
}
