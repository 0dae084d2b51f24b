/* SPDX-License-Identifier: Apache-2.0 */
/* te_kernels_ternary.h - ternary-weight MAC kernels: FULLY_CONNECTED, CONV_2D and
 * DEPTHWISE_CONV_2D with int8 activations and low-bit weights. Bit-exact with
 * ternembed/kernels/ternary.py; the integer contract is the module docstring of
 * ternembed/quantize/plan_pass.py.
 *
 * Kernel families (the Step's kernel name, one C function each):
 *   *_t2_s8  2-bit ternary codes, integer group scales, residual planes:
 *            acc = bias + sum_{p < active} (sum_g a[p][o][g] * sum_{i in g} t[p][o][i] * x[i])
 *                         << plane_shift[p][o]
 *   *_to_s8  one ternary plane plus a per-output offset times the patch sum S = sum_i x[i]:
 *            acc = bias + sum_g a[o][g] * sum_{i in g} t[o][i] * x[i] + offset[o] * S
 *   *_p2_s8  signed powers of two, int4 nibbles v = sign*(k+1), |v| <= levels:
 *            acc = bias + sum_g a[o][g] * sum_{i in g, v != 0} sign(v) * (x[i] << (levels - |v|))
 * then out = clamp(requantize(acc, multiplier[o], shift[o]) + output_offset, activation).
 *
 * x[i] are the raw int8 inputs; a tap outside the image reads the input zero
 * point (-input_offset), and bias[] is the exporter's folded bias (zero-point
 * fold included), exactly as for the int8 kernels (te_kernels_mac.h). With
 * switchable planes the exporter stores one bias row per plane count: pass the
 * row for active_planes. Tap order i: FC the feature index; conv
 * i = (ky*KW + kx)*C + c; depthwise i = ky*KW + kx for output channel oc,
 * which reads input channel oc / M. Groups: g(i) = i / group, G = ceil(K/group).
 *
 * Weight layouts (ternembed/pack.py), rows always start on a byte:
 *   codes  t2/to "2bit": 4 codes a byte (0b00 = 0, 0b01 = +1, 0b11 = -1, weight i
 *          in bits 2*(i%4)+1..2*(i%4) of byte i/4); plane p, row o starts at
 *          byte (p*O + o) * ceil(K/4).
 *          p2 "int4": 2 nibbles a byte, low nibble first; row o at byte o * ceil(K/2).
 *   scales uint8 (scale_bytes 1) or uint16 (scale_bytes 2), [planes][O][G].
 *   plane_shift uint8 [planes][O] or NULL (all 0).
 *   offset int32 [O] (to only).
 * No alignment is required of any weight array, of the activations or of the
 * output; scratch must be 4-byte aligned.
 *
 * Every kernel has a portable C path (any core) and a DSP path (SMLAD, see
 * te_dsp.h) selected by TE_USE_DSP inside the same function; both compute the
 * same bytes. Accumulation is modulo 2^32 (the contract bounds the exact
 * result to int32, so intermediate wrap-around cannot change it).
 *
 * Variants (same arguments, same results, different speed; the exporter picks
 * one per layer with ternembed/costmodel.py):
 *   te_fc_t2_s8 / te_conv_t2_s8 (and _to): on DSP cores the codes are decoded
 *       in registers, one AND per two weights, into (+-2^14, 0) int16 pairs
 *       consumed by SMLAD against an int16 copy of the input widened once per
 *       vector and shared by every output row; 3 rows x 1 vector (FC) or 2 rows
 *       x 2 pixels/input rows (conv, batched FC) per pass, group scaling inside
 *       the loop, then one output loop. Fast path for group % 16 == 0 or
 *       group >= K with uint8 scales; other layouts take slower generic code
 *       (group % 16 != 0 and group < K: the portable loop).
 *   te_fc_t2_lut_s8 / te_conv_t2_lut_s8: table lookup (T-MAC style): per 4
 *       inputs a 256-entry table of all partial sums, indexed directly by a code
 *       byte and shared by all output rows and planes; one vector (uint16
 *       entries) or two (FC input rows, conv pixel pairs: both in the lanes of a
 *       word, so one lookup serves 8 MACs). Group % 4 == 0 or group >= K
 *       (otherwise the default core). Wins with many output rows; see
 *       benchmarks/results/kernels.md.
 *   te_dwconv_t2_s8 (and _to, _p2): the weights of a block of 4 channels are
 *       decoded into a small table of int16 tap pairs (with each tap's input
 *       offset), and an assembly loop sweeps every output pixel of a line that
 *       shares the same in-image taps (4 channels per step, SMLABB/SMLATT);
 *       padded taps are never visited. Weights beyond int16 take an int32 table
 *       and the portable loop.
 *   *_p2_s8 on DSP cores: a 256-entry byte -> int16-pair table (built per call)
 *       feeds SMLAD; group % 8 == 0 or group >= K.
 */
