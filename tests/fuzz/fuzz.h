/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz: what the libFuzzer harnesses in tests/fuzz share: a check that
 * stops the run with a message (libFuzzer then saves the input as a crash),
 * a hash of the input and a small PRNG seeded from it, so that every choice
 * a harness makes (chunk sizes, limits) is a function of the input alone and
 * a saved crash reproduces exactly.
 */
#ifndef HPCOPS_FUZZ_H
#define HPCOPS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test does not hold: report and abort. */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: fuzz check failed: %s: ", __FILE__, __LINE__,      \
			        #cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * Whether the check named @what is switched off by HPCOPS_FUZZ_SKIP (a
 * comma-separated list): to hunt for other bugs while a known one is open.
 * CI never sets it.
 */
static inline bool fuzz_skip(const char *what)
{
	const char *s = getenv("HPCOPS_FUZZ_SKIP");
	size_t n = strlen(what);

	for (; s && *s; s += strcspn(s, ","), s += *s == ',')
		if (strcspn(s, ",") == n && !strncmp(s, what, n))
			return true;
	return false;
}

/* FNV-1a over the input. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < size; i++) {
		h ^= data[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* splitmix64: the next pseudo-random number from *state. */
static inline uint64_t fuzz_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A NUL-terminated heap copy of the input (abort on ENOMEM: not a finding). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	for (size_t i = 0; i < size; i++)
		s[i] = (char)data[i];
	s[size] = '\0';
	return s;
}

#endif
