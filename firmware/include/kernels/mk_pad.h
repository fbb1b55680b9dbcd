/*
 * mk_pad.h - constant padding of a channels-last map (rows, columns and channels).
 * Python side: malak_pipe/mcu/ops/pad.py.
 */
#ifndef MK_PAD_H
#define MK_PAD_H

#include "mk_arch.h"
#include "mk_requant.h"

/* n values from src to dst, clamped when the clamp is not the full int8 range */
MK_INLINE void mk_copy_clamped(int8_t *restrict dst, const int8_t *restrict src, int n, int act_min, int act_max)
{
    if (act_min == -128 && act_max == 127) {
        memcpy(dst, src, (size_t)n);
        return;
    }
    for (int i = 0; i < n; i++) {
        dst[i] = (int8_t)mk_clamp(src[i], act_min, act_max);
    }
}

/* out (in_h + pt + pb, in_w + pl + pr, in_c + cf + cb) = in surrounded by value (an int8 code) */
MK_INLINE void mk_pad(const int8_t *restrict in, int8_t *restrict out, int in_h, int in_w, int in_c, int pt, int pl,
                      int pb, int pr, int cf, int cb, int value, int act_min, int act_max)
{
    const int oh = in_h + pt + pb, ow = in_w + pl + pr, oc = in_c + cf + cb;
    const int v = mk_clamp(value, act_min, act_max);
    for (int y = 0; y < oh; y++) {
        int8_t *row = out + y * ow * oc;
        const int iy = y - pt;
        if (iy < 0 || iy >= in_h) {
            memset(row, v, (size_t)(ow * oc));
            continue;
        }
        memset(row, v, (size_t)(pl * oc));
        memset(row + (pl + in_w) * oc, v, (size_t)(pr * oc));
        const int8_t *src = in + iy * in_w * in_c;
        if (cf == 0 && cb == 0) {
            mk_copy_clamped(row + pl * oc, src, in_w * in_c, act_min, act_max);
            continue;
        }
        for (int x = 0; x < in_w; x++) {
            int8_t *dst = row + (pl + x) * oc;
            memset(dst, v, (size_t)cf);
            mk_copy_clamped(dst + cf, src + x * in_c, in_c, act_min, act_max);
            memset(dst + cf + in_c, v, (size_t)cb);
        }
    }
}

#endif /* MK_PAD_H */
