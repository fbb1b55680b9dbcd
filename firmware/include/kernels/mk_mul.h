/*
 * mk_mul.h - elementwise multiply with its own rescale (TFLite int8 MUL), broadcasting.
 * Python side: malak_pipe/mcu/ops/mul.py.
 */
#ifndef MK_MUL_H
#define MK_MUL_H

#include "mk_arch.h"
#include "mk_requant.h"

/* requant((a - zp_a) * (b - zp_b)) with a mk_chan_t record of mult and off or shift (mk_requant.h) */
MK_INLINE int8_t mk_mul_value(int32_t a, int32_t b, int zp_a, int zp_b, int out_zp, const mk_chan_t *ch, int fast,
                              int lsh, int act_min, int act_max)
{
    return (int8_t)mk_clamp(mk_requant((a - zp_a) * (b - zp_b), ch, fast, lsh, out_zp), act_min, act_max);
}

/*
 * out (oh, ow, oc) = a * b, each operand read with element strides (ash, asw, asc),
 * (bsh, bsw, bsc): 0 along its broadcast axes (an (H, W, C) map times a (1, 1, C) gate: the gate's
 * strides are 0, 0, 1). Without broadcasting one flat loop.
 */
MK_INLINE void mk_mul(const int8_t *restrict a, const int8_t *restrict b, int8_t *restrict out, int oh, int ow, int oc,
                      int ash, int asw, int asc, int bsh, int bsw, int bsc, int zp_a, int zp_b, int out_zp,
                      int32_t mult, int32_t off, int32_t shift, int fast, int lsh, int act_min, int act_max)
{
    const mk_chan_t ch = {0, mult, fast ? off : shift}; /* the fast form finds its shift in off */
    if (asc == 1 && bsc == 1 && asw == oc && bsw == oc && ash == ow * oc && bsh == ow * oc) {
        const int n = oh * ow * oc;
        for (int i = 0; i < n; i++) {
            out[i] = mk_mul_value(a[i], b[i], zp_a, zp_b, out_zp, &ch, fast, lsh, act_min, act_max);
        }
        return;
    }
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            const int8_t *pa = a + y * ash + x * asw, *pb = b + y * bsh + x * bsw;
            int8_t *dst = out + (y * ow + x) * oc;
            for (int c = 0; c < oc; c++) {
                dst[c] = mk_mul_value(pa[c * asc], pb[c * bsc], zp_a, zp_b, out_zp, &ch, fast, lsh, act_min, act_max);
            }
        }
    }
}

#endif /* MK_MUL_H */
