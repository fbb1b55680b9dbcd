/*
 * mk_add.h - elementwise add / sub with their own rescale (TFLite int8 ADD, SUB), broadcasting.
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
 * One output of TFLite's ADD (SUB with sub = 1): each input (x - zp) << left_shift is scaled by
 * its multiplier, the sum (difference) by the output multiplier. When every shift is a right
 * shift (the usual case) the same values come from SMMULR: |(x - zp) << (left_shift + 1)| < 2^31
 * for left_shift <= 22, and the scaled sum stays below 2^30.
 */
MK_INLINE int32_t mk_add_value(int32_t a, int32_t b, int zp_a, int zp_b, int out_zp, int32_t mult_a, int32_t shift_a,
                               int32_t mult_b, int32_t shift_b, int32_t mult_out, int32_t shift_out, int left_shift,
                               int sub)
{
    const int fast = left_shift <= 22 && shift_a <= 0 && shift_b <= 0 && shift_out < 0 && shift_out >= -22;
    if (fast) {
        const int ro = -shift_out;
        const int32_t off = (1 << (ro - 1)) + (int32_t)((uint32_t)out_zp << ro);
        const int32_t x = mk_rdbpot_pos(mk_smmulr((a - zp_a) << (left_shift + 1), mult_a), -shift_a);
        const int32_t y = mk_rdbpot_pos(mk_smmulr((b - zp_b) << (left_shift + 1), mult_b), -shift_b);
        int32_t v = mk_smmulr((sub ? x - y : x + y) << 1, mult_out);
        v += v >> 31;
        return (v + off) >> ro;
    }
    const int32_t x = mk_mbqm((int32_t)((uint32_t)(a - zp_a) << left_shift), mult_a, shift_a);
    const int32_t y = mk_mbqm((int32_t)((uint32_t)(b - zp_b) << left_shift), mult_b, shift_b);
    return mk_mbqm(sub ? x - y : x + y, mult_out, shift_out) + out_zp;
}

/*
 * out (oh, ow, oc) = a + b (a - b with sub = 1); each operand read with element strides
 * (ash, asw, asc), (bsh, bsw, bsc): 0 along its broadcast axes. Without broadcasting one flat
 * loop (every argument is a literal, so the test folds away).
 */
MK_INLINE void mk_add(const int8_t *restrict a, const int8_t *restrict b, int8_t *restrict out, int oh, int ow, int oc,
                      int ash, int asw, int asc, int bsh, int bsw, int bsc, int zp_a, int zp_b, int out_zp,
                      int32_t mult_a, int32_t shift_a, int32_t mult_b, int32_t shift_b, int32_t mult_out,
                      int32_t shift_out, int left_shift, int sub, int act_min, int act_max)
{
    if (asc == 1 && bsc == 1 && asw == oc && bsw == oc && ash == ow * oc && bsh == ow * oc) {
        const int n = oh * ow * oc;
        for (int i = 0; i < n; i++) {
            const int32_t v = mk_add_value(a[i], b[i], zp_a, zp_b, out_zp, mult_a, shift_a, mult_b, shift_b, mult_out,
                                           shift_out, left_shift, sub);
            out[i] = (int8_t)mk_clamp(v, act_min, act_max);
        }
        return;
    }
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            const int8_t *pa = a + y * ash + x * asw, *pb = b + y * bsh + x * bsw;
            int8_t *dst = out + (y * ow + x) * oc;
            for (int c = 0; c < oc; c++) {
                const int32_t v = mk_add_value(pa[c * asc], pb[c * bsc], zp_a, zp_b, out_zp, mult_a, shift_a, mult_b,
                                               shift_b, mult_out, shift_out, left_shift, sub);
                dst[c] = (int8_t)mk_clamp(v, act_min, act_max);
            }
        }
    }
}

#endif /* MK_ADD_H */
