/*
 * mk_kernels.h - int8 kernels, channels-last (HWC), bit-exact with the golden reference.
 *
 * Every kernel is an always-inline function: the generated model.c calls it with the layer's
 * shapes as literal constants, so the compiler emits one copy specialized for each layer (loop
 * bounds, strides, zero points and branches fold away). The host test harness calls the same
 * functions with run-time values.
 *
 * Convolution: im2col of two pixels into q15 (bytes reordered by SXTB16 / SXTB16 ROR 8 so no
 * packing is needed), then a 2 output channel x 2 pixel register block: per 4 input values one
 * 32-bit weight load and two SXTB16 per channel, 8 SMLAD. The input zero point is folded into
 * the bias (padding is filled with the zero point). A following 2x2/2 max-pool can be fused:
 * the four conv pixels of a window are computed and the largest accumulator is requantized
 * (requantization is monotonic), so the unpooled map is never stored.
 */
#ifndef MK_KERNELS_H
#define MK_KERNELS_H

#include "mk_arch.h"
#include "mk_requant.h"

/* ------------------------------------------------------------------------ im2col */

/*
 * q15 column of output pixel (oy, ox), k4 values in groups of 4 stored as the two words
 * (x0,x2),(x1,x3) (what SXTB16 and SXTB16 ROR 8 of the weights pair with). Two pixels share a
 * buffer interleaved by group: group g of slot s (0 or 1) is at words 4g + 2s.
 */
MK_INLINE void mk_im2col(int32_t *restrict col, int slot, const int8_t *restrict in, int oy, int ox, int in_h,
                         int in_w, int in_c, int kh, int kw, int sh, int sw, int pt, int pl, int in_zp, int k4)
{
    const int iy0 = oy * sh - pt;
    const int ix0 = ox * sw - pl;
    if ((in_c & 3) == 0) {
        const int32_t zp2 = (int32_t)(((uint32_t)in_zp & 0xFFFFu) | ((uint32_t)in_zp << 16));
        int32_t *dst = col + 2 * slot;
        for (int ky = 0; ky < kh; ky++) {
            const int iy = iy0 + ky;
            for (int kx = 0; kx < kw; kx++) {
                const int ix = ix0 + kx;
                if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
                    const int8_t *src = in + (iy * in_w + ix) * in_c;
                    for (int c = 0; c < in_c; c += 4) {
                        const int32_t v = mk_ld32(src + c);
                        dst[0] = mk_sxtb16(v);
                        dst[1] = mk_sxtb16_ror8(v);
                        dst += 4;
                    }
                } else {
                    for (int c = 0; c < in_c; c += 4) {
                        dst[0] = zp2;
                        dst[1] = zp2;
                        dst += 4;
                    }
                }
            }
        }
        return;
    }
    int16_t *dst = (int16_t *)col + 4 * slot;
    int k = 0;
    for (int ky = 0; ky < kh; ky++) {
        const int iy = iy0 + ky;
        for (int kx = 0; kx < kw; kx++) {
            const int ix = ix0 + kx;
            const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
            const int8_t *src = in + (iy * in_w + ix) * in_c;
            for (int c = 0; c < in_c; c++, k++) {
                const int j = k & 3;
                dst[2 * (k & ~3) + ((j & 1) << 1) + (j >> 1)] = (int16_t)(inside ? src[c] : in_zp);
            }
        }
    }
    for (; k < k4; k++) {
        const int j = k & 3;
        dst[2 * (k & ~3) + ((j & 1) << 1) + (j >> 1)] = 0;
    }
}

/* ------------------------------------------------------------- dot products */

/* One group of 4 values for 2 channels (w: 8 bytes, rows interleaved) x 2 pixels (x: 4 words). */
MK_INLINE void mk_group_2x2(const int32_t *x, const int8_t *w, int32_t *s00, int32_t *s01, int32_t *s10,
                            int32_t *s11)
{
    const int32_t w0 = mk_ld32(w), w1 = mk_ld32(w + 4);
    const int32_t w0l = mk_sxtb16(w0), w0h = mk_sxtb16_ror8(w0);
    const int32_t w1l = mk_sxtb16(w1), w1h = mk_sxtb16_ror8(w1);
    *s00 = mk_smlad(w0h, x[1], mk_smlad(w0l, x[0], *s00));
    *s01 = mk_smlad(w0h, x[3], mk_smlad(w0l, x[2], *s01));
    *s10 = mk_smlad(w1h, x[1], mk_smlad(w1l, x[0], *s10));
    *s11 = mk_smlad(w1h, x[3], mk_smlad(w1l, x[2], *s11));
}

