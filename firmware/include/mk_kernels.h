/*
 * mk_kernels.h - every int8 kernel, channels-last (HWC), bit-exact with the golden reference.
 *
 * Every kernel is an always-inline function: the generated model.c calls it with the layer's
 * shapes as literal constants, so the compiler emits one copy specialized for each layer (loop
 * bounds, strides, zero points and branches fold away). The host test harness calls the same
 * functions with run-time values.
 *
 * One header per operator family under kernels/, next to its Python side in
 * malak_pipe/mcu/ops/ (lowering, golden reference, kernel arguments):
 *
 *   kernels/mk_im2col.h   q15 im2col and the SMLAD dot-product register blocks (shared)
 *   kernels/mk_conv.h     mk_conv, mk_conv3px: 2-D convolution, optional fused 2x2/2 max-pool
 *   kernels/mk_conv1.h    mk_conv1: convolution of a one-channel input (first layer)
 *   kernels/mk_pw.h       mk_pw: 1x1 convolution without im2col
 *   kernels/mk_dwconv.h   mk_dwconv, mk_dwconv3: depthwise convolution
 *   kernels/mk_fc.h       mk_fc, mk_fc6: fully connected
 *   kernels/mk_s4.h       4-bit weights: nibble masks, unpacking (shared by the three below)
 *   kernels/mk_conv_s4.h  the dot-product blocks of mk_conv for 4-bit weights
 *   kernels/mk_fc_s4.h    the rows of mk_fc for 4-bit weights
 *   kernels/mk_dwconv_s4.h mk_dwconv_s4, mk_dwconv3_s4: depthwise convolution with 4-bit weights
 *   kernels/mk_pool.h     mk_maxpool, mk_avgpool: max, average and global average pooling
 *   kernels/mk_add.h      mk_add: elementwise add / sub with their own rescale, broadcasting
 *   kernels/mk_mul.h      mk_mul: elementwise multiply with its own rescale, broadcasting
 *   kernels/mk_lut.h      mk_lut: 256-entry int8 lookup tables (activations, requantization)
 *   kernels/mk_concat.h   mk_concat: one input of a concatenation, requantized
 *   kernels/mk_pad.h      mk_pad: constant padding of rows, columns and channels
 *   kernels/mk_softmax.h  mk_softmax: int8 softmax from an exp table
 *   kernels/mk_block.h    mk_block: a streamed [expand ->] depthwise -> project [-> add] block
 *   kernels/mk_block3.h   mk_block3: the same block on mk_pw and mk_dwconv3's routines
 */
#ifndef MK_KERNELS_H
#define MK_KERNELS_H

#include "mk_arch.h"
#include "mk_requant.h"

#include "kernels/mk_im2col.h"
#include "kernels/mk_conv.h"
#include "kernels/mk_conv1.h"
#include "kernels/mk_pw.h"
#include "kernels/mk_dwconv.h"
#include "kernels/mk_fc.h"
#include "kernels/mk_s4.h"
#include "kernels/mk_conv_s4.h"
#include "kernels/mk_fc_s4.h"
#include "kernels/mk_dwconv_s4.h"
#include "kernels/mk_pool.h"
#include "kernels/mk_add.h"
#include "kernels/mk_mul.h"
#include "kernels/mk_lut.h"
#include "kernels/mk_concat.h"
#include "kernels/mk_pad.h"
#include "kernels/mk_softmax.h"
#include "kernels/mk_block.h"
#include "kernels/mk_block3.h"

#endif /* MK_KERNELS_H */
