/*
 * mk_block.h - a streamed block: [1x1 expand ->] depthwise -> 1x1 project [-> residual add],
 * one output row at a time, the expanded and depthwise tensors never stored whole.
 *
 * Each input row the depthwise windows need is expanded once (mk_conv on one row), straight
 * into a ring of kh padded rows (the dw input's zero point in the padding); the kh rows of an
 * output row are depthwise-convolved into one row, projected (mk_conv on one row) and, with a
 * residual, added to the residual operand's row (mk_add on one row). Every value is computed
 * once and with the same arithmetic and constants as the unfused kernels, so the outputs are
 * those of the layers run one by one. int8 weights only (wbits = 8 in its mk_conv calls:
 * fusion.py keeps layers with 4-bit weights out of blocks). Python side:
 * malak_pipe/mcu/ops/block.py (the step) and malak_pipe/mcu/fusion.py (which layers form a block).
 *
 * scratch: col (k4 words, k4 = max(in_c, dw_c) rounded up to 4: mk_conv's two q15 columns),
 * then the ring (kh x wp x mid_c, wp = (out_w - 1) * sw + kw), the depthwise row (out_w x dw_c,
 * rounded up to 4) and, with a residual, the projected row (out_w x out_c).
 *
 * out may be in itself (the planner places it there when the block adds its own input at stride
 * 1 and nothing reads the input later): output row oy is written after the ring took input rows
 * up to oy + kh - 1 - pt >= oy and after the add read row oy, so no input byte is overwritten
 * before its last read. Hence no restrict on in, res, out.
 */
#ifndef MK_BLOCK_H
#define MK_BLOCK_H

#include "mk_arch.h"
#include "mk_requant.h"
#include "mk_add.h"
#include "mk_conv.h"
#include "mk_dwconv.h"

/* n bytes of v from dst, a word at a time (the C library's memset is a call, and slow on the target) */
MK_INLINE void mk_block_fill(int8_t *dst, int n, int v)
{
    const int32_t v4 = (int32_t)(0x01010101u * (uint8_t)v);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        mk_st32(dst + i, v4);
    }
    for (; i < n; i++) {
        dst[i] = (int8_t)v;
    }
}

/* n bytes from src to dst, a word at a time */
MK_INLINE void mk_block_copy(int8_t *restrict dst, const int8_t *restrict src, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        mk_st32(dst + i, mk_ld32(src + i));
    }
    for (; i < n; i++) {
        dst[i] = src[i];
    }
}

/* The ring slot of input row iy: the dw input's padded row (expanded, or the input row itself);
 * a row of zero points above or below the input. Only the first cols input columns are read. */
MK_INLINE void mk_block_row(int8_t *restrict slot, const int8_t *restrict in, int32_t *restrict col,
                            const int8_t *restrict ew, const mk_chan_t *restrict ech, int iy, int in_h, int in_w,
                            int in_c, int mid_c, int wp, int pl, int cols, int expand, int in_zp, int mid_zp,
                            int act_min, int act_max, int fast, int lsh)
{
    if (iy < 0 || iy >= in_h) {
        mk_block_fill(slot, wp * mid_c, mid_zp);
        return;
    }
    const int8_t *src = in + iy * in_w * in_c;
    int8_t *dst = slot + pl * mid_c;
    if (expand) {
        mk_conv(src, dst, col, ew, ech, 1, in_w, in_c, 1, cols, mid_c, 1, 1, 1, 1, 1, 0, 0, in_zp, mid_zp, act_min,
                act_max, 0, fast, lsh, 8);
    } else {
        mk_block_copy(dst, src, cols * in_c);
    }
}

/* One output row of the depthwise convolution from the kh ring rows of its windows. ring4
 * (multiplier 1, mid_c % 4 == 0): four channels per SXTB16 pair from ch[].bias (input zero point
 * folded in); otherwise one channel at a time on x - mid_zp from bias[]. */
MK_INLINE void mk_block_dw_row(int8_t *restrict dst, const int8_t *const *row, const int8_t *restrict w,
                               const mk_chan_t *restrict ch, const int32_t *restrict bias, int mid_c, int dw_c,
                               int out_w, int kh, int kw, int sw, int mult, int mid_zp, int out_zp, int act_min,
                               int act_max, int fast, int lsh, int ring4)
{
    for (int ox = 0; ox < out_w; ox++, dst += dw_c) {
        const int col = ox * sw * mid_c;
        if (ring4) {
            for (int c = 0; c < dw_c; c += 4) {
                int32_t s[4] = {ch[c].bias, ch[c + 1].bias, ch[c + 2].bias, ch[c + 3].bias};
                mk_dw_taps4(row, col + c, w + c, mid_c, kh, kw, dw_c, s);
                for (int r = 0; r < 4; r++) {
                    dst[c + r] = (int8_t)mk_clamp(mk_requant(s[r], &ch[c + r], fast, lsh, out_zp), act_min, act_max);
                }
            }
            continue;
        }
        for (int o = 0; o < dw_c; o++) {
            const int ci = col + o / mult;
            int32_t acc = bias[o];
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < kw; kx++) {
                    acc += (row[ky][ci + kx * mid_c] - mid_zp) * w[(ky * kw + kx) * dw_c + o];
                }
            }
            dst[o] = (int8_t)mk_clamp(mk_requant(acc, &ch[o], fast, lsh, out_zp), act_min, act_max);
        }
    }
}

