/* SPDX-License-Identifier: Apache-2.0 */
/* te_protocol.c - the device side of the ternembed serial protocol (docs/protocol.md).
 *
 * One request frame in, one reply frame out. Receive: bytes are COBS-decoded as they arrive
 * into rx[] until a 0x00 delimiter; the frame is checked (length, CRC32) and dispatched.
 * Transmit: the raw reply (type, seq, payload, CRC32) is built in tx[] and COBS-encoded on the
 * fly to the UART. tx[] is kept: a request that repeats the last one (same seq and CRC, i.e.
 * the host retried because our reply was lost or damaged) gets the same reply again without
 * being executed twice.
 *
 * Timing (INVOKE): the layers partition the time from just before te_model_invoke() to just
 * after it returns, minus the time spent inside the hooks (checksums, capture): layer i counts
 * from the end of the previous layer's hook to the start of its own TE_LAYER_END hook; the
 * last layer also gets the return from te_model_invoke(). So the per-layer counts sum exactly
 * to the reported total, and the hook time is reported separately as overhead.
 */
#include "te_protocol.h"

#include <string.h>

#include "te_platform.h"

#if TE_PROTO_MAX_PAYLOAD < 512u || TE_PROTO_MAX_PAYLOAD > 65535u
#error "TE_PROTO_MAX_PAYLOAD must be in 512..65535"
#endif

#define FRAME_MAX (2u + TE_PROTO_MAX_PAYLOAD + 4u) /* type, seq, payload, crc */
#define NO_LAYER 0xFFFFFFFFu

/* ------------------------------------------------------------------ CRC-32 (IEEE, reflected) */

