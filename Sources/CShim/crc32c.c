/* CRC-32C for sync frames; see include/crc32c.h. The hardware path runs at several GB/s, so the
   check costs nothing next to the disk and the wire, even in a debug build. */
#include "crc32c.h"
#include <string.h>
#include <pthread.h>

static uint32_t ud_crc_table[256];
static pthread_once_t ud_crc_once = PTHREAD_ONCE_INIT;

static void ud_crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        ud_crc_table[i] = c;
    }
}

static uint32_t ud_crc_soft(uint32_t crc, const unsigned char *p, size_t len) {
    pthread_once(&ud_crc_once, ud_crc_init);
    while (len--) crc = ud_crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t ud_crc_hw(uint32_t crc, const unsigned char *p, size_t len) {
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8; len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t ud_crc32c(uint32_t crc, const void *buf, size_t len) {
    const unsigned char *p = buf;
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return ~ud_crc_hw(crc, p, len);
#endif
    return ~ud_crc_soft(crc, p, len);
}