/*
 * s[ch][px] += w_ch . x_px for 2 channels x 2 pixels over k4 values. x: two interleaved q15
 * columns (k4 words); w: the two weight rows interleaved by 4 bytes (2 x k4 bytes, 4-aligned).
 * Per group: 3 LDRD, 4 SXTB16, 8 SMLAD; the DSP loop does two groups per branch.
 */
MK_INLINE void mk_dot_2x2(const int32_t *x, const int8_t *w, int k4, int32_t *s)
{
    int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
    const int32_t *const xe = x + k4;
    if ((k4 >> 2) & 1) {
        mk_group_2x2(x, w, &s00, &s01, &s10, &s11);
        x += 4;
        w += 8;
    }
#if defined(MK_DSP)
    if (x != xe) {
        int32_t w0, w1, w2, w3, x0, x1;
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[w0], %[w2], [%[wp]], #8\n\t"
            "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
            "sxtb16 %[w1], %[w0], ror #8\n\t"
            "sxtb16 %[w0], %[w0]\n\t"
            "sxtb16 %[w3], %[w2], ror #8\n\t"
            "sxtb16 %[w2], %[w2]\n\t"
            "smlad %[s00], %[w0], %[x0], %[s00]\n\t"
            "smlad %[s10], %[w2], %[x0], %[s10]\n\t"
            "smlad %[s00], %[w1], %[x1], %[s00]\n\t"
            "smlad %[s10], %[w3], %[x1], %[s10]\n\t"
            "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
            "smlad %[s01], %[w0], %[x0], %[s01]\n\t"
            "smlad %[s11], %[w2], %[x0], %[s11]\n\t"
            "smlad %[s01], %[w1], %[x1], %[s01]\n\t"
            "smlad %[s11], %[w3], %[x1], %[s11]\n\t"
            "ldrd %[w0], %[w2], [%[wp]], #8\n\t"
            "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
            "sxtb16 %[w1], %[w0], ror #8\n\t"
            "sxtb16 %[w0], %[w0]\n\t"
            "sxtb16 %[w3], %[w2], ror #8\n\t"
            "sxtb16 %[w2], %[w2]\n\t"
            "smlad %[s00], %[w0], %[x0], %[s00]\n\t"
            "smlad %[s10], %[w2], %[x0], %[s10]\n\t"
            "smlad %[s00], %[w1], %[x1], %[s00]\n\t"
            "smlad %[s10], %[w3], %[x1], %[s10]\n\t"
            "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
            "smlad %[s01], %[w0], %[x0], %[s01]\n\t"
            "smlad %[s11], %[w2], %[x0], %[s11]\n\t"
            "smlad %[s01], %[w1], %[x1], %[s01]\n\t"
            "smlad %[s11], %[w3], %[x1], %[s11]\n\t"
            "cmp %[xp], %[xe]\n\t"
            "bne 1b\n\t"
            : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [xp] "+r"(x), [wp] "+r"(w),
              [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), [x0] "=&r"(x0), [x1] "=&r"(x1)
            : [xe] "r"(xe)
            : "cc", "memory");
    }
#else
    for (; x != xe; x += 4, w += 8) {
        mk_group_2x2(x, w, &s00, &s01, &s10, &s11);
    }
#endif
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

/* s[px] += w . x_px for one channel (a plain row) x 2 interleaved pixels */
MK_INLINE void mk_dot_1x2(const int32_t *x, const int8_t *w, int k4, int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1];
    for (int k = 0; k < k4; k += 4, x += 4) {
        const int32_t wv = mk_ld32(w + k);
        const int32_t wl = mk_sxtb16(wv), wh = mk_sxtb16_ror8(wv);
        s0 = mk_smlad(wh, x[1], mk_smlad(wl, x[0], s0));
        s1 = mk_smlad(wh, x[3], mk_smlad(wl, x[2], s1));
    }
    s[0] = s0;
    s[1] = s1;
}

