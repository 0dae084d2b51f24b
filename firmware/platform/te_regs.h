/* SPDX-License-Identifier: Apache-2.0 */
/* te_regs.h - register access helpers and the Cortex-M system registers the platform uses
 * (ARMv7-M / ARMv8-M Architecture Reference Manual, System Control Space). Private to
 * firmware/platform/. */
#ifndef TE_REGS_H
#define TE_REGS_H

#include <stdint.h>

#define TE_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* Wait until (reg & mask) == value. */
#define TE_WAIT(addr, mask, value) \
    do {                           \
    } while ((TE_REG(addr) & (mask)) != (value))

#define TE_DSB() __asm__ volatile("dsb" ::: "memory")
#define TE_ISB() __asm__ volatile("isb" ::: "memory")

/* System Control Block */
#define TE_SCB_ICSR 0xE000ED04u
#define TE_SCB_VTOR 0xE000ED08u
#define TE_SCB_CCR 0xE000ED14u   /* bit 16 DC, bit 17 IC (Cortex-M7) */
#define TE_SCB_CPACR 0xE000ED88u /* CP10/CP11 at bits 20..23 */
#define TE_SCB_CCSIDR 0xE000ED80u
#define TE_SCB_CSSELR 0xE000ED84u
#define TE_SCB_ICIALLU 0xE000EF50u
#define TE_SCB_DCISW 0xE000EF60u
#define TE_SCB_DEMCR 0xE000EDFCu /* bit 24 TRCENA */

/* SysTick */
#define TE_SYST_CSR 0xE000E010u /* bit0 ENABLE, bit1 TICKINT, bit2 CLKSOURCE (core clock) */
#define TE_SYST_RVR 0xE000E014u
#define TE_SYST_CVR 0xE000E018u

/* Data Watchpoint and Trace unit */
#define TE_DWT_CTRL 0xE0001000u /* bit0 CYCCNTENA, bit25 NOCYCCNT */
#define TE_DWT_CYCCNT 0xE0001004u
#define TE_DWT_LAR 0xE0001FB0u /* Cortex-M7: write 0xC5ACCE55 to unlock */

#endif /* TE_REGS_H */
