/* SPDX-License-Identifier: Apache-2.0 */
/* te_uart.c - the UART helpers shared by every driver, built on the per-family primitives
 * te_uart_putc() and te_uart_try_getc() (te_uart_cmsdk.c, te_uart_stm32.c). */
#include "te_platform.h"

void te_uart_write(const void *buf, size_t n)
{
    const uint8_t *p = (const uint8_t *)buf;
    while (n--) {
        te_uart_putc(*p++);
    }
}

void te_uart_puts(const char *s)
{
    while (*s) {
        te_uart_putc((uint8_t)*s++);
    }
}

void te_uart_put_u32(uint32_t v)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0) {
        te_uart_putc((uint8_t)digits[--n]);
    }
}

uint8_t te_uart_getc_blocking(void)
{
    int c;
    while ((c = te_uart_try_getc()) < 0) {
    }
    return (uint8_t)c;
}