/* One row of the residual add: dst[i] = a[i] + b[i] with the add's arithmetic (dst may be a) */
MK_INLINE void mk_block_add_row(const int8_t *a, const int8_t *b, int8_t *dst, int n, int zp_a, int zp_b, int out_zp,
                                int32_t mult_a, int32_t shift_a, int32_t mult_b, int32_t shift_b, int32_t mult_out,
                                int32_t shift_out, int left_shift, int sub, int act_min, int act_max)
{
    for (int i = 0; i < n; i++) {
        const int32_t v = mk_add_value(a[i], b[i], zp_a, zp_b, out_zp, mult_a, shift_a, mult_b, shift_b, mult_out,
                                       shift_out, left_shift, sub);
        dst[i] = (int8_t)mk_clamp(v, act_min, act_max);
    }
}

/*
 * The block, output row by output row. in: (in_h, in_w, in_c); the expand (expand = 1) makes
 * mid_c channels (else mid_c = in_c), the depthwise dw_c = mid_c * mult, the projection out_c;
 * out: (out_h, out_w, out_c). With residual = 1 the projected row is added to row oy of res
 * ((out_h, out_w, out_c); the add's first operand when res_first) by the add's arithmetic.
 */
MK_INLINE void mk_block(const int8_t *in, const int8_t *res, int8_t *out,
                        int8_t *restrict scratch, const int8_t *restrict ew, const mk_chan_t *restrict ech,
                        const int8_t *restrict dw, const mk_chan_t *restrict dch, const int32_t *restrict dbias,
                        const int8_t *restrict pw, const mk_chan_t *restrict pch, int in_h, int in_w, int in_c,
                        int mid_c, int dw_c, int out_h, int out_w, int out_c, int kh, int kw, int sh, int sw, int pt,
                        int pl, int mult, int expand, int e_in_zp, int e_act_min, int e_act_max, int e_fast,
                        int e_lsh, int mid_zp, int d_out_zp, int d_act_min, int d_act_max, int d_fast, int d_lsh,
                        int ring4, int p_out_zp, int p_act_min, int p_act_max, int p_fast, int p_lsh, int residual,
                        int res_first, int zp_a, int zp_b, int add_zp, int32_t mult_a, int32_t shift_a,
                        int32_t mult_b, int32_t shift_b, int32_t mult_out, int32_t shift_out, int left_shift, int sub,
                        int add_min, int add_max) /* the add's arguments in mk_add's order */
{
    const int wp = (out_w - 1) * sw + kw;
    const int cols = in_w < wp - pl ? in_w : wp - pl;
    const int k4 = ((in_c > dw_c ? in_c : dw_c) + 3) & ~3;
    const int slot_bytes = wp * mid_c;
    int32_t *col = (int32_t *)(void *)scratch;
    int8_t *ring = scratch + 4 * k4;
    int8_t *drow = ring + kh * slot_bytes;
    int8_t *prow = drow + ((out_w * dw_c + 3) & ~3);
    const int8_t *row[16];
    const int n = out_w * out_c;
    mk_block_fill(ring, kh * slot_bytes, mid_zp);
    int loaded = -1 - pt; /* the last input row put into the ring */
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * sh - pt;
        for (int ky = 0; ky < kh; ky++) {
            const int iy = iy0 + ky;
            int8_t *slot = ring + ((iy % kh + kh) % kh) * slot_bytes;
            if (iy > loaded) {
                mk_block_row(slot, in, col, ew, ech, iy, in_h, in_w, in_c, mid_c, wp, pl, cols, expand, e_in_zp,
                             mid_zp, e_act_min, e_act_max, e_fast, e_lsh);
                loaded = iy;
            }
            row[ky] = slot;
        }
        mk_block_dw_row(drow, row, dw, dch, dbias, mid_c, dw_c, out_w, kh, kw, sw, mult, mid_zp, d_out_zp, d_act_min,
                        d_act_max, d_fast, d_lsh, ring4);
        int8_t *dst = out + oy * n;
        int8_t *proj = residual ? prow : dst;
        mk_conv(drow, proj, col, pw, pch, 1, out_w, dw_c, 1, out_w, out_c, 1, 1, 1, 1, 1, 0, 0, d_out_zp, p_out_zp,
                p_act_min, p_act_max, 0, p_fast, p_lsh, 8);
        if (residual) {
            const int8_t *r = res + oy * n;
            mk_block_add_row(res_first ? r : prow, res_first ? prow : r, dst, n, zp_a, zp_b, add_zp, mult_a, shift_a,
                             mult_b, shift_b, mult_out, shift_out, left_shift, sub, add_min, add_max);
        }
    }
}

#endif /* MK_BLOCK_H */
