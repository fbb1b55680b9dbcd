/*
 * io_mailbox.c - mk_platform.h for simulators without semihosting file I/O (Renode): input.bin
 * is placed in a memory "mailbox" by the simulator before reset, output.bin is written to it,
 * and the exit code is published there. MK_MAILBOX_BASE is a simulation-only memory region
 * (renode/stm32h743.repl maps 16 MB at 0x70000000).
 *
 *   base + 0x00  u32 input bytes (written by the simulator)
 *   base + 0x04  u32 output bytes (written by the firmware)
 *   base + 0x08  u32 exit code
 *   base + 0x0C  u32 MK_MAILBOX_DONE once the firmware has finished
 *   base + 0x100                     input.bin
 *   base + 0x100 + MK_MAILBOX_OUTPUT output.bin
 */
#include <stdint.h>
#include "mk_platform.h"

#ifndef MK_MAILBOX_BASE
#define MK_MAILBOX_BASE 0x70000000u
#endif
#ifndef MK_MAILBOX_OUTPUT
#define MK_MAILBOX_OUTPUT 0x00800000u
#endif
#define MK_MAILBOX_DONE 0x454E4F44u /* "DONE" */

typedef struct {
    volatile uint32_t in_bytes, out_bytes, exit_code, done;
} mk_mailbox_t;

#define MK_MAILBOX ((mk_mailbox_t *)MK_MAILBOX_BASE)
#define MK_MAILBOX_IN ((const uint8_t *)(MK_MAILBOX_BASE + 0x100u))
#define MK_MAILBOX_OUT ((uint8_t *)(MK_MAILBOX_BASE + 0x100u + MK_MAILBOX_OUTPUT))

static uint32_t read_pos;

void mk_timer_start(void)
{
#if defined(MK_TIMER_DWT)
    *(volatile uint32_t *)0xE000EDFCu |= 1u << 24; /* DEMCR.TRCENA */
    *(volatile uint32_t *)0xE0001004u = 0;         /* DWT_CYCCNT */
    *(volatile uint32_t *)0xE0001000u |= 1u;       /* DWT_CTRL.CYCCNTENA */
#endif
}

int mk_io_open(const char *name, int write)
{
    (void)name;
    if (write) {
        MK_MAILBOX->out_bytes = 0;
        return 1;
    }
    read_pos = 0;
    return 0;
}

int mk_io_read(int handle, void *buf, uint32_t len)
{
    if (handle != 0 || read_pos + len > MK_MAILBOX->in_bytes) {
        return 1;
    }
    uint8_t *dst = buf;
    for (uint32_t i = 0; i < len; i++) {
        dst[i] = MK_MAILBOX_IN[read_pos + i];
    }
    read_pos += len;
    return 0;
}

int mk_io_write(int handle, const void *buf, uint32_t len)
{
    if (handle != 1 || MK_MAILBOX->out_bytes + len > MK_MAILBOX_OUTPUT) {
        return 1;
    }
    const uint8_t *src = buf;
    uint8_t *dst = MK_MAILBOX_OUT + MK_MAILBOX->out_bytes;
    for (uint32_t i = 0; i < len; i++) {
        dst[i] = src[i];
    }
    MK_MAILBOX->out_bytes += len;
    return 0;
}

void mk_io_close(int handle) { (void)handle; }

void mk_io_print(const char *text) { (void)text; }

void mk_exit(int code)
{
    MK_MAILBOX->exit_code = (uint32_t)code;
    MK_MAILBOX->done = MK_MAILBOX_DONE;
    for (;;) {
        __asm__ volatile("wfi");
    }
}
