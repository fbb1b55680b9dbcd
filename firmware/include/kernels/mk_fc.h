/*
 * mk_fc.h - fully connected: the input widened to q15 once, 4 (mk_fc) or 6 (mk_fc6) interleaved
 * weight rows per pass (mk_fc with wbits = 4: 4-bit weights, row pairs packed two per byte,
 * mk_fc_s4.h; mk_fc6 takes int8 weights only).
 * Python side: malak_pipe/mcu/ops/fully_connected.py.
 */
#ifndef MK_FC_H
#define MK_FC_H

#include "mk_arch.h"
#include "mk_requant.h"
#include "mk_fc_s4.h"


/* One group of 4 values of 4 interleaved rows (16 bytes) against q15 x (2 words). */
MK_INLINE void mk_group_4x1(const int32_t *x, const int8_t *w, int32_t *s)
{
    for (int r = 0; r < 4; r++) {
        const int32_t v = mk_ld32(w + 4 * r);
        s[r] = mk_smlad(mk_sxtb16_ror8(v), x[1], mk_smlad(mk_sxtb16(v), x[0], s[r]));
    }
}

#if defined(MK_DSP)
/* two groups of 4 values of 4 interleaved rows: 2 x (LDRD of x, 2 LDRD of weights, 8 SXTB16,
 * 8 SMLAD) */
#define MK_FC_GROUPS2\
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"\
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t"\
    "sxtb16 %[t], %[w0]\n\t"\
    "sxtb16 %[w0], %[w0], ror #8\n\t"\
    "smlad %[s0], %[t], %[x0], %[s0]\n\t"\
    "smlad %[s0], %[w0], %[x1], %[s0]\n\t"\
    "sxtb16 %[t], %[w1]\n\t"\
    "sxtb16 %[w1], %[w1], ror #8\n\t"\
    "smlad %[s1], %[t], %[x0], %[s1]\n\t"\
    "smlad %[s1], %[w1], %[x1], %[s1]\n\t"\
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t"\
    "sxtb16 %[t], %[w0]\n\t"\
    "sxtb16 %[w0], %[w0], ror #8\n\t"\
    "smlad %[s2], %[t], %[x0], %[s2]\n\t"\
    "smlad %[s2], %[w0], %[x1], %[s2]\n\t"\
    "sxtb16 %[t], %[w1]\n\t"\
    "sxtb16 %[w1], %[w1], ror #8\n\t"\
    "smlad %[s3], %[t], %[x0], %[s3]\n\t"\
    "smlad %[s3], %[w1], %[x1], %[s3]\n\t"\
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"\
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t"\
    "sxtb16 %[t], %[w0]\n\t"\
    "sxtb16 %[w0], %[w0], ror #8\n\t"\
    "smlad %[s0], %[t], %[x0], %[s0]\n\t"\
    "smlad %[s0], %[w0], %[x1], %[s0]\n\t"\
    "sxtb16 %[t], %[w1]\n\t"\
    "sxtb16 %[w1], %[w1], ror #8\n\t"\
    "smlad %[s1], %[t], %[x0], %[s1]\n\t"\
    "smlad %[s1], %[w1], %[x1], %[s1]\n\t"\
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t"\
    "sxtb16 %[t], %[w0]\n\t"\
    "sxtb16 %[w0], %[w0], ror #8\n\t"\
    "smlad %[s2], %[t], %[x0], %[s2]\n\t"\
    "smlad %[s2], %[w0], %[x1], %[s2]\n\t"\
    "sxtb16 %[t], %[w1]\n\t"\
    "sxtb16 %[w1], %[w1], ror #8\n\t"\
    "smlad %[s3], %[t], %[x0], %[s3]\n\t"\
    "smlad %[s3], %[w1], %[x1], %[s3]\n\t"
#endif

/* the input widened to q15 ((x0,x2),(x1,x3) per group of four) */
MK_SHARED void mk_fc_widen(const int8_t *restrict in, int32_t *restrict col, int k4)
{
    for (int k = 0; k < k4; k += 4) {
        const int32_t v = mk_ld32(in + k);
        col[k >> 1] = mk_sxtb16(v);
        col[(k >> 1) + 1] = mk_sxtb16_ror8(v);
    }
}

