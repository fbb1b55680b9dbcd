/*
 * mk_dwconv.h - depthwise convolution (any channel multiplier): padded input rows in a ring
 * buffer and four channels per SXTB16 pair when mult == 1 and in_c % 4 == 0, else one channel
 * at a time; mk_dwconv3 (kernels three wide): the ring's rows widened to q15 channel by channel,
 * so one SMLAD does two taps of one channel, two output pixels per pass sharing their loads.
 * Python side: malak_pipe/mcu/ops/depthwise.py.
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

/* ---------------------------------------------------------------- three-wide kernels */

/* Input row iy (zero points outside the input) widened to q15 into one ring slot: channel c's
 * padded columns 0..wq-1 at dst + c * cs (column j is input column j - pl). Pairs of pixels go
 * to one word per channel (SXTB16 of both, then PKHBT/PKHTB) when in_c % 4 == 0. */
MK_INLINE void mk_dw_row_q15(int16_t *restrict dst, const int8_t *restrict in, int iy, int in_h, int in_w, int in_c,
                             int wq, int cs, int pl, int in_zp)
{
    const int32_t zp2 = (int32_t)(((uint32_t)in_zp & 0xFFFFu) | ((uint32_t)in_zp << 16));
    if (iy < 0 || iy >= in_h) {
        for (int c = 0; c < in_c; c++) {
            for (int j = 0; j < wq; j += 2) {
                mk_st32(dst + c * cs + j, zp2);
            }
        }
        return;
    }
    for (int c = 0; c < in_c; c++) {
        int16_t *d = dst + c * cs;
        for (int j = 0; j < pl; j++) {
            d[j] = (int16_t)in_zp;
        }
        for (int j = pl + in_w; j < wq; j++) {
            d[j] = (int16_t)in_zp;
        }
    }
    const int8_t *src = in + iy * in_w * in_c;
    int16_t *d = dst + pl;
    int ix = 0;
    if ((in_c & 3) == 0) {
        for (; ix + 2 <= in_w; ix += 2) {
            const int8_t *p = src + ix * in_c;
            int16_t *q = d + ix;
            for (int c = 0; c < in_c; c += 4, q += 4 * cs) {
                const int32_t a = mk_ld32(p + c), b = mk_ld32(p + in_c + c);
                const int32_t a02 = mk_sxtb16(a), b02 = mk_sxtb16(b);
                const int32_t a13 = mk_sxtb16_ror8(a), b13 = mk_sxtb16_ror8(b);
                mk_st32(q, mk_pkhbt16(a02, b02));
                mk_st32(q + cs, mk_pkhbt16(a13, b13));
                mk_st32(q + 2 * cs, mk_pkhtb16(b02, a02));
                mk_st32(q + 3 * cs, mk_pkhtb16(b13, a13));
            }
        }
    }
    for (; ix < in_w; ix++) {
        for (int c = 0; c < in_c; c++) {
            d[c * cs + ix] = src[ix * in_c + c];
        }
    }
}

/* Two output pixels (columns ox, ox + 1) of one channel from ring slots r[s] (already at column
 * ox * sw) with the slot's weights t[2s] = (w0, w1), t[2s + 1] = (w2, 0). */
MK_INLINE void mk_dw3_pair(const int16_t *r, int wq, const int32_t *t, int kh, int sw, int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0, s1 = *a1;
    for (int k = 0; k < kh; k++) {
        const int16_t *p = r + k * wq;
        s0 = mk_smlad(t[2 * k], mk_ld32(p), s0);
        s1 = mk_smlad(t[2 * k], mk_ld32(p + sw), s1);
        if (sw == 1) {
            const int32_t x23 = mk_ld32(p + 2);
            s0 = mk_smlabb(t[2 * k + 1], x23, s0);
            s1 = mk_smlabt(t[2 * k + 1], x23, s1);
        } else {
            s0 = mk_smlabb(t[2 * k + 1], mk_ld32(p + 2), s0);
            s1 = mk_smlabb(t[2 * k + 1], mk_ld32(p + sw + 2), s1);
        }
    }
    *a0 = s0;
    *a1 = s1;
}

