/*
 * mk_dwconv_s4.h - depthwise convolution with 4-bit weights: the kh x kw x out_c nibbles (low
 * nibble first) are unpacked to int8 once per call into the front of scratch, then mk_dwconv
 * runs on them with the rest of scratch as its row ring. Unpacking costs a few instructions
 * per weight once per inference, against out_h x out_w MACs per weight.
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

#endif /* MK_DWCONV_S4_H */
