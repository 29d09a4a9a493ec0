/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpcops-launch: creates the cluster stack, runs workloads through Slurm, always deletes the stack.
 * (Entry point; the pipeline arrives with the launcher issue.)
 */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: hpcops-launch COMMAND [options]\n"
		   "\n"
		   "Run HPC workloads on an ephemeral cluster.\n"
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
			printf("hpcops-launch %s\n", HPCOPS_VERSION);
			return 0;
		}
	}
	usage(stderr);
	return 2;
}
