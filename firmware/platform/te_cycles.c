/* SPDX-License-Identifier: Apache-2.0 */
/* te_cycles.c - the 32-bit counter behind te_cycles_start()/te_cycles_now().
 *  - real cores: DWT_CYCCNT, the core cycle counter (reads 0 in QEMU, so not used there);
 *  - QEMU mps2 boards: CMSDK APB TIMER0, reloaded at 0xFFFFFFFF, counting down at the system
 *    clock; returned inverted so it counts up;
 *  - QEMU netduinoplus2: SysTick on the core clock, 24 bits extended to 32 by counting wraps in
 *    SysTick_Handler (needs interrupts enabled, which is the reset state).
 * Under QEMU -icount shift=N the timers tick (clock_hz * 2^N ns) times per instruction. */
#include "te_platform.h"
#include "te_regs.h"

#if defined(TE_CYCLES_DWT)

uint32_t te_cycles_start(void)
{
    if ((TE_REG(TE_DWT_CTRL) & 1u) == 0) {
        TE_REG(TE_SCB_DEMCR) |= 1u << 24; /* TRCENA: power the DWT */
        TE_REG(TE_DWT_LAR) = 0xC5ACCE55u; /* unlock (needed on Cortex-M7, ignored elsewhere) */
        TE_REG(TE_DWT_CYCCNT) = 0;
        TE_REG(TE_DWT_CTRL) |= 1u; /* CYCCNTENA */
    }
    return TE_REG(TE_DWT_CYCCNT);
}

uint32_t te_cycles_now(void) { return TE_REG(TE_DWT_CYCCNT); }

#elif defined(TE_CYCLES_CMSDK_TIMER)

/* CMSDK APB timer: CTRL 0x00 (bit0 enable), VALUE 0x04, RELOAD 0x08. */
#define TE_TIMER_CTRL (TE_CYCLES_TIMER_BASE + 0x00u)
#define TE_TIMER_VALUE (TE_CYCLES_TIMER_BASE + 0x04u)
#define TE_TIMER_RELOAD (TE_CYCLES_TIMER_BASE + 0x08u)

uint32_t te_cycles_start(void)
{
    if ((TE_REG(TE_TIMER_CTRL) & 1u) == 0) {
        TE_REG(TE_TIMER_RELOAD) = 0xFFFFFFFFu;
        TE_REG(TE_TIMER_VALUE) = 0xFFFFFFFFu;
        TE_REG(TE_TIMER_CTRL) = 1u;
    }
    return ~TE_REG(TE_TIMER_VALUE);
}

uint32_t te_cycles_now(void) { return ~TE_REG(TE_TIMER_VALUE); }

#elif defined(TE_CYCLES_SYSTICK)

static volatile uint32_t te_systick_wraps;

void SysTick_Handler(void);

void SysTick_Handler(void) { te_systick_wraps++; }

uint32_t te_cycles_start(void)
{
    if ((TE_REG(TE_SYST_CSR) & 1u) == 0) {
        te_systick_wraps = 0;
        TE_REG(TE_SYST_RVR) = 0x00FFFFFFu; /* period 2^24 ticks */
        TE_REG(TE_SYST_CVR) = 0;
        TE_REG(TE_SYST_CSR) = 0x7u; /* core clock, interrupt on wrap, enable */
    }
    return te_cycles_now();
}

uint32_t te_cycles_now(void)
{
    uint32_t wraps, value, pending;
    do {
        wraps = te_systick_wraps;
        value = TE_REG(TE_SYST_CVR);
        pending = TE_REG(TE_SCB_ICSR) & (1u << 26); /* PENDSTSET: wrapped, handler not run yet */
    } while (wraps != te_systick_wraps);
    if (pending && value > 0x00800000u) {
        wraps++;
    }
    return (wraps << 24) + (0x00FFFFFFu - value);
}

#endif
