/*
 * mk_conv.h - 2-D convolution (group 1), channels-last, with an optional fused 2x2/2 max-pool.
 *
 * im2col of two pixels into q15 (mk_im2col.h), then a 2 output channel x 2 pixel register block.
 * The input zero point is folded into the bias (padding is filled with the zero point). A
 * following 2x2/2 max-pool can be fused: the four conv pixels of a window are computed and the
 * largest accumulator is requantized (requantization is monotonic), so the unpooled map is
 * never stored. wbits = 4: 4-bit weights, row pairs packed two per byte (mk_conv_s4.h).
 * mk_conv3px: three pixels per pass (2 channels x 3 pixels), the pool fused by keeping the
 * largest requantized value (int8 weights only). 1x1 convolutions: mk_pw.h. Python side:
 * malak_pipe/mcu/ops/conv.py.
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
 * the weights (one interleaved block per group) are per group. wbits = 4: 4-bit weights, row
 * pairs packed two per byte within each group (mk_conv_s4.h).
 */
MK_INLINE void mk_conv_bits(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                            const int8_t *restrict w, const mk_chan_t *restrict ch, int in_h, int in_w, int in_c,
                            int out_h, int out_w, int out_c, int groups, int kh, int kw, int sh, int sw, int pt,
                            int pl, int in_zp, int out_zp, int act_min, int act_max, int pool, int fast, int lsh,
                            int wbits)
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
                                       w + mk_s4_group_bytes(g, cog, k4, wbits), ch + g * cog, cog, k4, out_zp,
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
            mk_conv_pixels2(out + p * out_c + g * cog, pb + g * cog, col, w + mk_s4_group_bytes(g, cog, k4, wbits),
                            ch + g * cog, cog, k4, out_zp, act_min, act_max, fast, lsh, wbits);
        }
    }
}

/* mk_conv_bits with the weight format as a literal, so that GCC folds it while it optimizes
 * mk_conv itself, before inlining it into a model: an int8 layer then gets the very code of the
 * int8-only kernel (folded only after inlining, the format's branches leave differently
 * optimized code: the instruction counts of large int8 models moved by a few in 10^5). */
MK_INLINE void mk_conv(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                       const int8_t *restrict w, const mk_chan_t *restrict ch, int in_h, int in_w, int in_c,
                       int out_h, int out_w, int out_c, int groups, int kh, int kw, int sh, int sw, int pt, int pl,
                       int in_zp, int out_zp, int act_min, int act_max, int pool, int fast, int lsh, int wbits)
{
    if (wbits == 4) {
        mk_conv_bits(in, out, col, w, ch, in_h, in_w, in_c, out_h, out_w, out_c, groups, kh, kw, sh, sw, pt, pl,
                     in_zp, out_zp, act_min, act_max, pool, fast, lsh, 4);
    } else {
        mk_conv_bits(in, out, col, w, ch, in_h, in_w, in_c, out_h, out_w, out_c, groups, kh, kw, sh, sw, pt, pl,
                     in_zp, out_zp, act_min, act_max, pool, fast, lsh, 8);
    }
}

/* s[px] += w . x_px for one channel (a plain row) x 3 interleaved pixels */
MK_INLINE void mk_dot_1x3(const int32_t *x, const int8_t *w, int k4, int32_t *s)
{
    for (int k = 0; k < k4; k += 4, x += 6) {
        const int32_t wv = mk_ld32(w + k);
        const int32_t wl = mk_sxtb16(wv), wh = mk_sxtb16_ror8(wv);
        for (int p = 0; p < 3; p++) {
            s[p] = mk_smlad(wh, x[2 * p + 1], mk_smlad(wl, x[2 * p], s[p]));
        }
    }
}

/* Output v of a convolution pixel: stored, or (a pixel of a fused max-pool window after its
 * first) the larger of v and what is stored: requantization is monotonic, so this is the pool
 * of the requantized values. */
MK_INLINE void mk_conv_put(int8_t *d, int first, int32_t v)
{
    *d = (int8_t)(first ? v : mk_max32(v, *d));
}

/* Where convolution pixel t of mk_conv3px goes and whether it is the first of its pool window. */
MK_INLINE int mk_conv3px_dst(int t, int out_c, int pool, int pw, int *first)
{
    if (!pool) {
        *first = 1;
        return t * out_c;
    }
    const int y = t / (2 * pw), x = t % (2 * pw);
    *first = !((y | x) & 1);
    return ((y >> 1) * pw + (x >> 1)) * out_c;
}

