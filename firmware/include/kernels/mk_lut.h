/*
 * mk_lut.h - an int8 lookup table (activations, requantization): out[i] = table[(uint8)in[i]].
 * Python side: malak_pipe/mcu/ops/lut.py (the table is indexed by the byte of the code).
 */
#ifndef MK_LUT_H
#define MK_LUT_H

#include "mk_arch.h"

/* Four values per iteration: one word load, four byte lookups, one word store. */
MK_INLINE void mk_lut(const int8_t *restrict in, int8_t *restrict out, const int8_t *restrict table, int n)
{
    const uint8_t *t = (const uint8_t *)table;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t v = (uint32_t)mk_ld32(in + i);
        const uint32_t r = (uint32_t)t[v & 0xFFu] | ((uint32_t)t[(v >> 8) & 0xFFu] << 8) |
                           ((uint32_t)t[(v >> 16) & 0xFFu] << 16) | ((uint32_t)t[v >> 24] << 24);
        mk_st32(out + i, (int32_t)r);
    }
    for (; i < n; i++) {
        out[i] = (int8_t)t[(uint8_t)in[i]];
    }
}

#endif /* MK_LUT_H */
