/*
 * mk_s4.h - 4-bit weights: two per byte in flash, unpacked in the kernels (conv, fully
 * connected, depthwise). Python side: malak_pipe/mcu/ops/int4.py.
 *
 * A 32-bit word of packed weights holds 8 values; byte j has one weight in its low nibble and
 * one in its high nibble (two's complement). Masking the high nibbles (w & 0xF0F0F0F0) and
 * the low ones moved up ((w << 4) & 0xF0F0F0F0) leaves every weight times 16 at the top of its
 * byte, which SXTB16 / SXTB16 ROR 8 sign-extend into the halfword pairs SMLAD takes: per 8
 * weights two ANDs (one with a shifted operand) on top of the four SXTB16 the int8 kernels
 * need, and half the weight loads. The sums are 16 x the dot products (exact, and no larger
 * than with int8 weights since |16 w| <= 128); mk_s4_acc brings them back before the bias.
 */
#ifndef MK_S4_H
#define MK_S4_H

#include "mk_arch.h"

#define MK_S4_MASK 0xF0F0F0F0u

/* 16 x the low-nibble weights of a packed word, one per byte */
MK_INLINE int32_t mk_s4_lo(int32_t w) { return (int32_t)(((uint32_t)w << 4) & MK_S4_MASK); }
/* 16 x the high-nibble weights of a packed word, one per byte */
MK_INLINE int32_t mk_s4_hi(int32_t w) { return (int32_t)((uint32_t)w & MK_S4_MASK); }
/* acc + the dot product whose 16 x is s16 (exact: every term of s16 is a multiple of 16) */
MK_INLINE int32_t mk_s4_acc(int32_t acc, int32_t s16) { return acc + (s16 >> 4); }
/* bytes of rows weight rows of k4 values: whole rows (int8), or row pairs of k4 bytes (4-bit) */
MK_INLINE int mk_s4_row_bytes(int rows, int k4, int wbits) { return wbits == 4 ? ((rows + 1) >> 1) * k4 : rows * k4; }
/* the offset of group g's weights, cog rows of k4 values a group (row pairs within each group at 4 bits) */
MK_INLINE int mk_s4_group_bytes(int g, int cog, int k4, int wbits)
{
    return wbits == 4 ? g * ((cog + 1) >> 1) * k4 : g * cog * k4;
}

/* the weight in the low / high nibble of byte b */
MK_INLINE int8_t mk_s4_lo8(int32_t b) { return (int8_t)((int32_t)((uint32_t)b << 28) >> 28); }
MK_INLINE int8_t mk_s4_hi8(int32_t b) { return (int8_t)((int32_t)((uint32_t)b << 24) >> 28); }

/* n 4-bit weights (value i in the low nibble of byte i/2 when i is even) as int8 into dst
 * (n rounded up to even bytes are written); returns dst */
MK_INLINE const int8_t *mk_s4_unpack(int8_t *restrict dst, const int8_t *restrict src, int n)
{
    for (int i = 0; i < n; i += 2) {
        const uint32_t b = (uint8_t)src[i >> 1];
        dst[i] = (int8_t)((int32_t)((b & 0xFu) ^ 8u) - 8);
        dst[i + 1] = (int8_t)((int32_t)((b >> 4) ^ 8u) - 8);
    }
    return dst;
}

#endif /* MK_S4_H */
