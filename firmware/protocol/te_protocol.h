/* SPDX-License-Identifier: Apache-2.0 */
/* te_protocol.h - the device side of the ternembed serial protocol (docs/protocol.md).
 *
 * Frames: 0x00 | COBS(type, seq, payload, CRC32 LE) | 0x00, strictly request -> one reply.
 * te_proto_run() serves requests forever over the platform UART (te_platform.h): HELLO,
 * LOAD_INPUT, INVOKE, READ_OUTPUT, READ_LAYER_CYCLES, READ_LAYER_CHECKSUMS, DUMP_LAYER.
 *
 * The model is described by a te_proto_model (filled by the generated main.c); per-layer
 * cycles, checksums and dumps come from the layer hooks, which model.c calls through
 * TE_LAYER_BEGIN(i) / TE_LAYER_END(i) (see te_proto_hooks.h in a generated project):
 *
 *   #define TE_LAYER_END(i) te_proto_layer_end((i), te_arena)
 *
 * Memory: one receive and one transmit buffer of TE_PROTO_MAX_PAYLOAD + 6 bytes each, a copy
 * of every model input (so an invocation can be repeated: the model clobbers its inputs), and
 * two uint32 per layer. No dynamic allocation, no interrupts.
 */
#ifndef TE_PROTOCOL_H
#define TE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TE_PROTO_VERSION 1u

/* Largest payload (bytes between seq and CRC) in either direction; announced in HELLO.
 * Override with -DTE_PROTO_MAX_PAYLOAD=N (512..65535). */
#ifndef TE_PROTO_MAX_PAYLOAD
#define TE_PROTO_MAX_PAYLOAD 1024u
#endif

/* Message types (requests; a successful reply is type | 0x80). */
#define TE_PROTO_HELLO 0x01u
#define TE_PROTO_LOAD_INPUT 0x02u
#define TE_PROTO_INVOKE 0x03u
#define TE_PROTO_READ_OUTPUT 0x04u
#define TE_PROTO_READ_LAYER_CYCLES 0x05u
#define TE_PROTO_READ_LAYER_CHECKSUMS 0x06u
#define TE_PROTO_DUMP_LAYER 0x07u
#define TE_PROTO_RESET_STATE \
    0x08u /* streaming models: the variables back to their initial values */
#define TE_PROTO_LOAD_INPUT_Q 0x09u /* a float32 input sent as int8 (4x fewer bytes on the link) */
#define TE_PROTO_REPLY 0x80u
#define TE_PROTO_ERROR 0xFEu
#define TE_PROTO_NAK 0xFFu

/* INVOKE flags */
#define TE_PROTO_INVOKE_CHECKSUMS 0x01u

/* ERROR codes */
#define TE_PROTO_ERR_UNKNOWN_COMMAND 1u
#define TE_PROTO_ERR_BAD_LENGTH 2u
#define TE_PROTO_ERR_OUT_OF_RANGE 3u
#define TE_PROTO_ERR_NOT_BOUND 4u
#define TE_PROTO_ERR_MODEL_MISMATCH 5u
#define TE_PROTO_ERR_NO_RESULT 6u
#define TE_PROTO_ERR_INVOKE_FAILED 7u

/* NAK reasons */
#define TE_PROTO_NAK_BAD_CRC 1u
#define TE_PROTO_NAK_BAD_COBS 2u
#define TE_PROTO_NAK_TOO_LONG 3u
#define TE_PROTO_NAK_TOO_SHORT 4u

typedef struct {
    uint8_t *data; /* the tensor in the model's arena */
    uint32_t bytes;
    uint32_t dtype; /* TE_DTYPE_* of model.h: 0 int8, 1 float32, 2 int16, 3 int32, 4 uint8 */
} te_proto_tensor;

typedef struct {
    const char *name;     /* model name */
    const char *hash_hex; /* 64 hex digits: the Plan's sha256 (TE_MODEL_HASH) */
    const char *version;  /* ternembed version that generated the firmware */
    uint32_t arena_bytes;
    uint32_t num_layers;
    uint32_t num_inputs;
    uint32_t num_outputs;
    const te_proto_tensor *inputs;
    uint8_t *const *input_copies; /* one buffer of inputs[k].bytes per input (RAM) */
    const te_proto_tensor *outputs;
    const uint32_t *layer_offsets; /* arena offset of each layer's (first) output */
    const uint32_t *layer_bytes;   /* its size in bytes */
    uint32_t *layer_cycles;        /* num_layers entries (RAM) */
    uint32_t *layer_crcs;          /* num_layers entries (RAM) */
    int (*invoke)(void);           /* 0, or 1 + index of the failing layer */
    void (*reset_state)(void);     /* the model's persistent state to its initial values */
} te_proto_model;

/* Serve requests forever (never returns). */
void te_proto_run(const te_proto_model *model) __attribute__((noreturn));

/* Layer hooks (called from model.c). `arena` is the model's arena base. */
void te_proto_layer_begin(uint32_t layer);
void te_proto_layer_end(uint32_t layer, const uint8_t *arena);

/* IEEE 802.3 CRC-32 (zlib's): te_crc32_update(te_crc32_update(0, a, n), b, m) == crc of a|b. */
uint32_t te_crc32_update(uint32_t crc, const void *data, size_t n);

/* COBS. Encode: writes at most n + n / 254 + 1 bytes to out (no zeros), returns the count.
 * Decode: returns the decoded length, or -1 if the input is not valid COBS or out is too small. */
size_t te_cobs_encode(const uint8_t *in, size_t n, uint8_t *out);
long te_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif /* TE_PROTOCOL_H */