MK_INLINE int32_t mk_max32(int32_t a, int32_t b) { return a > b ? a : b; }

/* -------------------------------------------------------------- convolution */

/* Output pixels pa and pb (channel vectors) from their interleaved q15 columns. Weights:
 * channel pairs interleaved by 4 bytes (2 x k4 bytes per pair), an odd last channel plain. */
MK_INLINE void mk_conv_pixels2(int8_t *pa, int8_t *pb, const int32_t *col, const int8_t *restrict w,
                               const mk_chan_t *restrict ch, int out_c, int k4, int out_zp, int act_min, int act_max,
                               int fast, int lsh)
{
    int c = 0;
    for (; c + 2 <= out_c; c += 2) {
        int32_t s[4] = {ch[c].bias, ch[c].bias, ch[c + 1].bias, ch[c + 1].bias};
        mk_dot_2x2(col, w + c * k4, k4, s);
        pa[c] = (int8_t)mk_clamp(mk_requant(s[0], &ch[c], fast, lsh, out_zp), act_min, act_max);
        pb[c] = (int8_t)mk_clamp(mk_requant(s[1], &ch[c], fast, lsh, out_zp), act_min, act_max);
        pa[c + 1] = (int8_t)mk_clamp(mk_requant(s[2], &ch[c + 1], fast, lsh, out_zp), act_min, act_max);
        pb[c + 1] = (int8_t)mk_clamp(mk_requant(s[3], &ch[c + 1], fast, lsh, out_zp), act_min, act_max);
    }
    if (c < out_c) {
        int32_t s[2] = {ch[c].bias, ch[c].bias};
        mk_dot_1x2(col, w + c * k4, k4, s);
        pa[c] = (int8_t)mk_clamp(mk_requant(s[0], &ch[c], fast, lsh, out_zp), act_min, act_max);
        pb[c] = (int8_t)mk_clamp(mk_requant(s[1], &ch[c], fast, lsh, out_zp), act_min, act_max);
    }
}

/* One pooled pixel from the 4 pixels of its 2x2 window: columns (0,1) at col, (2,3) at col + k4. */
MK_INLINE void mk_conv_pool_pixel(int8_t *restrict dst, const int32_t *col, const int8_t *restrict w,
                                  const mk_chan_t *restrict ch, int out_c, int k4, int out_zp, int act_min,
                                  int act_max, int fast, int lsh)
{
    int c = 0;
    for (; c + 2 <= out_c; c += 2) {
        const int8_t *wp = w + c * k4;
        int32_t s[4] = {ch[c].bias, ch[c].bias, ch[c + 1].bias, ch[c + 1].bias};
        mk_dot_2x2(col, wp, k4, s);
        int32_t m0 = mk_max32(s[0], s[1]), m1 = mk_max32(s[2], s[3]);
        s[0] = s[1] = ch[c].bias;
        s[2] = s[3] = ch[c + 1].bias;
        mk_dot_2x2(col + k4, wp, k4, s);
        m0 = mk_max32(m0, mk_max32(s[0], s[1]));
        m1 = mk_max32(m1, mk_max32(s[2], s[3]));
        dst[c] = (int8_t)mk_clamp(mk_requant(m0, &ch[c], fast, lsh, out_zp), act_min, act_max);
        dst[c + 1] = (int8_t)mk_clamp(mk_requant(m1, &ch[c + 1], fast, lsh, out_zp), act_min, act_max);
    }
    if (c < out_c) {
        int32_t s[2] = {ch[c].bias, ch[c].bias};
        mk_dot_1x2(col, w + c * k4, k4, s);
        int32_t m = mk_max32(s[0], s[1]);
        s[0] = s[1] = ch[c].bias;
        mk_dot_1x2(col + k4, w + c * k4, k4, s);
        m = mk_max32(m, mk_max32(s[0], s[1]));
        dst[c] = (int8_t)mk_clamp(mk_requant(m, &ch[c], fast, lsh, out_zp), act_min, act_max);
    }
}

