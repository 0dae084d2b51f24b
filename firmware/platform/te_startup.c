/* SPDX-License-Identifier: Apache-2.0 */
/* te_startup.c - what runs before and after main() on every board: the vector table
 * (system exceptions only; the platform uses no peripheral interrupts), Reset_Handler
 * (FPU on, .data copied, .bss zeroed, VTOR set, main called), fault handlers that report and
 * exit, te_platform_init() and te_exit().
 *
 * Linker symbols come from firmware/platform/ld/<board>.ld: _sidata/_sdata/_edata (.data load
 * and run addresses), _sbss/_ebss, __stack_top (end of RAM). */
#include "te_platform.h"
#include "te_regs.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, __stack_top;
extern int main(void);

typedef void (*te_handler_t)(void);

void Reset_Handler(void) __attribute__((noreturn));
void te_fault_handler(void);
void te_default_handler(void);
void NMI_Handler(void) __attribute__((weak, alias("te_default_handler")));
void SVC_Handler(void) __attribute__((weak, alias("te_default_handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("te_default_handler")));
void PendSV_Handler(void) __attribute__((weak, alias("te_default_handler")));
void SysTick_Handler(void) __attribute__((weak, alias("te_default_handler")));

/* Word 0 is the initial stack pointer, then the 15 system exception vectors
 * (HardFault, MemManage, BusFault, UsageFault, SecureFault on ARMv8-M). */
typedef struct {
    uint32_t *initial_sp;
    te_handler_t vectors[15];
} te_vector_table_t;

__attribute__((section(".isr_vector"), used)) const te_vector_table_t te_vector_table = {
    &__stack_top,
    {
        Reset_Handler,
        NMI_Handler,
        te_fault_handler,
        te_fault_handler,
        te_fault_handler,
        te_fault_handler,
        te_fault_handler,
        0,
        0,
        0,
        SVC_Handler,
        DebugMon_Handler,
        0,
        PendSV_Handler,
        SysTick_Handler,
    },
};

static void te_startup_c(void) __attribute__((noinline, noreturn));

void Reset_Handler(void)
{
#if TE_HAS_FPU
    /* CP10/CP11 full access before any floating-point instruction runs (te_startup_c and
     * everything after it may use the FPU). */
    TE_REG(TE_SCB_CPACR) |= 0xFu << 20;
    TE_DSB();
    TE_ISB();
#endif
    te_startup_c();
}

static void te_startup_c(void)
{
    uint32_t *src = &_sidata;
    uint32_t *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; ++dst) {
        *dst = 0;
    }
    TE_REG(TE_SCB_VTOR) = (uint32_t)(uintptr_t)&te_vector_table;
    TE_DSB();
    te_exit(main());
}

#if TE_HAS_CACHE
/* Cortex-M7 L1 caches (Armv7-M ARM B3.5 / Cortex-M7 TRM 4.x): invalidate, then enable. The
 * D-cache is invalidated by set/way; the M7 has 4 ways (bits 31:30) and 32-byte lines (set
 * index from bit 5). Nothing here uses DMA, so write-back caching of SRAM is safe. */
static void te_enable_caches(void)
{
    uint32_t ccsidr, sets, ways, s, w;
    TE_DSB();
    TE_ISB();
    TE_REG(TE_SCB_ICIALLU) = 0;
    TE_DSB();
    TE_ISB();
    TE_REG(TE_SCB_CCR) |= 1u << 17; /* IC */
    TE_DSB();
    TE_ISB();

    TE_REG(TE_SCB_CSSELR) = 0; /* level 1 data cache */
    TE_DSB();
    ccsidr = TE_REG(TE_SCB_CCSIDR);
    sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    for (s = 0; s < sets; ++s) {
        for (w = 0; w < ways; ++w) {
            TE_REG(TE_SCB_DCISW) = (w << 30) | (s << 5);
        }
    }
    TE_DSB();
    TE_REG(TE_SCB_CCR) |= 1u << 16; /* DC */
    TE_DSB();
    TE_ISB();
}
#endif

void te_platform_init(void)
{
    te_clock_init();
#if TE_HAS_CACHE
    te_enable_caches();
#endif
    te_uart_init();
    (void)te_cycles_start();
}

const char *te_cycles_unit(void) { return TE_CYCLES_UNIT; }

void te_exit(int code)
{
    te_uart_flush();
#if TE_EMULATED
    {
        /* Semihosting SYS_EXIT_EXTENDED (0x20): r1 points at {ADP_Stopped_ApplicationExit,
         * code}; QEMU (-semihosting) exits with `code`. */
        static volatile uint32_t block[2];
        register uint32_t r0 __asm__("r0") = 0x20u;
        register uint32_t r1 __asm__("r1") = (uint32_t)(uintptr_t)block;
        block[0] = 0x20026u;
        block[1] = (uint32_t)code;
        __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    }
#else
    (void)code;
#endif
    /* Real boards (or a semihosting host that returned): stop here, interrupts off. */
    __asm__ volatile("cpsid i" ::: "memory");
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void te_fault_handler(void)
{
    te_uart_puts("\r\n[te] fault\r\n");
    te_exit(TE_EXIT_FAULT);
}

void te_default_handler(void)
{
    te_uart_puts("\r\n[te] unexpected exception\r\n");
    te_exit(TE_EXIT_FAULT);
}