static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xEE0E612Cu, 0x990951BAu, 0x076DC419u, 0x706AF48Fu, 0xE963A535u,
    0x9E6495A3u, 0x0EDB8832u, 0x79DCB8A4u, 0xE0D5E91Eu, 0x97D2D988u, 0x09B64C2Bu, 0x7EB17CBDu,
    0xE7B82D07u, 0x90BF1D91u, 0x1DB71064u, 0x6AB020F2u, 0xF3B97148u, 0x84BE41DEu, 0x1ADAD47Du,
    0x6DDDE4EBu, 0xF4D4B551u, 0x83D385C7u, 0x136C9856u, 0x646BA8C0u, 0xFD62F97Au, 0x8A65C9ECu,
    0x14015C4Fu, 0x63066CD9u, 0xFA0F3D63u, 0x8D080DF5u, 0x3B6E20C8u, 0x4C69105Eu, 0xD56041E4u,
    0xA2677172u, 0x3C03E4D1u, 0x4B04D447u, 0xD20D85FDu, 0xA50AB56Bu, 0x35B5A8FAu, 0x42B2986Cu,
    0xDBBBC9D6u, 0xACBCF940u, 0x32D86CE3u, 0x45DF5C75u, 0xDCD60DCFu, 0xABD13D59u, 0x26D930ACu,
    0x51DE003Au, 0xC8D75180u, 0xBFD06116u, 0x21B4F4B5u, 0x56B3C423u, 0xCFBA9599u, 0xB8BDA50Fu,
    0x2802B89Eu, 0x5F058808u, 0xC60CD9B2u, 0xB10BE924u, 0x2F6F7C87u, 0x58684C11u, 0xC1611DABu,
    0xB6662D3Du, 0x76DC4190u, 0x01DB7106u, 0x98D220BCu, 0xEFD5102Au, 0x71B18589u, 0x06B6B51Fu,
    0x9FBFE4A5u, 0xE8B8D433u, 0x7807C9A2u, 0x0F00F934u, 0x9609A88Eu, 0xE10E9818u, 0x7F6A0DBBu,
    0x086D3D2Du, 0x91646C97u, 0xE6635C01u, 0x6B6B51F4u, 0x1C6C6162u, 0x856530D8u, 0xF262004Eu,
    0x6C0695EDu, 0x1B01A57Bu, 0x8208F4C1u, 0xF50FC457u, 0x65B0D9C6u, 0x12B7E950u, 0x8BBEB8EAu,
    0xFCB9887Cu, 0x62DD1DDFu, 0x15DA2D49u, 0x8CD37CF3u, 0xFBD44C65u, 0x4DB26158u, 0x3AB551CEu,
    0xA3BC0074u, 0xD4BB30E2u, 0x4ADFA541u, 0x3DD895D7u, 0xA4D1C46Du, 0xD3D6F4FBu, 0x4369E96Au,
    0x346ED9FCu, 0xAD678846u, 0xDA60B8D0u, 0x44042D73u, 0x33031DE5u, 0xAA0A4C5Fu, 0xDD0D7CC9u,
    0x5005713Cu, 0x270241AAu, 0xBE0B1010u, 0xC90C2086u, 0x5768B525u, 0x206F85B3u, 0xB966D409u,
    0xCE61E49Fu, 0x5EDEF90Eu, 0x29D9C998u, 0xB0D09822u, 0xC7D7A8B4u, 0x59B33D17u, 0x2EB40D81u,
    0xB7BD5C3Bu, 0xC0BA6CADu, 0xEDB88320u, 0x9ABFB3B6u, 0x03B6E20Cu, 0x74B1D29Au, 0xEAD54739u,
    0x9DD277AFu, 0x04DB2615u, 0x73DC1683u, 0xE3630B12u, 0x94643B84u, 0x0D6D6A3Eu, 0x7A6A5AA8u,
    0xE40ECF0Bu, 0x9309FF9Du, 0x0A00AE27u, 0x7D079EB1u, 0xF00F9344u, 0x8708A3D2u, 0x1E01F268u,
    0x6906C2FEu, 0xF762575Du, 0x806567CBu, 0x196C3671u, 0x6E6B06E7u, 0xFED41B76u, 0x89D32BE0u,
    0x10DA7A5Au, 0x67DD4ACCu, 0xF9B9DF6Fu, 0x8EBEEFF9u, 0x17B7BE43u, 0x60B08ED5u, 0xD6D6A3E8u,
    0xA1D1937Eu, 0x38D8C2C4u, 0x4FDFF252u, 0xD1BB67F1u, 0xA6BC5767u, 0x3FB506DDu, 0x48B2364Bu,
    0xD80D2BDAu, 0xAF0A1B4Cu, 0x36034AF6u, 0x41047A60u, 0xDF60EFC3u, 0xA867DF55u, 0x316E8EEFu,
    0x4669BE79u, 0xCB61B38Cu, 0xBC66831Au, 0x256FD2A0u, 0x5268E236u, 0xCC0C7795u, 0xBB0B4703u,
    0x220216B9u, 0x5505262Fu, 0xC5BA3BBEu, 0xB2BD0B28u, 0x2BB45A92u, 0x5CB36A04u, 0xC2D7FFA7u,
    0xB5D0CF31u, 0x2CD99E8Bu, 0x5BDEAE1Du, 0x9B64C2B0u, 0xEC63F226u, 0x756AA39Cu, 0x026D930Au,
    0x9C0906A9u, 0xEB0E363Fu, 0x72076785u, 0x05005713u, 0x95BF4A82u, 0xE2B87A14u, 0x7BB12BAEu,
    0x0CB61B38u, 0x92D28E9Bu, 0xE5D5BE0Du, 0x7CDCEFB7u, 0x0BDBDF21u, 0x86D3D2D4u, 0xF1D4E242u,
    0x68DDB3F8u, 0x1FDA836Eu, 0x81BE16CDu, 0xF6B9265Bu, 0x6FB077E1u, 0x18B74777u, 0x88085AE6u,
    0xFF0F6A70u, 0x66063BCAu, 0x11010B5Cu, 0x8F659EFFu, 0xF862AE69u, 0x616BFFD3u, 0x166CCF45u,
    0xA00AE278u, 0xD70DD2EEu, 0x4E048354u, 0x3903B3C2u, 0xA7672661u, 0xD06016F7u, 0x4969474Du,
    0x3E6E77DBu, 0xAED16A4Au, 0xD9D65ADCu, 0x40DF0B66u, 0x37D83BF0u, 0xA9BCAE53u, 0xDEBB9EC5u,
    0x47B2CF7Fu, 0x30B5FFE9u, 0xBDBDF21Cu, 0xCABAC28Au, 0x53B39330u, 0x24B4A3A6u, 0xBAD03605u,
    0xCDD70693u, 0x54DE5729u, 0x23D967BFu, 0xB3667A2Eu, 0xC4614AB8u, 0x5D681B02u, 0x2A6F2B94u,
    0xB40BBE37u, 0xC30C8EA1u, 0x5A05DF1Bu, 0x2D02EF8Du,
};

