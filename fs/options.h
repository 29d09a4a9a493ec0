/* SPDX-License-Identifier: Apache-2.0 */
/*
 * options: hpcops-mount's command line. Every option of Mountpoint's
 * mount-s3 (same spelling, value syntax and meaning; tests/data/
 * mount-s3-options.tsv lists them with the release they come from) plus
 * hpcops' own, as flags and in the -o / fstab form, the bucket argument
 * (BUCKET, BUCKET:PREFIX/, s3://BUCKET/PREFIX/, an ARN), DIR or /dev/fd/N,
 * the AWS_* and MOUNTPOINT_LOG environment, mount(8) helper conventions,
 * and --print-config. Parsing needs neither credentials nor the network.
 */
#ifndef HPCOPS_FS_OPTIONS_H
#define HPCOPS_FS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* --metadata-ttl special values (seconds otherwise). */
#define FS_TTL_MINIMAL    0.0 /* "minimal": revalidate on every access */
#define FS_TTL_INDEFINITE 1e9 /* "indefinite": never revalidate */
#define FS_TTL_DEFAULT    1.0 /* see other nodes' writes within about a second */

/* fs_options_parse(): go on and mount (any other value is the exit status). */
#define FS_OPTIONS_MOUNT (-1)

/** --bucket-type. */
enum fs_bucket_type {
	FS_BUCKET_AUTO = 0,    /* not given: inferred from the name (--x-s3 = directory) */
	FS_BUCKET_GENERAL = 1, /* general-purpose */
	FS_BUCKET_DIRECTORY,   /* directory (S3 Express One Zone) */
};

/** --upload-checksums. */
enum fs_checksum {
	FS_CHECKSUM_CRC32C = 0, /* mount-s3's default */
	FS_CHECKSUM_CRC64NVME,
	FS_CHECKSUM_OFF,
	FS_CHECKSUM_MD5, /* hpcops: Content-MD5, for servers that verify only that */
};

/** --log-format (hpcops). */
enum fs_log_format {
	FS_LOG_TEXT = 0,
	FS_LOG_KEYVALUE,
	FS_LOG_JSON,
};

/** AWS_RETRY_MODE (environment, as in the AWS SDKs). */
enum fs_retry_mode {
	FS_RETRY_STANDARD = 0,
	FS_RETRY_ADAPTIVE,
	FS_RETRY_LEGACY,
};

/**
 * Every command-line / -o option and what the environment adds, filled by
 * fs_options_parse(). Strings and the bind array are malloc'd and owned by
 * the struct: fs_options_free(). Fields marked (not in effect) are parsed
 * and shown by --print-config but change nothing yet.
 */
struct fs_options {
	/* the two positional arguments */
	char *bucket;       /* bucket name, access point alias or ARN */
	char *prefix;       /* "" or "a/b/" (always ends in '/') */
	char *mountpoint;   /* realpath of DIR, or "/dev/fd/N" as given */
	int mount_fd;       /* N of DIR = /dev/fd/N (an open /dev/fuse fd), else -1 */
	bool bucket_is_uri; /* the bucket was given as s3://BUCKET[/PREFIX/] */
	bool dead_mount;    /* DIR is a dead FUSE mount, to clean up first (--auto-unmount) */

	/* S3 access */
	char *region;          /* --region; NULL = from the environment / us-east-1 */
	char *endpoint_url;    /* --endpoint-url (not the environment: see fs_options_endpoint) */
	bool force_path_style; /* --force-path-style */
	char *profile;         /* --profile */
	bool no_sign_request;  /* --no-sign-request */
	char *ca_bundle;       /* --ca-bundle, else AWS_CA_BUNDLE */

	/* mount-s3 bucket options */
	bool transfer_acceleration; /* --transfer-acceleration (endpoint: fs_options_endpoint) */
	bool dual_stack;            /* --dual-stack or AWS_USE_DUALSTACK_ENDPOINT=true */
	bool requester_pays;        /* --requester-pays: x-amz-request-payer */
	enum fs_bucket_type bucket_type;   /* --bucket-type as given */
	char *storage_class;               /* --storage-class for new objects */
	char *expected_bucket_owner;       /* --expected-bucket-owner */
	char *sse;                         /* --sse aws:kms|aws:kms:dsse|AES256 */
	char *sse_kms_key_id;              /* --sse-kms-key-id ARN */
	enum fs_checksum upload_checksums; /* --upload-checksums */
	bool infer_content_type;           /* --infer-content-type */

	/* permissions and ownership */
	bool read_only;   /* --read-only */
	bool allow_other; /* --allow-other */
	bool allow_root;  /* --allow-root */
	uid_t uid;        /* --uid (default: the caller's) */
	gid_t gid;        /* --gid */
	mode_t file_mode; /* --file-mode (default 0644) */
	mode_t dir_mode;  /* --dir-mode (default 0755) */

	/* write side */
	bool allow_overwrite;     /* --allow-overwrite */
	bool allow_delete;        /* --allow-delete */
	bool allow_append;        /* --allow-append (hpcops) */
	bool allow_rename;        /* --allow-rename (hpcops) */
	bool incremental_upload;  /* --incremental-upload (directory buckets only) */
	uint64_t part_size;       /* --part-size as given (0 = not given; sets both below) */
	uint64_t write_part_size; /* --write-part-size (default 8 MiB) */

