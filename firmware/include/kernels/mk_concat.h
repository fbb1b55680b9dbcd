/*
 * mk_concat.h - one input's part of a concatenation, requantized through its table.
 * Python side: malak_pipe/mcu/ops/concat.py (one call per input).
 */
#ifndef MK_CONCAT_H
#define MK_CONCAT_H

#include "mk_arch.h"
#include "mk_lut.h"

/* For each of outer rows: inner values of in to out + row * out_inner + offset, copied (copy = 1:
 * the table is the identity) or looked up (mk_lut.h). */
MK_INLINE void mk_concat(const int8_t *restrict in, int8_t *restrict out, const int8_t *restrict table, int outer,
                         int inner, int out_inner, int offset, int copy)
{
    for (int o = 0; o < outer; o++) {
        const int8_t *src = in + o * inner;
        int8_t *dst = out + o * out_inner + offset;
        if (copy) {
            memcpy(dst, src, (size_t)inner);
        } else {
            mk_lut(src, dst, table, inner);
        }
    }
}

#endif /* MK_CONCAT_H */
