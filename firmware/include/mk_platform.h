/*
 * mk_platform.h - the timer the generated code reads between layers, and the I/O the runner
 * uses (semihosting on the target, stdio on the host).
 *
 *   MK_TIMER_CMSDK  CMSDK APB timer 0 at 0x40000000 (MPS2), counts down at 25 MHz; under
 *                   qemu-system-arm -icount shift=0 one tick is exactly 40 instructions.
 *   MK_TIMER_DWT    the Cortex-M DWT cycle counter (counts up; STM32H743 on Renode or a board).
 *   neither         no timer (host builds): every layer reads 0 ticks.
 */
#ifndef MK_PLATFORM_H
#define MK_PLATFORM_H

#include <stdint.h>

#if defined(MK_TIMER_CMSDK)
#define MK_CMSDK_TIMER0 0x40000000u
#define MK_TIMER_NOW() (*(volatile uint32_t *)(MK_CMSDK_TIMER0 + 0x4u))
#define MK_TIMER_DIFF(a, b) ((uint32_t)((a) - (b)))
#elif defined(MK_TIMER_DWT)
#define MK_TIMER_NOW() (*(volatile uint32_t *)0xE0001004u)
#define MK_TIMER_DIFF(a, b) ((uint32_t)((b) - (a)))
#else
#define MK_TIMER_NOW() 0u
#define MK_TIMER_DIFF(a, b) ((uint32_t)((a) - (b)))
#endif

/* Start the timer (free running, full 32-bit range). */
void mk_timer_start(void);

/* Files on the host: semihosting on the target, stdio on the host. */
int mk_io_open(const char *name, int write);
int mk_io_read(int handle, void *buf, uint32_t len);        /* 0 when all len bytes were read */
int mk_io_write(int handle, const void *buf, uint32_t len); /* 0 when all len bytes were written */
void mk_io_close(int handle);
void mk_io_print(const char *text);
__attribute__((noreturn)) void mk_exit(int code);

/* Bytes of the stack never written since reset (the stack is painted at startup). */
uint32_t mk_stack_unused(void);

#endif /* MK_PLATFORM_H */