#ifndef TE_KERNELS_TERNARY_H
#define TE_KERNELS_TERNARY_H

#include <stdint.h>

#include "te_kernels_mac.h"
#include "te_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The flash side of one ternary layer. */
typedef struct {
    const uint8_t *codes;       /* packed codes, see above */
    const void *scales;         /* [planes][O][G] unsigned integer group scales */
    int32_t scale_bytes;        /* 1 (uint8) or 2 (uint16) */
    const uint8_t *plane_shift; /* [planes][O] or NULL */
    const int32_t *offset;      /* [O] for *_to_s8, else ignored */
    int32_t planes;             /* P >= 1 (to, p2: 1) */
    int32_t active_planes;      /* 1..planes: the first planes used */
    int32_t group;              /* N >= 1 */
    int32_t levels;             /* p2 only: 1..7 */
} te_tern_weights;

/* Scratch: every kernel takes `scratch` (4-byte aligned) of at least the
 * matching *_get_buffer_size() bytes; it may be NULL when that size is 0. */

/* FULLY_CONNECTED. input_dims n = batches, h*w*c = K; filter_dims n = O,
 * h*w*c = K; output_dims n = batches, h*w*c = O. */
int32_t te_fc_t2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_fc_t2_s8(const te_fc_params *params, const te_pc_quant *quant,
                      const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                      const te_tern_weights *weights, const int32_t *bias,
                      const te_dims *output_dims, int8_t *output, void *scratch);

int32_t te_fc_t2_lut_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims,
                                        int32_t planes);
te_status te_fc_t2_lut_s8(const te_fc_params *params, const te_pc_quant *quant,
                          const te_dims *input_dims, const int8_t *input,
                          const te_dims *filter_dims, const te_tern_weights *weights,
                          const int32_t *bias, const te_dims *output_dims, int8_t *output,
                          void *scratch);

int32_t te_fc_to_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_fc_to_s8(const te_fc_params *params, const te_pc_quant *quant,
                      const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                      const te_tern_weights *weights, const int32_t *bias,
                      const te_dims *output_dims, int8_t *output, void *scratch);

int32_t te_fc_p2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_fc_p2_s8(const te_fc_params *params, const te_pc_quant *quant,
                      const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                      const te_tern_weights *weights, const int32_t *bias,
                      const te_dims *output_dims, int8_t *output, void *scratch);

/* CONV_2D: input_dims {N, H, W, C}, filter_dims {O, KH, KW, C}, output_dims {N, OH, OW, O}. */
int32_t te_conv_t2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_conv_t2_s8(const te_conv_params *params, const te_pc_quant *quant,
                        const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                        const te_tern_weights *weights, const int32_t *bias,
                        const te_dims *output_dims, int8_t *output, void *scratch);

/* Table-lookup variant of te_conv_t2_s8 (same weights and results). */
int32_t te_conv_t2_lut_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims,
                                          int32_t planes);
te_status te_conv_t2_lut_s8(const te_conv_params *params, const te_pc_quant *quant,
                            const te_dims *input_dims, const int8_t *input,
                            const te_dims *filter_dims, const te_tern_weights *weights,
                            const int32_t *bias, const te_dims *output_dims, int8_t *output,
                            void *scratch);

int32_t te_conv_to_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_conv_to_s8(const te_conv_params *params, const te_pc_quant *quant,
                        const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                        const te_tern_weights *weights, const int32_t *bias,
                        const te_dims *output_dims, int8_t *output, void *scratch);

int32_t te_conv_p2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_conv_p2_s8(const te_conv_params *params, const te_pc_quant *quant,
                        const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                        const te_tern_weights *weights, const int32_t *bias,
                        const te_dims *output_dims, int8_t *output, void *scratch);

/* DEPTHWISE_CONV_2D: input_dims {N, H, W, C}, filter_dims {1, KH, KW, C*M},
 * output_dims {N, OH, OW, C*M}. */
int32_t te_dwconv_t2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_dwconv_t2_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                          const te_dims *input_dims, const int8_t *input,
                          const te_dims *filter_dims, const te_tern_weights *weights,
                          const int32_t *bias, const te_dims *output_dims, int8_t *output,
                          void *scratch);

int32_t te_dwconv_to_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_dwconv_to_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                          const te_dims *input_dims, const int8_t *input,
                          const te_dims *filter_dims, const te_tern_weights *weights,
                          const int32_t *bias, const te_dims *output_dims, int8_t *output,
                          void *scratch);

int32_t te_dwconv_p2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_dwconv_p2_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                          const te_dims *input_dims, const int8_t *input,
                          const te_dims *filter_dims, const te_tern_weights *weights,
                          const int32_t *bias, const te_dims *output_dims, int8_t *output,
                          void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TE_KERNELS_TERNARY_H */
