/*
 * mk_requant.h - fixed-point requantization, bit-exact with malak_pipe/mcu/fixedpoint.py (the
 * golden reference).
 *
 *   exact:  round(acc * mult * 2^(shift - 31)) + zero_point, the exact 64-bit product rounded
 *           once (a tie upward), as ONNX Runtime rounds its float product once
 *   fast:   the same value in 2 instructions when the code generator proved that
 *           |acc << (left + 1)| < 2^31 and 1 <= right <= 22 (right = -shift): with a = 2 acc,
 *           SMMLA(a, mult, off) >> right == floor((a mult + off 2^32) / 2^(32 + right))
 *           == floor(acc mult / 2^(31 + right) + 1/2) + zp for off = 2^(right-1) + (zp << right)
 *           (|a mult / 2^32| < 2^30 and off < 2^30: the sum stays in int32).
 *   TFLite: MultiplyByQuantizedMultiplier (SaturatingRoundingDoublingHighMul, then
 *           RoundingDivideByPOT: two roundings), for the add (mk_add.h).
 */
#ifndef MK_REQUANT_H
#define MK_REQUANT_H

#include "mk_arch.h"

/* Per output channel constants, one 12-byte record. In the fast form off is as above and the
 * shift (right) is not stored: off = 2^(right-1) (1 + 2 zp) has its lowest set bit at right - 1
 * (mk_off_shift); in the exact form off holds QuantizeMultiplier's shift (positive = left).
 * bias already includes -input_zero_point * sum(weights) where the kernel folds the input zero
 * point. */
typedef struct {
    int32_t bias;
    int32_t mult;
    int32_t off;
} mk_chan_t;

/* the right shift of the fast form from its rounding offset: trailing zeros + 1 (RBIT, CLZ) */
MK_INLINE int32_t mk_off_shift(int32_t off) { return __builtin_ctz((uint32_t)off) + 1; }

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

/* round(x * mult * 2^(shift - 31)) + zp, rounded once (a tie upward); a value beyond 2^30 is
 * saturated there, which the int8 clamp after it cannot tell from the exact value */
MK_INLINE int32_t mk_round_requant(int32_t x, int32_t mult, int32_t shift, int zp)
{
    const int total = 31 - shift;
    int64_t v = ((int64_t)x * mult + (1LL << (total - 1))) >> total;
    v = v > (1LL << 30) ? (1LL << 30) : (v < -(1LL << 30) ? -(1LL << 30) : v);
    return (int32_t)v + zp;
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
        return mk_smmla((int32_t)((uint32_t)acc << lsh), c->mult, c->off) >> mk_off_shift(c->off);
    }
    return mk_round_requant(acc, c->mult, c->off, out_zp);
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
        v = mk_smmla(acc, c->mult, c->off) >> mk_off_shift(c->off);
    } else {
        v = mk_requant(acc, c, 0, 0, out_zp);
    }
    return (int8_t)mk_clamp(v, act_min, act_max);
}

#endif /* MK_REQUANT_H */
