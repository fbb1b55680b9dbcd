/*
 * mk_block3.h - the streamed block on the fast kernels: [1x1 expand ->] depthwise 3-wide
 * (multiplier 1) -> 1x1 project [-> residual add], one output row at a time.
 *
 * The same schedule as mk_block (mk_block.h), with the routines the layers run on alone when
 * their shapes pick mk_pw and mk_dwconv3: each input row the depthwise windows need is expanded
 * once (mk_pw on the row's pixels) into a row of int8, widened into mk_dwconv3's q15 ring
 * (channel by channel, kh slots), the kh slots of an output row are convolved channel by channel
 * (mk_dw3_row) into one row, which is projected (mk_pw on the row) and, with a residual, added
 * to the residual operand's row. Same constants and arithmetic as the unfused kernels, so the
 * outputs are those of the layers run one by one. Python side: malak_pipe/mcu/ops/block3.py.
 *
 * resident = 1 (both pointwise layers' weights in one block of channels each: e_cb, p_cb all of
 * them): the two blocks are laid out once, before the first row, and stay in scratch (the
 * expand's, the projection's, then one pixel pair's q15 column); otherwise each row's mk_pw
 * lays its blocks out again. scratch: that region (pws bytes), the ring (mid_c x kh x wq
 * halfwords), the expanded row (in_w x mid_c, with an expand), the depthwise row (out_w x mid_c) and, with a residual, the
 * projected row (out_w x out_c) and the add's two operand tables (2 x 256 words, built once:
 * mk_add_table); each rounded up to 8 bytes.
 *
 * out may be in itself under mk_block's condition (a residual add of the input at stride 1):
 * output row oy is written after the ring took input rows up to oy + kh - 1 - pt >= oy.
 */
#ifndef MK_BLOCK3_H
#define MK_BLOCK3_H

#include "mk_arch.h"
#include "mk_block.h"
#include "mk_dwconv.h"
#include "mk_pw.h"

#define MK_ROUND8(n) (((n) + 7) & ~7)

/*
 * in: (in_h, in_w, in_c); the expand (expand = 1) makes mid_c channels (else mid_c = in_c), the
 * depthwise (kh x 3, stride sh, sw) keeps them, the projection makes out_c; out: (out_h, out_w,
 * out_c). With residual = 1 the projected row is added to row oy of res by the add's arithmetic.
 */
MK_INLINE void mk_block3(const int8_t *in, const int8_t *res, int8_t *out, int8_t *restrict scratch,
                         const int8_t *restrict ew, const mk_chan_t *restrict ech, const int8_t *restrict dw,
                         const mk_chan_t *restrict dch, const int8_t *restrict pw, const mk_chan_t *restrict pch,
                         int in_h, int in_w, int in_c, int mid_c, int out_h, int out_w, int out_c, int kh, int sh,
                         int sw, int pt, int pl, int pws, int resident, int expand, int e_k2, int e_cb, int e_act_min,
                         int e_act_max, int e_fast, int mid_zp, int d_out_zp, int d_act_min, int d_act_max,
                         int d_fast, int p_k2, int p_cb, int p_out_zp, int p_act_min, int p_act_max, int p_fast,
                         int residual, int res_first, int zp_a, int zp_b, int add_zp, int32_t mult_a,
                         int32_t shift_a, int32_t mult_b, int32_t shift_b, int32_t mult_out, int32_t shift_out,
                         int left_shift, int sub, int add_min, int add_max) /* the add's arguments in mk_add's order */
{
    const int wq = ((((out_w + 1) & ~1) - 1) * sw + 4 + 1) & ~1;
    const int cs = kh * wq;
    int32_t *pwscratch = (int32_t *)(void *)scratch;
    int16_t *ring = (int16_t *)(void *)(scratch + MK_ROUND8(pws));
    int8_t *erow = (int8_t *)(ring + mid_c * cs);
    int8_t *drow = erow + (expand ? MK_ROUND8(in_w * mid_c) : 0);
    int8_t *prow = drow + MK_ROUND8(out_w * mid_c);
    const int n = out_w * out_c;
    const int32_t *eblock = pwscratch, *pblock = eblock + (expand ? mk_pw_block_words(mid_c, e_k2) : 0);
    int32_t *col = pwscratch + (pblock - eblock) + mk_pw_block_words(out_c, p_k2);
    if (resident) {
        if (expand) {
            mk_pw_block_weights(pwscratch, ew, ech, mid_c, e_k2, e_fast);
        }
        mk_pw_block_weights(pwscratch + (pblock - eblock), pw, pch, out_c, p_k2, p_fast);
    }
    int32_t *ta = (int32_t *)(void *)(prow + MK_ROUND8(n)); /* the add's operand tables (mk_add_table) */
    const int add_fast = mk_add_fast(shift_a, shift_b, shift_out, left_shift);
    if (residual) {
        mk_add_table(ta, zp_a, mult_a, shift_a, left_shift, add_fast);
        mk_add_table(ta + 256, zp_b, mult_b, shift_b, left_shift, add_fast);
    }
    int loaded = -1 - pt; /* the last input row widened into the ring */
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * sh - pt;
        for (int iy = loaded + 1; iy < iy0 + kh; iy++) {
            if (iy >= iy0) {
                int16_t *slot = ring + ((iy + kh * 64) % kh) * wq;
                if (expand && iy >= 0 && iy < in_h) {
                    const int8_t *src = in + iy * in_w * in_c;
                    if (resident) {
                        mk_pw_pixels(src, erow, col, eblock, ech, in_w, in_c, e_k2, mid_c, mid_c, mid_zp, e_act_min,
                                     e_act_max, e_fast);
                    } else {
                        mk_pw(src, erow, pwscratch, ew, ech, in_w, in_c, e_k2, mid_c, e_cb, mid_zp, e_act_min,
                              e_act_max, e_fast);
                    }
                    mk_dw_row_q15(slot, erow, 0, 1, in_w, mid_c, wq, cs, pl, mid_zp);
                } else {
                    mk_dw_row_q15(slot, in, iy, in_h, in_w, mid_c, wq, cs, pl, mid_zp);
                }
            }
            loaded = iy;
        }
        const int phase = (iy0 + kh * 64) % kh;
        for (int c = 0; c < mid_c; c++) {
            mk_dw3_row(drow + c, ring + c * cs, phase, dw + 4 * kh * c, dch + c, out_w, mid_c, kh, sw, wq, d_out_zp,
                       d_act_min, d_act_max, d_fast);
        }
        int8_t *dst = out + oy * n;
        int8_t *proj = residual ? prow : dst;
        if (resident) {
            mk_pw_pixels(drow, proj, col, pblock, pch, out_w, mid_c, p_k2, out_c, out_c, p_out_zp, p_act_min,
                         p_act_max, p_fast);
        } else {
            mk_pw(drow, proj, pwscratch, pw, pch, out_w, mid_c, p_k2, out_c, p_cb, p_out_zp, p_act_min, p_act_max,
                  p_fast);
        }
        if (residual) {
            const int8_t *r = res + oy * n;
            mk_add_rows_t(res_first ? r : prow, res_first ? prow : r, dst, n, ta, ta + 256, add_zp, mult_out,
                          shift_out, add_fast, sub, add_min, add_max);
        }
    }
}

#endif /* MK_BLOCK3_H */
