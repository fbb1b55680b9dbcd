/*
 * mk_softmax.h - int8 softmax over rows of n contiguous values, from an exp table.
 * Python side: malak_pipe/mcu/ops/softmax.py (the arithmetic is specified there).
 */
#ifndef MK_SOFTMAX_H
#define MK_SOFTMAX_H

#include "mk_arch.h"
#include "mk_requant.h"

MK_INLINE void mk_softmax(const int8_t *restrict in, int8_t *restrict out, const int32_t *restrict table, int rows,
                          int n, int frac, int32_t mult, int out_zp, int act_min, int act_max)
{
    for (int r = 0; r < rows; r++) {
        const int8_t *x = in + r * n;
        int8_t *y = out + r * n;
        int m = x[0];
        for (int i = 1; i < n; i++) {
            m = x[i] > m ? x[i] : m;
        }
        int32_t sum = 0;
        for (int i = 0; i < n; i++) {
            sum += table[m - x[i]];
        }
        const int64_t den = (int64_t)sum << frac;
        const int64_t half = den >> 1;
        for (int i = 0; i < n; i++) {
            const int64_t q = ((int64_t)table[m - x[i]] * mult + half) / den;
            y[i] = (int8_t)mk_clamp((int32_t)q + out_zp, act_min, act_max);
        }
    }
}

#endif /* MK_SOFTMAX_H */
