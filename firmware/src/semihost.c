/*
 * semihost.c - mk_platform.h on an Arm target: files, console and exit through semihosting
 * (BKPT 0xAB; QEMU: -semihosting-config enable=on,target=native), and the timers.
 */
#include <stdint.h>
#include "mk_platform.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static int mk_semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

__attribute__((optimize("no-tree-loop-distribute-patterns"))) /* a loop, not the C library's strlen */
static uint32_t mk_strlen(const char *s)
{
    uint32_t n = 0;
    while (s[n]) {
        n++;
    }
    return n;
}

void mk_timer_start(void)
{
#if defined(MK_TIMER_CMSDK)
    volatile uint32_t *timer = (volatile uint32_t *)MK_CMSDK_TIMER0;
    timer[0] = 0;           /* CTRL: stop */
    timer[2] = 0xFFFFFFFFu; /* RELOAD */
    timer[1] = 0xFFFFFFFFu; /* VALUE */
    timer[0] = 1;           /* CTRL: enable, no interrupt */
#elif defined(MK_TIMER_DWT)
    *(volatile uint32_t *)0xE000EDFCu |= 1u << 24; /* DEMCR.TRCENA */
    *(volatile uint32_t *)0xE0001004u = 0;         /* DWT_CYCCNT */
    *(volatile uint32_t *)0xE0001000u |= 1u;       /* DWT_CTRL.CYCCNTENA */
#endif
}

int mk_io_open(const char *name, int write)
{
    uint32_t args[3] = {(uint32_t)name, write ? 5u : 1u, mk_strlen(name)}; /* "wb" : "rb" */
    return mk_semihost(SYS_OPEN, args);
}

int mk_io_read(int handle, void *buf, uint32_t len)
{
    uint32_t args[3] = {(uint32_t)handle, (uint32_t)buf, len};
    return mk_semihost(SYS_READ, args) != 0;
}

int mk_io_write(int handle, const void *buf, uint32_t len)
{
    uint32_t args[3] = {(uint32_t)handle, (uint32_t)buf, len};
    return mk_semihost(SYS_WRITE, args) != 0;
}

void mk_io_close(int handle)
{
    uint32_t args[1] = {(uint32_t)handle};
    (void)mk_semihost(SYS_CLOSE, args);
}

void mk_io_print(const char *text) { (void)mk_semihost(SYS_WRITE0, text); }

void mk_exit(int code)
{
    uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    for (;;) {
        (void)mk_semihost(SYS_EXIT_EXTENDED, args);
    }
}
