/* SPDX-License-Identifier: Apache-2.0 */
/* te_platform.h - the bare-metal platform API every generated firmware builds on:
 * init (clock tree, caches, UART, cycle counter), a polled UART on the board's ST-LINK VCP
 * (or QEMU's first serial port), a 32-bit cycle/tick counter, and exit.
 *
 * Select the board with -DTE_BOARD_<NAME> (see te_board.h and README.md). No vendor HAL, no
 * dynamic allocation, no interrupts except SysTick on boards whose counter needs it.
 */
#ifndef TE_PLATFORM_H
#define TE_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "te_board.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exit code used by the fault handlers (HardFault, unexpected exception). */
#define TE_EXIT_FAULT 126

/* Put a large static buffer (the tensor arena) in the .te_arena NOLOAD section: it is not
 * zeroed at boot and, on boards with a separate arena RAM (H7: AXI SRAM), lives there.
 * Usage: static uint8_t arena[N] TE_ARENA_ATTR; */
#define TE_ARENA_ATTR __attribute__((section(".te_arena"), aligned(16)))

/* Clock tree to the board's rated speed (real boards), caches (H7), UART, cycle counter. */
void te_platform_init(void);

/* UART (8N1, TE_UART_BAUD, polled). Output before te_platform_init() is dropped. */
void te_uart_init(void);
void te_uart_putc(uint8_t c);
void te_uart_write(const void *buf, size_t n);
void te_uart_puts(const char *s); /* NUL-terminated string, no newline added */
void te_uart_put_u32(uint32_t v); /* decimal */
uint8_t te_uart_getc_blocking(void);
int te_uart_try_getc(void); /* next byte 0..255, or -1 if none is waiting */
void te_uart_flush(void);   /* wait until the last byte has left the shifter */

/* Free-running 32-bit counter; differences are exact modulo 2^32 (unsigned subtraction).
 * te_cycles_start() starts it if needed and returns the current value. */
uint32_t te_cycles_start(void);
uint32_t te_cycles_now(void);
/* What the counter counts: "cycles" (DWT_CYCCNT, real cores), "cmsdk_timer_ticks" (QEMU mps2)
 * or "systick_ticks" (QEMU netduinoplus2), all at TE_CYCLES_HZ. */
const char *te_cycles_unit(void);

/* Stop: semihosting SYS_EXIT_EXTENDED on emulated boards (QEMU exits with `code`),
 * flush the UART and sleep forever on real boards. */
void te_exit(int code) __attribute__((noreturn));

/* Internal: implemented per family, called by te_platform_init(). */
void te_clock_init(void);

#ifdef __cplusplus
}
#endif

#endif /* TE_PLATFORM_H */
