/*
 * mk_fc_s4.h - the rows of mk_fc for 4-bit weights (mk_s4.h), on the q15 input mk_fc widened.
 *
 * Weights: rows in pairs (c, c + 1) of k4 bytes, byte j of each group word holding tap j of
 * row c in the low nibble and of row c + 1 in the high nibble (a last odd row pairs with zeros);
 * in blocks of four rows the two pairs' words alternate per group. Per group of 4 taps x 4 rows:
 * one LDRD of weights (the int8 block loads four words), four AND, eight SXTB16, eight SMLAD.
 * Python side: malak_pipe/mcu/ops/int4.py.
 */
#ifndef MK_FC_S4_H
#define MK_FC_S4_H

#include "mk_arch.h"
#include "mk_requant.h"
#include "mk_s4.h"

/* one group of the DSP loop of mk_fc_block_s4 (operands named as in its asm statement) */
#define MK_S4_GROUP_4X1 \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t" \
    "ldrd %[a], %[b], [%[wp]], #8\n\t" \
    "and %[lo], %[m], %[a], lsl #4\n\t" \
    "and %[a], %[a], %[m]\n\t" \
    "sxtb16 %[u], %[lo], ror #8\n\t" \
    "sxtb16 %[lo], %[lo]\n\t" \
    "smlad %[s0], %[lo], %[x0], %[s0]\n\t" \
    "smlad %[s0], %[u], %[x1], %[s0]\n\t" \
    "sxtb16 %[u], %[a], ror #8\n\t" \
    "sxtb16 %[a], %[a]\n\t" \
    "smlad %[s1], %[a], %[x0], %[s1]\n\t" \
    "smlad %[s1], %[u], %[x1], %[s1]\n\t" \
    "and %[lo], %[m], %[b], lsl #4\n\t" \
    "and %[b], %[b], %[m]\n\t" \
    "sxtb16 %[u], %[lo], ror #8\n\t" \
    "sxtb16 %[lo], %[lo]\n\t" \
    "smlad %[s2], %[lo], %[x0], %[s2]\n\t" \
    "smlad %[s2], %[u], %[x1], %[s2]\n\t" \
    "sxtb16 %[u], %[b], ror #8\n\t" \
    "sxtb16 %[b], %[b]\n\t" \
    "smlad %[s3], %[b], %[x0], %[s3]\n\t" \
    "smlad %[s3], %[u], %[x1], %[s3]\n\t"

/* One group of 4 taps of a 4-row block (two packed words) against q15 x (2 words), sums x 16. */
MK_INLINE void mk_group_4x1_s4(const int32_t *x, const int8_t *w, int32_t *t)
{
    for (int p = 0; p < 2; p++) {
        const int32_t v = mk_ld32(w + 4 * p);
        const int32_t lo = mk_s4_lo(v), hi = mk_s4_hi(v);
        t[2 * p] = mk_smlad(mk_sxtb16_ror8(lo), x[1], mk_smlad(mk_sxtb16(lo), x[0], t[2 * p]));
        t[2 * p + 1] = mk_smlad(mk_sxtb16_ror8(hi), x[1], mk_smlad(mk_sxtb16(hi), x[0], t[2 * p + 1]));
    }
}

/* 16 x the dot products of 4 rows (a block at wp) with the q15 input col (k4 halfwords) */
MK_INLINE void mk_fc_block_s4(const int32_t *col, const int8_t *wp, int k4, int32_t *t)
{
    const int32_t *x = col;
    const int32_t *const xe = col + (k4 >> 1);
    if ((k4 >> 2) & 1) { /* an odd group first: the DSP loop takes two per branch */
        mk_group_4x1_s4(x, wp, t);
        x += 2;
        wp += 8;
    }
#if defined(MK_DSP)
    if (x != xe) {
        int32_t s0 = t[0], s1 = t[1], s2 = t[2], s3 = t[3], a, b, lo, u, x0, x1;
        const uint32_t mask = MK_S4_MASK;
        __asm__ volatile(
            "1:\n\t"
            MK_S4_GROUP_4X1
            MK_S4_GROUP_4X1
            "cmp %[xp], %[xe]\n\t"
            "bne 1b\n\t"
            : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [xp] "+r"(x), [wp] "+r"(wp),
              [a] "=&r"(a), [b] "=&r"(b), [lo] "=&r"(lo), [u] "=&r"(u), [x0] "=&r"(x0), [x1] "=&r"(x1)
            : [xe] "r"(xe), [m] "r"(mask)
            : "cc", "memory");
        t[0] = s0;
        t[1] = s1;
        t[2] = s2;
        t[3] = s3;
    }
#else
    for (; x != xe; x += 2, wp += 8) {
        mk_group_4x1_s4(x, wp, t);
    }
#endif
}

/* out[c] = requant(W x + bias) for every row, col being the q15 input of mk_fc */
MK_INLINE void mk_fc_rows_s4(const int32_t *col, int8_t *restrict out, const int8_t *restrict w,
                             const mk_chan_t *restrict ch, int k4, int out_c, int out_zp, int act_min, int act_max,
                             int fast, int lsh)
{
    int c = 0;
    for (; c + 4 <= out_c; c += 4) {
        int32_t t[4] = {0, 0, 0, 0};
        mk_fc_block_s4(col, w + (c >> 1) * k4, k4, t);
        for (int r = 0; r < 4; r++) {
            const int32_t acc = mk_s4_acc(ch[c + r].bias, t[r]);
            out[c + r] = (int8_t)mk_clamp(mk_requant(acc, &ch[c + r], fast, lsh, out_zp), act_min, act_max);
        }
    }
    for (; c < out_c; c += 2) {
        const int8_t *wp = w + (c >> 1) * k4;
        int32_t t0 = 0, t1 = 0;
        for (int k = 0; k < k4; k += 4) {
            const int32_t v = mk_ld32(wp + k), x0 = col[k >> 1], x1 = col[(k >> 1) + 1];
            const int32_t lo = mk_s4_lo(v), hi = mk_s4_hi(v);
            t0 = mk_smlad(mk_sxtb16_ror8(lo), x1, mk_smlad(mk_sxtb16(lo), x0, t0));
            t1 = mk_smlad(mk_sxtb16_ror8(hi), x1, mk_smlad(mk_sxtb16(hi), x0, t1));
        }
        for (int r = 0; r < 2 && c + r < out_c; r++) {
            const int32_t acc = mk_s4_acc(ch[c + r].bias, r ? t1 : t0);
            out[c + r] = (int8_t)mk_clamp(mk_requant(acc, &ch[c + r], fast, lsh, out_zp), act_min, act_max);
        }
    }
}

#endif /* MK_FC_S4_H */