	/* process */
	bool foreground;               /* -f/--foreground */
	bool debug;                    /* -d/--debug */
	bool debug_crt;                /* --debug-crt: the engine's debug lines (as --debug) */
	bool no_log;                   /* --no-log */
	bool log_metrics;              /* --log-metrics */
	char *log_directory;           /* -l/--log-directory */
	enum fs_log_format log_format; /* --log-format */
	int log_level;                 /* effective: LOG_INFO, LOG_DEBUG with -d, -1 with --no-log,
	                                  MOUNTPOINT_LOG overrides both */
	char *log_filter;              /* MOUNTPOINT_LOG as found, or NULL */
	bool auto_unmount;             /* --auto-unmount */
	int max_threads;               /* --max-threads: FUSE worker threads (default 16) */

	/* network */
	uint64_t maximum_throughput_gbps; /* --maximum-throughput-gbps, 0 = not given */
	char **bind;                      /* --bind IFACE (repeatable), NULL-terminated */
	size_t n_bind;
	char *user_agent_prefix;   /* --user-agent-prefix */
	char *user_agent;          /* "PREFIX hpcops/VERSION" with a prefix, else NULL (default) */
	double max_retry_duration; /* --max-retry-duration seconds (default 120) */
	double check_timeout;      /* --check-timeout seconds (default 10) */
	int max_attempts;          /* AWS_MAX_ATTEMPTS, 0 = the transfer engine's default */
	enum fs_retry_mode retry_mode; /* AWS_RETRY_MODE (default standard) */

	/* metrics */
	char *metrics_file;            /* --metrics-file PATH */
	int prometheus_port;           /* --prometheus-port PORT on 127.0.0.1, 0 = none */
	char *otlp_endpoint;           /* --otlp-endpoint URL (not in effect: warned) */
	uint64_t otlp_export_interval; /* --otlp-export-interval seconds (not in effect) */

	/* reading and caching */
	double metadata_ttl;            /* --metadata-ttl in seconds; FS_TTL_* */
	bool metadata_ttl_set;          /* --metadata-ttl was given */
	double negative_metadata_ttl;   /* --negative-metadata-ttl */
	bool negative_metadata_ttl_set; /* given; else it follows metadata_ttl */
	char *cache_dir;                /* --cache DIR, NULL = no block cache */
	uint64_t max_cache_size;        /* --max-cache-size bytes (0 = keep 5% of the disk free) */
	uint64_t cache_block_size;      /* --cache-block-size bytes (default 1 MiB) */
	char *cache_xz;                 /* --cache-xz BUCKET: the cluster's shared block cache */
	uint64_t read_part_size;        /* --read-part-size (default 8 MiB) */
	uint64_t memory_limit;          /* --memory-limit, or --memory-target (default 512 MiB) */
	uint64_t memory_target;         /* --memory-target as given in bytes, 0 = not given */

	/* how we were run */
	char *prog;        /* basename of argv[0], for messages */
	bool helper_mode;  /* run as mount.TYPE by mount(8): -f is "fake", -n/-s/-v/-t taken */
	bool sloppy;       /* mount(8) -s: unknown -o words are warned about and ignored */
	bool print_config; /* --print-config */
};

/** fs_options_init() - the defaults (zeroes the struct first). */
void fs_options_init(struct fs_options *o);

/**
 * fs_options_parse() - parse @argv into @o (after fs_options_init()), read
 * the environment, check the combinations mount-s3 refuses, and handle
 * --help, --version and --print-config (printed on stdout). Messages for
 * bad input go to stderr. Returns FS_OPTIONS_MOUNT to go on, else the exit
 * status: 0 (help/version/print-config/mount -f), 2 (bad command line, as
 * mount-s3's parser), 1 (what mount-s3 refuses at mount time, e.g.
 * --sse-kms-key-id with --sse AES256).
 */
int fs_options_parse(struct fs_options *o, int argc, char **argv);

/** fs_options_free() - free what @o owns; leaves it zeroed. */
void fs_options_free(struct fs_options *o);

/**
 * fs_options_endpoint() - the S3 endpoint URL as mount-s3 and the AWS SDKs
 * resolve it: --endpoint-url, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL
 * (unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), else AWS for @region,
 * with the dual-stack and Transfer Acceleration variants.
 * @out:    receives a heap string the caller frees.
 * @source: if not NULL, receives where it came from (static string).
 * Returns 0, or -1 with @err holding the S3 endpoint rules' message
 * (e.g. dual-stack with a custom endpoint).
 */
int fs_options_endpoint(const struct fs_options *o, const char *region, char **out,
                        const char **source, char *err, size_t errlen);

/** fs_options_is_directory_bucket() - --bucket-type, else a name ending in --x-s3/--xa-s3. */
bool fs_options_is_directory_bucket(const struct fs_options *o);

/** fs_checksum_name() - "crc32c", "crc64nvme", "off" or "md5". */
const char *fs_checksum_name(enum fs_checksum c);

#endif
