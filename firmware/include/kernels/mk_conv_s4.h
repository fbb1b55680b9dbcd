/*
 * mk_conv_s4.h - the dot-product blocks of mk_conv for 4-bit weights (mk_s4.h).
 *
 * Weights: one row pair (output channels c, c + 1) per k4 bytes; per group of 4 taps one
 * word whose byte j holds tap j of channel c in the low nibble and of channel c + 1 in the high
 * nibble, so the low and high lanes line up with the q15 columns (x0,x2),(x1,x3) of
 * mk_im2col.h. Per group: one LDR of weights (the int8 block loads two words), two LDRD of
 * columns, two AND, four SXTB16, eight SMLAD. Python side: malak_pipe/mcu/ops/int4.py.
 */
#ifndef MK_CONV_S4_H
#define MK_CONV_S4_H

#include "mk_arch.h"
#include "mk_s4.h"
#include "mk_im2col.h"

/* one group of the DSP loop of mk_dot_2x2_s4 (operands named as in its asm statement) */
#define MK_S4_GROUP_2X2 \
    "ldr %[wv], [%[wp]], #4\n\t" \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t" \
    "and %[lo], %[m], %[wv], lsl #4\n\t" \
    "and %[wv], %[wv], %[m]\n\t" \
    "sxtb16 %[l13], %[lo], ror #8\n\t" \
    "sxtb16 %[lo], %[lo]\n\t" \
    "sxtb16 %[h13], %[wv], ror #8\n\t" \
    "sxtb16 %[wv], %[wv]\n\t" \
    "smlad %[s00], %[lo], %[x0], %[s00]\n\t" \
    "smlad %[s10], %[wv], %[x0], %[s10]\n\t" \
    "smlad %[s00], %[l13], %[x1], %[s00]\n\t" \
    "smlad %[s10], %[h13], %[x1], %[s10]\n\t" \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t" \
    "smlad %[s01], %[lo], %[x0], %[s01]\n\t" \
    "smlad %[s11], %[wv], %[x0], %[s11]\n\t" \
    "smlad %[s01], %[l13], %[x1], %[s01]\n\t" \
    "smlad %[s11], %[h13], %[x1], %[s11]\n\t"

/* One group of 4 taps of a row pair (one packed word) x 2 pixels (x: 4 words), sums x 16. */
MK_INLINE void mk_group_2x2_s4(const int32_t *x, int32_t wv, int32_t *s)
{
    const int32_t lo = mk_s4_lo(wv), hi = mk_s4_hi(wv);
    const int32_t l02 = mk_sxtb16(lo), l13 = mk_sxtb16_ror8(lo);
    const int32_t h02 = mk_sxtb16(hi), h13 = mk_sxtb16_ror8(hi);
    s[0] = mk_smlad(l13, x[1], mk_smlad(l02, x[0], s[0]));
    s[1] = mk_smlad(l13, x[3], mk_smlad(l02, x[2], s[1]));
    s[2] = mk_smlad(h13, x[1], mk_smlad(h02, x[0], s[2]));
    s[3] = mk_smlad(h13, x[3], mk_smlad(h02, x[2], s[3]));
}

/*
 * s[ch][px] += w_ch . x_px for the row pair at w (k4 bytes) x 2 interleaved pixels (k4 words),
 * like mk_dot_2x2. The DSP loop does two groups per branch.
 */
MK_INLINE void mk_dot_2x2_s4(const int32_t *x, const int8_t *w, int k4, int32_t *s)
{
    int32_t t[4] = {0, 0, 0, 0};
    const int32_t *const xe = x + k4;
    if ((k4 >> 2) & 1) {
        mk_group_2x2_s4(x, mk_ld32(w), t);
        x += 4;
        w += 4;
    }
#if defined(MK_DSP)
    if (x != xe) {
        int32_t s00 = t[0], s01 = t[1], s10 = t[2], s11 = t[3], wv, lo, l13, h13, x0, x1;
        const uint32_t mask = MK_S4_MASK;
        __asm__ volatile(
            "1:\n\t"
            MK_S4_GROUP_2X2
            MK_S4_GROUP_2X2
            "cmp %[xp], %[xe]\n\t"
            "bne 1b\n\t"
            : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [xp] "+r"(x), [wp] "+r"(w),
              [wv] "=&r"(wv), [lo] "=&r"(lo), [l13] "=&r"(l13), [h13] "=&r"(h13), [x0] "=&r"(x0), [x1] "=&r"(x1)
            : [xe] "r"(xe), [m] "r"(mask)
            : "cc", "memory");
        t[0] = s00;
        t[1] = s01;
        t[2] = s10;
        t[3] = s11;
    }
#else
    for (; x != xe; x += 4, w += 4) {
        mk_group_2x2_s4(x, mk_ld32(w), t);
    }
#endif
    for (int i = 0; i < 4; i++) {
        s[i] = mk_s4_acc(s[i], t[i]);
    }
}

/* s[px] += w . x_px for one channel: the low nibbles of a row pair (the high row is zero) */
MK_INLINE void mk_dot_1x2_s4(const int32_t *x, const int8_t *w, int k4, int32_t *s)
{
    int32_t t0 = 0, t1 = 0;
    for (int k = 0; k < k4; k += 4, x += 4) {
        const int32_t lo = mk_s4_lo(mk_ld32(w + k));
        const int32_t l02 = mk_sxtb16(lo), l13 = mk_sxtb16_ror8(lo);
        t0 = mk_smlad(l13, x[1], mk_smlad(l02, x[0], t0));
        t1 = mk_smlad(l13, x[3], mk_smlad(l02, x[2], t1));
    }
    s[0] = mk_s4_acc(s[0], t0);
    s[1] = mk_s4_acc(s[1], t1);
}

/* the 2 channel x 2 pixel block of mk_conv for either weight format */
MK_INLINE void mk_conv_dot_2x2(const int32_t *x, const int8_t *w, int k4, int32_t *s, int wbits)
{
    if (wbits == 4) {
        mk_dot_2x2_s4(x, w, k4, s);
    } else {
        mk_dot_2x2(x, w, k4, s);
    }
}

/* the 1 channel x 2 pixel block of mk_conv for either weight format */
MK_INLINE void mk_conv_dot_1x2(const int32_t *x, const int8_t *w, int k4, int32_t *s, int wbits)
{
    if (wbits == 4) {
        mk_dot_1x2_s4(x, w, k4, s);
    } else {
        mk_dot_1x2(x, w, k4, s);
    }
}

#endif /* MK_CONV_S4_H */
