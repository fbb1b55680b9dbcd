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

/* mk_add_value's fast form: every shift a right shift (the usual case), so the same values come
 * from SMMULR: |(x - zp) << (left_shift + 1)| < 2^31 for left_shift <= 22, and the scaled sum
 * stays below 2^30. */
MK_INLINE int mk_add_fast(int32_t shift_a, int32_t shift_b, int32_t shift_out, int left_shift)
{
    return left_shift <= 22 && shift_a <= 0 && shift_b <= 0 && shift_out < 0 && shift_out >= -22;
}

/* one input of the add, (x - zp) << left_shift scaled by its multiplier: a function of its byte */
MK_INLINE int32_t mk_add_input(int32_t x, int zp, int32_t mult, int32_t shift, int left_shift, int fast)
{
    if (fast) {
        return mk_rdbpot_pos(mk_smmulr((x - zp) << (left_shift + 1), mult), -shift);
    }
    return mk_mbqm((int32_t)((uint32_t)(x - zp) << left_shift), mult, shift);
}

/* the sum (difference) of the scaled inputs, scaled by the output multiplier, plus the zero point */
MK_INLINE int32_t mk_add_output(int32_t sum, int out_zp, int32_t mult_out, int32_t shift_out, int fast)
{
    if (fast) {
        const int ro = -shift_out;
        const int32_t off = (1 << (ro - 1)) + (int32_t)((uint32_t)out_zp << ro);
        int32_t v = mk_smmulr(sum << 1, mult_out);
        v += v >> 31;
        return (v + off) >> ro;
    }
    return mk_mbqm(sum, mult_out, shift_out) + out_zp;
}

/* One output of TFLite's ADD (SUB with sub = 1): each input (x - zp) << left_shift is scaled by
 * its multiplier, the sum (difference) by the output multiplier. */
MK_INLINE int32_t mk_add_value(int32_t a, int32_t b, int zp_a, int zp_b, int out_zp, int32_t mult_a, int32_t shift_a,
                               int32_t mult_b, int32_t shift_b, int32_t mult_out, int32_t shift_out, int left_shift,
                               int sub)
{
    const int fast = mk_add_fast(shift_a, shift_b, shift_out, left_shift);
    const int32_t x = mk_add_input(a, zp_a, mult_a, shift_a, left_shift, fast);
    const int32_t y = mk_add_input(b, zp_b, mult_b, shift_b, left_shift, fast);
    return mk_add_output(sub ? x - y : x + y, out_zp, mult_out, shift_out, fast);
}

/* t[v + 128] = mk_add_input(v) for every int8 v: an operand's scaled value looked up, not computed */
MK_SHARED void mk_add_table(int32_t *restrict t, int zp, int32_t mult, int32_t shift, int left_shift, int fast)
{
    for (int v = -128; v < 128; v++) {
        t[v + 128] = mk_add_input(v, zp, mult, shift, left_shift, fast);
    }
}

/* n outputs of a same-shape add from the operands' tables ta, tb (mk_add_table) */
MK_INLINE void mk_add_rows_t(const int8_t *a, const int8_t *b, int8_t *dst, int n, const int32_t *restrict ta,
                             const int32_t *restrict tb, int out_zp, int32_t mult_out, int32_t shift_out, int fast,
                             int sub, int act_min, int act_max)
{
    for (int i = 0; i < n; i++) {
        const int32_t x = ta[a[i] + 128], y = tb[b[i] + 128];
        dst[i] = (int8_t)mk_clamp(mk_add_output(sub ? x - y : x + y, out_zp, mult_out, shift_out, fast), act_min,
                                  act_max);
    }
}

/*
 * out (oh, ow, oc) = a + b (a - b with sub = 1); each operand read with element strides
 * (ash, asw, asc), (bsh, bsw, bsc): 0 along its broadcast axes. Without broadcasting one flat
 * loop (every argument is a literal, so the test folds away); with tables = 1 (the code
 * generator's choice for large maps) each operand's scaled values are first tabulated in
 * scratch (2 x 256 words), so an output costs two lookups and the output scaling.
 */
MK_INLINE void mk_add(const int8_t *restrict a, const int8_t *restrict b, int8_t *restrict out,
                      int32_t *restrict scratch, int oh, int ow, int oc, int ash, int asw, int asc, int bsh, int bsw,
                      int bsc, int zp_a, int zp_b, int out_zp, int32_t mult_a, int32_t shift_a, int32_t mult_b,
                      int32_t shift_b, int32_t mult_out, int32_t shift_out, int left_shift, int sub, int act_min,
                      int act_max, int tables)
{
    if (asc == 1 && bsc == 1 && asw == oc && bsw == oc && ash == ow * oc && bsh == ow * oc) {
        const int n = oh * ow * oc;
        if (tables) {
            const int fast = mk_add_fast(shift_a, shift_b, shift_out, left_shift);
            mk_add_table(scratch, zp_a, mult_a, shift_a, left_shift, fast);
            mk_add_table(scratch + 256, zp_b, mult_b, shift_b, left_shift, fast);
            mk_add_rows_t(a, b, out, n, scratch, scratch + 256, out_zp, mult_out, shift_out, fast, sub, act_min,
                          act_max);
            return;
        }
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
