/*
 * main.c - the inference runner shared by the firmware and the host build.
 *
 * Reads "input.bin", runs the model on every image and writes "output.bin":
 *
 *   input.bin   header: u32 magic 'MKI1', u32 mode (0 infer, 1 calibrate), u32 count,
 *               u32 input bytes, u32 output bytes, u32 arg; then count x input bytes (int8 HWC)
 *   output.bin  mode 0: count x (output bytes of int8 logits, u32 timer ticks of the inference),
 *               then u32 'MKO1', u32 count, u32 layers, layers x u64 ticks, u32 stack bytes used,
 *               u32 timer ticks of the whole loop
 *               mode 1: u32 'MKC1', u32 loop iterations (arg), u32 ticks of the loop
 *
 * Exit codes: 0 ok, 2 cannot open a file, 3 input header does not match the model,
 * 4 short read, 5 short write; a fault exits with 99 (see startup).
 */
#include <stdint.h>
#include "model.h"
#include "mk_platform.h"

#define MK_MAGIC_IN 0x31494B4Du  /* "MKI1" */
#define MK_MAGIC_OUT 0x314F4B4Du /* "MKO1" */
#define MK_MAGIC_CAL 0x31434B4Du /* "MKC1" */

typedef struct {
    uint32_t magic, mode, count, in_bytes, out_bytes, arg;
} mk_header_t;

static uint32_t mk_ticks[MK_NUM_LAYERS];
static uint64_t mk_total_ticks[MK_NUM_LAYERS];
static uint8_t mk_record[MK_OUTPUT_SIZE + 4] __attribute__((aligned(4)));

/* 2 instructions per iteration (subs, bne): the calibration of the instruction counter */
__attribute__((noinline)) static void mk_spin(uint32_t n)
{
#if defined(__arm__)
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
#else
    while (n--) {
        __asm__ volatile("" : "+r"(n));
    }
#endif
}

static void mk_check(int failed, int code)
{
    if (failed) {
        mk_exit(code);
    }
}

static void mk_calibrate(int out, uint32_t iterations)
{
    uint32_t t0 = MK_TIMER_NOW();
    mk_spin(iterations);
    uint32_t t1 = MK_TIMER_NOW();
    uint32_t rec[3] = {MK_MAGIC_CAL, iterations, MK_TIMER_DIFF(t0, t1)};
    mk_check(mk_io_write(out, rec, sizeof rec) != 0, 5);
}

static void mk_infer(int in, int out, uint32_t count)
{
    uint32_t start = MK_TIMER_NOW();
    for (uint32_t i = 0; i < count; i++) {
        mk_check(mk_io_read(in, mk_model_input(), MK_INPUT_SIZE) != 0, 4);
        for (int l = 0; l < MK_NUM_LAYERS; l++) {
            mk_ticks[l] = 0;
        }
        uint32_t t0 = MK_TIMER_NOW();
        mk_model_run(mk_ticks);
        uint32_t t1 = MK_TIMER_NOW();
        const int8_t *y = mk_model_output();
        for (int k = 0; k < MK_OUTPUT_SIZE; k++) {
            mk_record[k] = (uint8_t)y[k];
        }
        uint32_t ticks = MK_TIMER_DIFF(t0, t1);
        for (int b = 0; b < 4; b++) {
            mk_record[MK_OUTPUT_SIZE + b] = (uint8_t)(ticks >> (8 * b));
        }
        mk_check(mk_io_write(out, mk_record, sizeof mk_record) != 0, 5);
        for (int l = 0; l < MK_NUM_LAYERS; l++) {
            mk_total_ticks[l] += mk_ticks[l];
        }
    }
    uint32_t loop = MK_TIMER_DIFF(start, MK_TIMER_NOW());
    uint32_t footer[3] = {MK_MAGIC_OUT, count, MK_NUM_LAYERS};
    mk_check(mk_io_write(out, footer, sizeof footer) != 0, 5);
    mk_check(mk_io_write(out, mk_total_ticks, sizeof mk_total_ticks) != 0, 5);
    extern uint32_t mk_stack_size(void);
    uint32_t tail[2] = {mk_stack_size() - mk_stack_unused(), loop};
    mk_check(mk_io_write(out, tail, sizeof tail) != 0, 5);
}

int main(void)
{
    mk_timer_start();
    int in = mk_io_open("input.bin", 0);
    int out = mk_io_open("output.bin", 1);
    mk_check(in < 0 || out < 0, 2);
    mk_header_t h;
    mk_check(mk_io_read(in, &h, sizeof h) != 0, 4);
    mk_check(h.magic != MK_MAGIC_IN, 3);
    if (h.mode == 1) {
        mk_calibrate(out, h.arg);
    } else {
        mk_check(h.in_bytes != MK_INPUT_SIZE || h.out_bytes != MK_OUTPUT_SIZE, 3);
        mk_infer(in, out, h.count);
    }
    mk_io_close(out);
    mk_io_close(in);
    mk_exit(0);
}
