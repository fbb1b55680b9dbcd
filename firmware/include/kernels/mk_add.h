/*
 * mk_add.h - elementwise add with its own rescale (TFLite int8 ADD).
 * Python side: malak_pipe/mcu/ops/add.py.
 */
#ifndef MK_ADD_H
#define MK_ADD_H

#include "mk_arch.h"
#include "mk_requant.h"


/* RoundingDivideByPOT for r >= 0 (see mk_requant.h) */
MK_INLINE int32_t mk_rdbpot_pos(int32_t v, int r)
{
    return r == 0 ? v : (v + (v >> 31) + (1 << (r - 1))) >> r;
}

/*
 * Elementwise add with its own rescale (TFLite int8 ADD): each input (x - zp) << left_shift is
 * scaled by its multiplier, the sum by the output multiplier. When every shift is a right shift
 * (the usual case) the same values come from SMMULR: |(x - zp) << (left_shift + 1)| < 2^31 for
 * left_shift <= 22, and the scaled sum stays below 2^30.
 */
MK_INLINE void mk_add(const int8_t *restrict a, const int8_t *restrict b, int8_t *restrict out, int n, int zp_a,
                      int zp_b, int out_zp, int32_t mult_a, int32_t shift_a, int32_t mult_b, int32_t shift_b,
                      int32_t mult_out, int32_t shift_out, int left_shift, int act_min, int act_max)
{
    const int fast = left_shift <= 22 && shift_a <= 0 && shift_b <= 0 && shift_out < 0 && shift_out >= -22;
    if (fast) {
        const int ra = -shift_a, rb = -shift_b, ro = -shift_out;
        const int32_t off = (1 << (ro - 1)) + (int32_t)((uint32_t)out_zp << ro);
        for (int i = 0; i < n; i++) {
            const int32_t x = mk_smmulr((a[i] - zp_a) << (left_shift + 1), mult_a);
            const int32_t y = mk_smmulr((b[i] - zp_b) << (left_shift + 1), mult_b);
            int32_t v = mk_smmulr((mk_rdbpot_pos(x, ra) + mk_rdbpot_pos(y, rb)) << 1, mult_out);
            v += v >> 31;
            out[i] = (int8_t)mk_clamp((v + off) >> ro, act_min, act_max);
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        const int32_t x = (int32_t)((uint32_t)(a[i] - zp_a) << left_shift);
        const int32_t y = (int32_t)((uint32_t)(b[i] - zp_b) << left_shift);
        const int32_t sum = mk_mbqm(x, mult_a, shift_a) + mk_mbqm(y, mult_b, shift_b);
        out[i] = (int8_t)mk_clamp(mk_mbqm(sum, mult_out, shift_out) + out_zp, act_min, act_max);
    }
}

#endif /* MK_ADD_H */