/*
 * 2-D convolution, k = (ky, kx, ci) padded with zeros to k4; weights as mk_conv_pixels2 reads
 * them. out_h, out_w are the convolution's output size; with pool=1 a 2x2 stride-2 max-pool is
 * fused and the output is (out_h/2, out_w/2, out_c). col: 2 (4 with pool) x k4 halfwords.
 */
MK_INLINE void mk_conv(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                       const int8_t *restrict w, const mk_chan_t *restrict ch, int in_h, int in_w, int in_c,
                       int out_h, int out_w, int out_c, int kh, int kw, int sh, int sw, int pt, int pl, int in_zp,
                       int out_zp, int act_min, int act_max, int pool, int fast, int lsh)
{
    const int k4 = (kh * kw * in_c + 3) & ~3;
    if (pool) {
        const int ph = out_h / 2, pw = out_w / 2;
        for (int py = 0; py < ph; py++) {
            for (int px = 0; px < pw; px++) {
                for (int i = 0; i < 4; i++) {
                    mk_im2col(col + (i >> 1) * k4, i & 1, in, 2 * py + (i >> 1), 2 * px + (i & 1), in_h, in_w, in_c,
                              kh, kw, sh, sw, pt, pl, in_zp, k4);
                }
                mk_conv_pool_pixel(out + (py * pw + px) * out_c, col, w, ch, out_c, k4, out_zp, act_min, act_max,
                                   fast, lsh);
            }
        }
        return;
    }
    const int n = out_h * out_w;
    int oy = 0, ox = 0;
    for (int p = 0; p < n; p += 2) {
        const int qy = oy, qx = ox;
        mk_im2col(col, 0, in, oy, ox, in_h, in_w, in_c, kh, kw, sh, sw, pt, pl, in_zp, k4);
        if (++ox == out_w) {
            ox = 0;
            oy++;
        }
        int8_t *pb = out + p * out_c;
        if (p + 1 < n) {
            pb += out_c;
            mk_im2col(col, 1, in, oy, ox, in_h, in_w, in_c, kh, kw, sh, sw, pt, pl, in_zp, k4);
            if (++ox == out_w) {
                ox = 0;
                oy++;
            }
        } else {
            /* odd last pixel: both slots hold it, both outputs go to it */
            mk_im2col(col, 1, in, qy, qx, in_h, in_w, in_c, kh, kw, sh, sw, pt, pl, in_zp, k4);
        }
        mk_conv_pixels2(out + p * out_c, pb, col, w, ch, out_c, k4, out_zp, act_min, act_max, fast, lsh);
    }
}

/* ------------------------------------------- convolution of a 1-channel input */

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

/* ------------------------------------------------------------ fully connected */

/* One group of 4 values of 4 interleaved rows (16 bytes) against q15 x (2 words). */
MK_INLINE void mk_group_4x1(const int32_t *x, const int8_t *w, int32_t *s)
{
    for (int r = 0; r < 4; r++) {
        const int32_t v = mk_ld32(w + 4 * r);
        s[r] = mk_smlad(mk_sxtb16_ror8(v), x[1], mk_smlad(mk_sxtb16(v), x[0], s[r]));
    }
}

/*
 * out = requant(W x + bias) with the input zero point folded into the bias. The input is
 * first widened to q15 in col (k4 halfwords, (x0,x2),(x1,x3) order); weights: blocks of 4 rows
 * interleaved by 4 bytes (4 x k4 bytes per block), the last out_c % 4 rows plain.
 * The input must be readable up to k4 bytes (the arena pads tensors to 4 bytes).
 */