/* n outputs from their accumulators: one copy for every layer (a fully connected layer has few
 * outputs, so their requantization is not worth a copy per layer in flash) */
MK_SHARED void mk_fc_outputs(int8_t *restrict out, const int32_t *restrict acc, const mk_chan_t *restrict ch, int n,
                             int out_zp, int act_min, int act_max, int fast, int lsh)
{
    for (int r = 0; r < n; r++) {
        out[r] = (int8_t)mk_clamp(mk_requant(acc[r], &ch[r], fast, lsh, out_zp), act_min, act_max);
    }
}

/* outputs c0..out_c - 1 from plain weight rows */
MK_INLINE void mk_fc_plain_rows(int8_t *restrict out, const int32_t *restrict col, const int8_t *restrict w,
                                const mk_chan_t *restrict ch, int c0, int k4, int out_c, int out_zp, int act_min,
                                int act_max, int fast, int lsh)
{
    for (int c = c0; c < out_c; c++) {
        const int8_t *w0 = w + (uint32_t)c * (uint32_t)k4;
        int32_t s0 = ch[c].bias;
        for (int k = 0; k < k4; k += 4) {
            const int32_t v = mk_ld32(w0 + k);
            s0 = mk_smlad(mk_sxtb16_ror8(v), col[(k >> 1) + 1], mk_smlad(mk_sxtb16(v), col[k >> 1], s0));
        }
        out[c] = (int8_t)mk_clamp(mk_requant(s0, &ch[c], fast, lsh, out_zp), act_min, act_max);
    }
}

