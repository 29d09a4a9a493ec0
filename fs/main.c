/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpcops-mount: maps an S3 bucket as a POSIX filesystem with FUSE3.
 * (Entry point; the filesystem itself arrives with the mount issues.)
 */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: hpcops-mount [options] BUCKET[:PREFIX/] DIR\n"
		   "\n"
		   "Mount an S3 bucket as a filesystem.\n"
		   "\n"
		   "  -h, --help       show this help and exit\n"
		   "  -V, --version    show the version and exit\n");
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			printf("hpcops-mount %s\n", HPCOPS_VERSION);
			return 0;
		}
	}
	usage(stderr);
	return 2;
}
