/*
 * mk_pw.h - 1x1 convolutions (stride 1, no padding, one group) without im2col: both operands
 * widened to q15 in scratch (the weights and constants of a block of output channels once,
 * each pixel pair as it comes), so the 2 channels x 2 pixels register block is LDRD and SMLAD
 * only. Python side: malak_pipe/mcu/ops/conv.py (the convolution family).
 */
#ifndef MK_PW_H
#define MK_PW_H

#include "mk_arch.h"
#include "mk_requant.h"

/* n values (n even) of int8 src as q15, doubled when dbl: each group of four (v0..v3) as the
 * words (v0, v2), (v1, v3) (what SXTB16 and SXTB16 ROR 8 give: the other operand is widened the
 * same way) at dst[i * stride], dst[i * stride + 1], a last pair (n % 4 == 2) as (v0, v1) at
 * dst[(n / 4) * stride + tail]. */
MK_INLINE void mk_pw_widen(int32_t *restrict dst, const int8_t *restrict src, int n, int stride, int tail, int dbl)
{
    int j = 0;
    for (; j + 4 <= n; j += 4, dst += stride) {
        const int32_t v = mk_ld32(src + j);
        int32_t e = mk_sxtb16(v), o = mk_sxtb16_ror8(v);
        if (dbl) {
            e = mk_sadd16(e, e);
            o = mk_sadd16(o, o);
        }
        dst[0] = e;
        dst[1] = o;
    }
    if (j < n) {
        uint16_t h;
        memcpy(&h, src + j, 2);
        const int32_t v = (int32_t)h;
        int32_t e = mk_sxtb16(v), o = mk_sxtb16_ror8(v);
        if (dbl) {
            e = mk_sadd16(e, e);
            o = mk_sadd16(o, o);
        }
        dst[tail] = mk_pkhbt16(e, o);
    }
}

/* s00 (ch 0, px a), s01 (ch 0, px b), s10, s11 over k2 values: w = two channels' q15 pairs and
 * x = two pixels' q15 pairs, each interleaved by blocks of two pairs (a last single pair: one
 * word each). Per two pairs: 4 LDRD, 8 SMLAD. */
#if defined(MK_DSP)
/* two q15 pairs of 2 channels (w0, w1 and v0, v1) x 2 pixels (x0, x1 each) */
#define MK_PW_BLOCK                                                                                                    \
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t"                                                                               \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                                               \
    "smlad %[s00], %[w0], %[x0], %[s00]\n\t"                                                                           \
    "smlad %[s00], %[w1], %[x1], %[s00]\n\t"                                                                           \
    "ldrd %[v0], %[v1], [%[wp]], #8\n\t"                                                                               \
    "smlad %[s10], %[v0], %[x0], %[s10]\n\t"                                                                           \
    "smlad %[s10], %[v1], %[x1], %[s10]\n\t"                                                                           \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                                               \
    "smlad %[s01], %[w0], %[x0], %[s01]\n\t"                                                                           \
    "smlad %[s01], %[w1], %[x1], %[s01]\n\t"                                                                           \
    "smlad %[s11], %[v0], %[x0], %[s11]\n\t"                                                                           \
    "smlad %[s11], %[v1], %[x1], %[s11]\n\t"
#endif

MK_INLINE void mk_pw_block_2x2(const int32_t *x, const int32_t *w, int32_t *s00, int32_t *s01, int32_t *s10,
                                int32_t *s11)
{
    *s00 = mk_smlad(w[1], x[1], mk_smlad(w[0], x[0], *s00));
    *s10 = mk_smlad(w[3], x[1], mk_smlad(w[2], x[0], *s10));
    *s01 = mk_smlad(w[1], x[3], mk_smlad(w[0], x[2], *s01));
    *s11 = mk_smlad(w[3], x[3], mk_smlad(w[2], x[2], *s11));
}

