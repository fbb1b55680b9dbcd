/*
 * mk_arch.h - the SIMD primitives the kernels are written with.
 *
 * On a core with the DSP extension (Cortex-M4/M7/M33: __ARM_FEATURE_DSP) each helper is one
 * instruction (SMLAD, SXTB16, SXTB16 ROR #8, SMMULR, SSAT, SSUB8+SEL...). Elsewhere (the host
 * test harness, or -DMK_PORTABLE) the same helpers are plain C with identical results, so the
 * very same kernel code is tested bit for bit on the host.
 */
#ifndef MK_ARCH_H
#define MK_ARCH_H

#include <stdint.h>
#include <string.h>

#define MK_INLINE static inline __attribute__((always_inline))
#define MK_ALIGN(n) __attribute__((aligned(n)))

#if defined(__ARM_FEATURE_DSP) && !defined(MK_PORTABLE)
#define MK_DSP 1
#include <arm_acle.h>

/* acc + lo(a)*lo(b) + hi(a)*hi(b) */
MK_INLINE int32_t mk_smlad(int32_t a, int32_t b, int32_t acc) { return __smlad(a, b, acc); }
/* bytes 0 and 2 sign-extended to the two halfwords */
MK_INLINE int32_t mk_sxtb16(int32_t x) { return __sxtb16(x); }
/* bytes 1 and 3 sign-extended to the two halfwords */
MK_INLINE int32_t mk_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* (a*b + 2^31) >> 32 */
MK_INLINE int32_t mk_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
MK_INLINE int32_t mk_ssat8(int32_t x) { return __ssat(x, 8); }
/* acc + lo(a)*lo(b), acc + hi(a)*hi(b), acc + lo(a)*hi(b) */
MK_INLINE int32_t mk_smlabb(int32_t a, int32_t b, int32_t acc) { return __smlabb(a, b, acc); }
MK_INLINE int32_t mk_smlatt(int32_t a, int32_t b, int32_t acc) { return __smlatt(a, b, acc); }
MK_INLINE int32_t mk_smlabt(int32_t a, int32_t b, int32_t acc) { return __smlabt(a, b, acc); }
/* halfword-wise a + b */
MK_INLINE int32_t mk_sadd16(int32_t a, int32_t b) { return __sadd16(a, b); }
/* (lo(a), lo(b)) and (hi(b), hi(a)) as halfword pairs (low half first) */
MK_INLINE int32_t mk_pkhbt16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
MK_INLINE int32_t mk_pkhtb16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* byte-wise signed max of four int8 lanes */
MK_INLINE int32_t mk_max_s8x4(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}

#else /* portable C with the same semantics */

MK_INLINE int32_t mk_lo16(int32_t x) { return (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xFFFFu); }
MK_INLINE int32_t mk_hi16(int32_t x) { return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16); }
MK_INLINE int32_t mk_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
MK_INLINE int32_t mk_smlad(int32_t a, int32_t b, int32_t acc)
{
    uint32_t p = (uint32_t)(mk_lo16(a) * mk_lo16(b)) + (uint32_t)(mk_hi16(a) * mk_hi16(b));
    return (int32_t)((uint32_t)acc + p);
}
MK_INLINE int32_t mk_sxtb16(int32_t x)
{
    uint32_t u = (uint32_t)x;
    return mk_pack16((int8_t)(uint8_t)(u & 0xFFu), (int8_t)(uint8_t)((u >> 16) & 0xFFu));
}
MK_INLINE int32_t mk_sxtb16_ror8(int32_t x)
{
    uint32_t u = (uint32_t)x;
    return mk_sxtb16((int32_t)((u >> 8) | (u << 24)));
}
MK_INLINE int32_t mk_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b + 0x80000000LL) >> 32);
}
MK_INLINE int32_t mk_ssat8(int32_t x) { return x < -128 ? -128 : (x > 127 ? 127 : x); }
MK_INLINE int32_t mk_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mk_lo16(a) * mk_lo16(b)));
}
MK_INLINE int32_t mk_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mk_hi16(a) * mk_hi16(b)));
}
MK_INLINE int32_t mk_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mk_lo16(a) * mk_hi16(b)));
}
MK_INLINE int32_t mk_sadd16(int32_t a, int32_t b)
{
    return mk_pack16(mk_lo16(a) + mk_lo16(b), mk_hi16(a) + mk_hi16(b));
}
MK_INLINE int32_t mk_pkhbt16(int32_t a, int32_t b) { return mk_pack16(mk_lo16(a), mk_lo16(b)); }
MK_INLINE int32_t mk_pkhtb16(int32_t a, int32_t b) { return mk_pack16(mk_hi16(b), mk_hi16(a)); }
MK_INLINE int32_t mk_max_s8x4(int32_t a, int32_t b)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i += 8) {
        int8_t x = (int8_t)(uint8_t)(((uint32_t)a >> i) & 0xFFu);
        int8_t y = (int8_t)(uint8_t)(((uint32_t)b >> i) & 0xFFu);
        r |= (uint32_t)(uint8_t)(x > y ? x : y) << i;
    }
    return (int32_t)r;
}
#endif

/* 32-bit loads and stores that tolerate any alignment (one LDR/STR on Cortex-M7) */
MK_INLINE int32_t mk_ld32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}
MK_INLINE void mk_st32(void *p, int32_t v) { memcpy(p, &v, 4); }

MK_INLINE int32_t mk_max32(int32_t a, int32_t b) { return a > b ? a : b; }

#endif /* MK_ARCH_H */
