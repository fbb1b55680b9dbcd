/*
 * mk_dwconv.h - depthwise convolution (any channel multiplier): padded input rows in a ring
 * buffer and four channels per SXTB16 pair when mult == 1 and in_c % 4 == 0, else one channel
 * at a time. Python side: malak_pipe/mcu/ops/depthwise.py.
 */
#ifndef MK_DWCONV_H
#define MK_DWCONV_H

#include "mk_arch.h"
#include "mk_requant.h"


/* Four channels c..c+3 of one pixel, taps read from kh padded rows (row[ky] + column offset),
 * with the input zero point folded into the bias (ch[].bias): per tap one load of 4 inputs, one
 * of 4 weights, four SXTB16 and four SMLABB/SMLATT; the taps unroll (kh, kw are constants). */
MK_INLINE void mk_dw_taps4(const int8_t *const *row, int col, const int8_t *w, int in_c, int kh, int kw, int out_c,
                           int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    for (int ky = 0; ky < kh; ky++) {
        const int8_t *src = row[ky] + col;
        for (int kx = 0; kx < kw; kx++) {
            const int32_t x = mk_ld32(src + kx * in_c);
            const int32_t v = mk_ld32(w + (ky * kw + kx) * out_c);
            const int32_t x02 = mk_sxtb16(x), x13 = mk_sxtb16_ror8(x);
            const int32_t w02 = mk_sxtb16(v), w13 = mk_sxtb16_ror8(v);
            s0 = mk_smlabb(x02, w02, s0);
            s2 = mk_smlatt(x02, w02, s2);
            s1 = mk_smlabb(x13, w13, s1);
            s3 = mk_smlatt(x13, w13, s3);
        }
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

/* Input row iy (or a row of zero points outside the input) padded to wp columns starting at
 * column -pl, into dst (wp x in_c bytes, in_c a multiple of 4). */
MK_INLINE void mk_pad_row(int8_t *restrict dst, const int8_t *restrict in, int iy, int in_h, int in_w, int in_c,
                          int wp, int pl, int in_zp)
{
    const int32_t zp4 = (int32_t)(0x01010101u * (uint8_t)in_zp);
    for (int j = 0; j < wp; j++) {
        const int ix = j - pl;
        int8_t *d = dst + j * in_c;
        if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
            const int8_t *src = in + (iy * in_w + ix) * in_c;
            for (int c = 0; c < in_c; c += 4) {
                mk_st32(d + c, mk_ld32(src + c));
            }
        } else {
            for (int c = 0; c < in_c; c += 4) {
                mk_st32(d + c, zp4);
            }
        }
    }
}

/* Any channel multiplier / channel count: one output channel at a time on (x - in_zp). */
MK_INLINE int32_t mk_dw_scalar(const int8_t *in, const int8_t *w, int o, int ci, int iy0, int ix0, int ky0, int ky1,
                               int kx0, int kx1, int in_w, int in_c, int kw, int out_c, int in_zp, int32_t acc)
{
    for (int ky = ky0; ky < ky1; ky++) {
        for (int kx = kx0; kx < kx1; kx++) {
            const int32_t x = in[((iy0 + ky) * in_w + ix0 + kx) * in_c + ci] - in_zp;
            acc += x * w[(ky * kw + kx) * out_c + o];
        }
    }
    return acc;
}

/*
 * Depthwise convolution, weights (kh, kw, out_c) int8, output channel o reads input channel
 * o / mult. When mult == 1 and in_c % 4 == 0 the input rows a window needs are kept padded
 * (zero point outside) in a ring of kh rows in scratch (kh x wp x in_c bytes,
 * wp = (out_w - 1) * sw + kw): every input row is copied once and every pixel takes the
 * unrolled path with ch[].bias, which has the input zero point folded in. Otherwise one
 * channel at a time over the taps inside, on x - in_zp, from bias[] (the layer's own bias).
 */
MK_INLINE void mk_dwconv(const int8_t *restrict in, int8_t *restrict out, int8_t *restrict scratch,
                         const int8_t *restrict w, const mk_chan_t *restrict ch, const int32_t *restrict bias,
                         int in_h, int in_w, int in_c, int out_h, int out_w, int out_c, int kh, int kw, int sh, int sw,
                         int pt, int pl, int mult, int in_zp, int out_zp, int act_min, int act_max, int fast, int lsh)
{
    if (mult == 1 && (in_c & 3) == 0) {
        const int wp = (out_w - 1) * sw + kw;
        const int8_t *row[16];
        int loaded = -1 - pt; /* the last input row copied into the ring */
        for (int oy = 0; oy < out_h; oy++) {
            const int iy0 = oy * sh - pt;
            for (int ky = 0; ky < kh; ky++) {
                const int iy = iy0 + ky;
                int8_t *slot = scratch + ((iy + kh * 64) % kh) * wp * in_c;
                if (iy > loaded) {
                    mk_pad_row(slot, in, iy, in_h, in_w, in_c, wp, pl, in_zp);
                    loaded = iy;
                }
                row[ky] = slot;
            }
            int8_t *dst = out + oy * out_w * out_c;
            for (int ox = 0; ox < out_w; ox++, dst += out_c) {
                for (int c = 0; c < out_c; c += 4) {
                    int32_t s[4] = {ch[c].bias, ch[c + 1].bias, ch[c + 2].bias, ch[c + 3].bias};
                    mk_dw_taps4(row, ox * sw * in_c + c, w + c, in_c, kh, kw, out_c, s);
                    for (int r = 0; r < 4; r++) {
                        dst[c + r] =
                            (int8_t)mk_clamp(mk_requant(s[r], &ch[c + r], fast, lsh, out_zp), act_min, act_max);
                    }
                }
            }
        }
        return;
    }
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * sh - pt;
        const int ky0 = iy0 < 0 ? -iy0 : 0;
        const int ky1 = in_h - iy0 < kh ? in_h - iy0 : kh;
        for (int ox = 0; ox < out_w; ox++) {
            const int ix0 = ox * sw - pl;
            const int kx0 = ix0 < 0 ? -ix0 : 0;
            const int kx1 = in_w - ix0 < kw ? in_w - ix0 : kw;
            int8_t *dst = out + (oy * out_w + ox) * out_c;
            for (int o = 0; o < out_c; o++) {
                const int32_t s = mk_dw_scalar(in, w, o, o / mult, iy0, ix0, ky0, ky1, kx0, kx1, in_w, in_c, kw, out_c,
                                               in_zp, bias[o]);
                dst[o] = (int8_t)mk_clamp(mk_requant(s, &ch[o], fast, lsh, out_zp), act_min, act_max);
            }
        }
    }
}

#endif /* MK_DWCONV_H */