uint32_t te_crc32_update(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (n--) {
        crc = crc_table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    }
    return ~crc;
}

/* ------------------------------------------------------------------ COBS */

size_t te_cobs_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t code_at = 0, k = 1, i;
    uint8_t code = 1;
    for (i = 0; i < n; ++i) {
        if (in[i] == 0u) {
            out[code_at] = code;
            code_at = k++;
            code = 1;
        } else {
            out[k++] = in[i];
            if (++code == 0xFFu) {
                out[code_at] = code;
                code_at = k++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    return k;
}

long te_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t out_size)
{
    size_t k = 0, o = 0;
    while (k < n) {
        const uint8_t code = in[k];
        size_t j;
        if (code == 0u || k + code > n) {
            return -1;
        }
        for (j = 1; j < code; ++j) {
            if (in[k + j] == 0u || o >= out_size) {
                return -1;
            }
            out[o++] = in[k + j];
        }
        k += code;
        if (code < 0xFFu && k < n) {
            if (o >= out_size) {
                return -1;
            }
            out[o++] = 0u;
        }
    }
    return (long)o;
}

/* ------------------------------------------------------------------ state */

static const te_proto_model *M;
static uint8_t rx[FRAME_MAX];
static uint8_t tx[FRAME_MAX];
static uint32_t tx_len;       /* raw reply length in tx[] (0: none yet) */
static uint32_t last_req_crc; /* CRC and seq of the request tx[] answers */
static int last_req_valid;
static uint8_t hash_bin[32];
static int bound;          /* a HELLO with the firmware's hash was received */
static int have_result;    /* an INVOKE completed */
static int have_checksums; /* ... with per-layer checksums */

/* hook state */
static uint32_t t_mark;     /* where the current layer's count starts */
static uint32_t t_overhead; /* time inside hooks, excluded from the layer counts */
static int hooks_record;    /* record cycles (not during DUMP_LAYER re-runs) */
static int hooks_checksums;
static uint32_t cap_layer = NO_LAYER, cap_offset, cap_len;
static uint8_t *cap_dst;

static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return 0;
}

/* ------------------------------------------------------------------ hooks */

void te_proto_layer_begin(uint32_t layer) { (void)layer; }

void te_proto_layer_end(uint32_t layer, const uint8_t *arena)
{
    const uint32_t t = te_cycles_now();
    if (layer >= M->num_layers) {
        return;
    }
    if (hooks_record) {
        M->layer_cycles[layer] = t - t_mark;
        if (hooks_checksums) {
            M->layer_crcs[layer] =
                te_crc32_update(0u, arena + M->layer_offsets[layer], M->layer_bytes[layer]);
        }
    }
    if (layer == cap_layer) {
        memcpy(cap_dst, arena + M->layer_offsets[layer] + cap_offset, cap_len);
    }
    t_mark = te_cycles_now();
    t_overhead += t_mark - t;
}

/* ------------------------------------------------------------------ transmit */

static void send_raw_frame(void)
{
    /* COBS-encode tx[0..tx_len) straight to the UART, between two delimiters. */
    uint32_t i = 0;
    te_uart_putc(0u);
    for (;;) {
        uint32_t j = i;
        while (j < tx_len && tx[j] != 0u && j - i < 254u) {
            ++j;
        }
        te_uart_putc((uint8_t)(j - i + 1u));
        te_uart_write(tx + i, j - i);
        if (j >= tx_len) {
            break;
        }
        if (j - i == 254u) {
            i = j; /* full block: no zero consumed */
        } else {
            i = j + 1u; /* the zero at j is implied by the block code */
            if (i == tx_len) {
                te_uart_putc(1u);
                break;
            }
        }
    }
    te_uart_putc(0u);
}