MK_INLINE void mk_pw_dot_2x2(const int32_t *x, const int32_t *w, int k2, int32_t *s)
{
    int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
    const int blocks = k2 >> 2;
    if (blocks & 1) {
        mk_pw_block_2x2(x, w, &s00, &s01, &s10, &s11);
        x += 4;
        w += 4;
    }
    const int32_t *const xe = x + 4 * (blocks & ~1);
#if defined(MK_DSP)
    if (x != xe) {
        int32_t w0, w1, v0, v1, x0, x1;
        __asm__ volatile(
            "1:\n\t" MK_PW_BLOCK MK_PW_BLOCK
            "cmp %[xp], %[xe]\n\t"
            "bne 1b\n\t"
            : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [xp] "+r"(x), [wp] "+r"(w),
              [w0] "=&r"(w0), [w1] "=&r"(w1), [v0] "=&r"(v0), [v1] "=&r"(v1), [x0] "=&r"(x0), [x1] "=&r"(x1)
            : [xe] "r"(xe)
            : "cc", "memory");
    }
#else
    for (; x != xe; x += 4, w += 4) {
        mk_pw_block_2x2(x, w, &s00, &s01, &s10, &s11);
    }
#endif
    if (k2 & 2) {
        s00 = mk_smlad(w[0], x[0], s00);
        s01 = mk_smlad(w[0], x[1], s01);
        s10 = mk_smlad(w[1], x[0], s10);
        s11 = mk_smlad(w[1], x[1], s11);
    }
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

/* one channel (plain q15 pairs) x two pixels */
MK_INLINE void mk_pw_dot_1x2(const int32_t *x, const int32_t *w, int k2, int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1];
    const int blocks = k2 >> 2;
    for (int b = 0; b < blocks; b++, x += 4, w += 2) {
        s0 = mk_smlad(w[1], x[1], mk_smlad(w[0], x[0], s0));
        s1 = mk_smlad(w[1], x[3], mk_smlad(w[0], x[2], s1));
    }
    if (k2 & 2) {
        s0 = mk_smlad(w[0], x[0], s0);
        s1 = mk_smlad(w[0], x[1], s1);
    }
    s[0] = s0;
    s[1] = s1;
}

/* One block of mk_pw's scratch: per channel pair (b0, b0, b1, b1), the two channels' q15 weights
 * interleaved by blocks of two pairs, then (mult, off, shift) of both: k2 + 10 words; an odd last
 * channel (b, b), its plain q15 pairs, (mult, off, shift): k2 / 2 + 5 words. Biases doubled and
 * weights doubled in the fast form. */
MK_INLINE void mk_pw_block_weights(int32_t *restrict dst, const int8_t *restrict w, const mk_chan_t *restrict ch,
                                   int nc, int k2, int fast)
{
    for (int c = 0; c < nc; c += 2, dst += k2 + 10) {
        const int pair = c + 1 < nc;
        for (int i = 0; i <= pair; i++) {
            const int32_t b = fast ? 2 * ch[c + i].bias : ch[c + i].bias;
            dst[2 * i] = dst[2 * i + 1] = b;
            dst[(pair ? k2 + 4 : k2 / 2 + 2) + 3 * i] = ch[c + i].mult;
            dst[(pair ? k2 + 4 : k2 / 2 + 2) + 3 * i + 1] = ch[c + i].off;
            dst[(pair ? k2 + 4 : k2 / 2 + 2) + 3 * i + 2] = ch[c + i].shift;
            if (pair) {
                mk_pw_widen(dst + 4 + 2 * i, w + (c + i) * k2, k2, 4, -i, fast);
            } else {
                mk_pw_widen(dst + 2, w + c * k2, k2, 2, 0, fast);
            }
        }
    }
}

#if defined(MK_DSP)
#define MK_PW_OUT(a, m, off, sh)                                                                                       \
    "smmulr " a ", " a ", " m "\n\t"                                                                                   \
    "add " a ", " a ", " a ", asr #31\n\t"                                                                             \
    "add " a ", " a ", " off "\n\t"                                                                                    \
    "asr " a ", " a ", " sh "\n\t"                                                                                     \
    "ssat " a ", #8, " a "\n\t"
/* channels c, c + 1 of pixels a (s00, s10) and b (s01, s11, out_c bytes on): stored, or with a
 * narrower clamp packed into one word, clamped four at a time (SSUB8 + SEL), stored by halfwords */