/* outputs c0..out_c - 1: blocks of 4 interleaved rows, then plain rows */
MK_INLINE void mk_fc_rows4(int8_t *restrict out, const int32_t *restrict col, const int8_t *restrict w,
                           const mk_chan_t *restrict ch, int c0, int k4, int out_c, int out_zp, int act_min,
                           int act_max, int fast, int lsh)
{
    int c = c0;
    for (; c + 4 <= out_c; c += 4) {
        int32_t s[4] = {ch[c].bias, ch[c + 1].bias, ch[c + 2].bias, ch[c + 3].bias};
        const int8_t *wp = w + c * k4;
        const int32_t *x = col;
        const int32_t *const xe = col + (k4 >> 1);
        for (int r = 0; r < ((k4 >> 2) & 3); r++) { /* the DSP loop takes four groups per branch */
            mk_group_4x1(x, wp, s);
            x += 2;
            wp += 16;
        }
#if defined(MK_DSP)
        if (x != xe) {
            int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3], w0, w1, t, x0, x1;
            __asm__ volatile(
                "1:\n\t" MK_FC_GROUPS2 MK_FC_GROUPS2
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
        mk_fc_outputs(out + c, s, ch + c, 4, out_zp, act_min, act_max, fast, lsh);
    }
    mk_fc_plain_rows(out, col, w, ch, c, k4, out_c, out_zp, act_min, act_max, fast, lsh);
}

/*
 * out = requant(W x + bias) with the input zero point folded into the bias. The input is
 * first widened to q15 in col (k4 halfwords, (x0,x2),(x1,x3) order); weights: blocks of 4 rows
 * interleaved by 4 bytes (4 x k4 bytes per block), the last out_c % 4 rows plain.
 * The input must be readable up to k4 bytes (the arena pads tensors to 4 bytes).
 * wbits = 4: 4-bit weights in the layout of mk_fc_s4.h.
 */
MK_INLINE void mk_fc(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                     const int8_t *restrict w, const mk_chan_t *restrict ch, int k4, int out_c, int out_zp,
                     int act_min, int act_max, int fast, int lsh, int wbits)
{
    mk_fc_widen(in, col, k4);
    if (wbits == 4) {
        mk_fc_rows_s4(col, out, w, ch, k4, out_c, out_zp, act_min, act_max, fast, lsh);
        return;
    }
    mk_fc_rows4(out, col, w, ch, 0, k4, out_c, out_zp, act_min, act_max, fast, lsh);
}

#if defined(MK_DSP)
/* one group of 4 values of 6 interleaved rows: LDRD of x, 3 LDRD of weights, 12 SXTB16, 12 SMLAD */
#define MK_FC6_ROWS2(a, b)                                                                                             \
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t"                                                                               \
    "sxtb16 %[t], %[w0]\n\t"                                                                                           \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                                  \
    "smlad " a ", %[t], %[x0], " a "\n\t"                                                                              \
    "smlad " a ", %[w0], %[x1], " a "\n\t"                                                                             \
    "sxtb16 %[t], %[w1]\n\t"                                                                                           \
    "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                                  \
    "smlad " b ", %[t], %[x0], " b "\n\t"                                                                              \
    "smlad " b ", %[w1], %[x1], " b "\n\t"
#define MK_FC6_GROUP                                                                                                   \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t" MK_FC6_ROWS2("%[s0]", "%[s1]") MK_FC6_ROWS2("%[s2]", "%[s3]")                 \
        MK_FC6_ROWS2("%[s4]", "%[s5]")
#endif

/* one group of 4 values of 6 interleaved rows (24 bytes) against q15 x (2 words) */
MK_INLINE void mk_group_6x1(const int32_t *x, const int8_t *w, int32_t *s)
{
    for (int r = 0; r < 6; r++) {
        const int32_t v = mk_ld32(w + 4 * r);
        s[r] = mk_smlad(mk_sxtb16_ror8(v), x[1], mk_smlad(mk_sxtb16(v), x[0], s[r]));
    }
}

/* Rows of mk_fc6 in blocks of six: a multiple of 6, leaving 4 or 8 rather than 2 rows for
 * blocks of four (malak_pipe/mcu/ops/fully_connected.py lays the weights out the same way). */
MK_INLINE int mk_fc6_rows(int out_c)
{
    const int n6 = out_c / 6 * 6;
    return out_c % 6 == 2 && n6 >= 6 ? n6 - 6 : n6;
}

/*
 * mk_fc with blocks of 6 interleaved rows (6 x k4 bytes per block) for the first
 * mk_fc6_rows(out_c) outputs, then mk_fc's blocks of four and plain rows: each q15 input pair
 * loaded once serves six rows, 28 instructions per group of four values for 24 MACs.
 */
MK_INLINE void mk_fc6(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                      const int8_t *restrict w, const mk_chan_t *restrict ch, int k4, int out_c, int out_zp,
                      int act_min, int act_max, int fast, int lsh)
{
    mk_fc_widen(in, col, k4);
    const int n6 = mk_fc6_rows(out_c);
    int c = 0;
    for (; c < n6; c += 6) {
        int32_t s[6];
        for (int r = 0; r < 6; r++) {
            s[r] = ch[c + r].bias;
        }
        const int8_t *wp = w + c * k4;
        const int32_t *x = col;
        const int32_t *const xe = col + (k4 >> 1);
        for (int r = 0; r < ((k4 >> 2) & 3); r++) { /* the DSP loop takes four groups per branch */
            mk_group_6x1(x, wp, s);
            x += 2;
            wp += 24;
        }
#if defined(MK_DSP)
        if (x != xe) {
            int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3], s4 = s[4], s5 = s[5], w0, w1, t, x0, x1;
            __asm__ volatile("1:\n\t" MK_FC6_GROUP MK_FC6_GROUP MK_FC6_GROUP MK_FC6_GROUP
                             "ldr %[t], %[xe]\n\t"
                             "cmp %[xp], %[t]\n\t"
                             "bne 1b\n\t"
                             : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [s4] "+r"(s4),
                               [s5] "+r"(s5), [xp] "+r"(x), [wp] "+r"(wp), [w0] "=&r"(w0), [w1] "=&r"(w1),
                               [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
                             : [xe] "m"(xe)
                             : "cc", "memory");
            s[0] = s0;
            s[1] = s1;
            s[2] = s2;
            s[3] = s3;
            s[4] = s4;
            s[5] = s5;
        }
#else
        for (; x != xe; x += 2, wp += 24) {
            mk_group_6x1(x, wp, s);
        }
#endif
        mk_fc_outputs(out + c, s, ch + c, 6, out_zp, act_min, act_max, fast, lsh);
    }
    mk_fc_rows4(out, col, w, ch, c, k4, out_c, out_zp, act_min, act_max, fast, lsh);
}

#endif /* MK_FC_H */