/* Finish the reply whose payload (payload_len bytes) is already in tx[2..]. */
static void reply(uint8_t type, uint8_t seq, uint32_t payload_len)
{
    tx[0] = type;
    tx[1] = seq;
    put_u32(tx + 2 + payload_len, te_crc32_update(0u, tx, 2u + payload_len));
    tx_len = 2u + payload_len + 4u;
    send_raw_frame();
}

static void reply_error(uint8_t seq, uint8_t req_type, uint8_t code, const char *msg)
{
    uint32_t n = 0;
    tx[2] = code;
    tx[3] = req_type;
    while (msg[n] != '\0' && 2u + n < TE_PROTO_MAX_PAYLOAD) {
        tx[4 + n] = (uint8_t)msg[n];
        ++n;
    }
    reply(TE_PROTO_ERROR, seq, 2u + n);
}

static void send_nak(uint8_t seq, uint8_t reason)
{
    /* A NAK is not cached: the request it answers was never understood. */
    uint8_t frame[7];
    uint8_t enc[9];
    size_t n, k;
    frame[0] = TE_PROTO_NAK;
    frame[1] = seq;
    frame[2] = reason;
    put_u32(frame + 3, te_crc32_update(0u, frame, 3u));
    n = te_cobs_encode(frame, sizeof frame, enc);
    te_uart_putc(0u);
    for (k = 0; k < n; ++k) {
        te_uart_putc(enc[k]);
    }
    te_uart_putc(0u);
}

/* ------------------------------------------------------------------ commands */

static uint32_t put_str(uint8_t *p, const char *s, uint32_t max)
{
    uint32_t n = 0;
    while (s != NULL && s[n] != '\0' && n < max) {
        p[1 + n] = (uint8_t)s[n];
        ++n;
    }
    p[0] = (uint8_t)n;
    return 1u + n;
}

static void cmd_hello(uint8_t seq, const uint8_t *req, uint32_t n)
{
    uint8_t *p = tx + 2;
    uint32_t k, len;
    int match = 1;
    if (n != 0u && n != 32u) {
        reply_error(seq, TE_PROTO_HELLO, TE_PROTO_ERR_BAD_LENGTH,
                    "HELLO takes no payload or a 32-byte model hash");
        return;
    }
    if (n == 32u) {
        match = memcmp(req, hash_bin, 32u) == 0;
        bound = match;
    }
    if (!match) {
        static const char prefix[] = "firmware is for model hash ";
        uint32_t m = 0;
        tx[2] = TE_PROTO_ERR_MODEL_MISMATCH;
        tx[3] = TE_PROTO_HELLO;
        for (k = 0; prefix[k] != '\0'; ++k) {
            tx[4 + m++] = (uint8_t)prefix[k];
        }
        for (k = 0; k < 64u && M->hash_hex[k] != '\0'; ++k) {
            tx[4 + m++] = (uint8_t)M->hash_hex[k];
        }
        tx[4 + m++] = ' ';
        tx[4 + m++] = '(';
        for (k = 0; M->name[k] != '\0' && k < 64u; ++k) {
            tx[4 + m++] = (uint8_t)M->name[k];
        }
        tx[4 + m++] = ')';
        reply(TE_PROTO_ERROR, seq, 2u + m);
        return;
    }
    put_u16(p + 0, TE_PROTO_VERSION);
    put_u16(p + 2, TE_PROTO_MAX_PAYLOAD);
    put_u32(p + 4, TE_CPU_HZ);
    put_u32(p + 8, TE_CYCLES_HZ);
    put_u32(p + 12, M->arena_bytes);
    put_u16(p + 16, M->num_layers);
    p[18] = (uint8_t)M->num_inputs;
    p[19] = (uint8_t)M->num_outputs;
    memcpy(p + 20, hash_bin, 32u);
    p[52] = (uint8_t)((bound ? 1u : 0u) | (TE_EMULATED ? 2u : 0u));
    len = 53u;
    for (k = 0; k < M->num_inputs && len + 5u <= TE_PROTO_MAX_PAYLOAD - 256u; ++k) {
        put_u32(p + len, M->inputs[k].bytes);
        p[len + 4] = (uint8_t)M->inputs[k].dtype;
        len += 5u;
    }
    for (k = 0; k < M->num_outputs && len + 5u <= TE_PROTO_MAX_PAYLOAD - 256u; ++k) {
        put_u32(p + len, M->outputs[k].bytes);
        p[len + 4] = (uint8_t)M->outputs[k].dtype;
        len += 5u;
    }
    len += put_str(p + len, TE_BOARD_NAME, 60u);
    len += put_str(p + len, te_cycles_unit(), 60u);
    len += put_str(p + len, M->name, 60u);
    len += put_str(p + len, M->version, 60u);
    reply(TE_PROTO_HELLO | TE_PROTO_REPLY, seq, len);
}