#define MK_PW_STORE4                                                                                                   \
    ".if %c[lo] > -128 || %c[hi] < 127\n\t"                                                                            \
    "bfi %[s00], %[s10], #8, #8\n\t"                                                                                   \
    "bfi %[s00], %[s01], #16, #8\n\t"                                                                                  \
    "bfi %[s00], %[s11], #24, #8\n\t" MK_ASM_CLAMP4("%[s00]", "%[w0]", "%[w1]") "strh %[s00], [%[oa]], #2\n\t"       \
    "lsr %[s00], %[s00], #16\n\t"                                                                                      \
    "strh %[s00], [%[oa], #%c[C]-2]\n\t"                                                                               \
    ".else\n\t"                                                                                                        \
    "strb %[s10], [%[oa], #1]\n\t"                                                                                     \
    "strb %[s01], [%[oa], #%c[C]]\n\t"                                                                                 \
    "strb %[s11], [%[oa], #%c[C]+1]\n\t"                                                                               \
    "strb %[s00], [%[oa]], #2\n\t"                                                                                     \
    ".endif\n\t"

/* Every channel pair of a block for the pixel pair in col (fast requantization, k2 a literal):
 * the dot products unrolled (.rept, four blocks of two pairs per loop pass beyond the first
 * nb % 4), the constants read from the block as it streams by. */
MK_INLINE void mk_pw_pairs_asm(int8_t *oa, const int32_t *col, const int32_t *wb, int pairs, int k2, int out_c,
                               int act_min, int act_max)
{
    int8_t *const oe = oa + 2 * pairs;
    const int32_t *const xe = col + 4 * (k2 >> 2);
    const int32_t *xp = col, *wp = wb;
    int32_t s00, s01, s10, s11, w0, w1, v0, v1, x0, x1;
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[s00], %[s01], [%[wp]], #8\n\t"
        "ldrd %[s10], %[s11], [%[wp]], #8\n\t"
        ".if %c[nb] <= 8\n\t"
        ".rept %c[nb]\n\t" MK_PW_BLOCK ".endr\n\t"
        ".else\n\t"
        ".rept %c[nb] %% 4\n\t" MK_PW_BLOCK ".endr\n\t"
        "2:\n\t"
        ".rept 4\n\t" MK_PW_BLOCK ".endr\n\t"
        "ldr %[x0], %[xe]\n\t"
        "cmp %[xp], %[x0]\n\t"
        "bne 2b\n\t"
        ".endif\n\t"
        ".if %c[tail]\n\t"
        "ldrd %[w0], %[v0], [%[wp]], #8\n\t"
        "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
        "smlad %[s00], %[w0], %[x0], %[s00]\n\t"
        "smlad %[s01], %[w0], %[x1], %[s01]\n\t"
        "smlad %[s10], %[v0], %[x0], %[s10]\n\t"
        "smlad %[s11], %[v0], %[x1], %[s11]\n\t"
        ".endif\n\t"
        "sub %[xp], %[xp], #%c[cb]\n\t"
        "ldrd %[w0], %[w1], [%[wp]], #8\n\t"
        "ldrd %[v0], %[v1], [%[wp]], #8\n\t"
        "ldrd %[x0], %[x1], [%[wp]], #8\n\t" MK_PW_OUT("%[s00]", "%[w0]", "%[w1]", "%[v0]")
            MK_PW_OUT("%[s01]", "%[w0]", "%[w1]", "%[v0]") MK_PW_OUT("%[s10]", "%[v1]", "%[x0]", "%[x1]")
                MK_PW_OUT("%[s11]", "%[v1]", "%[x0]", "%[x1]") MK_PW_STORE4
        "ldr %[w0], %[oe]\n\t"
        "cmp %[oa], %[w0]\n\t"
        "bne 1b\n\t"
        : [s00] "=&r"(s00), [s01] "=&r"(s01), [s10] "=&r"(s10), [s11] "=&r"(s11), [w0] "=&r"(w0), [w1] "=&r"(w1),
          [v0] "=&r"(v0), [v1] "=&r"(v1), [x0] "=&r"(x0), [x1] "=&r"(x1), [xp] "+r"(xp), [wp] "+r"(wp),
          [oa] "+r"(oa)
        : [oe] "m"(oe), [xe] "m"(xe), [nb] "i"(k2 >> 2), [tail] "i"((k2 >> 1) & 1), [cb] "i"(4 * k2), [C] "i"(out_c),
          [lo] "i"(act_min), [hi] "i"(act_max), [lo4] "i"(MK_BYTES4(act_min)), [hi4] "i"(MK_BYTES4(act_max))
        : "cc", "memory");
}
#endif

