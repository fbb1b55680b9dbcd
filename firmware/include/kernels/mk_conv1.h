/*
 * mk_conv1.h - convolution of a one-channel input (a first layer): q15 weights, the columns of
 * one output row streamed through scratch, an optional fused 2x2/2 max-pool.
 * Python side: malak_pipe/mcu/ops/conv.py (chosen for in_c == 1 and at most MAX_CONV1_TAPS taps).
 */
#ifndef MK_CONV1_H
#define MK_CONV1_H

#include "mk_arch.h"
#include "mk_requant.h"


/* The q15 columns of pixels (oy, ox0 .. ox0 + n - 1) of a one-channel input: k2 halfwords
 * each (k = kh * kw values in natural order, zero padded to even; outside pixels read in_zp). */
MK_INLINE void mk_im2col_row1(int16_t *restrict col, const int8_t *restrict in, int oy, int ox0, int n, int in_h,
                              int in_w, int kh, int kw, int sh, int sw, int pt, int pl, int in_zp, int k2)
{
    for (int i = 0; i < n; i++) {
        const int iy0 = oy * sh - pt, ix0 = (ox0 + i) * sw - pl;
        int16_t *dst = col + i * k2;
        for (int ky = 0; ky < kh; ky++) {
            const int iy = iy0 + ky;
            for (int kx = 0; kx < kw; kx++) {
                const int ix = ix0 + kx;
                *dst++ = (int16_t)((iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) ? in[iy * in_w + ix] : in_zp);
            }
        }
        if ((kh * kw) & 1) {
            *dst = 0;
        }
    }
}

/* acc + w . x over k2/2 words (q15 pairs) */
MK_INLINE int32_t mk_dot_q15(const int32_t *x, const int32_t *w, int words, int32_t acc)
{
    for (int j = 0; j < words; j++) {
        acc = mk_smlad(w[j], x[j], acc);
    }
    return acc;
}

/*
 * Convolution of a one-channel input (a first layer), weights (out_c, k2) int16 (q15, zero
 * padded to even k2), optionally with the 2x2 stride-2 max-pool fused. Rows are streamed: the
 * columns of the one (two with pool) convolution rows an output row needs are built in col,
 * then each channel's weights stay in registers while it sweeps the row.
 * col: (pool ? 2 * 2 * (out_w / 2) : out_w) x k2 halfwords.
 */
MK_INLINE void mk_conv1(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                        const int16_t *restrict w, const mk_chan_t *restrict ch, int in_h, int in_w, int out_h,
                        int out_w, int out_c, int kh, int kw, int sh, int sw, int pt, int pl, int in_zp, int out_zp,
                        int act_min, int act_max, int pool, int fast, int lsh)
{
    const int k2 = (kh * kw + 1) & ~1, words = k2 / 2;
    const int32_t *w32 = (const int32_t *)w;
    if (pool) {
        const int ph = out_h / 2, pw = out_w / 2, n = 2 * pw;
        const int32_t *row0 = col, *row1 = col + n * words;
        for (int py = 0; py < ph; py++) {
            mk_im2col_row1((int16_t *)col, in, 2 * py, 0, n, in_h, in_w, kh, kw, sh, sw, pt, pl, in_zp, k2);
            mk_im2col_row1((int16_t *)col + n * k2, in, 2 * py + 1, 0, n, in_h, in_w, kh, kw, sh, sw, pt, pl, in_zp,
                           k2);
            int8_t *dst = out + py * pw * out_c;
            for (int c = 0; c < out_c; c++) {
                const int32_t *wc = w32 + c * words;
                const int32_t b = ch[c].bias;
                for (int px = 0; px < pw; px++) {
                    const int32_t *x = row0 + 2 * px * words, *y = row1 + 2 * px * words;
                    int32_t m = mk_dot_q15(x, wc, words, b);
                    m = mk_max32(m, mk_dot_q15(x + words, wc, words, b));
                    m = mk_max32(m, mk_dot_q15(y, wc, words, b));
                    m = mk_max32(m, mk_dot_q15(y + words, wc, words, b));
                    dst[px * out_c + c] = (int8_t)mk_clamp(mk_requant(m, &ch[c], fast, lsh, out_zp), act_min, act_max);
                }
            }
        }
        return;
    }
    for (int oy = 0; oy < out_h; oy++) {
        mk_im2col_row1((int16_t *)col, in, oy, 0, out_w, in_h, in_w, kh, kw, sh, sw, pt, pl, in_zp, k2);
        int8_t *dst = out + oy * out_w * out_c;
        for (int c = 0; c < out_c; c++) {
            const int32_t *wc = w32 + c * words;
            for (int ox = 0; ox < out_w; ox++) {
                const int32_t a = mk_dot_q15(col + ox * words, wc, words, ch[c].bias);
                dst[ox * out_c + c] = (int8_t)mk_clamp(mk_requant(a, &ch[c], fast, lsh, out_zp), act_min, act_max);
            }
        }
    }
}

#endif /* MK_CONV1_H */
