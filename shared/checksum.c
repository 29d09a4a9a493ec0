/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checksum: CRC32C through ISA-L, CRC64-NVME by table (see checksum.h).
 */
#include "checksum.h"

#include <limits.h>
#include <pthread.h>

#include <isa-l/crc.h>

#include "util.h"

uint32_t checksum_crc32c(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;
	unsigned int c = ~crc;

	/* ISA-L takes an int length: parts reach 5 GiB. */
	while (n) {
		int k = n > (1u << 30) ? (1 << 30) : (int)n;

		c = crc32_iscsi((unsigned char *)p, k, c);
		p += k;
		n -= (size_t)k;
	}
	return ~c;
}

/* CRC-64/NVME: reflected, polynomial 0xad93d23594c93659, init and xorout all ones. */
#define CRC64NVME_POLY_REFL 0x9a6c9329ac4bc9b5ULL

static uint64_t crc64_table[8][256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint64_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC64NVME_POLY_REFL : c >> 1;
		crc64_table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc64_table[t][i] = (crc64_table[t - 1][i] >> 8) ^
			                    crc64_table[0][crc64_table[t - 1][i] & 0xff];
}

uint64_t checksum_crc64nvme(uint64_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t c = ~crc;

	pthread_once(&crc64_once, crc64_init);
	while (n && ((uintptr_t)p & 7)) {
		c = crc64_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		n--;
	}
	while (n >= 8) {
		uint64_t w = c;

		/* little-endian load (x86_64, aarch64): byte i of the word is p[i] */
		w ^= (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
		     (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
		     (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
		c = crc64_table[7][w & 0xff] ^ crc64_table[6][(w >> 8) & 0xff] ^
		    crc64_table[5][(w >> 16) & 0xff] ^ crc64_table[4][(w >> 24) & 0xff] ^
		    crc64_table[3][(w >> 32) & 0xff] ^ crc64_table[2][(w >> 40) & 0xff] ^
		    crc64_table[1][(w >> 48) & 0xff] ^ crc64_table[0][w >> 56];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = crc64_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

void checksum_base64_u32(uint32_t v, char out[9])
{
	unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                       (unsigned char)(v >> 8), (unsigned char)v};

	util_base64(be, 4, out);
}

void checksum_base64_u64(uint64_t v, char out[13])
{
	unsigned char be[8];

	for (int i = 0; i < 8; i++)
		be[i] = (unsigned char)(v >> (56 - 8 * i));
	util_base64(be, 8, out);
}
