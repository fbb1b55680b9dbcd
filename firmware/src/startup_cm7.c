/*
 * startup_cm7.c - reset and fault handling for Cortex-M7 (and any ARMv7-M core).
 *
 * Reset: enable the FPU (CPACR CP10/CP11 full access), copy .data from flash, zero .bss,
 * paint the stack (so the runner can report how much of it was used), call main.
 * Faults print a line through semihosting and exit with code 99.
 */
#include <stdint.h>
#include "mk_platform.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
extern int main(void);

#define MK_STACK_PAINT 0xDEADBEEFu

void Reset_Handler(void);
void mk_fault_handler(void);

/* run once: small code, the copy and fill loops kept loops (not calls of the C library's memcpy, memset) */
__attribute__((noreturn, optimize("Os", "no-tree-loop-distribute-patterns"))) void Reset_Handler(void)
{
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10, CP11 */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; dst++) {
        *dst = 0;
    }
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (dst = &_sstack; (uint32_t)dst < sp - 64u; dst++) {
        *dst = MK_STACK_PAINT;
    }
    main();
    mk_exit(0);
}

uint32_t mk_stack_size(void) { return (uint32_t)&_estack - (uint32_t)&_sstack; }

uint32_t mk_stack_unused(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == MK_STACK_PAINT) {
        p++;
    }
    return (uint32_t)p - (uint32_t)&_sstack;
}

void mk_fault_handler(void)
{
    mk_io_print("malak firmware: fault (HardFault/MemManage/BusFault/UsageFault)\n");
    mk_exit(99);
}

static void mk_default_handler(void) { mk_fault_handler(); }

typedef void (*mk_vector_t)(void);

__attribute__((section(".isr_vector"), used)) const mk_vector_t mk_vectors[16] = {
    (mk_vector_t)(uintptr_t)&_estack,
    Reset_Handler,
    mk_default_handler, /* NMI */
    mk_fault_handler,   /* HardFault */
    mk_fault_handler,   /* MemManage */
    mk_fault_handler,   /* BusFault */
    mk_fault_handler,   /* UsageFault */
    0, 0, 0, 0,
    mk_default_handler, /* SVCall */
    mk_default_handler, /* DebugMonitor */
    0,
    mk_default_handler, /* PendSV */
    mk_default_handler, /* SysTick */
};
