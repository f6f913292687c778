/* CRC-32C (Castagnoli), the check value of every sync frame: the SSE4.2 instruction where the CPU
   has it, a table otherwise (same result). */
#ifndef UDOCKER_CSHIM_CRC32C_H
#define UDOCKER_CSHIM_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Continues `crc` (0 to start) over `len` bytes of `buf`. */
uint32_t ud_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
