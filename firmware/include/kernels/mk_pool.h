/*
 * mk_pool.h - max pool, average pool and global average pool (average pool over the whole map).
 * Python side: malak_pipe/mcu/ops/pooling.py.
 */
#ifndef MK_POOL_H
#define MK_POOL_H

#include "mk_arch.h"
#include "mk_requant.h"


/* Max pool; padded positions never win. act_min/act_max clamp the result. */
MK_INLINE void mk_maxpool(const int8_t *restrict in, int8_t *restrict out, int in_h, int in_w, int c, int out_h,
                          int out_w, int kh, int kw, int sh, int sw, int pt, int pl, int act_min, int act_max)
{
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * sh - pt;
        const int ky0 = iy0 < 0 ? -iy0 : 0;
        const int ky1 = in_h - iy0 < kh ? in_h - iy0 : kh;
        for (int ox = 0; ox < out_w; ox++) {
            const int ix0 = ox * sw - pl;
            const int kx0 = ix0 < 0 ? -ix0 : 0;
            const int kx1 = in_w - ix0 < kw ? in_w - ix0 : kw;
            int8_t *dst = out + (oy * out_w + ox) * c;
            const int8_t *first = in + ((iy0 + ky0) * in_w + ix0 + kx0) * c;
            int i = 0;
            if ((c & 3) == 0) {
                for (; i < c; i += 4) {
                    int32_t m = mk_ld32(first + i);
                    for (int ky = ky0; ky < ky1; ky++) {
                        for (int kx = kx0; kx < kx1; kx++) {
                            m = mk_max_s8x4(m, mk_ld32(in + ((iy0 + ky) * in_w + ix0 + kx) * c + i));
                        }
                    }
                    mk_st32(dst + i, m);
                }
            }
            for (; i < c; i++) {
                int32_t m = first[i];
                for (int ky = ky0; ky < ky1; ky++) {
                    for (int kx = kx0; kx < kx1; kx++) {
                        m = mk_max32(m, in[((iy0 + ky) * in_w + ix0 + kx) * c + i]);
                    }
                }
                dst[i] = (int8_t)m;
            }
            if (act_min > -128 || act_max < 127) {
                for (i = 0; i < c; i++) {
                    dst[i] = (int8_t)mk_clamp(dst[i], act_min, act_max);
                }
            }
        }
    }
}

/* Average pool (padding counts as zero, i.e. count_include_pad) and global average pool
 * (kernel = input size): sum of (x - in_zp) over the window, requantized by mult/shift that
 * include 1/count. */
MK_INLINE void mk_avgpool(const int8_t *restrict in, int8_t *restrict out, int in_h, int in_w, int c, int out_h,
                          int out_w, int kh, int kw, int sh, int sw, int pt, int pl, int in_zp, int out_zp,
                          int32_t mult, int32_t shift, int act_min, int act_max)
{
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * sh - pt;
        const int ky0 = iy0 < 0 ? -iy0 : 0;
        const int ky1 = in_h - iy0 < kh ? in_h - iy0 : kh;
        for (int ox = 0; ox < out_w; ox++) {
            const int ix0 = ox * sw - pl;
            const int kx0 = ix0 < 0 ? -ix0 : 0;
            const int kx1 = in_w - ix0 < kw ? in_w - ix0 : kw;
            const int count = (ky1 - ky0) * (kx1 - kx0);
            int8_t *dst = out + (oy * out_w + ox) * c;
            for (int i = 0; i < c; i++) {
                int32_t s = -in_zp * count;
                for (int ky = ky0; ky < ky1; ky++) {
                    const int8_t *row = in + ((iy0 + ky) * in_w + ix0) * c + i;
                    for (int kx = kx0; kx < kx1; kx++) {
                        s += row[kx * c];
                    }
                }
                dst[i] = (int8_t)mk_clamp(mk_round_requant(s, mult, shift, out_zp), act_min, act_max);
            }
        }
    }
}

#endif /* MK_POOL_H */