#if defined(MK_DSP)
/* One row of 3 slots (o = slot offset in bytes: 0, W, 2W) for 4 pixels, stride 1: a0..a3 get
 * (w0, w1) . (x_k, x_k+1) and w2 * x_k+2. The first row's first load advanced p by 8 bytes. */
#define MK_DW3_S1_ROW(first, o, tw, i0, i1, i2, i3)                                                                                \
    "ldrd %[w], %[v], [%[tp], #" tw "]\n\t" first                                                                                       \
    "smlad %[a0], %[w], %[x], " i0 "\n\t"                                                                              \
    "ldr %[x], [%[p], #" o "+2]\n\t"                                                                                   \
    "smlad %[a1], %[w], %[x], " i1 "\n\t"                                                                              \
    "ldr %[x], [%[p], #" o "+4]\n\t"                                                                                   \
    "smlad %[a2], %[w], %[x], " i2 "\n\t"                                                                              \
    "smlabb %[a0], %[v], %[x], %[a0]\n\t"                                                                              \
    "smlabt %[a1], %[v], %[x], %[a1]\n\t"                                                                              \
    "ldr %[x], [%[p], #" o "+6]\n\t"                                                                                   \
    "smlad %[a3], %[w], %[x], " i3 "\n\t"                                                                               \
    "ldr %[x], [%[p], #" o "+8]\n\t"                                                                                   \
    "smlabb %[a2], %[v], %[x], %[a2]\n\t"                                                                              \
    "smlabt %[a3], %[v], %[x], %[a3]\n\t"
/* the same for stride 2: pixel i reads columns 2i..2i+2 */
#define MK_DW3_S2_ROW(first, o, tw, i0, i1, i2, i3)                                                                                \
    "ldrd %[w], %[v], [%[tp], #" tw "]\n\t" first                                                                                       \
    "smlad %[a0], %[w], %[x], " i0 "\n\t"                                                                              \
    "ldr %[x], [%[p], #" o "+4]\n\t"                                                                                   \
    "smlabb %[a0], %[v], %[x], %[a0]\n\t"                                                                              \
    "smlad %[a1], %[w], %[x], " i1 "\n\t"                                                                              \
    "ldr %[x], [%[p], #" o "+8]\n\t"                                                                                   \
    "smlabb %[a1], %[v], %[x], %[a1]\n\t"                                                                              \
    "smlad %[a2], %[w], %[x], " i2 "\n\t"                                                                              \
    "ldr %[x], [%[p], #" o "+12]\n\t"                                                                                  \
    "smlabb %[a2], %[v], %[x], %[a2]\n\t"                                                                              \
    "smlad %[a3], %[w], %[x], " i3 "\n\t"                                                                               \
    "ldr %[x], [%[p], #" o "+16]\n\t"                                                                                  \
    "smlabb %[a3], %[v], %[x], %[a3]\n\t"
/* fast requantization of a doubled accumulator and SSAT */
#define MK_DW3_OUT(a)                                                                                                  \
    "smmulr " a ", " a ", %[w]\n\t"                                                                                    \
    "add " a ", " a ", " a ", asr #31\n\t"                                                                             \
    "add " a ", " a ", %[v]\n\t"                                                                                       \
    "asr " a ", " a ", %[x]\n\t"                                                                                       \
    "ssat " a ", #8, " a "\n\t"
/* the four pixels out_c bytes apart: stored, or with a narrower clamp packed into one word,
 * clamped four at a time (SSUB8 + SEL) and stored byte by byte */