MK_INLINE void mk_fc(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                     const int8_t *restrict w, const mk_chan_t *restrict ch, int k4, int out_c, int out_zp,
                     int act_min, int act_max, int fast, int lsh)
{
    for (int k = 0; k < k4; k += 4) {
        const int32_t v = mk_ld32(in + k);
        col[k >> 1] = mk_sxtb16(v);
        col[(k >> 1) + 1] = mk_sxtb16_ror8(v);
    }
    int c = 0;
    for (; c + 4 <= out_c; c += 4) {
        int32_t s[4] = {ch[c].bias, ch[c + 1].bias, ch[c + 2].bias, ch[c + 3].bias};
        const int8_t *wp = w + c * k4;
        const int32_t *x = col;
        const int32_t *const xe = col + (k4 >> 1);
        if ((k4 >> 2) & 1) {
            mk_group_4x1(x, wp, s);
            x += 2;
            wp += 16;
        }
#if defined(MK_DSP)
        if (x != xe) {
            int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3], w0, w1, t, x0, x1;
            __asm__ volatile(
                "1:\n\t"
                "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
                "ldrd %[w0], %[w1], [%[wp]], #8\n\t"
                "sxtb16 %[t], %[w0]\n\t"
                "sxtb16 %[w0], %[w0], ror #8\n\t"
                "smlad %[s0], %[t], %[x0], %[s0]\n\t"
                "smlad %[s0], %[w0], %[x1], %[s0]\n\t"
                "sxtb16 %[t], %[w1]\n\t"
                "sxtb16 %[w1], %[w1], ror #8\n\t"
                "smlad %[s1], %[t], %[x0], %[s1]\n\t"
                "smlad %[s1], %[w1], %[x1], %[s1]\n\t"
                "ldrd %[w0], %[w1], [%[wp]], #8\n\t"
                "sxtb16 %[t], %[w0]\n\t"
                "sxtb16 %[w0], %[w0], ror #8\n\t"
                "smlad %[s2], %[t], %[x0], %[s2]\n\t"
                "smlad %[s2], %[w0], %[x1], %[s2]\n\t"
                "sxtb16 %[t], %[w1]\n\t"
                "sxtb16 %[w1], %[w1], ror #8\n\t"
                "smlad %[s3], %[t], %[x0], %[s3]\n\t"
                "smlad %[s3], %[w1], %[x1], %[s3]\n\t"
                "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
                "ldrd %[w0], %[w1], [%[wp]], #8\n\t"
                "sxtb16 %[t], %[w0]\n\t"
                "sxtb16 %[w0], %[w0], ror #8\n\t"
                "smlad %[s0], %[t], %[x0], %[s0]\n\t"
                "smlad %[s0], %[w0], %[x1], %[s0]\n\t"
                "sxtb16 %[t], %[w1]\n\t"
                "sxtb16 %[w1], %[w1], ror #8\n\t"
                "smlad %[s1], %[t], %[x0], %[s1]\n\t"
                "smlad %[s1], %[w1], %[x1], %[s1]\n\t"
                "ldrd %[w0], %[w1], [%[wp]], #8\n\t"
                "sxtb16 %[t], %[w0]\n\t"
                "sxtb16 %[w0], %[w0], ror #8\n\t"
                "smlad %[s2], %[t], %[x0], %[s2]\n\t"
                "smlad %[s2], %[w0], %[x1], %[s2]\n\t"
                "sxtb16 %[t], %[w1]\n\t"
                "sxtb16 %[w1], %[w1], ror #8\n\t"
                "smlad %[s3], %[t], %[x0], %[s3]\n\t"
                "smlad %[s3], %[w1], %[x1], %[s3]\n\t"
                "cmp %[xp], %[xe]\n\t"
                "bne 1b\n\t"
                : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [xp] "+r"(x), [wp] "+r"(wp),
                  [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
                : [xe] "r"(xe)
                : "cc", "memory");
            s[0] = s0;
            s[1] = s1;
            s[2] = s2;
            s[3] = s3;
        }
#else
        for (; x != xe; x += 2, wp += 16) {
            mk_group_4x1(x, wp, s);
        }
#endif
        for (int r = 0; r < 4; r++) {
            out[c + r] = (int8_t)mk_clamp(mk_requant(s[r], &ch[c + r], fast, lsh, out_zp), act_min, act_max);
        }
    }
    for (; c < out_c; c++) {
        const int8_t *w0 = w + (uint32_t)c * (uint32_t)k4;
        int32_t s0 = ch[c].bias;
        for (int k = 0; k < k4; k += 4) {
            const int32_t v = mk_ld32(w0 + k);
            s0 = mk_smlad(mk_sxtb16_ror8(v), col[(k >> 1) + 1], mk_smlad(mk_sxtb16(v), col[k >> 1], s0));
        }
        out[c] = (int8_t)mk_clamp(mk_requant(s0, &ch[c], fast, lsh, out_zp), act_min, act_max);
    }
}

