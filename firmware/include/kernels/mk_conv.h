/*
 * mk_conv.h - 2-D convolution (group 1), channels-last, with an optional fused 2x2/2 max-pool.
 *
 * im2col of two pixels into q15 (mk_im2col.h), then a 2 output channel x 2 pixel register block.
 * The input zero point is folded into the bias (padding is filled with the zero point). A
 * following 2x2/2 max-pool can be fused: the four conv pixels of a window are computed and the
 * largest accumulator is requantized (requantization is monotonic), so the unpooled map is
 * never stored. wbits = 4: 4-bit weights, row pairs packed two per byte (mk_conv_s4.h).
 * Python side: malak_pipe/mcu/ops/conv.py.
 */
#ifndef MK_CONV_H
#define MK_CONV_H

#include "mk_arch.h"
#include "mk_requant.h"
#include "mk_im2col.h"
#include "mk_conv_s4.h"


/* Output pixels pa and pb (channel vectors) from their interleaved q15 columns. Weights:
 * channel pairs interleaved by 4 bytes (2 x k4 bytes per pair), an odd last channel plain. */
MK_INLINE void mk_conv_pixels2(int8_t *pa, int8_t *pb, const int32_t *col, const int8_t *restrict w,
                               const mk_chan_t *restrict ch, int out_c, int k4, int out_zp, int act_min, int act_max,
                               int fast, int lsh, int wbits)
{
    int c = 0;
    for (; c + 2 <= out_c; c += 2) {
        int32_t s[4] = {ch[c].bias, ch[c].bias, ch[c + 1].bias, ch[c + 1].bias};
        mk_conv_dot_2x2(col, w + mk_s4_row_bytes(c, k4, wbits), k4, s, wbits);
        pa[c] = (int8_t)mk_clamp(mk_requant(s[0], &ch[c], fast, lsh, out_zp), act_min, act_max);
        pb[c] = (int8_t)mk_clamp(mk_requant(s[1], &ch[c], fast, lsh, out_zp), act_min, act_max);
        pa[c + 1] = (int8_t)mk_clamp(mk_requant(s[2], &ch[c + 1], fast, lsh, out_zp), act_min, act_max);
        pb[c + 1] = (int8_t)mk_clamp(mk_requant(s[3], &ch[c + 1], fast, lsh, out_zp), act_min, act_max);
    }
    if (c < out_c) {
        int32_t s[2] = {ch[c].bias, ch[c].bias};
        mk_conv_dot_1x2(col, w + mk_s4_row_bytes(c, k4, wbits), k4, s, wbits);
        pa[c] = (int8_t)mk_clamp(mk_requant(s[0], &ch[c], fast, lsh, out_zp), act_min, act_max);
        pb[c] = (int8_t)mk_clamp(mk_requant(s[1], &ch[c], fast, lsh, out_zp), act_min, act_max);
    }
}

/* One pooled pixel from the 4 pixels of its 2x2 window: columns (0,1) at col, (2,3) at col + k4. */
MK_INLINE void mk_conv_pool_pixel(int8_t *restrict dst, const int32_t *col, const int8_t *restrict w,
                                  const mk_chan_t *restrict ch, int out_c, int k4, int out_zp, int act_min,
                                  int act_max, int fast, int lsh, int wbits)
{
    int c = 0;
    for (; c + 2 <= out_c; c += 2) {
        const int8_t *wp = w + mk_s4_row_bytes(c, k4, wbits);
        int32_t s[4] = {ch[c].bias, ch[c].bias, ch[c + 1].bias, ch[c + 1].bias};
        mk_conv_dot_2x2(col, wp, k4, s, wbits);
        int32_t m0 = mk_max32(s[0], s[1]), m1 = mk_max32(s[2], s[3]);
        s[0] = s[1] = ch[c].bias;
        s[2] = s[3] = ch[c + 1].bias;
        mk_conv_dot_2x2(col + k4, wp, k4, s, wbits);
        m0 = mk_max32(m0, mk_max32(s[0], s[1]));
        m1 = mk_max32(m1, mk_max32(s[2], s[3]));
        dst[c] = (int8_t)mk_clamp(mk_requant(m0, &ch[c], fast, lsh, out_zp), act_min, act_max);
        dst[c + 1] = (int8_t)mk_clamp(mk_requant(m1, &ch[c + 1], fast, lsh, out_zp), act_min, act_max);
    }
    if (c < out_c) {
        const int8_t *wp = w + mk_s4_row_bytes(c, k4, wbits);
        int32_t s[2] = {ch[c].bias, ch[c].bias};
        mk_conv_dot_1x2(col, wp, k4, s, wbits);
        int32_t m = mk_max32(s[0], s[1]);
        s[0] = s[1] = ch[c].bias;
        mk_conv_dot_1x2(col + k4, wp, k4, s, wbits);
        m = mk_max32(m, mk_max32(s[0], s[1]));
        dst[c] = (int8_t)mk_clamp(mk_requant(m, &ch[c], fast, lsh, out_zp), act_min, act_max);
    }
}