static void cmd_reset_state(uint8_t seq, uint32_t n)
{
    if (n != 0u) {
        reply_error(seq, TE_PROTO_RESET_STATE, TE_PROTO_ERR_BAD_LENGTH,
                    "RESET_STATE takes no payload");
        return;
    }
    if (M->reset_state != NULL) {
        M->reset_state();
    }
    reply(TE_PROTO_RESET_STATE | TE_PROTO_REPLY, seq, 0u);
}

static void cmd_load_input(uint8_t seq, const uint8_t *req, uint32_t n)
{
    uint32_t index, offset, len;
    if (n < 5u) {
        reply_error(seq, TE_PROTO_LOAD_INPUT, TE_PROTO_ERR_BAD_LENGTH,
                    "LOAD_INPUT needs index u8, offset u32, data");
        return;
    }
    index = req[0];
    offset = get_u32(req + 1);
    len = n - 5u;
    if (index >= M->num_inputs || offset > M->inputs[index].bytes ||
        len > M->inputs[index].bytes - offset) {
        reply_error(seq, TE_PROTO_LOAD_INPUT, TE_PROTO_ERR_OUT_OF_RANGE,
                    "input index or byte range out of bounds");
        return;
    }
    memcpy(M->input_copies[index] + offset, req + 5, len);
    put_u32(tx + 2, offset + len);
    reply(TE_PROTO_LOAD_INPUT | TE_PROTO_REPLY, seq, 4u);
}

/* LOAD_INPUT_Q: int8 values q for a float32 input, stored as (q - zero_point) * scale. The host
 * uses it when the model's first op quantizes that input with the same scale and zero point:
 * the quantize then gives back q exactly, so the link carries a quarter of the bytes. */
static void cmd_load_input_q(uint8_t seq, const uint8_t *req, uint32_t n)
{
    uint32_t index, offset, len, k, bits;
    int32_t zero_point;
    float scale, v;
    if (n < 13u) {
        reply_error(
            seq, TE_PROTO_LOAD_INPUT_Q, TE_PROTO_ERR_BAD_LENGTH,
            "LOAD_INPUT_Q needs index u8, element offset u32, scale f32, zero point i32, data");
        return;
    }
    index = req[0];
    offset = get_u32(req + 1);
    bits = get_u32(req + 5);
    memcpy(&scale, &bits, 4u);
    zero_point = (int32_t)get_u32(req + 9);
    len = n - 13u;
    if (index >= M->num_inputs || M->inputs[index].dtype != 1u ||
        offset > M->inputs[index].bytes / 4u || len > M->inputs[index].bytes / 4u - offset) {
        reply_error(seq, TE_PROTO_LOAD_INPUT_Q, TE_PROTO_ERR_OUT_OF_RANGE,
                    "not a float32 input, or element range out of bounds");
        return;
    }
    for (k = 0; k < len; ++k) {
        v = (float)((int32_t)(int8_t)req[13u + k] - zero_point) * scale;
        memcpy(M->input_copies[index] + 4u * (offset + k), &v, 4u);
    }
    put_u32(tx + 2, offset + len);
    reply(TE_PROTO_LOAD_INPUT_Q | TE_PROTO_REPLY, seq, 4u);
}

