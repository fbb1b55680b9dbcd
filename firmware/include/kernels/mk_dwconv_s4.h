/*
 * mk_dwconv_s4.h - depthwise convolution with 4-bit weights: the kh x kw x out_c nibbles (low
 * nibble first) are unpacked to int8 once per call into the front of scratch, then mk_dwconv
 * runs on them with the rest of scratch as its row ring. Unpacking costs a few instructions
 * per weight once per inference, against out_h x out_w MACs per weight. mk_dwconv3_s4 (kernels
 * three wide, multiplier 1): the taps stored in mk_dwconv3's order (w0, w2, w1 per channel and
 * row), unpacked into its words (w0, w2, w1, 0), then mk_dwconv3 on them.
 * Python side: malak_pipe/mcu/ops/int4.py.
 */
#ifndef MK_DWCONV_S4_H
#define MK_DWCONV_S4_H

#include "mk_arch.h"
#include "mk_s4.h"
#include "mk_dwconv.h"

MK_INLINE void mk_dwconv_s4(const int8_t *restrict in, int8_t *restrict out, int8_t *restrict scratch,
                            const int8_t *restrict w, const mk_chan_t *restrict ch, const int32_t *restrict bias,
                            int in_h, int in_w, int in_c, int out_h, int out_w, int out_c, int kh, int kw, int sh,
                            int sw, int pt, int pl, int mult, int in_zp, int out_zp, int act_min, int act_max,
                            int fast, int lsh)
{
    const int n = kh * kw * out_c;
    const int8_t *w8 = mk_s4_unpack(scratch, w, n);
    mk_dwconv(in, out, scratch + ((n + 3) & ~3), w8, ch, bias, in_h, in_w, in_c, out_h, out_w, out_c, kh, kw, sh, sw,
              pt, pl, mult, in_zp, out_zp, act_min, act_max, fast, lsh);
}

/* n words of mk_dwconv3's weights (bytes w0, w2, w1, 0 per channel and row) into dst from their
 * taps in a row of nibbles, two words (three bytes) at a time: n rounded up to even words are
 * read and written. */
MK_INLINE const int8_t *mk_s4_unpack_dw3(int8_t *restrict dst, const int8_t *restrict src, int n)
{
    int8_t *d = dst;
    for (int j = 0; j < n; j += 2, src += 3, d += 8) {
        const int32_t b0 = src[0], b1 = src[1], b2 = src[2];
        d[0] = mk_s4_lo8(b0);
        d[1] = mk_s4_hi8(b0);
        d[2] = mk_s4_lo8(b1);
        d[3] = 0;
        d[4] = mk_s4_hi8(b1);
        d[5] = mk_s4_lo8(b2);
        d[6] = mk_s4_hi8(b2);
        d[7] = 0;
    }
    return dst;
}

/* mk_dwconv3 with 4-bit weights: unpacked into the front of scratch (4 x kh x in_c bytes, rounded
 * up to 8), the q15 ring after them. */
MK_INLINE void mk_dwconv3_s4(const int8_t *restrict in, int8_t *restrict out, int8_t *restrict scratch,
                             const int8_t *restrict w, const mk_chan_t *restrict ch, int in_h, int in_w, int in_c,
                             int out_h, int out_w, int kh, int sh, int sw, int pt, int pl, int in_zp, int out_zp,
                             int act_min, int act_max, int fast, int lsh)
{
    const int8_t *w8 = mk_s4_unpack_dw3(scratch, w, kh * in_c);
    int16_t *ring = (int16_t *)(void *)(scratch + ((4 * kh * in_c + 7) & ~7));
    mk_dwconv3(in, out, ring, w8, ch, in_h, in_w, in_c, out_h, out_w, kh, sh, sw, pt, pl, in_zp, out_zp, act_min,
               act_max, fast, lsh);
}

#endif /* MK_DWCONV_S4_H */