#define MK_DW3_STORE4                                                                                                  \
    ".if %c[lo] > -128 || %c[hi] < 127\n\t"                                                                            \
    "bfi %[a0], %[a1], #8, #8\n\t"                                                                                     \
    "bfi %[a0], %[a2], #16, #8\n\t"                                                                                    \
    "bfi %[a0], %[a3], #24, #8\n\t" MK_ASM_CLAMP4("%[a0]", "%[w]", "%[v]") "strb %[a0], [%[q]]\n\t"                  \
    "lsr %[a0], %[a0], #8\n\t"                                                                                         \
    "strb %[a0], [%[q], #%c[C]]\n\t"                                                                                   \
    "lsr %[a0], %[a0], #8\n\t"                                                                                         \
    "strb %[a0], [%[q], #2*%c[C]]\n\t"                                                                                 \
    "lsr %[a0], %[a0], #8\n\t"                                                                                         \
    "strb %[a0], [%[q], #3*%c[C]]\n\t"                                                                                 \
    ".else\n\t"                                                                                                        \
    "strb %[a0], [%[q]]\n\t"                                                                                           \
    "strb %[a1], [%[q], #%c[C]]\n\t"                                                                                   \
    "strb %[a2], [%[q], #2*%c[C]]\n\t"                                                                                 \
    "strb %[a3], [%[q], #3*%c[C]]\n\t"                                                                                 \
    ".endif\n\t"

/* 4 output pixels per pass of a 3x3 window (3 ring slots W bytes apart, stride sw) with the
 * fast requantization: n passes from ring column p, outputs every out_c bytes from q. */
#define MK_DW3_LOOP(ROW, step)                                                                                         \
    __asm__ volatile("1:\n\t"                                                                                          \
                     "ldr %[a3], [%[tp], #24]\n\t" ROW("ldr %[x], [%[p], #" step "]!\n\t", "0", "0", "%[a3]", "%[a3]", \
                                                       "%[a3]", "%[a3]")                                                \
                         ROW("ldr %[x], [%[p], #%c[W]]\n\t", "%c[W]", "8", "%[a0]", "%[a1]", "%[a2]", "%[a3]")         \
                             ROW("ldr %[x], [%[p], #2*%c[W]]\n\t", "2*%c[W]", "16", "%[a0]", "%[a1]", "%[a2]",          \
                                 "%[a3]")                                                                              \
                     "ldrd %[w], %[v], [%[chp], #4]\n\t"                                                               \
                     "ldr %[x], [%[chp], #12]\n\t" MK_DW3_OUT("%[a0]") MK_DW3_OUT("%[a1]") MK_DW3_OUT("%[a2]")           \
                         MK_DW3_OUT("%[a3]") MK_DW3_STORE4                                                              \
                     "add %[q], %[q], #4*%c[C]\n\t"                                                                    \
                     "cmp %[q], %[e]\n\t"                                                                              \
                     "bne 1b\n\t"                                                                                      \
                     : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "=&r"(x), [w] "=&r"(wr),   \
                       [v] "=&r"(vr), [p] "+r"(p), [q] "+r"(q)                                                         \
                     : [e] "r"(qe), [tp] "r"(t), [chp] "r"(ch), [W] "i"(2 * wq), [C] "i"(out_c), [lo] "i"(act_min),  \
                       [hi] "i"(act_max), [lo4] "i"(MK_BYTES4(act_min)), [hi4] "i"(MK_BYTES4(act_max))                 \
                     : "cc", "memory")
#endif

/* The output row dst of one channel: ring slots from r (slot s at r + s * wq, slot 0 holding
 * window row (kh - phase) % kh), weights w (kh words of bytes w0, w2, w1, 0). Four pixels per
 * pass in assembly for 3x3 windows with the fast requantization, then two per pass (an odd
 * last pixel computed in pair with a padding column and not stored). */