/* Copy the loaded inputs into the arena and run the model. Returns te_model_invoke()'s value. */
static int run_model(int record, int checksums, uint32_t *total, uint32_t *overhead)
{
    uint32_t k, t_start, t_end;
    int rc;
    for (k = 0; k < M->num_inputs; ++k) {
        memcpy(M->inputs[k].data, M->input_copies[k], M->inputs[k].bytes);
    }
    hooks_record = record;
    hooks_checksums = checksums;
    t_overhead = 0u;
    t_start = te_cycles_now();
    t_mark = t_start;
    rc = M->invoke();
    t_end = te_cycles_now();
    if (record && M->num_layers != 0u) {
        M->layer_cycles[M->num_layers - 1u] += t_end - t_mark; /* the return from invoke */
    }
    *overhead = t_overhead;
    *total = t_end - t_start - t_overhead;
    hooks_record = 0;
    return rc;
}

static void invoke_failed(uint8_t seq, uint8_t req_type, int rc)
{
    static const char msg[] = "a kernel rejected its arguments in layer ";
    char text[sizeof msg + 12];
    uint32_t layer = (uint32_t)(rc - 1), n = 0, k;
    char digits[10];
    memcpy(text, msg, sizeof msg - 1u);
    n = sizeof msg - 1u;
    k = 0;
    do {
        digits[k++] = (char)('0' + layer % 10u);
        layer /= 10u;
    } while (layer != 0u);
    while (k > 0u) {
        text[n++] = digits[--k];
    }
    text[n] = '\0';
    reply_error(seq, req_type, TE_PROTO_ERR_INVOKE_FAILED, text);
}

static void cmd_invoke(uint8_t seq, const uint8_t *req, uint32_t n)
{
    uint32_t total, overhead, k, crc_in = 0u, crc_out = 0u;
    int rc, checksums;
    if (n != 1u) {
        reply_error(seq, TE_PROTO_INVOKE, TE_PROTO_ERR_BAD_LENGTH, "INVOKE takes one flags byte");
        return;
    }
    checksums = (req[0] & TE_PROTO_INVOKE_CHECKSUMS) != 0u;
    for (k = 0; k < M->num_inputs; ++k) {
        crc_in = te_crc32_update(crc_in, M->input_copies[k], M->inputs[k].bytes);
    }
    have_result = 0;
    have_checksums = 0;
    rc = run_model(1, checksums, &total, &overhead);
    if (rc != 0) {
        invoke_failed(seq, TE_PROTO_INVOKE, rc);
        return;
    }
    have_result = 1;
    have_checksums = checksums;
    for (k = 0; k < M->num_outputs; ++k) {
        crc_out = te_crc32_update(crc_out, M->outputs[k].data, M->outputs[k].bytes);
    }
    tx[2] = 0u; /* status */
    tx[3] = req[0];
    put_u16(tx + 4, M->num_layers);
    put_u32(tx + 6, total);
    put_u32(tx + 10, overhead);
    put_u32(tx + 14, crc_in);
    put_u32(tx + 18, crc_out);
    reply(TE_PROTO_INVOKE | TE_PROTO_REPLY, seq, 20u);
}