/*
 * 1x1 convolution (stride 1, no padding, one group) of n pixels of in_c channels: weights
 * (out_c, k2) int8 rows, k2 = in_c rounded up to even, zero padded; ch[].bias has the input zero
 * point folded in. For each block of cb output channels (cb even or all of them) the block's
 * weights and constants are laid out once in scratch (mk_pw_block_weights: q15, doubled in the
 * fast form so the requantization needs no shift), then every pair of pixels is widened (2 x k2
 * halfwords after the block) and runs through 2 channels x 2 pixels register blocks of LDRD and
 * SMLAD only. scratch: cb / 2 x (k2 + 10) words (+ k2 / 2 + 5 for an odd count), then 2 x k2
 * halfwords.
 */
MK_INLINE void mk_pw(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict scratch,
                     const int8_t *restrict w, const mk_chan_t *restrict ch, int n, int in_c, int k2, int out_c,
                     int cb, int out_zp, int act_min, int act_max, int fast)
{
    int32_t *const col = scratch + (cb >> 1) * (k2 + 10) + (cb & 1) * (k2 / 2 + 5);
    const int literal = __builtin_constant_p(k2) && __builtin_constant_p(out_c) && __builtin_constant_p(act_min) &&
                        __builtin_constant_p(act_max);
    (void)literal;
    for (int c0 = 0; c0 < out_c; c0 += cb) {
        const int nc = out_c - c0 < cb ? out_c - c0 : cb;
        mk_pw_block_weights(scratch, w + c0 * k2, ch + c0, nc, k2, fast);
        for (int p = 0; p < n; p += 2) {
            const int pb = p + 1 < n ? p + 1 : p;
            mk_pw_widen(col, in + p * in_c, k2, 4, 0, 0);
            mk_pw_widen(col + 2, in + pb * in_c, k2, 4, -1, 0);
            int8_t *oa = out + p * out_c + c0, *ob = out + pb * out_c + c0;
            int c = 0;
#if defined(MK_DSP)
            if (literal && fast && out_c < 4095 && pb == p + 1 && nc >= 2) {
                mk_pw_pairs_asm(oa, col, scratch, nc >> 1, k2, out_c, act_min, act_max);
                c = nc & ~1;
            }
#endif
            for (; c + 2 <= nc; c += 2) {
                const int32_t *wb = scratch + (c >> 1) * (k2 + 10);
                const mk_chan_t *h = ch + c0 + c;
                int32_t s[4] = {wb[0], wb[0], wb[2], wb[2]};
                mk_pw_dot_2x2(col, wb + 4, k2, s);
                oa[c] = mk_requant2_clamp(s[0], h, fast, out_zp, act_min, act_max);
                oa[c + 1] = mk_requant2_clamp(s[2], h + 1, fast, out_zp, act_min, act_max);
                ob[c] = mk_requant2_clamp(s[1], h, fast, out_zp, act_min, act_max);
                ob[c + 1] = mk_requant2_clamp(s[3], h + 1, fast, out_zp, act_min, act_max);
            }
            if (c < nc) {
                const int32_t *wb = scratch + (c >> 1) * (k2 + 10);
                int32_t s[2] = {wb[0], wb[0]};
                mk_pw_dot_1x2(col, wb + 2, k2, s);
                oa[c] = mk_requant2_clamp(s[0], ch + c0 + c, fast, out_zp, act_min, act_max);
                ob[c] = mk_requant2_clamp(s[1], ch + c0 + c, fast, out_zp, act_min, act_max);
            }
        }
    }
}

#endif /* MK_PW_H */