MK_INLINE void mk_dw3_row(int8_t *restrict dst, const int16_t *r, int phase, const int8_t *restrict w,
                          const mk_chan_t *restrict ch, int out_w, int out_c, int kh, int sw, int wq, int out_zp,
                          int act_min, int act_max, int fast)
{
    int32_t t[33] MK_ALIGN(8); /* per slot (w0, w1), (w2, 0), then the bias */
    for (int s = 0; s < kh; s++) {
        const int ky = (s + kh - phase) % kh;
        const int32_t v = mk_ld32(w + 4 * ky);
        t[2 * s] = fast ? mk_sadd16(mk_sxtb16(v), mk_sxtb16(v)) : mk_sxtb16(v);
        t[2 * s + 1] = fast ? mk_sadd16(mk_sxtb16_ror8(v), mk_sxtb16_ror8(v)) : mk_sxtb16_ror8(v);
    }
    const int32_t bias = fast ? 2 * ch->bias : ch->bias;
    t[2 * kh] = bias;
    int ox = 0;
#if defined(MK_DSP)
    /* the assembly takes the shape as immediates: only where the call has literal arguments */
    const int literal = __builtin_constant_p(out_c) && __builtin_constant_p(wq) && __builtin_constant_p(act_min) &&
                        __builtin_constant_p(act_max);
    if (literal && kh == 3 && fast && (sw == 1 || sw == 2) && out_w >= 4 && 4 * out_c <= 4095 && 4 * wq + 16 <= 4095) {
        const int n = out_w / 4;
        const int16_t *p = r - 4 * sw;
        int8_t *q = dst;
        int8_t *const qe = dst + 4 * n * out_c;
        int32_t a0, a1, a2, a3, x, wr, vr;
        if (sw == 1) {
            MK_DW3_LOOP(MK_DW3_S1_ROW, "8");
        } else {
            MK_DW3_LOOP(MK_DW3_S2_ROW, "16");
        }
        ox = 4 * n;
    }
#endif
    for (; ox < out_w; ox += 2) {
        int32_t a0 = bias, a1 = bias;
        mk_dw3_pair(r + ox * sw, wq, t, kh, sw, &a0, &a1);
        dst[ox * out_c] = mk_requant2_clamp(a0, ch, fast, out_zp, act_min, act_max);
        if (ox + 1 < out_w) {
            dst[(ox + 1) * out_c] = mk_requant2_clamp(a1, ch, fast, out_zp, act_min, act_max);
        }
    }
}

/*
 * Depthwise convolution with kernels three wide, channel multiplier 1, any channel count and
 * kh <= 16: weights (in_c, kh) words of bytes (w0, w2, w1, 0) so that SXTB16 gives the tap pair
 * (w0, w1) and SXTB16 ROR 8 gives (w2, 0); ch[].bias has the input zero point folded in. The
 * input rows a window needs are kept in a ring of kh slots in scratch, widened to q15 and
 * stored channel by channel (channel c's slot s at (c * kh + s) * wq halfwords, wq =
 * ((out_w + 1) / 2 * 2 - 1) * sw + 4 rounded up to even), so a word load yields two
 * neighbouring columns of one channel and the slots of a channel are constant offsets apart.
 */
MK_INLINE void mk_dwconv3(const int8_t *restrict in, int8_t *restrict out, int16_t *restrict scratch,
                          const int8_t *restrict w, const mk_chan_t *restrict ch, int in_h, int in_w, int in_c,
                          int out_h, int out_w, int kh, int sh, int sw, int pt, int pl, int in_zp, int out_zp,
                          int act_min, int act_max, int fast, int lsh)
{
    (void)lsh; /* the fast form doubles weights and bias instead of shifting the accumulator */
    const int wq = ((((out_w + 1) & ~1) - 1) * sw + 4 + 1) & ~1;
    const int cs = kh * wq;
    int loaded = -1 - pt; /* the last input row widened into the ring */
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * sh - pt;
        for (int iy = loaded + 1; iy < iy0 + kh; iy++) {
            if (iy >= iy0) {
                mk_dw_row_q15(scratch + ((iy + kh * 64) % kh) * wq, in, iy, in_h, in_w, in_c, wq, cs, pl, in_zp);
            }
            loaded = iy;
        }
        const int phase = (iy0 + kh * 64) % kh;
        int8_t *dst = out + oy * out_w * in_c;
        for (int c = 0; c < in_c; c++) {
            mk_dw3_row(dst + c, scratch + c * cs, phase, w + 4 * kh * c, ch + c, out_w, in_c, kh, sw, wq, out_zp,
                       act_min, act_max, fast);
        }
    }
}

#endif /* MK_DWCONV_H */
