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
            const int base = iy * in_w + ix0;
            if (iy >= 0 && iy < in_h && ix0 >= 0 && ix0 + kw <= in_w) { /* the row inside: no checks */
                for (int kx = 0; kx < kw; kx++) {
                    *dst++ = in[base + kx];
                }
                continue;
            }
            for (int kx = 0; kx < kw; kx++) {
                const int ix = ix0 + kx;
                *dst++ = (int16_t)((iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) ? in[base + kx] : in_zp);
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

#if defined(MK_DSP)
/* the dot product of one pixel's five q15 words at [xp + o] into acc (bias added after the max) */
#define MK_CONV1_PIX5(acc, o)                                                                                          \
    "ldrd %[x0], %[x1], [%[xp], #" o "]\n\t"                                                                           \
    "smuad " acc ", %[w0], %[x0]\n\t"                                                                                  \
    "smlad " acc ", %[w1], %[x1], " acc "\n\t"                                                                         \
    "ldrd %[x0], %[x1], [%[xp], #" o "+8]\n\t"                                                                         \
    "smlad " acc ", %[w2], %[x0], " acc "\n\t"                                                                         \
    "smlad " acc ", %[w3], %[x1], " acc "\n\t"                                                                         \
    "ldr %[x0], [%[xp], #" o "+16]\n\t"                                                                                \
    "smlad " acc ", %[w4], %[x0], " acc "\n\t"
#define MK_CONV1_MAX "cmp %[a], %[m]\n\tit gt\n\tmovgt %[m], %[a]\n\t"
/* one pooled pixel from its four convolution pixels at byte offsets o0..o3: the largest dot
 * product plus the bias, requantized (fast form), clamped, stored */
#define MK_CONV1_POOLED(o0, o1, o2, o3)                                                                                \
    MK_CONV1_PIX5("%[m]", o0)                                                                                          \
    MK_CONV1_PIX5("%[a]", o1) MK_CONV1_MAX MK_CONV1_PIX5("%[a]", o2) MK_CONV1_MAX MK_CONV1_PIX5("%[a]", o3)            \
        MK_CONV1_MAX "ldr %[a], [%[chp]]\n\t"                                                                          \
                     "add %[m], %[m], %[a]\n\t"                                                                        \
                     "ldrd %[x0], %[x1], [%[chp], #4]\n\t"                                                             \
                     "ldr %[a], [%[chp], #12]\n\t"                                                                     \
                     "lsl %[m], %[m], #1\n\t"                                                                          \
                     "smmulr %[m], %[m], %[x0]\n\t"                                                                    \
                     "add %[m], %[m], %[m], asr #31\n\t"                                                               \
                     "add %[m], %[m], %[x1]\n\t"                                                                       \
                     "asr %[m], %[m], %[a]\n\t"                                                                        \
                     "ssat %[m], #8, %[m]\n\t"                                                                         \
                     ".if %c[lo] > -128\n\tcmp %[m], #%c[lo]\n\tit lt\n\tmovlt %[m], #%c[lo]\n\t.endif\n\t"       \
                     ".if %c[hi] < 127\n\tcmp %[m], #%c[hi]\n\tit gt\n\tmovgt %[m], #%c[hi]\n\t.endif\n\t"        \
                     "strb %[m], [%[op]], #%c[C]\n\t"

/* One pooled output row of channel ch (a 3x3 or smaller kernel: five q15 words of weights in
 * registers) with the fast requantization: per pooled pixel the four convolution pixels
 * (columns row0 + 2px, + 1, and the same of the next convolution row, row bytes apart), the
 * largest dot product plus the bias requantized, stored every out_c bytes; two pooled pixels
 * per loop pass when pw is even. */
MK_INLINE void mk_conv1_pool5_asm(int8_t *dst, const int32_t *row0, const int32_t *w, const mk_chan_t *ch, int pw,
                                  int row, int out_c, int act_min, int act_max)
{
    const int32_t *xp = row0;
    const int32_t *const xe = row0 + 10 * pw;
    int32_t m, a, x0, x1;
    __asm__ volatile("1:\n\t" MK_CONV1_POOLED("0", "20", "%c[R]", "%c[R]+20")
                     ".if %c[two]\n\t" MK_CONV1_POOLED("40", "60", "%c[R]+40", "%c[R]+60") ".endif\n\t"
                     "add %[xp], %[xp], #40*(1+%c[two])\n\t"
                     "ldr %[x0], %[xe]\n\t"
                     "cmp %[xp], %[x0]\n\t"
                     "bne 1b\n\t"
                     : [m] "=&r"(m), [a] "=&r"(a), [x0] "=&r"(x0), [x1] "=&r"(x1), [xp] "+r"(xp), [op] "+r"(dst)
                     : [w0] "r"(w[0]), [w1] "r"(w[1]), [w2] "r"(w[2]), [w3] "r"(w[3]), [w4] "r"(w[4]),
                       [chp] "r"(ch), [xe] "m"(xe), [R] "i"(row), [C] "i"(out_c), [two] "i"(1 - (pw & 1)),
                       [lo] "i"(act_min), [hi] "i"(act_max)
                     : "cc", "memory");
}
#endif

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
#if defined(MK_DSP)
            if (__builtin_constant_p(out_c) && __builtin_constant_p(pw) && __builtin_constant_p(act_min) &&
                __builtin_constant_p(act_max) && fast && words == 5 && out_c < 256 && n * words * 4 + 80 < 4096) {
                for (int c = 0; c < out_c; c++) {
                    mk_conv1_pool5_asm(dst + c, row0, w32 + c * words, &ch[c], pw, n * words * 4, out_c, act_min,
                                       act_max);
                }
                continue;
            }
#endif
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
