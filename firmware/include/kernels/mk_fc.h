/*
 * mk_fc.h - fully connected: the input widened to q15 once, 4 interleaved weight rows per pass
 * (wbits = 4: 4-bit weights, row pairs packed two per byte, mk_fc_s4.h).
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

/*
 * out = requant(W x + bias) with the input zero point folded into the bias. The input is
 * first widened to q15 in col (k4 halfwords, (x0,x2),(x1,x3) order); weights: blocks of 4 rows
 * interleaved by 4 bytes (4 x k4 bytes per block), the last out_c % 4 rows plain.
 * The input must be readable up to k4 bytes (the arena pads tensors to 4 bytes).
 */
MK_INLINE void mk_fc(const int8_t *restrict in, int8_t *restrict out, int32_t *restrict col,
                     const int8_t *restrict w, const mk_chan_t *restrict ch, int k4, int out_c, int out_zp,
                     int act_min, int act_max, int fast, int lsh, int wbits)
{
    for (int k = 0; k < k4; k += 4) {
        const int32_t v = mk_ld32(in + k);
        col[k >> 1] = mk_sxtb16(v);
        col[(k >> 1) + 1] = mk_sxtb16_ror8(v);
    }
    if (wbits == 4) {
        mk_fc_rows_s4(col, out, w, ch, k4, out_c, out_zp, act_min, act_max, fast, lsh);
        return;
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

#endif /* MK_FC_H */
