/*
 * mk_requant.h - fixed-point requantization, bit-exact with TFLite Micro / CMSIS-NN and with
 * malak_pipe/mcu/fixedpoint.py (the golden reference).
 *
 *   exact:  MultiplyByQuantizedMultiplier(acc, mult, shift) + zero_point
 *           = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc << left, mult), right)
 *   fast:   the same value in 5 instructions when the code generator proved that
 *           |acc << (left + 1)| < 2^31 and 1 <= right <= 22:
 *           SRDHM(a, m) == SMMULR(2a, m), and RDBPOT(x, r) + zp == (x + (x < 0 ? -1 : 0) + off) >> r
 *           with off = 2^(r-1) + (zp << r).
 */
#ifndef MK_REQUANT_H
#define MK_REQUANT_H

#include "mk_arch.h"

/* Per output channel constants, one 16-byte record (loaded with one LDM). In the fast form
 * off and shift are as above; in the exact form off is unused and shift is TFLite's shift
 * (positive = left). bias already includes -input_zero_point * sum(weights) where the kernel
 * folds the input zero point. */
typedef struct {
    int32_t bias;
    int32_t mult;
    int32_t off;
    int32_t shift;
} mk_chan_t;

MK_INLINE int32_t mk_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1LL - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

MK_INLINE int32_t mk_rdbpot(int32_t x, int32_t exponent)
{
    int32_t mask = (int32_t)((1u << exponent) - 1u);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier; the left shift wraps like the golden reference */
MK_INLINE int32_t mk_mbqm(int32_t x, int32_t mult, int32_t shift)
{
    int32_t left = shift > 0 ? shift : 0;
    int32_t right = shift > 0 ? 0 : -shift;
    return mk_rdbpot(mk_srdhm((int32_t)((uint32_t)x << left), mult), right);
}

/* requantize one accumulator (bias already added) of a channel, before clamping */
MK_INLINE int32_t mk_requant(int32_t acc, const mk_chan_t *c, int fast, int lsh, int out_zp)
{
    if (fast) {
        int32_t x = mk_smmulr((int32_t)((uint32_t)acc << lsh), c->mult);
        x += x >> 31;
        return (x + c->off) >> c->shift;
    }
    return mk_mbqm(acc, c->mult, c->shift) + out_zp;
}

/* For the assembly loops of the kernels: clamp the four int8 lanes of register r to [lo, hi]
 * (operands %[lo], %[hi] and %[lo4], %[hi4]: lo and hi in every byte) with SSUB8 + SEL, t and u
 * free registers; nothing when the clamp is the int8 range. */
#define MK_ASM_CLAMP4(r, t, u)                                                                                         \
    ".if %c[lo] > -128\n\tmov " t ", #%c[lo4]\n\tssub8 " u ", " r ", " t "\n\tsel " r ", " r ", " t "\n\t.endif\n\t"  \
    ".if %c[hi] < 127\n\tmov " t ", #%c[hi4]\n\tssub8 " u ", " r ", " t "\n\tsel " r ", " t ", " r "\n\t.endif\n\t"
/* lo in every byte of a word (the operands of MK_ASM_CLAMP4) */
#define MK_BYTES4(v) ((0x01010101u * (uint32_t)(uint8_t)(v)))

MK_INLINE int32_t mk_clamp(int32_t v, int lo, int hi)
{
    if (lo == -128 && hi == 127) {
        return mk_ssat8(v);
    }
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* requantize and clamp an accumulator that kernels doubled in the fast form (weights or inputs
 * and bias doubled, so SMMULR needs no left shift); plain in the exact form */
MK_INLINE int8_t mk_requant2_clamp(int32_t acc, const mk_chan_t *c, int fast, int out_zp, int act_min, int act_max)
{
    int32_t v;
    if (fast) {
        v = mk_smmulr(acc, c->mult);
        v += v >> 31;
        v = (v + c->off) >> c->shift;
    } else {
        v = mk_requant(acc, c, 0, 0, out_zp);
    }
    return (int8_t)mk_clamp(v, act_min, act_max);
}

#endif /* MK_REQUANT_H */
