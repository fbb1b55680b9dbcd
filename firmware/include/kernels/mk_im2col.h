/*
 * mk_im2col.h - shared by convolution and fully connected: the q15 im2col of two (or three)
 * pixels and the SMLAD dot-product register blocks (2 channels x 2 or 3 pixels, 1 channel x 2
 * pixels).
 *
 * Values go to q15 as SXTB16 / SXTB16 ROR 8 leave them (x0,x2),(x1,x3), so no packing is needed:
 * per 4 input values one 32-bit weight load and two SXTB16 per channel, 8 SMLAD per 2x2 block.
 */
#ifndef MK_IM2COL_H
#define MK_IM2COL_H

#include "mk_arch.h"

/* ------------------------------------------------------------------------ im2col */

/*
 * q15 column of output pixel (oy, ox) over the cg input channels c0..c0+cg-1 of pixels in_c
 * channels apart (a group of a grouped convolution; all of them: c0 = 0, cg = in_c), k4 values
 * in groups of 4 stored as the two words (x0,x2),(x1,x3) (what SXTB16 and SXTB16 ROR 8 of the
 * weights pair with). Several pixels share a buffer interleaved by group: group g of slot s
 * (0 .. slots - 1) is at words 2 * slots * g + 2s.
 */
MK_INLINE void mk_im2col_gs(int32_t *restrict col, int slot, int slots, const int8_t *restrict in, int oy, int ox,
                            int in_h, int in_w, int in_c, int c0, int cg, int kh, int kw, int sh, int sw, int pt,
                            int pl, int in_zp, int k4)
{
    const int iy0 = oy * sh - pt;
    const int ix0 = ox * sw - pl;
    if ((cg & 3) == 0) {
        const int32_t zp2 = (int32_t)(((uint32_t)in_zp & 0xFFFFu) | ((uint32_t)in_zp << 16));
        int32_t *dst = col + 2 * slot;
        for (int ky = 0; ky < kh; ky++) {
            const int iy = iy0 + ky;
            for (int kx = 0; kx < kw; kx++) {
                const int ix = ix0 + kx;
                if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
                    const int8_t *src = in + (iy * in_w + ix) * in_c + c0;
                    for (int c = 0; c < cg; c += 4) {
                        const int32_t v = mk_ld32(src + c);
                        dst[0] = mk_sxtb16(v);
                        dst[1] = mk_sxtb16_ror8(v);
                        dst += 2 * slots;
                    }
                } else {
                    for (int c = 0; c < cg; c += 4) {
                        dst[0] = zp2;
                        dst[1] = zp2;
                        dst += 2 * slots;
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
            const int8_t *src = in + (iy * in_w + ix) * in_c + c0;
            for (int c = 0; c < cg; c++, k++) {
                const int j = k & 3;
                dst[slots * (k & ~3) + ((j & 1) << 1) + (j >> 1)] = (int16_t)(inside ? src[c] : in_zp);
            }
        }
    }
    for (; k < k4; k++) {
        const int j = k & 3;
        dst[slots * (k & ~3) + ((j & 1) << 1) + (j >> 1)] = 0;
    }
}

/* the same for a buffer of two pixels (slots 0 and 1: group g of slot s at words 4g + 2s) */
MK_INLINE void mk_im2col_g(int32_t *restrict col, int slot, const int8_t *restrict in, int oy, int ox, int in_h,
                           int in_w, int in_c, int c0, int cg, int kh, int kw, int sh, int sw, int pt, int pl,
                           int in_zp, int k4)
{
    mk_im2col_gs(col, slot, 2, in, oy, ox, in_h, in_w, in_c, c0, cg, kh, kw, sh, sw, pt, pl, in_zp, k4);
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
 * Per group: 3 LDRD, 4 SXTB16, 8 SMLAD; the DSP loop does four groups per branch (the first
 * groups % 4 in C).
 */
#if defined(MK_DSP)
#define MK_GROUP_2X2_ASM                                                                                               \
    "ldrd %[w0], %[w2], [%[wp]], #8\n\t"                                                                               \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                                               \
    "sxtb16 %[w1], %[w0], ror #8\n\t"                                                                                  \
    "sxtb16 %[w0], %[w0]\n\t"                                                                                          \
    "sxtb16 %[w3], %[w2], ror #8\n\t"                                                                                  \
    "sxtb16 %[w2], %[w2]\n\t"                                                                                          \
    "smlad %[s00], %[w0], %[x0], %[s00]\n\t"                                                                           \
    "smlad %[s10], %[w2], %[x0], %[s10]\n\t"                                                                           \
    "smlad %[s00], %[w1], %[x1], %[s00]\n\t"                                                                           \
    "smlad %[s10], %[w3], %[x1], %[s10]\n\t"                                                                           \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                                               \
    "smlad %[s01], %[w0], %[x0], %[s01]\n\t"                                                                           \
    "smlad %[s11], %[w2], %[x0], %[s11]\n\t"                                                                           \
    "smlad %[s01], %[w1], %[x1], %[s01]\n\t"                                                                           \
    "smlad %[s11], %[w3], %[x1], %[s11]\n\t"
#endif

MK_INLINE void mk_dot_2x2(const int32_t *x, const int8_t *w, int k4, int32_t *s)
{
    int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
    const int32_t *const xe = x + k4;
    for (int r = 0; r < ((k4 >> 2) & 3); r++) {
        mk_group_2x2(x, w, &s00, &s01, &s10, &s11);
        x += 4;
        w += 8;
    }
#if defined(MK_DSP)
    if (x != xe) {
        int32_t w0, w1, w2, w3, x0, x1;
        __asm__ volatile("1:\n\t" MK_GROUP_2X2_ASM MK_GROUP_2X2_ASM MK_GROUP_2X2_ASM MK_GROUP_2X2_ASM
                         "cmp %[xp], %[xe]\n\t"
                         "bne 1b\n\t"
                         : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [xp] "+r"(x),
                           [wp] "+r"(w), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3),
                           [x0] "=&r"(x0), [x1] "=&r"(x1)
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

/* One group of 4 values for 2 channels (w: 8 bytes, rows interleaved) x 3 pixels (x: 6 words). */
MK_INLINE void mk_group_2x3(const int32_t *x, const int8_t *w, int32_t *s)
{
    const int32_t w0 = mk_ld32(w), w1 = mk_ld32(w + 4);
    const int32_t w0l = mk_sxtb16(w0), w0h = mk_sxtb16_ror8(w0);
    const int32_t w1l = mk_sxtb16(w1), w1h = mk_sxtb16_ror8(w1);
    for (int p = 0; p < 3; p++) {
        s[p] = mk_smlad(w0h, x[2 * p + 1], mk_smlad(w0l, x[2 * p], s[p]));
        s[3 + p] = mk_smlad(w1h, x[2 * p + 1], mk_smlad(w1l, x[2 * p], s[3 + p]));
    }
}

/*
 * s[3 * ch + px] += w_ch . x_px for 2 channels x 3 pixels over k4 values: x three interleaved q15
 * columns (1.5 x k4 words), w as mk_dot_2x2 reads it. Per group: 1 LDRD of weights, 4 SXTB16,
 * 3 LDRD of inputs, 12 SMLAD (the weights' SXTB16 shared by three pixels); four groups per
 * branch in the DSP loop (the first groups % 4 in C).
 */
#if defined(MK_DSP)
#define MK_GROUP_2X3_ASM                                                                                               \
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t"                                                                               \
    "sxtb16 %[wa], %[w0]\n\t"                                                                                          \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                                  \
    "sxtb16 %[wb], %[w1]\n\t"                                                                                          \
    "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                                  \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                                               \
    "smlad %[s00], %[wa], %[x0], %[s00]\n\t"                                                                           \
    "smlad %[s10], %[wb], %[x0], %[s10]\n\t"                                                                           \
    "smlad %[s00], %[w0], %[x1], %[s00]\n\t"                                                                           \
    "smlad %[s10], %[w1], %[x1], %[s10]\n\t"                                                                           \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                                               \
    "smlad %[s01], %[wa], %[x0], %[s01]\n\t"                                                                           \
    "smlad %[s11], %[wb], %[x0], %[s11]\n\t"                                                                           \
    "smlad %[s01], %[w0], %[x1], %[s01]\n\t"                                                                           \
    "smlad %[s11], %[w1], %[x1], %[s11]\n\t"                                                                           \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                                               \
    "smlad %[s02], %[wa], %[x0], %[s02]\n\t"                                                                           \
    "smlad %[s12], %[wb], %[x0], %[s12]\n\t"                                                                           \
    "smlad %[s02], %[w0], %[x1], %[s02]\n\t"                                                                           \
    "smlad %[s12], %[w1], %[x1], %[s12]\n\t"
#endif

MK_INLINE void mk_dot_2x3(const int32_t *x, const int8_t *w, int k4, int32_t *s)
{
    const int32_t *const xe = x + k4 + k4 / 2;
    for (int r = 0; r < ((k4 >> 2) & 3); r++) {
        mk_group_2x3(x, w, s);
        x += 6;
        w += 8;
    }
#if defined(MK_DSP)
    if (x != xe) {
        int32_t s00 = s[0], s01 = s[1], s02 = s[2], s10 = s[3], s11 = s[4], s12 = s[5];
        int32_t w0, w1, wa, wb, x0, x1;
        __asm__ volatile("1:\n\t" MK_GROUP_2X3_ASM MK_GROUP_2X3_ASM MK_GROUP_2X3_ASM MK_GROUP_2X3_ASM
                         "ldr %[x0], %[xe]\n\t"
                         "cmp %[xp], %[x0]\n\t"
                         "bne 1b\n\t"
                         : [s00] "+r"(s00), [s01] "+r"(s01), [s02] "+r"(s02), [s10] "+r"(s10), [s11] "+r"(s11),
                           [s12] "+r"(s12), [xp] "+r"(x), [wp] "+r"(w), [w0] "=&r"(w0), [w1] "=&r"(w1),
                           [wa] "=&r"(wa), [wb] "=&r"(wb), [x0] "=&r"(x0), [x1] "=&r"(x1)
                         : [xe] "m"(xe)
                         : "cc", "memory");
        s[0] = s00;
        s[1] = s01;
        s[2] = s02;
        s[3] = s10;
        s[4] = s11;
        s[5] = s12;
    }
#else
    for (; x != xe; x += 6, w += 8) {
        mk_group_2x3(x, w, s);
    }
#endif
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

#endif /* MK_IM2COL_H */
