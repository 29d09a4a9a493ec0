/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checksum: the body checksums S3 takes (x-amz-checksum-crc32c,
 * x-amz-checksum-crc64nvme) and the block cache keeps. CRC32C comes from
 * ISA-L (Debian's libisal: SSE4.2 / PCLMUL / AVX-512 code picked at run
 * time), several GB/s a core; CRC64-NVME, which ISA-L 2.30 lacks, from a
 * slicing-by-8 table. Pure functions, thread-safe.
 */
#ifndef HPCOPS_CHECKSUM_H
#define HPCOPS_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/**
 * checksum_crc32c() - CRC-32C (Castagnoli) of @n bytes, continuing from
 * @crc (0 to start): checksum_crc32c(checksum_crc32c(0, a), b) is the CRC
 * of a then b.
 */
uint32_t checksum_crc32c(uint32_t crc, const void *data, size_t n);

/** checksum_crc64nvme() - CRC-64/NVME of @n bytes, continuing from @crc (0 to start). */
uint64_t checksum_crc64nvme(uint64_t crc, const void *data, size_t n);

/** checksum_base64_u32() - base64 of big-endian @v (the header form) into @out (9 bytes). */
void checksum_base64_u32(uint32_t v, char out[9]);

/** checksum_base64_u64() - base64 of big-endian @v into @out (13 bytes). */
void checksum_base64_u64(uint64_t v, char out[13]);

#endif