/*
 * 2-D convolution, three convolution pixels per pass: im2col of three pixels (col: 3 x k4
 * halfwords) and a 2 channels x 3 pixels register block, so each weight's SXTB16 serves three
 * pixels. Weights, groups and arguments as mk_conv. With pool = 1 the 2x2/2 max-pool is fused
 * by visiting the convolution pixels of the pooled rows in row order (a window's top-left
 * pixel first) and keeping the largest requantized value; without, the last one or two pixels
 * take mk_conv's 2-pixel block. A pass short of pixels repeats its last pixel.
 */
MK_INLINE void mk_conv3px(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                          const int8_t *restrict w, const mk_chan_t *restrict ch, int in_h, int in_w, int in_c,
                          int out_h, int out_w, int out_c, int groups, int kh, int kw, int sh, int sw, int pt, int pl,
                          int in_zp, int out_zp, int act_min, int act_max, int pool, int fast, int lsh)
{
    const int cig = in_c / groups, cog = out_c / groups;
    const int k4 = (kh * kw * cig + 3) & ~3;
    const int pw = out_w / 2, tw = pool ? 2 * pw : out_w;
    const int n = pool ? 4 * (out_h / 2) * pw : out_h * out_w;
    const int full = pool ? n : n - n % 3;
    for (int p = 0; p < n; p += 3) {
        const int m = n - p < 3 ? n - p : 3;
        if (p >= full) { /* without a pool: the last one or two pixels, the 2-pixel block */
            int8_t *pb = out + (p + m - 1) * out_c;
            for (int g = 0; g < groups; g++) {
                const int q = p + m - 1;
                mk_im2col_g(col, 0, in, p / out_w, p % out_w, in_h, in_w, in_c, g * cig, cig, kh, kw, sh, sw, pt, pl,
                            in_zp, k4);
                mk_im2col_g(col, 1, in, q / out_w, q % out_w, in_h, in_w, in_c, g * cig, cig, kh, kw, sh, sw, pt, pl,
                            in_zp, k4);
                mk_conv_pixels2(out + p * out_c + g * cog, pb + g * cog, col, w + g * cog * k4, ch + g * cog, cog, k4,
                                out_zp, act_min, act_max, fast, lsh, 8);
            }
            break;
        }
        int off[3], first[3];
        for (int i = 0; i < 3; i++) {
            off[i] = mk_conv3px_dst(p + (i < m ? i : m - 1), out_c, pool, pw, &first[i]);
        }
        for (int g = 0; g < groups; g++) {
            for (int i = 0; i < 3; i++) {
                const int q = p + (i < m ? i : m - 1);
                mk_im2col_gs(col, i, 3, in, q / tw, q % tw, in_h, in_w, in_c, g * cig, cig, kh, kw, sh, sw, pt, pl,
                             in_zp, k4);
            }
            const int8_t *wg = w + g * cog * k4;
            const mk_chan_t *cg = ch + g * cog;
            int8_t *dst = out + g * cog;
            int c = 0;
            for (; c + 2 <= cog; c += 2) {
                int32_t s[6] = {cg[c].bias, cg[c].bias, cg[c].bias, cg[c + 1].bias, cg[c + 1].bias, cg[c + 1].bias};
                mk_dot_2x3(col, wg + c * k4, k4, s);
                for (int i = 0; i < 3; i++) {
                    mk_conv_put(dst + off[i] + c, first[i],
                                mk_clamp(mk_requant(s[i], &cg[c], fast, lsh, out_zp), act_min, act_max));
                    mk_conv_put(dst + off[i] + c + 1, first[i],
                                mk_clamp(mk_requant(s[3 + i], &cg[c + 1], fast, lsh, out_zp), act_min, act_max));
                }
            }
            if (c < cog) {
                int32_t s[3] = {cg[c].bias, cg[c].bias, cg[c].bias};
                mk_dot_1x3(col, wg + c * k4, k4, s);
                for (int i = 0; i < 3; i++) {
                    mk_conv_put(dst + off[i] + c, first[i],
                                mk_clamp(mk_requant(s[i], &cg[c], fast, lsh, out_zp), act_min, act_max));
                }
            }
        }
    }
}

#endif /* MK_CONV_H */