static void cmd_read_output(uint8_t seq, const uint8_t *req, uint32_t n)
{
    uint32_t index, offset, len;
    if (n != 7u) {
        reply_error(seq, TE_PROTO_READ_OUTPUT, TE_PROTO_ERR_BAD_LENGTH,
                    "READ_OUTPUT needs index u8, offset u32, length u16");
        return;
    }
    if (!have_result) {
        reply_error(seq, TE_PROTO_READ_OUTPUT, TE_PROTO_ERR_NO_RESULT, "no INVOKE has completed");
        return;
    }
    index = req[0];
    offset = get_u32(req + 1);
    len = get_u16(req + 5);
    if (index >= M->num_outputs || offset > M->outputs[index].bytes ||
        len > M->outputs[index].bytes - offset || len > TE_PROTO_MAX_PAYLOAD - 4u) {
        reply_error(seq, TE_PROTO_READ_OUTPUT, TE_PROTO_ERR_OUT_OF_RANGE,
                    "output index or byte range out of bounds");
        return;
    }
    put_u32(tx + 2, offset);
    memcpy(tx + 6, M->outputs[index].data + offset, len);
    reply(TE_PROTO_READ_OUTPUT | TE_PROTO_REPLY, seq, 4u + len);
}

static void cmd_read_table(uint8_t seq, uint8_t type, const uint8_t *req, uint32_t n)
{
    const uint32_t *table = type == TE_PROTO_READ_LAYER_CYCLES ? M->layer_cycles : M->layer_crcs;
    uint32_t first, count, k;
    if (n != 4u) {
        reply_error(seq, type, TE_PROTO_ERR_BAD_LENGTH, "needs first layer u16, count u16");
        return;
    }
    if (!have_result || (type == TE_PROTO_READ_LAYER_CHECKSUMS && !have_checksums)) {
        reply_error(seq, type, TE_PROTO_ERR_NO_RESULT,
                    type == TE_PROTO_READ_LAYER_CYCLES
                        ? "no INVOKE has completed"
                        : "the last INVOKE did not compute checksums (flag 0x01)");
        return;
    }
    first = get_u16(req);
    count = get_u16(req + 2);
    if (first > M->num_layers || count > M->num_layers - first ||
        2u + 4u * count > TE_PROTO_MAX_PAYLOAD) {
        reply_error(seq, type, TE_PROTO_ERR_OUT_OF_RANGE, "layer range out of bounds");
        return;
    }
    put_u16(tx + 2, first);
    for (k = 0; k < count; ++k) {
        put_u32(tx + 4 + 4u * k, table[first + k]);
    }
    reply((uint8_t)(type | TE_PROTO_REPLY), seq, 2u + 4u * count);
}

static void cmd_dump_layer(uint8_t seq, const uint8_t *req, uint32_t n)
{
    uint32_t layer, offset, len, total, overhead;
    int rc;
    if (n != 8u) {
        reply_error(seq, TE_PROTO_DUMP_LAYER, TE_PROTO_ERR_BAD_LENGTH,
                    "DUMP_LAYER needs layer u16, offset u32, length u16");
        return;
    }
    layer = get_u16(req);
    offset = get_u32(req + 2);
    len = get_u16(req + 6);
    if (layer >= M->num_layers || offset > M->layer_bytes[layer] ||
        len > TE_PROTO_MAX_PAYLOAD - 10u) {
        reply_error(seq, TE_PROTO_DUMP_LAYER, TE_PROTO_ERR_OUT_OF_RANGE,
                    "layer index, offset or length out of bounds");
        return;
    }
    if (len > M->layer_bytes[layer] - offset) {
        len = M->layer_bytes[layer] - offset; /* the reply holds what is left */
    }
    /* Re-run the model on the loaded input and copy the bytes at the end of the layer: the
     * arena reuses a layer's memory later, so they may be gone once the invocation is over. */
    cap_layer = layer;
    cap_offset = offset;
    cap_len = len;
    cap_dst = tx + 12;
    rc = run_model(0, 0, &total, &overhead);
    cap_layer = NO_LAYER;
    if (rc != 0) {
        invoke_failed(seq, TE_PROTO_DUMP_LAYER, rc);
        return;
    }
    put_u16(tx + 2, layer);
    put_u32(tx + 4, offset);
    put_u32(tx + 8, M->layer_bytes[layer]);
    reply(TE_PROTO_DUMP_LAYER | TE_PROTO_REPLY, seq, 10u + len);
}