/*
 * 2-D convolution, k = (ky, kx, ci) padded with zeros to k4; weights as mk_conv_pixels2 reads
 * them. out_h, out_w are the convolution's output size; with pool=1 a 2x2 stride-2 max-pool is
 * fused and the output is (out_h/2, out_w/2, out_c). col: 2 (4 with pool) x k4 halfwords.
 * groups > 1: output channels g * out_c/groups.. read input channels g * in_c/groups.., k4 and
 * the weights (one interleaved block per group) are per group.
 */
MK_INLINE void mk_conv(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                       const int8_t *restrict w, const mk_chan_t *restrict ch, int in_h, int in_w, int in_c,
                       int out_h, int out_w, int out_c, int groups, int kh, int kw, int sh, int sw, int pt, int pl,
                       int in_zp, int out_zp, int act_min, int act_max, int pool, int fast, int lsh, int wbits)
{
    const int cig = in_c / groups, cog = out_c / groups;
    const int k4 = (kh * kw * cig + 3) & ~3;
    if (pool) {
        const int ph = out_h / 2, pw = out_w / 2;
        for (int py = 0; py < ph; py++) {
            for (int px = 0; px < pw; px++) {
                for (int g = 0; g < groups; g++) {
                    for (int i = 0; i < 4; i++) {
                        mk_im2col_g(col + (i >> 1) * k4, i & 1, in, 2 * py + (i >> 1), 2 * px + (i & 1), in_h, in_w,
                                    in_c, g * cig, cig, kh, kw, sh, sw, pt, pl, in_zp, k4);
                    }
                    mk_conv_pool_pixel(out + (py * pw + px) * out_c + g * cog, col,
                                       w + g * mk_s4_row_bytes(cog, k4, wbits), ch + g * cog, cog, k4, out_zp,
                                       act_min, act_max, fast, lsh, wbits);
                }
            }
        }
        return;
    }
    const int n = out_h * out_w;
    int oy = 0, ox = 0;
    for (int p = 0; p < n; p += 2) {
        const int qy = oy, qx = ox;
        if (++ox == out_w) {
            ox = 0;
            oy++;
        }
        int ry = qy, rx = qx; /* an odd last pixel: both slots hold it, both outputs go to it */
        int8_t *pb = out + p * out_c;
        if (p + 1 < n) {
            ry = oy;
            rx = ox;
            pb += out_c;
            if (++ox == out_w) {
                ox = 0;
                oy++;
            }
        }
        for (int g = 0; g < groups; g++) {
            mk_im2col_g(col, 0, in, qy, qx, in_h, in_w, in_c, g * cig, cig, kh, kw, sh, sw, pt, pl, in_zp, k4);
            mk_im2col_g(col, 1, in, ry, rx, in_h, in_w, in_c, g * cig, cig, kh, kw, sh, sw, pt, pl, in_zp, k4);
            mk_conv_pixels2(out + p * out_c + g * cog, pb + g * cog, col, w + g * mk_s4_row_bytes(cog, k4, wbits),
                            ch + g * cog, cog, k4, out_zp, act_min, act_max, fast, lsh, wbits);
        }
    }
}

#endif /* MK_CONV_H */
