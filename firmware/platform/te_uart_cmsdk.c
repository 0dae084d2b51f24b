/* SPDX-License-Identifier: Apache-2.0 */
/* te_uart_cmsdk.c - polled driver for the Arm CMSDK APB UART (QEMU mps2-an386/an500/an505 UART0),
 * written to the Cortex-M System Design Kit TRM (APB UART chapter).
 * Registers: DATA 0x00, STATE 0x04 (bit0 TX full, bit1 RX full, bit2 TX overrun, bit3 RX overrun,
 * write 1 to clear), CTRL 0x08 (bit0 TX enable, bit1 RX enable), BAUDDIV 0x10 (>= 16). */
#include "te_platform.h"
#include "te_regs.h"

#if defined(TE_UART_CMSDK)

#define TE_UART_DATA (TE_UART_BASE + 0x00u)
#define TE_UART_STATE (TE_UART_BASE + 0x04u)
#define TE_UART_CTRL (TE_UART_BASE + 0x08u)
#define TE_UART_BAUDDIV (TE_UART_BASE + 0x10u)

static int te_uart_ready;

void te_uart_init(void)
{
    TE_REG(TE_UART_CTRL) = 0;
    TE_REG(TE_UART_BAUDDIV) = TE_UART_CLOCK_HZ / TE_UART_BAUD;
    TE_REG(TE_UART_STATE) = 0xCu; /* clear sticky overrun flags */
    TE_REG(TE_UART_CTRL) = 0x3u;  /* TX and RX enabled, no interrupts */
    /* A read of DATA is harmless here (RX is empty) and makes QEMU poll its serial backend
     * again: it stops doing so while RX is disabled and otherwise resumes only on its next
     * main-loop wakeup, up to a second later. */
    (void)TE_REG(TE_UART_DATA);
    te_uart_ready = 1;
}

void te_uart_putc(uint8_t c)
{
    if (!te_uart_ready) {
        return;
    }
    while (TE_REG(TE_UART_STATE) & 0x1u) {
    }
    TE_REG(TE_UART_DATA) = c;
}

int te_uart_try_getc(void)
{
    uint32_t state = TE_REG(TE_UART_STATE);
    if (state & 0x8u) {
        TE_REG(TE_UART_STATE) = 0x8u;
    }
    if (state & 0x2u) {
        return (int)(TE_REG(TE_UART_DATA) & 0xFFu);
    }
    return -1;
}

void te_uart_flush(void)
{
    if (!te_uart_ready) {
        return;
    }
    while (TE_REG(TE_UART_STATE) & 0x1u) {
    }
}

#endif