static void dispatch(uint32_t n)
{
    const uint8_t type = rx[0], seq = rx[1];
    const uint8_t *req = rx + 2;
    const uint32_t plen = n - 6u;
    const uint32_t crc = get_u32(rx + n - 4u);

    if (last_req_valid && crc == last_req_crc && tx_len != 0u && tx[1] == seq) {
        send_raw_frame(); /* the host retried: the same reply again, nothing re-executed */
        return;
    }
    last_req_crc = crc;
    last_req_valid = 1;
    if (type != TE_PROTO_HELLO && type <= TE_PROTO_LOAD_INPUT_Q && type != 0u && !bound) {
        reply_error(seq, type, TE_PROTO_ERR_NOT_BOUND, "send HELLO with the model hash first");
        return;
    }
    switch (type) {
    case TE_PROTO_HELLO:
        cmd_hello(seq, req, plen);
        break;
    case TE_PROTO_LOAD_INPUT:
        cmd_load_input(seq, req, plen);
        break;
    case TE_PROTO_LOAD_INPUT_Q:
        cmd_load_input_q(seq, req, plen);
        break;
    case TE_PROTO_INVOKE:
        cmd_invoke(seq, req, plen);
        break;
    case TE_PROTO_READ_OUTPUT:
        cmd_read_output(seq, req, plen);
        break;
    case TE_PROTO_READ_LAYER_CYCLES:
    case TE_PROTO_READ_LAYER_CHECKSUMS:
        cmd_read_table(seq, type, req, plen);
        break;
    case TE_PROTO_DUMP_LAYER:
        cmd_dump_layer(seq, req, plen);
        break;
    case TE_PROTO_RESET_STATE:
        cmd_reset_state(seq, plen);
        break;
    default:
        reply_error(seq, type, TE_PROTO_ERR_UNKNOWN_COMMAND, "unknown command");
        break;
    }
}

/* ------------------------------------------------------------------ receive loop */

void te_proto_run(const te_proto_model *model)
{
    uint32_t n = 0;       /* decoded bytes in rx[] */
    uint32_t left = 0;    /* bytes left in the current COBS block */
    uint8_t code = 0xFFu; /* code of the current block */
    int started = 0, bad = 0, too_long = 0;
    uint32_t k;

    M = model;
    for (k = 0; k < 32u; ++k) {
        hash_bin[k] = (uint8_t)((hex_nibble(M->hash_hex[2u * k]) << 4) |
                                hex_nibble(M->hash_hex[2u * k + 1u]));
    }
    for (;;) {
        const uint8_t b = te_uart_getc_blocking();
        if (b == 0u) { /* end of frame */
            if (started) {
                if (too_long) {
                    send_nak(n >= 2u ? rx[1] : 0u, TE_PROTO_NAK_TOO_LONG);
                } else if (bad || left != 0u) {
                    send_nak(n >= 2u ? rx[1] : 0u, TE_PROTO_NAK_BAD_COBS);
                } else if (n < 6u) {
                    send_nak(n >= 2u ? rx[1] : 0u, TE_PROTO_NAK_TOO_SHORT);
                } else if (te_crc32_update(0u, rx, n - 4u) != get_u32(rx + n - 4u)) {
                    send_nak(rx[1], TE_PROTO_NAK_BAD_CRC);
                } else {
                    dispatch(n);
                }
            }
            n = 0;
            left = 0;
            code = 0xFFu;
            started = bad = too_long = 0;
            continue;
        }
        started = 1;
        if (bad || too_long) {
            continue;
        }
        if (left == 0u) { /* a block code */
            if (n != 0u || code != 0xFFu) {
                /* not the first block: the previous block (if shorter than 254) ended in a zero */
                if (code < 0xFFu) {
                    if (n >= FRAME_MAX) {
                        too_long = 1;
                        continue;
                    }
                    rx[n++] = 0u;
                }
            }
            code = b;
            left = (uint32_t)b - 1u;
        } else {
            if (n >= FRAME_MAX) {
                too_long = 1;
                continue;
            }
            rx[n++] = b;
            --left;
        }
    }
}