/* ---------------------------------------------------------- depthwise conv */

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

/* ------------------------------------------------------------------ pooling */

/* Max pool; padded positions never win. act_min/act_max clamp the result. */
MK_INLINE void mk_maxpool(const int8_t *restrict in, int8_t *restrict out, int in_h, int in_w, int c, int out_h,
                          int out_w, int kh, int kw, int sh, int sw, int pt, int pl, int act_min, int act_max)
{
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * sh - pt;
        const int ky0 = iy0 < 0 ? -iy0 : 0;
        const int ky1 = in_h - iy0 < kh ? in_h - iy0 : kh;
        for (int ox = 0; ox < out_w; ox++) {
            const int ix0 = ox * sw - pl;
            const int kx0 = ix0 < 0 ? -ix0 : 0;
            const int kx1 = in_w - ix0 < kw ? in_w - ix0 : kw;
            int8_t *dst = out + (oy * out_w + ox) * c;
            const int8_t *first = in + ((iy0 + ky0) * in_w + ix0 + kx0) * c;
            int i = 0;
            if ((c & 3) == 0) {
                for (; i < c; i += 4) {
                    int32_t m = mk_ld32(first + i);
                    for (int ky = ky0; ky < ky1; ky++) {
                        for (int kx = kx0; kx < kx1; kx++) {
                            m = mk_max_s8x4(m, mk_ld32(in + ((iy0 + ky) * in_w + ix0 + kx) * c + i));
                        }
                    }
                    mk_st32(dst + i, m);
                }
            }
            for (; i < c; i++) {
                int32_t m = first[i];
                for (int ky = ky0; ky < ky1; ky++) {
                    for (int kx = kx0; kx < kx1; kx++) {
                        m = mk_max32(m, in[((iy0 + ky) * in_w + ix0 + kx) * c + i]);
                    }
                }
                dst[i] = (int8_t)m;
            }
            if (act_min > -128 || act_max < 127) {
                for (i = 0; i < c; i++) {
                    dst[i] = (int8_t)mk_clamp(dst[i], act_min, act_max);
                }
            }
        }
    }
}

/* Average pool (padding counts as zero, i.e. count_include_pad) and global average pool
 * (kernel = input size): sum of (x - in_zp) over the window, requantized by mult/shift that
 * include 1/count. */
MK_INLINE void mk_avgpool(const int8_t *restrict in, int8_t *restrict out, int in_h, int in_w, int c, int out_h,
                          int out_w, int kh, int kw, int sh, int sw, int pt, int pl, int in_zp, int out_zp,
                          int32_t mult, int32_t shift, int act_min, int act_max)
{
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * sh - pt;
        const int ky0 = iy0 < 0 ? -iy0 : 0;
        const int ky1 = in_h - iy0 < kh ? in_h - iy0 : kh;
        for (int ox = 0; ox < out_w; ox++) {
            const int ix0 = ox * sw - pl;
            const int kx0 = ix0 < 0 ? -ix0 : 0;
            const int kx1 = in_w - ix0 < kw ? in_w - ix0 : kw;
            const int count = (ky1 - ky0) * (kx1 - kx0);
            int8_t *dst = out + (oy * out_w + ox) * c;
            for (int i = 0; i < c; i++) {
                int32_t s = -in_zp * count;
                for (int ky = ky0; ky < ky1; ky++) {
                    const int8_t *row = in + ((iy0 + ky) * in_w + ix0) * c + i;
                    for (int kx = kx0; kx < kx1; kx++) {
                        s += row[kx * c];
                    }
                }
                dst[i] = (int8_t)mk_clamp(mk_mbqm(s, mult, shift) + out_zp, act_min, act_max);
            }
        }
    }
}

/* ---------------------------------------------------------------------- add */

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

#endif /* MK_KERNELS_H */
